/**
 * `e2e-remote-redis`: the service with Redis a network hop away, the normal
 * deployment (Redis on another host). The roles reach Redis through the
 * harness's delay proxy (lib/delay-proxy.ts, its own process), which holds
 * every chunk --redis-delay-ms (0.5) each way; the same phases run through
 * the same proxy at 0 ms, so the proxy's own cost is in both and cancels
 * out of the ratios. (A proxy rather than netem in a network namespace:
 * the dev VM's kernel has no sch_netem.) Per delay, each on a fresh stack:
 * 1. max: the e2e max phase (--n postbacks, --e2e-items a request, 16
 *    requests at a time into ingest while delivery drains to the sink),
 *    after a warm-up of a twentieth of it (at least 1,000) on the same
 *    stack, so that neither delay pays for cold processes or a cold sink:
 *    delivered/s, latency, duplicates, losses, CPU per postback.
 * 2. ingest: autocannon -c --connections (100) on /i with the v1 sample,
 *    1 item, no delivery (INGEST_MAX_QUEUE out of reach, as in `ingest`):
 *    both stacks side by side, each warmed up --warmup s, then --duration s
 *    each in half slices, 0 / far / far / 0, so that the machine's other
 *    load weighs on both alike. The max phases alternate their order from
 *    run to run.
 * Each phase also counts what it cost in Redis round trips: the bursts of
 * commands each role wrote through the proxy (one burst: one round trip
 * waited for, with auto-pipelining) and the commands Redis ran (INFO
 * commandstats, scripts' inner commands included), per postback; and the
 * PING round trip through the proxy at that delay, measured before the
 * phase, so the delay really added is on record.
 */
import { deliverBulk, originMetrics } from '../lib/deliver.js';
import { pingRtt, type DelayProxy, type ProxyTraffic } from '../lib/delay-proxy.js';
import { createHistogram, summarize, type Histogram } from '../lib/histogram.js';
import { cannon } from '../lib/load.js';
import { sampleBody } from '../lib/payload.js';
import { cpuOf, harnessCpu } from '../lib/procs.js';
import { commandCalls } from '../lib/redis.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { deliveryCounter, startStack, type Stack } from '../lib/stack.js';
import { cpuMetrics } from './e2e.js';
import { cannonMetrics } from './ingest.js';

const SEND_CONCURRENCY = 16;
/** Roles whose bursts are reported (the connection names they give Redis, up to the first ':'). */
const ROLES = ['ingest', 'delivery', 'delivery-read'] as const;
const PHASES = ['near', 'far'] as const;
type Phase = (typeof PHASES)[number];

async function commandstats(stack: Stack): Promise<Record<string, number>> {
  return commandCalls(await stack.redis.client.info('commandstats'));
}

/** Postbacks queued and not finished: the documented `<prefix>:{0}:count` (one shard, the default). */
async function queued(stack: Stack): Promise<number> {
  return Number(await stack.redis.client.command('GET', `${stack.env.REDIS_PREFIX}:{0}:count`)) || 0;
}

/** Redis commands and proxy bursts between two snapshots, per unit (postback, request), under `prefix.` */
function costMetrics(
  m: Metrics,
  prefix: string,
  units: number,
  c0: Record<string, number>,
  c1: Record<string, number>,
  t0: Record<string, ProxyTraffic>,
  t1: Record<string, ProxyTraffic>,
): void {
  const per = (n: number) => n / Math.max(1, units);
  let total = 0;
  for (const [cmd, calls] of Object.entries(c1)) {
    // The harness's own INFO calls are not the service's.
    if (cmd === 'info') continue;
    const d = calls - (c0[cmd] ?? 0);
    if (d <= 0) continue;
    m[`${prefix}.cmds.${cmd}`] = per(d);
    total += d;
  }
  m[`${prefix}.cmds.total`] = per(total);
  for (const role of ROLES) {
    const up = (t1[role]?.upChunks ?? 0) - (t0[role]?.upChunks ?? 0);
    m[`${prefix}.bursts.${role}`] = per(up);
  }
}

async function maxPhase(ctx: RunContext, sink: Sink, phase: Phase, delayMs: number, m: Metrics, knobs: Record<string, unknown>): Promise<void> {
  const o = ctx.opts;
  const stack = await startStack(ctx, { ingest: true, delivery: true }, {}, { redisDelayMs: delayMs });
  try {
    const proxy = stack.proxy as DelayProxy;
    m[`${phase}.ping_p50_ms`] = (await pingRtt(proxy.port)).p50;
    // Warm: the fresh processes' JIT and connections, and the shared sink, so that neither delay pays for going first.
    const warm = Math.min(o.n, Math.max(1_000, Math.round(o.n / 20)));
    ctx.progress(`max at ${delayMs} ms each way (PING ${m[`${phase}.ping_p50_ms`]} ms): warm-up, ${warm} postbacks`);
    await deliverBulk({ sink, ingestOrigin: stack.ingestOrigin, tag: `warm-${phase}`, n: warm, items: o.e2eItems, concurrency: SEND_CONCURRENCY });
    ctx.progress(`max at ${delayMs} ms each way: ${o.n} postbacks, ${o.e2eItems} a request`);
    const pids = stack.pids();
    const cpu0 = { ...cpuOf(pids), harness: harnessCpu() };
    const c0 = await commandstats(stack);
    const t0 = await proxy.traffic();
    const parked0 = await deliveryCounter(stack, 'pb_delivery_parked_total');
    const max = await deliverBulk({
      sink,
      ingestOrigin: stack.ingestOrigin,
      tag: `max-${phase}`,
      n: o.n,
      items: o.e2eItems,
      concurrency: SEND_CONCURRENCY,
      progress: ctx.progress,
    });
    const cpu1 = { ...cpuOf(pids), harness: harnessCpu() };
    const c1 = await commandstats(stack);
    const t1 = await proxy.traffic();
    const k = `${phase}.max`;
    originMetrics(m, k, max, 'a');
    m[`${k}.ingest_s`] = (max.send.accepted * 1e6) / Math.max(1, max.send.lastUs - max.send.firstUs);
    m[`${k}.non2xx`] = max.send.non2xx;
    m[`${k}.errors`] = max.send.errors;
    const delivered = max.stats.a?.distinct ?? 0;
    cpuMetrics(m, k, cpu0, cpu1, delivered);
    costMetrics(m, k, delivered, c0, c1, t0, t1);
    // Postbacks put back in Redis because the origin had enough waiting (admission.ts), read again later.
    const parked1 = await deliveryCounter(stack, 'pb_delivery_parked_total');
    m[`${k}.parked_per_pb`] = parked0 === null || parked1 === null ? null : (parked1 - parked0) / Math.max(1, delivered);
    knobs[`${phase}.max`] = { ...stack.knobs(), statusCodes: max.send.statusCodes };
  } finally {
    await stack.stop();
  }
}

/**
 * Ingest at both delays, paired: both stacks run side by side (idle but
 * for the one under load), each warmed up, then --duration s each in
 * slices of half of it, in the order 0, far, far, 0, so that what the rest
 * of the machine does during the phase weighs on both alike.
 */
async function ingestPhases(ctx: RunContext, delays: Record<Phase, number>, m: Metrics, knobs: Record<string, unknown>): Promise<void> {
  const o = ctx.opts;
  const stacks: Partial<Record<Phase, Stack>> = {};
  try {
    for (const phase of PHASES) {
      // Nothing is delivered: the backpressure check runs, its limit out of reach.
      stacks[phase] = await startStack(ctx, { ingest: true }, { INGEST_MAX_QUEUE: '1000000000' }, { redisDelayMs: delays[phase] });
    }
    const body = sampleBody(1);
    const url = (p: Phase) => `${(stacks[p] as Stack).ingestOrigin}/i`;
    const pings: Partial<Record<Phase, number>> = {};
    for (const p of PHASES) {
      const stack = stacks[p] as Stack;
      pings[p] = (await pingRtt((stack.proxy as DelayProxy).port)).p50;
      m[`${p}.ingest.ping_p50_ms`] = pings[p] as number;
      if (o.warmupS > 0) {
        ctx.progress(`ingest at ${delays[p]} ms each way (PING ${pings[p]} ms): warmup ${o.warmupS} s`);
        await cannon({ url: url(p), body, connections: o.connections, durationS: o.warmupS, warmupS: 0 });
      }
    }
    const slice = o.durationS / 2;
    const order: Phase[] = ['near', 'far', 'far', 'near'];
    const before: Partial<Record<Phase, { q: number; c: Record<string, number>; t: Record<string, ProxyTraffic> }>> = {};
    for (const p of PHASES) {
      const stack = stacks[p] as Stack;
      before[p] = { q: await queued(stack), c: await commandstats(stack), t: await (stack.proxy as DelayProxy).traffic() };
    }
    const acc = Object.fromEntries(
      PHASES.map((p) => [p, { hist: createHistogram(), ok: 0, non2xx: 0, errors: 0, timeouts: 0, seconds: 0, wall: 0, harness: 0, cpu: {} as Record<string, number>, codes: {} as Record<string, number> }]),
    ) as Record<Phase, { hist: Histogram; ok: number; non2xx: number; errors: number; timeouts: number; seconds: number; wall: number; harness: number; cpu: Record<string, number>; codes: Record<string, number> }>;
    for (const p of order) {
      ctx.progress(`ingest at ${delays[p]} ms each way: 1 item, -c ${o.connections}, ${slice} s`);
      const a = acc[p];
      const pids = (stacks[p] as Stack).pids();
      const cpu0 = cpuOf(pids);
      const w0 = performance.now();
      const r = await cannon({ url: url(p), body, connections: o.connections, durationS: slice, warmupS: 0, hist: a.hist });
      a.wall += (performance.now() - w0) / 1000;
      const cpu1 = cpuOf(pids);
      for (const name of Object.keys(pids)) a.cpu[name] = (a.cpu[name] ?? 0) + ((cpu1[name] ?? 0) - (cpu0[name] ?? 0));
      a.ok += r.ok;
      a.non2xx += r.non2xx;
      a.errors += r.errors;
      a.timeouts += r.timeouts;
      a.seconds += r.durationS;
      a.harness += (r.harnessCpuPct * r.durationS) / 100;
      for (const [code, n] of Object.entries(r.statusCodes)) a.codes[code] = (a.codes[code] ?? 0) + n;
    }
    for (const p of PHASES) {
      const stack = stacks[p] as Stack;
      const a = acc[p];
      const b = before[p] as NonNullable<(typeof before)[Phase]>;
      const k = `${p}.ingest`;
      cannonMetrics(
        m,
        k,
        {
          durationS: a.seconds,
          reqPerSec: (a.ok + a.non2xx) / a.seconds,
          okPerSec: a.ok / a.seconds,
          ok: a.ok,
          non2xx: a.non2xx,
          errors: a.errors,
          timeouts: a.timeouts,
          statusCodes: a.codes,
          latency: summarize(a.hist),
          harnessCpuPct: (100 * a.harness) / a.seconds,
        },
        1,
      );
      for (const [name, s] of Object.entries(a.cpu)) m[`${k}.cpu_pct.${name}`] = (100 * s) / a.wall;
      const t1 = await (stack.proxy as DelayProxy).traffic();
      // Requests accepted in the measured slices (one postback each): bursts and commands per request.
      costMetrics(m, k, (await queued(stack)) - b.q, b.c, await commandstats(stack), b.t, t1);
      const calls = (t1.ingest?.upChunks ?? 0) - (b.t.ingest?.upChunks ?? 0);
      // Little's law: script calls a second x the time each takes (about the PING round trip).
      m[`${k}.calls_s`] = calls / a.wall;
      m[`${k}.calls_in_flight`] = (calls / a.wall) * ((pings[p] as number) / 1000);
      knobs[k] = { ...stack.knobs(), connections: o.connections, warmupS: o.warmupS, slices: order, sliceS: slice, statusCodes: a.codes };
    }
  } finally {
    for (const p of PHASES) await stacks[p]?.stop();
  }
}

/** Runs of this scenario so far in this process: the max phases alternate their order from run to run. */
let runsSoFar = 0;

export const e2eRemoteRedisScenario: Scenario = {
  name: 'e2e-remote-redis',
  summary: 'e2e max and ingest -c 100 (1 item) with Redis behind a delay proxy: 0 ms vs --redis-delay-ms (0.5) each way',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const delays: Record<Phase, number> = { near: 0, far: o.redisDelayMs };
    const m: Metrics = {};
    const knobs: Record<string, unknown> = { delaysMs: delays, n: o.n, itemsPerRequest: o.e2eItems, sendConcurrency: SEND_CONCURRENCY };
    m['far.delay_ms'] = o.redisDelayMs;
    // Drift in the machine's load weighs on both delays alike over the runs.
    const order: Phase[] = runsSoFar++ % 2 === 0 ? ['near', 'far'] : ['far', 'near'];
    knobs.maxOrder = order;
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    try {
      for (const phase of order) await maxPhase(ctx, sink, phase, delays[phase], m, knobs);
    } finally {
      await sink.close();
    }
    await ingestPhases(ctx, delays, m, knobs);
    m['ratio.delivered'] = ratio(get(m, 'far.max.delivered_s'), get(m, 'near.max.delivered_s'));
    m['ratio.ingest'] = ratio(get(m, 'far.ingest.req_s'), get(m, 'near.ingest.req_s'));
    return { metrics: m, knobs };
  },
  tables(m: Metrics): Table[] {
    const delay = get(m, 'far.delay_ms');
    const label = (p: Phase) => (p === 'near' ? '0 ms' : `${delay ?? '?'} ms`);
    const f = (v: number | null) => (v === null ? 'n/a' : v.toFixed(2));
    const bursts = (p: Phase, k: string, scale: number) => ROLES.map((r) => `${r} ${f((get(m, `${p}.${k}.bursts.${r}`) ?? 0) * scale)}`).join(', ');
    return [
      {
        title: 'e2e-remote-redis, max phase: Redis behind a delay proxy (each way), same path at 0 ms',
        columns: ['delay', 'PING ms', 'postbacks', 'delivered/s', 'p50 ms', 'p99 ms', 'dups', 'losses', 'ingest took/s', 'x 0 ms'],
        rows: PHASES.map((p) => [
          label(p),
          get(m, `${p}.ping_p50_ms`),
          get(m, `${p}.max.postbacks`),
          get(m, `${p}.max.delivered_s`),
          get(m, `${p}.max.p50_ms`),
          get(m, `${p}.max.p99_ms`),
          get(m, `${p}.max.duplicates`),
          get(m, `${p}.max.losses`),
          get(m, `${p}.max.ingest_s`),
          p === 'far' ? get(m, 'ratio.delivered') : null,
        ]),
        notes: [
          ...PHASES.map(
            (p) =>
              `${label(p)}: CPU us/postback ingest ${f(get(m, `${p}.max.cpu_us_per_pb.ingest`))}, delivery ${f(get(m, `${p}.max.cpu_us_per_pb.delivery`))}, redis ${f(get(m, `${p}.max.cpu_us_per_pb.redis`))}, proxy ${f(get(m, `${p}.max.cpu_us_per_pb.proxy`))}; ` +
              `bursts written per 1,000 postbacks: ${bursts(p, 'max', 1000)}; Redis commands per postback ${f(get(m, `${p}.max.cmds.total`))}; parked back per postback ${f(get(m, `${p}.max.parked_per_pb`))}`,
          ),
        ],
      },
      {
        title: 'e2e-remote-redis, ingest: autocannon closed loop, POST /i, v1 sample (1 item)',
        columns: ['delay', 'PING ms', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'ingest CPU%', 'redis CPU%', 'proxy CPU%', 'requests/call', 'calls in flight', 'x 0 ms'],
        rows: PHASES.map((p) => {
          const b = get(m, `${p}.ingest.bursts.ingest`);
          return [
            label(p),
            get(m, `${p}.ingest.ping_p50_ms`),
            get(m, `${p}.ingest.req_s`),
            get(m, `${p}.ingest.p50_ms`),
            get(m, `${p}.ingest.p99_ms`),
            get(m, `${p}.ingest.errors`),
            get(m, `${p}.ingest.non2xx`),
            get(m, `${p}.ingest.cpu_pct.ingest`),
            get(m, `${p}.ingest.cpu_pct.redis`),
            get(m, `${p}.ingest.cpu_pct.proxy`),
            b === null || b === 0 ? null : 1 / b,
            get(m, `${p}.ingest.calls_in_flight`),
            p === 'far' ? get(m, 'ratio.ingest') : null,
          ];
        }),
        notes: [
          'requests/call: requests per burst ingest wrote to Redis (group commit); calls in flight: bursts/s x the PING round trip (Little\'s law)',
          'both stacks side by side, measured in slices 0 / far / far / 0; PING and bursts are measured through the proxy; CPU% is of one core over the measured slices',
        ],
      },
    ];
  },
};
