/**
 * `e2e-trickle`: latency at low load, end to end. One client sends
 * requests one at a time (the next as soon as the previous 202 is in, on
 * one keep-alive connection) to ingest, whose URL points at the sink; the
 * sink measures ingest-to-receipt latency per postback from the `ts` each
 * data object carries (the request's send time), in its HDR histogram.
 * Two shapes, each on the same stack after a warmup of --warmup s (not
 * counted): 1 item a request and 10 items a request, for --trickle-duration
 * s each (or --trickle-n requests). Default service configuration.
 * `--trickle-gap-ms` (default 0) waits that long after each 202 before the
 * next request, for a lighter load than the closed loop makes.
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
import { cpuOf, harnessCpu } from '../lib/procs.js';
import { get, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink, type OriginStats } from '../lib/sink.js';
import { startStack, type Stack } from '../lib/stack.js';

export const TRICKLE_SHAPES = [1, 10] as const;

async function phase(
  ctx: RunContext,
  stack: Stack,
  sink: Sink,
  tag: string,
  items: number,
  durationS: number,
  count: number,
  gapMs: number,
): Promise<{ send: SequentialResult; stats: OriginStats | undefined; complete: boolean; seconds: number; cpuPct: Record<string, number> }> {
  await sink.reset(tag);
  const tpl = sinkTemplate(sink.origin('a'), tag);
  const pids = stack.pids();
  const c0: Record<string, number> = { ...cpuOf(pids), harness: harnessCpu() };
  const t0 = performance.now();
  const send = await sendSequential({ origin: stack.ingestOrigin, path: '/i', durationS, count, gapMs, body: (_i, ts) => sinkBody(tpl, items, ts) });
  const wait = await sink.waitFor((s) => (s.a?.distinct ?? 0) >= send.accepted, { idleMs: 10_000, timeoutMs: 120_000 });
  const seconds = (performance.now() - t0) / 1000;
  const c1: Record<string, number> = { ...cpuOf(pids), harness: harnessCpu() };
  const cpuPct: Record<string, number> = {};
  for (const name of Object.keys(c0)) cpuPct[name] = (100 * ((c1[name] ?? 0) - (c0[name] ?? 0))) / seconds;
  if (!wait.complete) ctx.progress(`${tag}: the sink got ${wait.stats.a?.distinct ?? 0} of ${send.accepted}`);
  const stats = (await sink.stats(true)).a;
  return { send, stats, complete: wait.complete, seconds, cpuPct };
}

export const e2eTrickleScenario: Scenario = {
  name: 'e2e-trickle',
  summary: 'sequential requests (next after the 202) of 1 and of 10 items through ingest + delivery to the sink: ingest-to-receipt latency at low load',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    const m: Metrics = {};
    const statusCodes: Record<string, Record<string, number>> = {};
    let knobs: Record<string, unknown> = {};
    try {
      const stack = await startStack(ctx, { ingest: true, delivery: true });
      try {
        knobs = stack.knobs();
        for (const items of TRICKLE_SHAPES) {
          if (o.warmupS > 0) {
            ctx.progress(`${items} item(s): warmup ${o.warmupS} s`);
            await phase(ctx, stack, sink, `warm${items}`, items, o.warmupS, 0, o.trickleGapMs);
          }
          const what = o.trickleN > 0 ? `${o.trickleN} requests` : `${o.trickleDurationS} s`;
          ctx.progress(`${items} item(s): sequential requests, ${what}`);
          const p = await phase(ctx, stack, sink, `trickle${items}`, items, o.trickleN > 0 ? 0 : o.trickleDurationS, o.trickleN, o.trickleGapMs);
          const k = `s${items}`;
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
          statusCodes[k] = p.send.statusCodes;
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
        warmupS: o.warmupS,
        gapMs: o.trickleGapMs,
        client: 'one undici connection, the next request sent when the previous answer is read; ts = send time',
        sink: 'in-harness worker thread, node:http keep-alive, 200 "ok" at once',
        statusCodes,
      },
    };
  },
  tables(m: Metrics): Table[] {
    const cpu = (k: string, name: string) => fmt(get(m, `${k}.cpu_pct.${name}`));
    return [
      {
        title: 'e2e-trickle: one request at a time (next after the 202); latency = request sent -> sink receipt, per postback',
        columns: ['items', 'postbacks', 'sent/s', 'delivered/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p999 ms', 'max ms', 'ingest 202 p50', 'ingest 202 p99', 'dups', 'losses'],
        rows: TRICKLE_SHAPES.map((items) => {
          const k = `s${items}`;
          return [
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
        }),
        notes: [
          'sent/s: postbacks accepted per second of sending (the load this closed loop made); delivered/s: distinct postbacks at the sink per second from the first send to the last new one; ingest 202: the client-side response time of each request, ms',
          ...TRICKLE_SHAPES.map(
            (items) =>
              `CPU during the ${items}-item phase, % of one core: ingest ${cpu(`s${items}`, 'ingest')}, delivery ${cpu(`s${items}`, 'delivery')}, redis ${cpu(`s${items}`, 'redis')}, harness (client + sink) ${cpu(`s${items}`, 'harness')}`,
          ),
          ...TRICKLE_SHAPES.flatMap((items) => keptUp(m, items)),
        ],
      },
    ];
  },
};

/** A warning when delivery fell behind what the closed loop sent: that shape's latency is then queueing. */
function keptUp(m: Metrics, items: number): string[] {
  const sent = get(m, `s${items}.sent_pb_s`);
  const delivered = get(m, `s${items}.delivered_s`);
  if (sent === null || delivered === null || delivered >= 0.95 * sent) return [];
  return [
    `${items} item(s): ${fmt(delivered)}/s delivered of ${fmt(sent)}/s sent: delivery did not keep up with this closed loop, so its latency is mostly queueing (not low load); see --trickle-gap-ms`,
  ];
}

function fmt(v: number | null): string {
  if (v === null) return 'n/a';
  return Math.abs(v) >= 100 ? String(Math.round(v)) : v.toFixed(1);
}
