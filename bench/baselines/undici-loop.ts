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

const template = sinkTemplate(origin, tag);
const pathStart = origin.length;
const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 4_000 });

let next = 0;
let ok = 0;
let errors = 0;

async function lane(): Promise<void> {
  while (next < n) {
    const i = next++;
    const item = SAMPLE_ITEMS[i % SAMPLE_ITEMS.length] as { key: string; value: string };
    const path = renderSample(template, { ...item, ts: nowUs() }).slice(pathStart);
    try {
      const res = await pool.request({
        path,
        method: 'GET',
        headers: { 'user-agent': userAgent, 'x-postback-id': `u:${i}` },
      });
      await res.body.text();
      if (res.statusCode >= 200 && res.statusCode < 300) ok++;
      else errors++;
    } catch {
      errors++;
    }
  }
}

process.once('message', (m) => {
  if (m !== 'go') return;
  void (async () => {
    const firstUs = nowUs();
    await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
    const lastUs = nowUs();
    await pool.close();
    process.send?.({ type: 'done', requests: n, ok, errors, firstUs, lastUs });
  })();
});
process.on('disconnect', () => process.exit(0));
process.send?.('ready');
