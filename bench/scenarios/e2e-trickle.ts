/**
 * `e2e-trickle`: latency at low load, end to end. One client sends
 * requests one at a time (the next as soon as the previous 202 is in, on
 * one keep-alive connection) to ingest, whose URL points at the sink; the
 * sink measures ingest-to-receipt latency per postback from the `ts` each
 * data object carries (the request's send time), in its HDR histogram.
 * Two shapes, each on the same stack: 1 item a request and 10 items a
 * request, for --trickle-duration s each (or --trickle-n requests), each
 * after a warm-up of --trickle-warmup requests (default 10,000; with 0,
 * --warmup s) sent the same way but back to back, whatever
 * --trickle-gap-ms says (V8 tiers up by work done, not by time: a gap
 * would only make the warm-up longer). Default service configuration.
 *
 * Why the warm-up is counted in requests and is that long: V8 compiles the
 * hot path (ours, node:http's, ioredis's, undici's) as it runs it, on
 * background threads that compete with the five busy processes for the
 * two cores. Measured 1 s at a time on a fresh stack (2026-12-07, 1 item,
 * about 2,000 requests/s), the service's p99 was 17, 12, 4.0 and 3.6 ms in
 * its first four seconds, with 35 to 200 µs a postback of CPU off the main
 * threads, and 0.9 to 1.8 ms from the fifth on (about 5,000 requests in),
 * with almost none. A warm-up of 1 s left three of those seconds in the
 * measured window, so its p99 was that of a process starting, not of the
 * wake-up path this scenario times. The warm-up's own latency is still
 * measured and reported (its own table, metrics `<shape>.warmup.*`): the
 * figure for the first requests a freshly started process serves.
 * `--trickle-gap-ms` (default 0) waits that long after each 202 before the
 * next request, for a lighter load than the closed loop makes.
 *
 * Beside the service, in the same run and the same way: the floor
 * baseline (bench/baselines/trickle-floor.ts), the same hops with nothing
 * else (a node:http server XADDing the body, an XREAD BLOCK loop sending
 * each item through undici), on the same Redis, client and sink: what
 * those hops cost on this machine at that moment, which on a shared
 * machine moves more than anything the service does.
 *
 * The closed loop is as fast as ingest answers, so the load it makes is
 * whatever ingest takes: the table shows it (sent/s) next to what the sink
 * got (delivered/s), and says so when delivery did not keep up (the
 * latency is then queueing, not the wake-up path).
 *
 * Nothing waits in a queue on purpose here: what is measured is the path
 * of one request through ingest, Redis, the delivery process's wake-up
 * (XREADGROUP BLOCK returning), its dispatch, and the request to the sink.
 * The wake-up path and what each step costs: docs/SCALING.md, "Latency at
 * low load".
 */
import { sendSequential, type SequentialResult } from '../lib/load.js';
import { sinkBody, sinkTemplate } from '../lib/payload.js';
import { startFloorBack, startFloorFront } from '../lib/floor.js';
import { cpuOf, harnessCpu, knobsOf, type Child } from '../lib/procs.js';
import { get, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink, type OriginStats } from '../lib/sink.js';
import { startStack, type Stack } from '../lib/stack.js';

export const TRICKLE_SHAPES = [1, 10] as const;
/** The service, and the floor baseline beside it (bench/baselines/trickle-floor.ts). */
const TARGETS = ['service', 'floor'] as const;
type Target = (typeof TARGETS)[number];

interface PhaseResult {
  send: SequentialResult;
  stats: OriginStats | undefined;
  complete: boolean;
  cpuPct: Record<string, number>;
}

async function phase(
  ctx: RunContext,
  o: { origin: string; pids: Record<string, number> },
  sink: Sink,
  tag: string,
  items: number,
  durationS: number,
  count: number,
  gapMs: number,
): Promise<PhaseResult> {
  await sink.reset(tag);
  const tpl = sinkTemplate(sink.origin('a'), tag);
  const c0: Record<string, number> = { ...cpuOf(o.pids), harness: harnessCpu() };
  const t0 = performance.now();
  const send = await sendSequential({ origin: o.origin, path: '/i', durationS, count, gapMs, body: (_i, ts) => sinkBody(tpl, items, ts) });
  const wait = await sink.waitFor((s) => (s.a?.distinct ?? 0) >= send.accepted, { idleMs: 10_000, timeoutMs: 120_000 });
  const seconds = (performance.now() - t0) / 1000;
  const c1: Record<string, number> = { ...cpuOf(o.pids), harness: harnessCpu() };
  const cpuPct: Record<string, number> = {};
  for (const name of Object.keys(c0)) cpuPct[name] = (100 * ((c1[name] ?? 0) - (c0[name] ?? 0))) / seconds;
  if (!wait.complete) ctx.progress(`${tag}: the sink got ${wait.stats.a?.distinct ?? 0} of ${send.accepted}`);
  const stats = (await sink.stats(true)).a;
  return { send, stats, complete: wait.complete, cpuPct };
}

function phaseMetrics(m: Metrics, k: string, p: PhaseResult): void {
  const s = p.stats;
  const sendSeconds = (p.send.lastUs - p.send.firstUs) / 1e6;
  m[`${k}.requests`] = p.send.requests;
  m[`${k}.postbacks`] = p.send.accepted;
  m[`${k}.delivered`] = s?.distinct ?? 0;
  m[`${k}.losses`] = Math.max(0, p.send.accepted - (s?.distinct ?? 0));
  m[`${k}.duplicates`] = s?.duplicates ?? null;
  m[`${k}.sent_pb_s`] = sendSeconds > 0 ? p.send.accepted / sendSeconds : null;
  const deliverSeconds = ((s?.lastNewUs ?? 0) - p.send.firstUs) / 1e6;
  m[`${k}.delivered_s`] = s !== undefined && s.distinct > 0 && deliverSeconds > 0 ? s.distinct / deliverSeconds : null;
  m[`${k}.p50_ms`] = s?.latency?.p50 ?? null;
  m[`${k}.p90_ms`] = s?.latency?.p90 ?? null;
  m[`${k}.p99_ms`] = s?.latency?.p99 ?? null;
  m[`${k}.p999_ms`] = s?.latency?.p999 ?? null;
  m[`${k}.max_ms`] = s?.latency?.max ?? null;
  m[`${k}.mean_ms`] = s?.latency?.mean ?? null;
  m[`${k}.ingest_p50_ms`] = p.send.latency.p50;
  m[`${k}.ingest_p99_ms`] = p.send.latency.p99;
  m[`${k}.ingest_max_ms`] = p.send.latency.max;
  m[`${k}.non2xx`] = p.send.non2xx;
  m[`${k}.errors`] = p.send.errors;
  for (const [name, pct] of Object.entries(p.cpuPct)) m[`${k}.cpu_pct.${name}`] = pct;
}

/** The floor baseline's two processes on the stack's Redis; `origin` is its front's. */
async function startFloor(stack: Stack): Promise<{ origin: string; children: Child[] }> {
  const back = await startFloorBack(stack);
  try {
    const front = await startFloorFront(stack);
    return { origin: front.origin, children: [back, front.child] };
  } catch (err) {
    await back.kill();
    throw err;
  }
}

export const e2eTrickleScenario: Scenario = {
  name: 'e2e-trickle',
  summary: 'sequential requests (next after the 202) of 1 and of 10 items through ingest + delivery to the sink: ingest-to-receipt latency at low load, beside a floor baseline of the same hops',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    const m: Metrics = {};
    const statusCodes: Record<string, Record<string, number>> = {};
    let knobs: Record<string, unknown> = {};
    try {
      const stack = await startStack(ctx, { ingest: true, delivery: true });
      try {
        const floor = await startFloor(stack);
        try {
          knobs = { ...stack.knobs(), floorEnv: knobsOf(floor.children[0]?.env ?? {}) };
          const floorPids: Record<string, number> = { 'floor-back': floor.children[0]?.pid ?? 0, 'floor-front': floor.children[1]?.pid ?? 0, redis: stack.redis.pid };
          const targets: Record<Target, { origin: string; pids: Record<string, number> }> = {
            service: { origin: stack.ingestOrigin, pids: stack.pids() },
            floor: { origin: floor.origin, pids: floorPids },
          };
          for (const items of TRICKLE_SHAPES) {
            for (const target of TARGETS) {
              const key = target === 'service' ? `s${items}` : `floor${items}`;
              const warmN = o.trickleWarmupN;
              if (warmN > 0 || o.warmupS > 0) {
                ctx.progress(`${target}, ${items} item(s): warm-up, ${warmN > 0 ? `${warmN} requests` : `${o.warmupS} s`}`);
                const w = await phase(ctx, targets[target], sink, `warm-${key}`, items, warmN > 0 ? 0 : o.warmupS, warmN, 0);
                phaseMetrics(m, `${key}.warmup`, w);
              }
              const what = o.trickleN > 0 ? `${o.trickleN} requests` : `${o.trickleDurationS} s`;
              ctx.progress(`${target}, ${items} item(s): sequential requests, ${what}`);
              const p = await phase(ctx, targets[target], sink, key, items, o.trickleN > 0 ? 0 : o.trickleDurationS, o.trickleN, o.trickleGapMs);
              phaseMetrics(m, key, p);
              statusCodes[key] = p.send.statusCodes;
            }
            for (const q of ['p50', 'p99'] as const) {
              const s = get(m, `s${items}.${q}_ms`);
              const f = get(m, `floor${items}.${q}_ms`);
              m[`s${items}.${q}_vs_floor`] = s === null || f === null || f === 0 ? null : s / f;
            }
          }
        } finally {
          await Promise.all(floor.children.map((c) => c.kill()));
        }
      } finally {
        await stack.stop();
      }
    } finally {
      await sink.close();
    }
    return {
      metrics: m,
      knobs: {
        ...knobs,
        shapes: TRICKLE_SHAPES,
        durationS: o.trickleN > 0 ? null : o.trickleDurationS,
        requests: o.trickleN > 0 ? o.trickleN : null,
        warmupRequests: o.trickleWarmupN > 0 ? o.trickleWarmupN : null,
        warmupS: o.trickleWarmupN > 0 ? null : o.warmupS,
        gapMs: o.trickleGapMs,
        client: 'one undici connection, the next request sent when the previous answer is read; ts = send time',
        floor: 'bench/baselines/trickle-floor.ts: node:http + XADD (ioredis), XREAD BLOCK + undici Pool, on the same Redis and sink',
        sink: 'in-harness worker thread, node:http keep-alive, 200 "ok" at once',
        statusCodes,
      },
    };
  },
  tables(m: Metrics): Table[] {
    const cpu = (k: string, name: string) => fmt(get(m, `${k}.cpu_pct.${name}`));
    const row = (target: Target, items: number, k: string): Table['rows'][number] => [
      target,
      items,
      get(m, `${k}.postbacks`),
      get(m, `${k}.sent_pb_s`),
      get(m, `${k}.delivered_s`),
      get(m, `${k}.p50_ms`),
      get(m, `${k}.p90_ms`),
      get(m, `${k}.p99_ms`),
      get(m, `${k}.p999_ms`),
      get(m, `${k}.max_ms`),
      get(m, `${k}.ingest_p50_ms`),
      get(m, `${k}.ingest_p99_ms`),
      get(m, `${k}.duplicates`),
      get(m, `${k}.losses`),
    ];
    const rows: Table['rows'] = [];
    const warmRows: Table['rows'] = [];
    for (const items of TRICKLE_SHAPES) {
      for (const target of TARGETS) {
        const k = target === 'service' ? `s${items}` : `floor${items}`;
        rows.push(row(target, items, k));
        if (get(m, `${k}.warmup.requests`) !== null) warmRows.push(row(target, items, `${k}.warmup`));
      }
    }
    const columns = ['through', 'items', 'postbacks', 'sent/s', 'delivered/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p999 ms', 'max ms', '202 p50', '202 p99', 'dups', 'losses'];
    const tables: Table[] = [
      {
        title: 'e2e-trickle: one request at a time (next after the 202); latency = request sent -> sink receipt, per postback',
        columns,
        rows,
        notes: [
          'floor: the same hops with nothing else (bench/baselines/trickle-floor.ts: node:http + XADD, XREAD BLOCK + undici), same Redis, client and sink, measured in the same run',
          'sent/s: postbacks accepted per second of sending (the load this closed loop made); delivered/s: distinct postbacks at the sink per second from the first send to the last new one; 202: the client-side response time of each request, ms',
          ...TRICKLE_SHAPES.map(
            (items) =>
              `service vs floor, ${items} item(s): p50 ${fmtX(get(m, `s${items}.p50_vs_floor`))}, p99 ${fmtX(get(m, `s${items}.p99_vs_floor`))}; CPU, % of one core: ingest ${cpu(`s${items}`, 'ingest')}, delivery ${cpu(`s${items}`, 'delivery')}, redis ${cpu(`s${items}`, 'redis')}, harness (client + sink) ${cpu(`s${items}`, 'harness')}`,
          ),
          ...TRICKLE_SHAPES.flatMap((items) => keptUp(m, items)),
        ],
      },
    ];
    if (warmRows.length > 0) {
      tables.push({
        title: 'e2e-trickle warm-up, not counted above: the requests before each measured window, back to back (the 1-item service rows are a freshly started process)',
        columns,
        rows: warmRows,
        notes: [
          'V8 compiles the hot path while this runs, on threads competing for the cores: on 2 cores the first seconds after start cost more CPU a postback and have a longer tail; the measured window above starts after it (--trickle-warmup)',
        ],
      });
    }
    return tables;
  },
};

/** A warning when the service or the floor fell behind what the closed loop sent: that latency is then queueing. */
function keptUp(m: Metrics, items: number): string[] {
  const out: string[] = [];
  for (const [who, k] of [
    ['service', `s${items}`],
    ['floor', `floor${items}`],
  ] as const) {
    const sent = get(m, `${k}.sent_pb_s`);
    const delivered = get(m, `${k}.delivered_s`);
    if (sent === null || delivered === null || delivered >= 0.95 * sent) continue;
    out.push(
      `${who}, ${items} item(s): ${fmt(delivered)}/s delivered of ${fmt(sent)}/s sent: it did not keep up with this closed loop, so its latency is mostly queueing (not low load; the ratio to the floor means little then); see --trickle-gap-ms`,
    );
  }
  return out;
}

function fmtX(v: number | null): string {
  return v === null ? 'n/a' : `${v.toFixed(2)}x`;
}

function fmt(v: number | null): string {
  if (v === null) return 'n/a';
  return Math.abs(v) >= 100 ? String(Math.round(v)) : v.toFixed(1);
}
