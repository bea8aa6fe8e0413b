/**
 * `drain`: a long backlog. --drain-n postbacks (default 1,000,000, 100 a
 * request) are queued with no delivery process running, then one starts
 * and drains them to the sink. Measured: delivered/s over the drain, and
 * the delivery process's RSS each second (start, peak, end, and the series
 * as rss.<second>), which must stay flat: what delivery holds is bounded by
 * DELIVERY_CONCURRENCY, not by the backlog.
 */
import { readFileSync } from 'node:fs';
import { sendBulk } from '../lib/load.js';
import { sinkBody, sinkTemplate } from '../lib/payload.js';
import { spawnRole } from '../lib/procs.js';
import type { Metrics, RunContext, RunResult, Scenario, Table } from '../lib/scenario.js';
import { get } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { startStack } from '../lib/stack.js';

const ITEMS = 100;
const MB = 1024 * 1024;

function rssOf(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

export const drainScenario: Scenario = {
  name: 'drain',
  summary: 'a backlog of --drain-n postbacks queued first, then drained by one delivery process: RSS each second stays flat',
  async run(ctx: RunContext): Promise<RunResult> {
    const n = ctx.opts.drainN;
    const m: Metrics = {};
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    const stack = await startStack(ctx, { ingest: true, delivery: false }, { INGEST_MAX_QUEUE: '0' });
    try {
      await sink.reset('drain');
      const template = sinkTemplate(sink.origin('a'), 'drain');
      ctx.progress(`queueing ${n} postbacks with no delivery running`);
      const send = await sendBulk({ origin: stack.ingestOrigin, path: '/i', requests: Math.ceil(n / ITEMS), concurrency: 16, body: (_i, ts) => sinkBody(template, ITEMS, ts) });
      m.queued = send.accepted;
      ctx.progress(`queued ${send.accepted}; starting delivery`);
      stack.delivery = await spawnRole('delivery', stack.env);
      const pid = stack.delivery.pid;
      const started = performance.now();
      const series: number[] = [];
      let peak = 0;
      const timer = setInterval(() => {
        const rss = rssOf(pid);
        series.push(rss);
        peak = Math.max(peak, rss);
      }, 1_000);
      const { stats, complete } = await sink.waitFor((s) => (s.a?.distinct ?? 0) >= send.accepted, {
        idleMs: 30_000,
        timeoutMs: 3_600_000,
        onProgress: (s) => {
          if (series.length % 10 === 0 && series.length > 0) ctx.progress(`${s.a?.distinct ?? 0}/${send.accepted} delivered, RSS ${(series.at(-1)! / MB).toFixed(0)} MB`);
        },
      });
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      m.delivered = stats.a?.distinct ?? 0;
      m.complete = complete ? 1 : 0;
      m.duplicates = stats.a?.duplicates ?? 0;
      m['delivered_s'] = m.delivered / seconds;
      m['rss.start_mb'] = (series[0] ?? 0) / MB;
      m['rss.peak_mb'] = peak / MB;
      m['rss.end_mb'] = rssOf(pid) / MB;
      // Every tenth of the drain, so the table shows the shape without 100 columns.
      for (let k = 0; k <= 10; k++) m[`rss.at_${k * 10}pct_mb`] = (series[Math.min(series.length - 1, Math.floor((k / 10) * (series.length - 1)))] ?? 0) / MB;
    } finally {
      await stack.stop();
      await sink.close();
    }
    return { metrics: m, knobs: { n, itemsPerRequest: ITEMS, env: stack.knobs() } };
  },
  tables(m: Metrics): Table[] {
    return [
      {
        title: 'drain: a backlog queued first, then drained by one delivery process',
        columns: ['queued', 'delivered', 'dups', 'delivered/s', 'RSS start MB', 'RSS peak MB', 'RSS end MB'],
        rows: [[get(m, 'queued'), get(m, 'delivered'), get(m, 'duplicates'), get(m, 'delivered_s'), get(m, 'rss.start_mb'), get(m, 'rss.peak_mb'), get(m, 'rss.end_mb')]],
      },
      {
        title: 'drain: delivery RSS (MB) through the drain',
        columns: Array.from({ length: 11 }, (_, k) => `${k * 10}%`),
        rows: [Array.from({ length: 11 }, (_, k) => get(m, `rss.at_${k * 10}pct_mb`))],
      },
    ];
  },
};
