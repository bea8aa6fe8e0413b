/**
 * `partner-limit`: the accuracy of a partner's rate limit shared by four
 * delivery processes. A policy limits the sink origin to --limit-rate
 * requests/s (burst a tenth of it); 20 s worth of postbacks are queued with
 * no delivery running, then four delivery processes start at once and
 * drain them. Measured at the sink, as the partner would count: the most
 * requests in any 1-second window against the limit plus burst (target:
 * at most 1.0x), and the rate achieved while the backlog lasted against
 * the limit (target: at least 0.9x); duplicates and losses.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendBulk } from '../lib/load.js';
import { sinkBody, sinkTemplate } from '../lib/payload.js';
import { spawnRole, type Child } from '../lib/procs.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { startStack } from '../lib/stack.js';

const PROCESSES = 4;
const ITEMS = 100;
const SECONDS = 20;

export const partnerLimitScenario: Scenario = {
  name: 'partner-limit',
  summary: 'a partner limited to --limit-rate/s, 4 delivery processes draining 20 s of backlog: peak 1 s count and achieved rate vs the limit',
  async run(ctx: RunContext): Promise<RunResult> {
    const rate = ctx.opts.limitRate;
    const burst = Math.max(1, Math.ceil(rate / 10));
    const n = rate * SECONDS;
    const m: Metrics = {};
    const sink = await Sink.start([{ name: 'capped', delayMs: 0 }]);
    const file = join(ctx.scratch, 'partners.json');
    writeFileSync(file, JSON.stringify({ partners: { [sink.origin('capped')]: { rate, burst } } }));
    const stack = await startStack(ctx, { ingest: true, delivery: false }, { PARTNERS_FILE: file, INGEST_MAX_QUEUE: '0' });
    const deliveries: Child[] = [];
    try {
      await sink.reset('limit');
      const template = sinkTemplate(sink.origin('capped'), 'limit');
      ctx.progress(`queueing ${n} postbacks for a partner limited to ${rate}/s (burst ${burst})`);
      const send = await sendBulk({ origin: stack.ingestOrigin, path: '/i', requests: Math.ceil(n / ITEMS), concurrency: 8, body: (_i, ts) => sinkBody(template, ITEMS, ts) });
      ctx.progress(`starting ${PROCESSES} delivery processes`);
      deliveries.push(...(await Promise.all(Array.from({ length: PROCESSES }, (_, k) => spawnRole('delivery', { ...stack.env, DELIVERY_METRICS_PORT: k === 0 ? stack.env.DELIVERY_METRICS_PORT ?? '0' : '0' })))));
      const { stats, complete } = await sink.waitFor((s) => (s.capped?.distinct ?? 0) >= send.accepted, {
        idleMs: 15_000,
        timeoutMs: (SECONDS * 3 + 30) * 1000,
        onProgress: (s) => ctx.progress(`${s.capped?.distinct ?? 0}/${send.accepted} delivered`),
      });
      const s = stats.capped;
      const seconds = s ? (s.lastNewUs - s.firstUs) / 1e6 : 0;
      m.limit = rate;
      m.burst = burst;
      m.queued = send.accepted;
      m.delivered = s?.distinct ?? 0;
      m.complete = complete ? 1 : 0;
      m.duplicates = s?.duplicates ?? 0;
      m.losses = Math.max(0, send.accepted - (s?.distinct ?? 0));
      m.peak_1s = s?.peak1s ?? null;
      m.seconds = seconds;
      // The burst goes at once; the rest at the rate.
      m.achieved_s = seconds > 0 ? ((s?.distinct ?? 0) - burst) / seconds : null;
      m['ratio.peak_vs_limit_plus_burst'] = ratio(m.peak_1s, rate + burst);
      m['ratio.achieved_vs_limit'] = ratio(m.achieved_s, rate);
    } finally {
      await Promise.all(deliveries.map((d) => d.kill()));
      await stack.stop();
      await sink.close();
    }
    return { metrics: m, knobs: { rate, burst, processes: PROCESSES, n, itemsPerRequest: ITEMS, env: stack.knobs() } };
  },
  tables(m: Metrics): Table[] {
    return [
      {
        title: `partner-limit: ${PROCESSES} delivery processes share one partner's rate limit`,
        columns: ['limit/s', 'burst', 'queued', 'delivered', 'dups', 'losses', 'peak in 1 s', 'peak x (limit+burst)', 'achieved/s', 'achieved x limit', 'seconds'],
        rows: [[get(m, 'limit'), get(m, 'burst'), get(m, 'queued'), get(m, 'delivered'), get(m, 'duplicates'), get(m, 'losses'), get(m, 'peak_1s'), get(m, 'ratio.peak_vs_limit_plus_burst'), get(m, 'achieved_s'), get(m, 'ratio.achieved_vs_limit'), get(m, 'seconds')]],
        notes: ['peak: the most requests the sink received in any 1-second window (sliding by 10 ms), as the partner would count them.'],
      },
    ];
  },
};
