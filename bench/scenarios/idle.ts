/**
 * `idle`: ingest, delivery and monitor running with nothing to do. After a
 * warm-up (1,000 postbacks delivered, so pools, timers and connections
 * exist) and a short settle, for --idle seconds (and again for the next
 * --idle seconds, reported beside it): CPU of each role from
 * /proc/<pid>/stat (utime + stime, every thread) as % of one core, and the
 * commands Redis processed per second (INFO stats total_commands_processed,
 * less the harness's own INFO calls), with a per-command breakdown (INFO
 * commandstats) to show what is polling.
 */
import { deliverBulk } from '../lib/deliver.js';
import { cpuOf } from '../lib/procs.js';
import { commandCalls, counterDelta, snapshot } from '../lib/redis.js';
import { get, sleep, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { startStack } from '../lib/stack.js';

const WARM_POSTBACKS = 1_000;
const SETTLE_MS = 2_000;
const ROLES = ['ingest', 'delivery', 'monitor'] as const;

export const idleScenario: Scenario = {
  name: 'idle',
  summary: 'nothing queued: CPU of each role and Redis commands per second',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    const stack = await startStack(ctx, { ingest: true, delivery: true, monitor: true });
    try {
      ctx.progress(`warm-up: ${WARM_POSTBACKS} postbacks`);
      await deliverBulk({ sink, ingestOrigin: stack.ingestOrigin, tag: 'warm', n: WARM_POSTBACKS, items: 100, concurrency: 4 });
      await sleep(SETTLE_MS);
      ctx.progress(`idle for ${o.idleS} s`);
      const pids = stack.pids();
      const r = stack.redis;
      const s0 = await snapshot(r);
      const c0 = commandCalls(await r.client.info('commandstats'));
      const cpu0 = cpuOf(pids);
      const t0 = performance.now();
      await sleep(o.idleS * 1000);
      const cpu1 = cpuOf(pids);
      const seconds = (performance.now() - t0) / 1000;
      const s1 = await snapshot(r);
      const c1 = commandCalls(await r.client.info('commandstats'));
      const d = counterDelta(s0, s1);
      // The window that follows, as long: what idle costs once the
      // after-effects of the warm-up are over (V8's memory reducer runs
      // its heap-shrinking collections a few seconds after the last
      // activity, inside the first window). Reported beside it; the
      // target stays on the first.
      const t1 = performance.now();
      await sleep(o.idleS * 1000);
      const cpu2 = cpuOf(pids);
      const lateSeconds = (performance.now() - t1) / 1000;
      const m: Metrics = {};
      let total = 0;
      let lateTotal = 0;
      for (const role of ROLES) {
        const pct = (100 * ((cpu1[role] ?? 0) - (cpu0[role] ?? 0))) / seconds;
        m[`cpu_pct.${role}`] = pct;
        total += pct;
        const late = (100 * ((cpu2[role] ?? 0) - (cpu1[role] ?? 0))) / lateSeconds;
        m[`late.cpu_pct.${role}`] = late;
        lateTotal += late;
      }
      m['cpu_pct.roles_total'] = total;
      m['late.cpu_pct.roles_total'] = lateTotal;
      m['cpu_pct.redis'] = (100 * ((cpu1.redis ?? 0) - (cpu0.redis ?? 0))) / seconds;
      m['late.cpu_pct.redis'] = (100 * ((cpu2.redis ?? 0) - (cpu1.redis ?? 0))) / lateSeconds;
      m['redis.commands_s'] = d.commands / seconds;
      m['redis.net_in_bytes_s'] = d.netIn / seconds;
      m['redis.net_out_bytes_s'] = d.netOut / seconds;
      m.seconds = seconds;
      for (const [cmd, calls] of Object.entries(c1)) {
        if (cmd === 'info') continue;
        const delta = calls - (c0[cmd] ?? 0);
        if (delta > 0) m[`redis.cmd.${cmd}_s`] = delta / seconds;
      }
      return {
        metrics: m,
        knobs: { ...stack.knobs(), warmPostbacks: WARM_POSTBACKS, settleMs: SETTLE_MS, idleS: o.idleS },
      };
    } finally {
      await stack.stop();
      await sink.close();
    }
  },
  tables(m: Metrics): Table[] {
    const cmds = Object.keys(m)
      .filter((k) => k.startsWith('redis.cmd.'))
      .map((k) => `${k.slice('redis.cmd.'.length, -2)} ${(get(m, k) ?? 0).toFixed(2)}/s`);
    return [
      {
        title: 'idle: nothing queued',
        columns: ['process', 'CPU % of a core', 'the next window'],
        rows: [
          ...ROLES.map((r) => [r, get(m, `cpu_pct.${r}`), get(m, `late.cpu_pct.${r}`)]),
          ['roles together', get(m, 'cpu_pct.roles_total'), get(m, 'late.cpu_pct.roles_total')],
          ['redis-server', get(m, 'cpu_pct.redis'), get(m, 'late.cpu_pct.redis')],
        ],
        notes: [
          `Redis commands/s from the service: ${(get(m, 'redis.commands_s') ?? 0).toFixed(2)} (${cmds.join(', ') || 'none'})`,
          `window ${(get(m, 'seconds') ?? 0).toFixed(1)} s from ${SETTLE_MS / 1000} s after the warm-up (the target's); the next window follows it, as long, after the warm-up's after-effects (V8's heap-shrinking collections run a few seconds after the last activity, in the first)`,
          'CPU from /proc/<pid>/stat in clock ticks (10 ms each), so 0.1% steps over 10 s',
        ],
      },
    ];
  },
};
