/**
 * One closed-loop delivery phase through the service: send `n` postbacks to
 * ingest (`items` a request, `concurrency` requests at a time, each
 * request's origin chosen by `route`), while delivery drains to the sink;
 * wait until the sink saw every accepted postback of the origins waited
 * for (or nothing new arrived for `idleMs`), and measure per origin:
 * delivered/s from the first send to the last new postback id, latency
 * from the `ts` each request carried, duplicates and losses.
 */
import { sendBulk, type SendResult } from './load.js';
import { sinkBody, sinkTemplate } from './payload.js';
import type { OriginStats, Sink } from './sink.js';
import type { Metrics } from './scenario.js';

export interface BulkPhase {
  send: SendResult;
  /** Postbacks ingest accepted, per origin. */
  expected: Record<string, number>;
  stats: Record<string, OriginStats>;
  complete: boolean;
}

export async function deliverBulk(o: {
  sink: Sink;
  ingestOrigin: string;
  tag: string;
  n: number;
  items: number;
  concurrency: number;
  route?: (i: number) => string;
  /**
   * The origin request i goes to, when not the sink origin its route names
   * (a host name resolving to the sink, or one of its many ports); the
   * sink still counts it under the route's name.
   */
  originOf?: (i: number) => string;
  /** Origins whose postbacks must all arrive; default every origin routed to. */
  waitFor?: string[];
  idleMs?: number;
  timeoutMs?: number;
  progress?: (msg: string) => void;
}): Promise<BulkPhase> {
  const route = o.route ?? (() => 'a');
  const requests = Math.ceil(o.n / o.items);
  const itemsOf = (i: number) => Math.min(o.items, o.n - i * o.items);
  const templates = new Map<string, string>();
  const template = (i: number) => {
    const origin = o.originOf ? o.originOf(i) : o.sink.origin(route(i));
    let t = templates.get(origin);
    if (t === undefined) {
      t = sinkTemplate(origin, o.tag);
      // Bounded by the origins of one phase.
      templates.set(origin, t);
    }
    return t;
  };
  const expected: Record<string, number> = {};
  for (let i = 0; i < requests; i++) expected[route(i)] = 0;
  await o.sink.reset(o.tag);
  const send = await sendBulk({
    origin: o.ingestOrigin,
    path: '/i',
    requests,
    concurrency: o.concurrency,
    body: (i, ts) => sinkBody(template(i), itemsOf(i), ts),
    onAccepted: (i, accepted) => {
      const name = route(i);
      expected[name] = (expected[name] ?? 0) + accepted;
    },
  });
  o.progress?.(`sent ${send.accepted} postbacks in ${((send.lastUs - send.firstUs) / 1e6).toFixed(1)} s; waiting for the sink`);
  const waited = o.waitFor ?? Object.keys(expected);
  let lastReport = Date.now();
  const { stats, complete } = await o.sink.waitFor(
    (s) => waited.every((name) => (s[name]?.distinct ?? 0) >= (expected[name] ?? 0)),
    {
      idleMs: o.idleMs ?? 15_000,
      timeoutMs: o.timeoutMs ?? 600_000,
      onProgress: (s) => {
        if (Date.now() - lastReport < 5_000) return;
        lastReport = Date.now();
        o.progress?.(`sink: ${waited.map((n) => `${n} ${s[n]?.distinct ?? 0}/${expected[n] ?? 0}`).join(', ')}`);
      },
    },
  );
  const withLatency = await o.sink.stats(true);
  return { send, expected, stats: { ...stats, ...withLatency }, complete };
}

/** Metrics of one origin in a phase, under `prefix.` */
export function originMetrics(m: Metrics, prefix: string, phase: BulkPhase | { send: SendResult; expected: Record<string, number>; stats: Record<string, OriginStats> }, name: string): void {
  const s = phase.stats[name];
  const expected = phase.expected[name] ?? 0;
  if (!s) return;
  const seconds = (s.lastNewUs - phase.send.firstUs) / 1e6;
  m[`${prefix}.postbacks`] = expected;
  m[`${prefix}.delivered`] = s.distinct;
  m[`${prefix}.delivered_s`] = s.distinct > 0 && seconds > 0 ? s.distinct / seconds : 0;
  m[`${prefix}.p50_ms`] = s.latency?.p50 ?? null;
  m[`${prefix}.p99_ms`] = s.latency?.p99 ?? null;
  m[`${prefix}.p999_ms`] = s.latency?.p999 ?? null;
  m[`${prefix}.max_ms`] = s.latency?.max ?? null;
  m[`${prefix}.duplicates`] = s.duplicates;
  m[`${prefix}.losses`] = Math.max(0, expected - s.distinct);
  m[`${prefix}.stray`] = s.stray;
}
