/**
 * A real HTTP endpoint on 127.0.0.1:0 that records what it receives and
 * answers as the test scripts it (status, delay, body), per request. With
 * `tls` it is an https endpoint (node:https) serving that key and
 * certificate, and counts its connections and TLS handshakes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { once } from 'node:events';
import type { TLSSocket } from 'node:tls';

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
  /** TCP connections accepted. */
  readonly connections: number;
  /** TLS handshakes completed ('secureConnection'), resumed sessions included; 0 without `tls`. */
  readonly handshakes: number;
  /** Of those, the ones that resumed an earlier session. */
  readonly resumed: number;
  /** Handshakes that failed (the client refused the certificate, or spoke no TLS). */
  readonly tlsErrors: number;
  /** Server names (SNI) clients asked for; a connection to an IP literal sends none. */
  readonly servernames: Set<string>;
  /** Resolves once `n` requests arrived (rejects after timeoutMs). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/**
 * `keep: false` for big loads: requests are counted and their postback ids
 * kept in a Set, not stored whole. `port`: a given one (a partner coming
 * back where it was), else any free one. `tls`: serve https with this key
 * and certificate (bench/lib/certs.ts makes them).
 */
export async function startSink(
  script: Script = () => ({ status: 200 }),
  opts: { keep?: boolean; port?: number; tls?: { key: string; cert: string } } = {},
): Promise<TestSink> {
  const keep = opts.keep ?? true;
  const received: Received[] = [];
  const ids = new Set<string>();
  let count = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let connections = 0;
  let handshakes = 0;
  let resumed = 0;
  let tlsErrors = 0;
  const servernames = new Set<string>();
  // Tests empty `received` between phases: then it is the count.
  const size = () => (keep ? received.length : count);
  const waiters: { n: number; resolve: () => void }[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
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
  };
  const server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest) : createServer(onRequest);
  server.on('connection', () => connections++);
  if (opts.tls) {
    server.on('secureConnection', (s: TLSSocket) => {
      handshakes++;
      if (s.isSessionReused()) resumed++;
      const name = (s as TLSSocket & { servername?: string | false }).servername;
      if (typeof name === 'string') servernames.add(name);
    });
    server.on('tlsClientError', () => tlsErrors++);
  }
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    origin: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    received,
    get count() {
      return size();
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get connections() {
      return connections;
    },
    get handshakes() {
      return handshakes;
    },
    get resumed() {
      return resumed;
    },
    get tlsErrors() {
      return tlsErrors;
    },
    servernames,
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
