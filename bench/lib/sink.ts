/**
 * The harness side of the sink (see sink-worker.ts): starts the worker
 * thread with its origins (http, or https with a given certificate),
 * switches phases (`reset(tag, delays)`), reads counters, connections, TLS
 * handshakes and latency, and waits until enough distinct postbacks arrived.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { LatencySummary } from './histogram.js';

export interface OriginStats {
  /** Requests of the current tag. */
  received: number;
  /** Distinct X-Postback-Id values among them. */
  distinct: number;
  /** received - distinct (requests without the header aside). */
  duplicates: number;
  noId: number;
  /** Requests of another tag (an earlier phase). */
  stray: number;
  /** µs epoch of the first and last receipt, and of the last new id. */
  firstUs: number;
  lastUs: number;
  lastNewUs: number;
  /** Ingest-to-receipt latency, when asked for. */
  latency: LatencySummary | null;
  /** The most requests received in any 1-second window (10 ms steps). */
  peak1s: number;
  /** TCP connections accepted this phase. */
  connections: number;
  /** TLS handshakes completed this phase (an https origin), resumed sessions included. */
  handshakes: number;
  /** Of those, the ones that resumed an earlier session (abbreviated handshakes). */
  resumed: number;
  /** Handshakes that failed this phase. */
  tlsErrors: number;
}

export type SinkCommand =
  | { type: 'reset'; tag: string; delays?: Record<string, number> }
  | { type: 'stats'; latency: boolean }
  | { type: 'down' | 'up'; name: string };

export type SinkRequest = SinkCommand & { id: number };

export interface SinkReply {
  id: number;
  stats: Record<string, OriginStats>;
}

export interface OriginSpec {
  name: string;
  delayMs: number;
  /** Serve this origin on this many ports (distinct origins, one set of counters); default 1. */
  ports?: number;
  /** Serve https with this key and certificate (PEM; bench/lib/certs.ts makes them). */
  tls?: { key: string; cert: string };
}

export class Sink {
  private seq = 0;
  private readonly waiting = new Map<number, (r: SinkReply) => void>();

  private constructor(
    private readonly worker: Worker,
    readonly ports: Record<string, number[]>,
    private readonly secure: Set<string>,
  ) {
    worker.on('message', (m: SinkReply | { type: 'listening' }) => {
      if ('id' in m) {
        this.waiting.get(m.id)?.(m);
        this.waiting.delete(m.id);
      }
    });
  }

  static async start(origins: OriginSpec[]): Promise<Sink> {
    const worker = new Worker(new URL('./sink-worker.js', import.meta.url), { workerData: origins });
    worker.unref();
    worker.on('error', (err) => process.stderr.write(`bench: sink worker failed: ${err.stack ?? err.message}\n`));
    const [msg] = (await Promise.race([
      once(worker, 'message'),
      once(worker, 'error').then(([err]) => Promise.reject(err as Error)),
    ])) as [{ type: 'listening'; ports: Record<string, number[]> }];
    return new Sink(worker, msg.ports, new Set(origins.filter((o) => o.tls !== undefined).map((o) => o.name)));
  }

  /** `http://127.0.0.1:<port>` of an origin (its `k`th port when it has several); `https://` for a TLS one. */
  origin(name: string, k = 0, host = '127.0.0.1'): string {
    const p = this.ports[name]?.[k];
    if (p === undefined) throw new Error(`no sink origin "${name}" (port ${k})`);
    return `${this.secure.has(name) ? 'https' : 'http'}://${host}:${p}`;
  }

  private ask(req: SinkCommand): Promise<SinkReply> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage({ ...req, id });
    });
  }

  /** Starts a phase: counters cleared, only paths under `/<tag>/` counted. */
  async reset(tag: string, delays?: Record<string, number>): Promise<void> {
    await this.ask({ type: 'reset', tag, ...(delays ? { delays } : {}) });
  }

  /** Takes an origin down (its ports refuse connections) or brings it back on the same ports. */
  async setUp(name: string, up: boolean): Promise<void> {
    await this.ask({ type: up ? 'up' : 'down', name });
  }

  async stats(latency = false): Promise<Record<string, OriginStats>> {
    return (await this.ask({ type: 'stats', latency })).stats;
  }

  /**
   * Polls until `done(stats)` holds, or until nothing new arrived for
   * `idleMs`, or `timeoutMs` passed; resolves with the last stats either way
   * (the caller counts what is missing as lost).
   */
  async waitFor(
    done: (s: Record<string, OriginStats>) => boolean,
    opts: { idleMs: number; timeoutMs: number; onProgress?: (s: Record<string, OriginStats>) => void },
  ): Promise<{ stats: Record<string, OriginStats>; complete: boolean }> {
    const until = Date.now() + opts.timeoutMs;
    let lastTotal = -1;
    let lastChange = Date.now();
    for (;;) {
      const s = await this.stats();
      if (done(s)) return { stats: s, complete: true };
      const total = Object.values(s).reduce((n, o) => n + o.received, 0);
      if (total !== lastTotal) {
        lastTotal = total;
        lastChange = Date.now();
      }
      opts.onProgress?.(s);
      if (Date.now() - lastChange > opts.idleMs || Date.now() > until) return { stats: s, complete: false };
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
