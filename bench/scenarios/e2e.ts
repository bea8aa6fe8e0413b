/**
 * `e2e`: postbacks through ingest, delivery and the sink, in three phases.
 * 1. max: --n postbacks (default 100k) sent to ingest as fast as it takes
 *    them (--e2e-items a request, 16 requests at a time) while delivery
 *    drains: delivered/s (first send to last new id at the sink),
 *    ingest-to-receipt latency (HDR, from each item's `ts`), duplicates and
 *    losses by X-Postback-Id, CPU per postback of each process.
 * 2. open: a fixed arrival rate of half the delivered/s of phase 1, for
 *    --open-duration seconds, --open-items a request (default the same as
 *    phase 1, so it is the same workload at half its rate), sent on schedule
 *    without waiting for responses; latency counts from the scheduled time
 *    (no coordinated omission).
 * 3. floor: ingest and delivery stopped, the floor baseline
 *    (bench/baselines/trickle-floor.ts) on the same Redis takes phase 1's
 *    workload the same way: node:http XADDing each request's body, an
 *    XREAD BLOCK loop handing every item at once to an undici Pool (64
 *    connections, no bound on what waits for one). No consumer group, no
 *    acknowledgement, no retry, no log: the hops alone, the ceiling of any
 *    design that stores before its 202 and delivers from Redis.
 * 4. undici: the service stopped, a bare undici Pool loop (64 connections)
 *    sends the same number of the same requests straight to the sink.
 */
import { originMetrics, deliverBulk } from '../lib/deliver.js';
import { openLoop } from '../lib/load.js';
import { sinkBody, sinkTemplate } from '../lib/payload.js';
import { benchScript, cpuOf, harnessCpu, mainThreadCpuSeconds, spawnNode } from '../lib/procs.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { deliveryCounter, startStack } from '../lib/stack.js';
import { startFloorBack, startFloorFront } from '../lib/floor.js';
import { packageUserAgent } from '../lib/version.js';

const SEND_CONCURRENCY = 16;
const OPEN_CONNECTIONS = 64;
const UNDICI_CONNECTIONS = 64;
const UNDICI_IN_FLIGHT = 128;

/** CPU µs per postback of each process, under `prefix.cpu_us_per_pb.` */
export function cpuMetrics(m: Metrics, prefix: string, before: Record<string, number>, after: Record<string, number>, postbacks: number): void {
  let total = 0;
  for (const name of Object.keys(before)) {
    const us = (((after[name] ?? 0) - (before[name] ?? 0)) * 1e6) / Math.max(1, postbacks);
    m[`${prefix}.cpu_us_per_pb.${name}`] = us;
    if (name !== 'harness' && name !== 'delivery_main') total += us;
  }
  m[`${prefix}.cpu_us_per_pb.total`] = total;
}

/** The bare undici Pool loop against sink origin `name` (default "a"); `env` for the child (NODE_EXTRA_CA_CERTS for an https origin). */
export async function runUndiciLoop(
  sink: Sink,
  tag: string,
  n: number,
  opts: { name?: string; env?: Record<string, string>; many?: { origins: string[]; each: number } } = {},
): Promise<{ reqPerSec: number; ok: number; errors: number; firstUs: number; lastUs: number }> {
  await sink.reset(tag);
  const child = await spawnNode('undici-loop', benchScript('baselines/undici-loop.js'), {
    env: {
      ...opts.env,
      PATH: process.env.PATH ?? '',
      UNDICI_ORIGIN: sink.origin(opts.name ?? 'a'),
      UNDICI_TAG: tag,
      UNDICI_N: String(n),
      UNDICI_CONNECTIONS: String(UNDICI_CONNECTIONS),
      UNDICI_IN_FLIGHT: String(UNDICI_IN_FLIGHT),
      UNDICI_USER_AGENT: packageUserAgent(),
    },
  });
  try {
    child.proc.send(opts.many ? { type: 'go', ...opts.many } : 'go');
    const done = await child.message<{ ok: number; errors: number; firstUs: number; lastUs: number }>(
      (x) => (x as { type?: string }).type === 'done',
    );
    return { ...done, reqPerSec: (done.ok * 1e6) / Math.max(1, done.lastUs - done.firstUs) };
  } finally {
    await child.kill();
  }
}

export const e2eScenario: Scenario = {
  name: 'e2e',
  summary: 'N postbacks through ingest + delivery + sink (max), then open loop at half that rate; a bare undici Pool loop for the ratio',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    const stack = await startStack(ctx, { ingest: true, delivery: true });
    const m: Metrics = {};
    const knobs: Record<string, unknown> = {};
    try {
      // 1. max
      ctx.progress(`max: ${o.n} postbacks, ${o.e2eItems} a request`);
      const pids = stack.pids();
      const mainOf = (): Record<string, number> => (pids.delivery === undefined ? {} : { delivery_main: mainThreadCpuSeconds(pids.delivery) });
      const cpu0 = { ...cpuOf(pids), ...mainOf(), harness: harnessCpu() };
      const parked0 = await deliveryCounter(stack, 'pb_delivery_parked_total');
      const max = await deliverBulk({
        sink,
        ingestOrigin: stack.ingestOrigin,
        tag: 'max',
        n: o.n,
        items: o.e2eItems,
        concurrency: SEND_CONCURRENCY,
        progress: ctx.progress,
      });
      const cpu1 = { ...cpuOf(pids), ...mainOf(), harness: harnessCpu() };
      originMetrics(m, 'max', max, 'a');
      m['max.ingest_s'] = (max.send.accepted * 1e6) / Math.max(1, max.send.lastUs - max.send.firstUs);
      m['max.non2xx'] = max.send.non2xx;
      m['max.errors'] = max.send.errors;
      cpuMetrics(m, 'max', cpu0, cpu1, max.stats.a?.distinct ?? 0);
      // Postbacks put back in Redis because their origin had enough waiting (admission.ts), read again later.
      const parked1 = await deliveryCounter(stack, 'pb_delivery_parked_total');
      m['max.parked_per_pb'] = parked0 === null || parked1 === null ? null : (parked1 - parked0) / Math.max(1, max.stats.a?.distinct ?? 1);

      // 2. open loop at half the measured maximum
      const maxRate = get(m, 'max.delivered_s') ?? 0;
      const rate = Math.max(1, maxRate / 2);
      const reqRate = rate / o.openItems;
      ctx.progress(`open loop: ${Math.round(rate)} postbacks/s (${Math.round(reqRate)} requests/s of ${o.openItems}) for ${o.openDurationS} s`);
      const open = await openPhase(ctx, m, 'open', { sink, origin: stack.ingestOrigin, rate, pids });
      knobs.statusCodes = { max: max.send.statusCodes, open };
      knobs.roles = stack.knobs();

      // 3. floor: the same hops with nothing else, on the same Redis, the roles stopped
      await Promise.all([stack.ingest?.kill(), stack.delivery?.kill()]);
      ctx.progress(`floor: ${o.n} postbacks, ${o.e2eItems} a request`);
      const back = await startFloorBack(stack);
      try {
        const front = await startFloorFront(stack);
        try {
          const floor = await deliverBulk({ sink, ingestOrigin: front.origin, tag: 'floor', n: o.n, items: o.e2eItems, concurrency: SEND_CONCURRENCY });
          originMetrics(m, 'floor', floor, 'a');
          // The open loop's arrival rate (the service's, so the same workload).
          ctx.progress(`floor, open loop: ${Math.round(rate)} postbacks/s for ${o.openDurationS} s`);
          await openPhase(ctx, m, 'floor_open', { sink, origin: front.origin, rate, pids: { floor_front: front.child.pid, floor_back: back.pid, redis: stack.redis.pid } });
          m['ratio.open_p99_vs_floor'] = ratio(get(m, 'open.p99_ms'), get(m, 'floor_open.p99_ms'));
        } finally {
          await front.child.kill();
        }
      } finally {
        await back.kill();
      }
    } finally {
      await stack.stop();
    }
    try {
      // 4. bare undici Pool loop, the service stopped
      ctx.progress(`undici Pool loop: ${o.n} requests, ${UNDICI_CONNECTIONS} connections`);
      const u = await runUndiciLoop(sink, 'undici', o.n);
      const us = await sink.stats(true);
      m['undici.req_s'] = u.reqPerSec;
      m['undici.p50_ms'] = us.a?.latency?.p50 ?? null;
      m['undici.p99_ms'] = us.a?.latency?.p99 ?? null;
      m['undici.p999_ms'] = us.a?.latency?.p999 ?? null;
      m['undici.max_ms'] = us.a?.latency?.max ?? null;
      m['undici.errors'] = u.errors;
      m['undici.duplicates'] = us.a?.duplicates ?? null;
      m['ratio.vs_undici'] = ratio(get(m, 'max.delivered_s'), get(m, 'undici.req_s'));
      m['ratio.floor_vs_undici'] = ratio(get(m, 'floor.delivered_s'), get(m, 'undici.req_s'));
      m['ratio.vs_floor'] = ratio(get(m, 'max.delivered_s'), get(m, 'floor.delivered_s'));
    } finally {
      await sink.close();
    }
    return {
      metrics: m,
      knobs: {
        ...knobs,
        n: o.n,
        itemsPerRequest: o.e2eItems,
        sendConcurrency: SEND_CONCURRENCY,
        open: { durationS: o.openDurationS, itemsPerRequest: o.openItems, connections: OPEN_CONNECTIONS, rate: 'half of max.delivered_s' },
        floor: 'bench/baselines/trickle-floor.ts: node:http + XADD (ioredis), XREAD BLOCK + undici Pool (64 connections, unbounded queue); same Redis, sink and sender as max',
        undici: { connections: UNDICI_CONNECTIONS, inFlight: UNDICI_IN_FLIGHT, requests: o.n },
        sink: 'in-harness worker thread, node:http keep-alive, 200 "ok" at once',
      },
    };
  },
  tables(m: Metrics): Table[] {
    const row = (label: string, k: string, extra: string | null) => [
      label,
      get(m, `${k}.postbacks`) ?? get(m, `${k}.delivered`),
      get(m, `${k}.delivered_s`) ?? get(m, `${k}.req_s`),
      get(m, `${k}.p50_ms`),
      get(m, `${k}.p99_ms`),
      get(m, `${k}.p999_ms`),
      get(m, `${k}.max_ms`),
      get(m, `${k}.duplicates`),
      get(m, `${k}.losses`),
      extra,
    ];
    const cpu = (name: string) => get(m, `max.cpu_us_per_pb.${name}`);
    const ocpu = (name: string) => get(m, `open.cpu_pct.${name}`);
    return [
      {
        title: 'e2e: ingest -> Redis -> delivery -> sink (latency = ingest request sent or scheduled -> sink receipt)',
        columns: ['phase', 'postbacks', 'delivered/s', 'p50 ms', 'p99 ms', 'p999 ms', 'max ms', 'dups', 'losses', 'note'],
        rows: [
          row('max (closed loop)', 'max', `ingest took ${fmt(get(m, 'max.ingest_s'))}/s`),
          row('floor: the hops alone', 'floor', `max x floor: ${fmt(get(m, 'ratio.vs_floor'))}; floor x undici: ${fmt(get(m, 'ratio.floor_vs_undici'))}`),
          row('open loop, half max', 'open', `target ${fmt(get(m, 'open.target_pb_s'))}/s, sent ${fmt(get(m, 'open.achieved_pb_s'))}/s, send lag p99 ${fmt(get(m, 'open.send_lag_p99_ms'))} ms`),
          row('floor, open loop, same rate', 'floor_open', `sent ${fmt(get(m, 'floor_open.achieved_pb_s'))}/s; open p99 x floor's: ${fmt(get(m, 'ratio.open_p99_vs_floor'))}`),
          [
            'undici Pool loop (64 conn)',
            null,
            get(m, 'undici.req_s'),
            get(m, 'undici.p50_ms'),
            get(m, 'undici.p99_ms'),
            get(m, 'undici.p999_ms'),
            get(m, 'undici.max_ms'),
            get(m, 'undici.duplicates'),
            null,
            `max x undici: ${fmt(get(m, 'ratio.vs_undici'))}`,
          ],
        ],
        notes: [
          `CPU per delivered postback (max phase), us: ingest ${fmt(cpu('ingest'))}, delivery ${fmt(cpu('delivery'))} (its main thread ${fmt(cpu('delivery_main'))}), redis ${fmt(cpu('redis'))}, total ${fmt(cpu('total'))} (harness ${fmt(cpu('harness'))}); parked back in Redis per postback ${fmt(get(m, 'max.parked_per_pb'))}`,
          `one delivery process's ceiling on its main thread: ${fmt(cpu('delivery_main') ? 1e6 / (cpu('delivery_main') as number) : null)} postbacks/s (1e6 / main-thread us per postback; the bound once worker threads carry the HTTP side, DELIVERY_WORKERS > 0)`,
          `CPU during the open loop, % of one core: ingest ${fmt(ocpu('ingest'))}, delivery ${fmt(ocpu('delivery'))}, redis ${fmt(ocpu('redis'))}, harness (sender + sink) ${fmt(ocpu('harness'))}`,
          ...keptUp(m),
        ],
      },
    ];
  },
};

/**
 * The open loop at `rate` postbacks/s into `origin` (ingest or the floor's
 * front), --open-items a request, for --open-duration s; its metrics
 * under `key.`; resolves with the 202s' status codes.
 */
async function openPhase(
  ctx: RunContext,
  m: Metrics,
  key: string,
  p: { sink: Sink; origin: string; rate: number; pids: Record<string, number> },
): Promise<Record<string, number>> {
  const o = ctx.opts;
  await p.sink.reset(key);
  const tpl = sinkTemplate(p.sink.origin('a'), key);
  const oc0: Record<string, number> = { ...cpuOf(p.pids), harness: harnessCpu() };
  const ot0 = performance.now();
  const open = await openLoop({
    origin: p.origin,
    path: '/i',
    ratePerSec: p.rate / o.openItems,
    durationS: o.openDurationS,
    connections: OPEN_CONNECTIONS,
    body: (_i, ts) => sinkBody(tpl, o.openItems, ts),
  });
  const oc1: Record<string, number> = { ...cpuOf(p.pids), harness: harnessCpu() };
  const oSeconds = (performance.now() - ot0) / 1000;
  for (const name of Object.keys(oc0)) m[`${key}.cpu_pct.${name}`] = (100 * ((oc1[name] ?? 0) - (oc0[name] ?? 0))) / oSeconds;
  const wait = await p.sink.waitFor((s) => (s.a?.distinct ?? 0) >= open.accepted, { idleMs: 10_000, timeoutMs: 120_000 });
  const stats = await p.sink.stats(true);
  originMetrics(m, key, { send: open, expected: { a: open.accepted }, stats }, 'a');
  m[`${key}.target_pb_s`] = p.rate;
  m[`${key}.items`] = o.openItems;
  m[`${key}.achieved_pb_s`] = open.achievedPerSec * o.openItems;
  m[`${key}.send_lag_p99_ms`] = open.sendLagP99Ms;
  m[`${key}.send_lag_max_ms`] = open.sendLagMaxMs;
  m[`${key}.non2xx`] = open.non2xx;
  m[`${key}.errors`] = open.errors;
  if (!wait.complete) ctx.progress(`${key}: sink got ${wait.stats.a?.distinct} of ${open.accepted}`);
  return open.statusCodes;
}

/** A warning when the open loop's arrival rate was above what the service delivered: its latency is then queueing. */
function keptUp(m: Metrics): string[] {
  const sent = get(m, 'open.achieved_pb_s');
  const delivered = get(m, 'open.delivered_s');
  if (sent === null || delivered === null || delivered >= 0.95 * sent) return [];
  return [
    `open loop: ${fmt(delivered)}/s delivered of ${fmt(sent)}/s sent: the service did not keep up with this arrival rate at ${fmt(get(m, 'open.items'))} item(s) a request, so its latency is mostly queueing`,
  ];
}

function fmt(v: number | null): string {
  if (v === null) return 'n/a';
  return Math.abs(v) >= 100 ? String(Math.round(v)) : v.toFixed(2);
}
