/**
 * Baseline: a bare undici Pool (64 connections) firing the requests delivery
 * would make, straight at the sink, as fast as it can; no Redis, no queue.
 * The ceiling of delivery on this machine. Run as its own process by the
 * e2e scenario:
 *
 *   UNDICI_ORIGIN=http://127.0.0.1:PORT UNDICI_TAG=tag UNDICI_N=100000 \
 *   UNDICI_CONNECTIONS=64 UNDICI_IN_FLIGHT=128 node dist/bench/baselines/undici-loop.js
 *
 * An https origin works too (e2e-tls), its CA trusted through
 * NODE_EXTRA_CA_CERTS.
 *
 * Many origins (many-origins' floor): a `{ type: 'go', origins, each }`
 * message instead of 'go' sends requests i*each to (i+1)*each-1 to
 * origins[i % origins.length], each origin through a Pool of its own with
 * UNDICI_ORIGIN_CONNECTIONS connections (default 2), closed once its
 * requests have finished, UNDICI_IN_FLIGHT at a time in all: what a plain
 * client does with thousands of partners of a few requests each.
 *
 * Sends 'ready', waits for 'go', then reports
 * `{ type: 'done', requests, ok, errors, firstUs, lastUs }` over IPC.
 */
import { Pool } from 'undici';
import { nowUs } from '../lib/histogram.js';
import { SAMPLE_ITEMS, renderSample, sinkTemplate } from '../lib/payload.js';

const origin = process.env.UNDICI_ORIGIN ?? '';
const tag = process.env.UNDICI_TAG ?? 'undici';
const n = Number(process.env.UNDICI_N ?? 100_000);
const connections = Number(process.env.UNDICI_CONNECTIONS ?? 64);
const inFlight = Number(process.env.UNDICI_IN_FLIGHT ?? connections * 2);
const userAgent = process.env.UNDICI_USER_AGENT ?? 'postback-delivery/bench';

const originConnections = Number(process.env.UNDICI_ORIGIN_CONNECTIONS ?? 2);

/** Where request i goes: its origin's pool and the path for it, and a call when it has finished. */
interface Route {
  pool: Pool;
  path(i: number): string;
  finished(): void;
}

function pathOf(template: string, originLength: number, i: number): string {
  const item = SAMPLE_ITEMS[i % SAMPLE_ITEMS.length] as { key: string; value: string };
  return renderSample(template, { ...item, ts: nowUs() }).slice(originLength);
}

/** One origin, one pool of `connections`, for all n requests. */
function oneOrigin(): { route(i: number): Route; close(): Promise<void> } {
  const template = sinkTemplate(origin, tag);
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 4_000 });
  const r: Route = { pool, path: (i) => pathOf(template, origin.length, i), finished: () => {} };
  return { route: () => r, close: () => pool.close() };
}

/** `each` requests in turn to each of `origins`, a pool per origin closed after its last request. */
function manyOrigins(origins: string[], each: number): { route(i: number): Route; close(): Promise<void> } {
  const open = new Map<number, Route & { left: number }>();
  const closing: Promise<void>[] = [];
  return {
    route(i) {
      const block = Math.floor(i / each);
      let r = open.get(block);
      if (r === undefined) {
        const o = origins[block % origins.length] as string;
        const template = sinkTemplate(o, tag);
        const pool = new Pool(o, { connections: originConnections, pipelining: 1, keepAliveTimeout: 4_000 });
        const entry: Route & { left: number } = {
          pool,
          left: Math.min(each, n - block * each),
          path: (k) => pathOf(template, o.length, k),
          finished() {
            if (--entry.left > 0) return;
            open.delete(block);
            closing.push(pool.close());
          },
        };
        r = entry;
        open.set(block, entry);
      }
      return r;
    },
    async close() {
      await Promise.all(closing);
    },
  };
}

let next = 0;
let ok = 0;
let errors = 0;

async function lane(routes: { route(i: number): Route }): Promise<void> {
  while (next < n) {
    const i = next++;
    const r = routes.route(i);
    try {
      const res = await r.pool.request({
        path: r.path(i),
        method: 'GET',
        headers: { 'user-agent': userAgent, 'x-postback-id': `u:${i}` },
      });
      await res.body.text();
      if (res.statusCode >= 200 && res.statusCode < 300) ok++;
      else errors++;
    } catch {
      errors++;
    }
    r.finished();
  }
}

process.once('message', (m: unknown) => {
  const many = m as { type?: string; origins?: string[]; each?: number };
  if (m !== 'go' && many.type !== 'go') return;
  const routes = many.origins ? manyOrigins(many.origins, many.each ?? 1) : oneOrigin();
  void (async () => {
    const firstUs = nowUs();
    await Promise.all(Array.from({ length: Math.min(inFlight, n) }, () => lane(routes)));
    const lastUs = nowUs();
    await routes.close();
    process.send?.({ type: 'done', requests: n, ok, errors, firstUs, lastUs });
  })();
});
process.on('disconnect', () => process.exit(0));
process.send?.('ready');
