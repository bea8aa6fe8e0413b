/**
 * `slow-partner`: two sink origins, "healthy" and "slow"; every tenth
 * request (10% of postbacks) goes to "slow". Two runs in the same command,
 * each on a fresh stack: "all-healthy" (both origins answer at once) and
 * "mixed" ("slow" answers after 2 s). Measured: delivered/s and latency of
 * the healthy origin's postbacks (first send to its last new id), which
 * the slow partner should not drag down; what "slow" got by then.
 */
import { deliverBulk, originMetrics } from '../lib/deliver.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { deliveryCounter, startStack } from '../lib/stack.js';

const SLOW_MS = 2_000;
const SEND_CONCURRENCY = 16;
const RUNS = [
  { name: 'all-healthy', slowDelayMs: 0 },
  { name: 'mixed', slowDelayMs: SLOW_MS },
] as const;

export const slowPartnerScenario: Scenario = {
  name: 'slow-partner',
  summary: '10% of postbacks to an origin answering after 2 s: healthy-origin throughput and latency vs an all-healthy run',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const m: Metrics = {};
    const knobs: Record<string, unknown> = {};
    const sink = await Sink.start([
      { name: 'healthy', delayMs: 0 },
      { name: 'slow', delayMs: 0 },
    ]);
    try {
      for (const run of RUNS) {
        const stack = await startStack(ctx, { ingest: true, delivery: true });
        try {
          ctx.progress(`${run.name}: ${o.slowN} postbacks, 10% to an origin answering after ${run.slowDelayMs} ms`);
          await sink.reset(run.name, { slow: run.slowDelayMs });
          const phase = await deliverBulk({
            sink,
            ingestOrigin: stack.ingestOrigin,
            tag: run.name,
            n: o.slowN,
            items: o.e2eItems,
            concurrency: SEND_CONCURRENCY,
            route: (i) => (i % 10 === 9 ? 'slow' : 'healthy'),
            waitFor: run.slowDelayMs > 0 ? ['healthy'] : ['healthy', 'slow'],
            progress: ctx.progress,
          });
          originMetrics(m, `${run.name}.healthy`, phase, 'healthy');
          // Both origins together: the run's total throughput.
          const both = ['healthy', 'slow'].map((n) => phase.stats[n]);
          const distinct = both.reduce((a, s) => a + (s?.distinct ?? 0), 0);
          const lastUs = Math.max(...both.map((s) => s?.lastNewUs ?? 0));
          m[`${run.name}.total.delivered_s`] = (distinct * 1e6) / Math.max(1, lastUs - phase.send.firstUs);
          m[`${run.name}.slow.postbacks`] = phase.expected.slow ?? 0;
          m[`${run.name}.slow.received`] = phase.stats.slow?.distinct ?? 0;
          m[`${run.name}.non2xx`] = phase.send.non2xx;
          // Parking back in Redis costs a write and a read again per postback (README, Delivery).
          const parked = await deliveryCounter(stack, 'pb_delivery_parked_total');
          m[`${run.name}.parked_per_pb`] = parked === null ? null : parked / Math.max(1, o.slowN);
          knobs[run.name] = { ...stack.knobs(), slowDelayMs: run.slowDelayMs };
        } finally {
          await stack.stop();
        }
      }
    } finally {
      await sink.close();
    }
    // The target: the healthy origin's throughput in the mixed run against the
    // whole all-healthy run's; and against the same origin in the all-healthy run.
    m['ratio.healthy_throughput'] = ratio(get(m, 'mixed.healthy.delivered_s'), get(m, 'all-healthy.total.delivered_s'));
    m['ratio.healthy_vs_same_origin'] = ratio(get(m, 'mixed.healthy.delivered_s'), get(m, 'all-healthy.healthy.delivered_s'));
    m['ratio.healthy_p99'] = ratio(get(m, 'mixed.healthy.p99_ms'), get(m, 'all-healthy.healthy.p99_ms'));
    return {
      metrics: m,
      knobs: { ...knobs, n: o.slowN, itemsPerRequest: o.e2eItems, slowShare: 0.1, slowMs: SLOW_MS, sendConcurrency: SEND_CONCURRENCY },
    };
  },
  tables(m: Metrics): Table[] {
    return [
      {
        title: 'slow-partner: healthy origin while 10% of postbacks go to an origin answering after 2 s',
        columns: ['run', 'healthy pbs', 'healthy delivered/s', 'p50 ms', 'p99 ms', 'p999 ms', 'max ms', 'dups', 'losses', 'slow got', 'run total/s', 'healthy x all-healthy total', 'healthy x all-healthy healthy', 'parked per pb'],
        rows: RUNS.map((r) => [
          r.name,
          get(m, `${r.name}.healthy.postbacks`),
          get(m, `${r.name}.healthy.delivered_s`),
          get(m, `${r.name}.healthy.p50_ms`),
          get(m, `${r.name}.healthy.p99_ms`),
          get(m, `${r.name}.healthy.p999_ms`),
          get(m, `${r.name}.healthy.max_ms`),
          get(m, `${r.name}.healthy.duplicates`),
          get(m, `${r.name}.healthy.losses`),
          `${get(m, `${r.name}.slow.received`) ?? 'n/a'}/${get(m, `${r.name}.slow.postbacks`) ?? 'n/a'}`,
          r.name === 'all-healthy' ? get(m, `${r.name}.total.delivered_s`) : null,
          r.name === 'mixed' ? get(m, 'ratio.healthy_throughput') : null,
          r.name === 'mixed' ? get(m, 'ratio.healthy_vs_same_origin') : null,
          get(m, `${r.name}.parked_per_pb`),
        ]),
        notes: [
          '"slow got": postbacks the slow origin had received when the healthy ones were all in (mixed run: it is not waited for).',
          'The target compares the healthy origin in the mixed run with the all-healthy run as a whole (both origins).',
        ],
      },
    ];
  },
};
