/**
 * A real HTTP endpoint on 127.0.0.1:0 that records what it receives and
 * answers as the test scripts it (status, delay, body), per request.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export type Reply = { status?: number; delayMs?: number; body?: string; headers?: Record<string, string> };
export type Script = (req: Received, n: number) => Reply | 'hang' | 'reset';

export interface TestSink {
  port: number;
  origin: string;
  /** Every request, unless started with `keep: false` (then only counted). */
  received: Received[];
  /** Requests received: received.length, or the count when not kept. */
  readonly count: number;
  /** Distinct X-Postback-Id values received, when started with `keep: false`. */
  ids: Set<string>;
  /** The most requests it was answering at once. */
  readonly maxInFlight: number;
  /** Resolves once `n` requests arrived (rejects after timeoutMs). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/**
 * `keep: false` for big loads: requests are counted and their postback ids
 * kept in a Set, not stored whole. `port`: a given one (a partner coming
 * back where it was), else any free one.
 */
export async function startSink(script: Script = () => ({ status: 200 }), opts: { keep?: boolean; port?: number } = {}): Promise<TestSink> {
  const keep = opts.keep ?? true;
  const received: Received[] = [];
  const ids = new Set<string>();
  let count = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  // Tests empty `received` between phases: then it is the count.
  const size = () => (keep ? received.length : count);
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        at: Date.now(),
      };
      count++;
      if (keep) received.push(r);
      else ids.add(String(r.headers['x-postback-id']));
      for (const w of waiters.filter((w) => size() >= w.n)) w.resolve();
      const reply = script(r, size());
      if (reply === 'hang') return;
      if (reply === 'reset') {
        req.socket.destroy();
        return;
      }
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status ?? 200, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? 'ok');
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    received,
    get count() {
      return size();
    },
    get maxInFlight() {
      return maxInFlight;
    },
    ids,
    waitFor(n, timeoutMs = 20_000) {
      if (size() >= n) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`sink got ${size()} of ${n} requests in ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(received);
          },
        });
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
