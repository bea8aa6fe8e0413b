/**
 * `partner-down`: 30% of postbacks go to a partner that refuses
 * connections for the first half of the run (its breaker opens, its
 * postbacks wait in Redis, one probe per interval goes out), then comes
 * back. Two runs in the same command, each on a fresh stack with the
 * default partner policy: "all-healthy" and "outage". Measured: the healthy
 * origin's delivered/s against the all-healthy run (target: at least
 * 0.95x); attempts made to the down partner while it was down, and how
 * many of them were probes; losses and dead letters (target: none).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { originMetrics } from '../lib/deliver.js';
import { sendBulk } from '../lib/load.js';
import { sinkBody, sinkTemplate } from '../lib/payload.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { deliveryCounter, startStack } from '../lib/stack.js';

const SEND_CONCURRENCY = 16;
const RUNS = ['all-healthy', 'outage'] as const;

interface Line {
  url: string;
  outcome: string;
  deliveryTime: number | null;
  probe?: boolean;
}

function attemptLines(logDir: string): Line[] {
  let text = '';
  try {
    text = readFileSync(join(logDir, 'postback.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

export const partnerDownScenario: Scenario = {
  name: 'partner-down',
  summary: '30% of postbacks to a partner down for the first half of the run: healthy-origin throughput vs an all-healthy run, probes while open, nothing lost',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const m: Metrics = {};
    const knobs: Record<string, unknown> = {};
    const sink = await Sink.start([
      { name: 'healthy', delayMs: 0 },
      { name: 'down', delayMs: 0 },
    ]);
    try {
      for (const run of RUNS) {
        const stack = await startStack(ctx, { ingest: true, delivery: true }, { LOG_LEVEL: 'info' });
        try {
          await sink.reset(run);
          const route = (i: number) => (i % 10 < 3 ? 'down' : 'healthy');
          const templates = { healthy: sinkTemplate(sink.origin('healthy'), run), down: sinkTemplate(sink.origin('down'), run) };
          const expected: Record<string, number> = { healthy: 0, down: 0 };
          const requests = Math.ceil(o.downN / o.e2eItems);
          const healthyTotal = Math.round(o.downN * 0.7);
          let downFrom = 0;
          let downUntil = 0;
          if (run === 'outage') {
            await sink.setUp('down', false);
            downFrom = Date.now();
          }
          ctx.progress(`${run}: ${o.downN} postbacks, 30% to a partner ${run === 'outage' ? 'down for the first half' : 'that is up'}`);
          let sending = true;
          const watch = (async () => {
            // Back once half of the healthy origin's postbacks are in.
            while (run === 'outage' && sending && downUntil === 0) {
              const s = await sink.stats();
              if ((s.healthy?.distinct ?? 0) >= healthyTotal / 2) {
                await sink.setUp('down', true);
                downUntil = Date.now();
              } else {
                await new Promise((r) => setTimeout(r, 50));
              }
            }
          })();
          const send = await sendBulk({
            origin: stack.ingestOrigin,
            path: '/i',
            requests,
            concurrency: SEND_CONCURRENCY,
            body: (i, ts) => sinkBody(templates[route(i) as 'healthy' | 'down'], o.e2eItems, ts),
            onAccepted: (i, accepted) => {
              expected[route(i)] = (expected[route(i)] ?? 0) + accepted;
            },
          });
          const first = await sink.waitFor((s) => (s.healthy?.distinct ?? 0) >= (expected.healthy ?? 0), { idleMs: 30_000, timeoutMs: 600_000 });
          const healthyStats = await sink.stats(true);
          sending = false;
          await watch;
          if (run === 'outage' && downUntil === 0) {
            await sink.setUp('down', true);
            downUntil = Date.now();
          }
          const all = await sink.waitFor((s) => (s.down?.distinct ?? 0) >= (expected.down ?? 0), { idleMs: 30_000, timeoutMs: 600_000 });
          originMetrics(m, `${run}.healthy`, { send, expected, stats: healthyStats }, 'healthy');
          m[`${run}.healthy.complete`] = first.complete ? 1 : 0;
          m[`${run}.down.postbacks`] = expected.down ?? 0;
          m[`${run}.down.delivered`] = all.stats.down?.distinct ?? 0;
          m[`${run}.down.losses`] = Math.max(0, (expected.down ?? 0) - (all.stats.down?.distinct ?? 0));
          m[`${run}.down.duplicates`] = all.stats.down?.duplicates ?? 0;
          // Give the attempt log a moment to reach the disk, then count.
          await new Promise((r) => setTimeout(r, 1_000));
          const lines = attemptLines(stack.env.LOG_DIR as string).filter((l) => l.url.startsWith(sink.origin('down')));
          const during = lines.filter((l) => (l.deliveryTime ?? 0) >= downFrom && (l.deliveryTime ?? 0) < downUntil);
          m[`${run}.down.attempts_while_down`] = run === 'outage' ? during.length : null;
          m[`${run}.down.probes_while_down`] = run === 'outage' ? during.filter((l) => l.probe === true).length : null;
          m[`${run}.down.down_s`] = run === 'outage' ? (downUntil - downFrom) / 1000 : null;
          m[`${run}.down.dead`] = lines.filter((l) => l.outcome === 'dead' || l.outcome === 'expired').length;
          // Parking back in Redis costs a write and a read again per postback (README, Delivery).
          const parked = await deliveryCounter(stack, 'pb_delivery_parked_total');
          m[`${run}.parked_per_pb`] = parked === null ? null : parked / Math.max(1, o.downN);
          knobs[run] = stack.knobs();
        } finally {
          await stack.stop();
        }
      }
    } finally {
      await sink.close();
    }
    m['ratio.healthy_throughput'] = ratio(get(m, 'outage.healthy.delivered_s'), get(m, 'all-healthy.healthy.delivered_s'));
    return { metrics: m, knobs: { ...knobs, n: o.downN, itemsPerRequest: o.e2eItems, downShare: 0.3, sendConcurrency: SEND_CONCURRENCY } };
  },
  tables(m: Metrics): Table[] {
    return [
      {
        title: 'partner-down: a partner (30% of postbacks) refusing connections for the first half of the run',
        columns: ['run', 'healthy delivered/s', 'p99 ms', 'healthy x all-healthy', 'down for s', 'attempts to it while down', 'of which probes', 'its postbacks', 'delivered', 'lost', 'dead', 'dups', 'parked per pb'],
        rows: RUNS.map((r) => [
          r,
          get(m, `${r}.healthy.delivered_s`),
          get(m, `${r}.healthy.p99_ms`),
          r === 'outage' ? get(m, 'ratio.healthy_throughput') : null,
          get(m, `${r}.down.down_s`),
          get(m, `${r}.down.attempts_while_down`),
          get(m, `${r}.down.probes_while_down`),
          get(m, `${r}.down.postbacks`),
          get(m, `${r}.down.delivered`),
          get(m, `${r}.down.losses`),
          get(m, `${r}.down.dead`),
          get(m, `${r}.down.duplicates`),
          get(m, `${r}.parked_per_pb`),
        ]),
        notes: ['Attempts while down include those made before its breaker opened (a few seconds of failures); after that only probes, one per PARTNER_PROBE_INTERVAL_MS for the cluster.'],
      },
    ];
  },
};
