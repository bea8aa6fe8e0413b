/**
 * `ingest-loop`: one request in an infinite loop, one connection,
 * sequential (autocannon `-c 1`), the v1 sample with 1 item, against the
 * baseline server and then ingest: req/s and latency, which here is the
 * whole per-request cost (parse, validate, one Redis round trip, answer).
 * Latency comes from a µs histogram (autocannon's own has 1 ms steps).
 */
import { cannon } from '../lib/load.js';
import { knobsOf } from '../lib/procs.js';
import { sampleBody } from '../lib/payload.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { startStack } from '../lib/stack.js';
import { baselinePort, baselineServer, cannonMetrics } from './ingest.js';

const TARGETS = ['baseline', 'ingest'] as const;

export const ingestLoopScenario: Scenario = {
  name: 'ingest-loop',
  summary: 'autocannon -c 1 (sequential) on /i, v1 sample with 1 item, ingest vs the baseline server',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const stack = await startStack(ctx, { ingest: true });
    const baseline = await baselineServer();
    try {
      const urls = {
        baseline: `http://127.0.0.1:${await baselinePort(baseline)}/i`,
        ingest: `${stack.ingestOrigin}/i`,
      };
      const m: Metrics = {};
      const body = sampleBody(1);
      for (const target of TARGETS) {
        ctx.progress(`${target}, -c 1, ${o.durationS} s`);
        const r = await cannon({ url: urls[target], body, connections: 1, durationS: o.durationS, warmupS: o.warmupS });
        cannonMetrics(m, target, r, 1);
      }
      m['ratio.p50'] = ratio(get(m, 'ingest.p50_ms'), get(m, 'baseline.p50_ms'));
      m['ratio.p99'] = ratio(get(m, 'ingest.p99_ms'), get(m, 'baseline.p99_ms'));
      m['ratio.req_s'] = ratio(get(m, 'ingest.req_s'), get(m, 'baseline.req_s'));
      return {
        metrics: m,
        knobs: { ...stack.knobs(), baselineEnv: knobsOf(baseline.env), connections: 1, durationS: o.durationS, warmupS: o.warmupS, items: 1 },
      };
    } finally {
      await baseline.kill();
      await stack.stop();
    }
  },
  tables(m: Metrics): Table[] {
    return [
      {
        title: 'ingest-loop: one connection, sequential (-c 1), v1 sample with 1 item',
        columns: ['server', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'non-2xx', 'p50 x baseline', 'p99 x baseline'],
        rows: TARGETS.map((t) => [
          t,
          get(m, `${t}.req_s`),
          get(m, `${t}.p50_ms`),
          get(m, `${t}.p99_ms`),
          get(m, `${t}.max_ms`),
          get(m, `${t}.errors`),
          get(m, `${t}.non2xx`),
          t === 'ingest' ? get(m, 'ratio.p50') : null,
          t === 'ingest' ? get(m, 'ratio.p99') : null,
        ]),
      },
    ];
  },
};
