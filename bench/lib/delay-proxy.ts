/**
 * A TCP delay proxy in front of a port (the harness's Redis), so the
 * service sees Redis as if it were on another host: every chunk is held a
 * fixed delay in each direction (a round trip gains twice the delay), in
 * order, without limiting throughput. It runs as its own process
 * (delay-proxy-process.ts, with a clock thread for sub-millisecond
 * wake-ups: delay-clock.ts), so its CPU sits neither on the harness's
 * event loop nor in the service's processes, and is measured apart
 * (`pid`). At delay 0 it is the same relay without the wait: compare a
 * run through it at 0 with one at the delay, and the proxy's own cost
 * cancels out of the ratio.
 *
 * `traffic()` counts, per role (the connection name a client gives with
 * CLIENT SETNAME, up to its first ':'), connections, chunks and bytes
 * each way: a chunk a client writes is one burst of commands sent
 * together (about one round trip).
 */
import { benchScript, spawnNode, type Child } from './procs.js';
import { RespClient } from './resp.js';
import { createHistogram, recordUs, summarize, type LatencySummary } from './histogram.js';

export interface ProxyTraffic {
  connections: number;
  /** Chunks and bytes from clients to the target (one chunk: one burst of commands). */
  upChunks: number;
  upBytes: number;
  /** Chunks and bytes from the target to clients. */
  downChunks: number;
  downBytes: number;
}

export interface DelayProxy {
  port: number;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  pid: number;
  readonly delayMs: number;
  /** Changes the delay, also of the chunks held now (counted from their arrival): a long one holds traffic, 0 releases it. */
  setDelay(ms: number): Promise<void>;
  /** Traffic since start, by role (connections closed included). */
  traffic(): Promise<Record<string, ProxyTraffic>>;
  close(): Promise<void>;
}

export async function startDelayProxy(o: { targetPort: number; delayMs: number; targetHost?: string }): Promise<DelayProxy> {
  const child: Child = await spawnNode('delay-proxy', benchScript('lib/delay-proxy-process.js'), {
    env: {
      PATH: process.env.PATH ?? '',
      PROXY_TARGET_PORT: String(o.targetPort),
      PROXY_TARGET_HOST: o.targetHost ?? '127.0.0.1',
      PROXY_DELAY_MS: String(o.delayMs),
    },
  });
  let seq = 0;
  const ask = async <T>(msg: Record<string, unknown>): Promise<T> => {
    const id = ++seq;
    child.proc.send({ ...msg, id });
    return child.message<T>((m) => (m as { id?: number }).id === id, 10_000);
  };
  let delayMs = o.delayMs;
  const port = child.port('proxy');
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    get delayMs() {
      return delayMs;
    },
    async setDelay(ms: number) {
      await ask({ type: 'delay', ms });
      delayMs = ms;
    },
    async traffic() {
      return (await ask<{ traffic: Record<string, ProxyTraffic> }>({ type: 'stats' })).traffic;
    },
    async close() {
      await child.kill();
    },
  };
}

/** The round trip of `n` PINGs one after the other to a Redis port (through a proxy or not), in ms. */
export async function pingRtt(port: number, n = 200): Promise<LatencySummary> {
  const c = await RespClient.connect(port);
  try {
    for (let i = 0; i < 20; i++) await c.command('PING');
    const h = createHistogram();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await c.command('PING');
      recordUs(h, (performance.now() - t0) * 1000);
    }
    return summarize(h);
  } finally {
    c.close();
  }
}
