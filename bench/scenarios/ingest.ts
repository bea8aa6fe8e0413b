/**
 * `ingest`: autocannon, `-c 100` (--connections), POST /i with the v1
 * sample at 1, 10 and 100 items a request, against ingest and against the
 * baseline server (reads the body, answers 202) in the same run, baseline
 * first at each size. Redis is flushed between runs (no delivery runs, so
 * postbacks would pile up). Also `redis-benchmark -P 32` XADD on the same
 * Redis, for the 100-item target. CPU of ingest, Redis and the harness
 * itself during each measured run is recorded (% of one core).
 *
 * At 1 item (the size the targets use), also the floor baseline's front
 * (bench/baselines/trickle-floor.ts): node:http that parses the body,
 * XADDs it through ioredis and answers 202 once Redis has it, nothing
 * else. It is the least any server that keeps the contract's "stored
 * before 202" can do, measured beside the service: how far the goal is
 * from what that contract allows on this machine.
 *
 * Then one connection, sequential (`-c 1`), 1 item: the baseline, the
 * floor, ingest, and a bare Redis round trip from Node on the same Redis (sequential PING
 * from the harness's tiny RESP client, and through ioredis, the client
 * ingest uses), so ingest's p50 can be told in round trips over the
 * baseline's: what ingest adds to an HTTP exchange should be about one
 * Redis round trip (its one script call) and a little parsing.
 */
import { benchScript, spawnNode, knobsOf, cpuOf } from '../lib/procs.js';
import { Redis } from 'ioredis';
import { cannon, sequentialCalls, type CannonResult } from '../lib/load.js';
import { sampleBody } from '../lib/payload.js';
import { xaddBenchmark } from '../lib/redis-benchmark.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { startStack } from '../lib/stack.js';
import { startFloorFront } from '../lib/floor.js';

export const SIZES = [1, 10, 100] as const;
const TARGETS = ['baseline', 'ingest'] as const;
/** At 1 item, and at -c 1: the floor too, between the two. */
const TARGETS_1 = ['baseline', 'floor', 'ingest'] as const;
type Target = (typeof TARGETS_1)[number];
const targetsFor = (items: number): readonly Target[] => (items === 1 ? TARGETS_1 : TARGETS);

export function cannonMetrics(m: Metrics, key: string, r: CannonResult, items: number): void {
  m[`${key}.req_s`] = r.reqPerSec;
  m[`${key}.postbacks_s`] = r.okPerSec * items;
  m[`${key}.p50_ms`] = r.latency.p50;
  m[`${key}.p99_ms`] = r.latency.p99;
  m[`${key}.max_ms`] = r.latency.max;
  m[`${key}.errors`] = r.errors;
  m[`${key}.non2xx`] = r.non2xx;
  m[`${key}.harness_cpu_pct`] = r.harnessCpuPct;
}

export function baselineServer(): ReturnType<typeof spawnNode> {
  return spawnNode('baseline', benchScript('lib/baseline.js'), { env: { PATH: process.env.PATH ?? '' } });
}

export async function baselinePort(child: Awaited<ReturnType<typeof spawnNode>>): Promise<number> {
  const m = await child.message<{ type: string; port: number }>((x) => (x as { type?: string }).type === 'listening');
  return m.port;
}

export const ingestScenario: Scenario = {
  name: 'ingest',
  summary: 'autocannon -c 100 on /i, v1 sample at 1/10/100 items, ingest vs a bare node:http 202 server; redis-benchmark -P 32 XADD',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    // Nothing is delivered here, so postbacks pile up between flushes: the
    // backpressure check still runs, but its limit is out of reach.
    const stack = await startStack(ctx, { ingest: true }, { INGEST_MAX_QUEUE: '1000000000' });
    const baseline = await baselineServer();
    let floor: Awaited<ReturnType<typeof startFloorFront>> | undefined;
    try {
      floor = await startFloorFront(stack);
      const urls: Record<Target, string> = {
        baseline: `http://127.0.0.1:${await baselinePort(baseline)}/i`,
        floor: `${floor.origin}/i`,
        ingest: `${stack.ingestOrigin}/i`,
      };
      const floorPid = floor.child.pid;
      const m: Metrics = {};
      const statusCodes: Record<string, Record<string, number>> = {};
      ctx.progress('redis-benchmark -P 32 XADD');
      let xaddCommand = 'redis-benchmark failed';
      try {
        const xadd = await xaddBenchmark(stack.redis.port);
        m['redis_bench.xadd_s'] = xadd.opsPerSec;
        xaddCommand = xadd.command;
      } catch (err) {
        ctx.progress(`redis-benchmark failed (the XADD ratio will be n/a): ${(err as Error).message}`);
        m['redis_bench.xadd_s'] = null;
      }
      await stack.redis.client.command('FLUSHALL');
      for (const items of SIZES) {
        const body = sampleBody(items);
        for (const target of targetsFor(items)) {
          ctx.progress(`${target}, ${items} item(s), -c ${o.connections}, ${o.durationS} s`);
          const pids: Record<string, number> =
            target === 'ingest'
              ? { ingest: (stack.ingest as NonNullable<typeof stack.ingest>).pid, redis: stack.redis.pid }
              : target === 'floor'
                ? { floor: floorPid, redis: stack.redis.pid }
                : { baseline: baseline.pid };
          const cpu0 = cpuOf(pids);
          const t0 = performance.now();
          const r = await cannon({ url: urls[target], body, connections: o.connections, durationS: o.durationS, warmupS: o.warmupS });
          const wall = (performance.now() - t0) / 1000;
          const cpu1 = cpuOf(pids);
          const key = `${target}.${items}`;
          cannonMetrics(m, key, r, items);
          // CPU over warmup + run (the probes bracket both), as % of one core.
          for (const name of Object.keys(pids)) m[`${key}.cpu_pct.${name}`] = (100 * ((cpu1[name] ?? 0) - (cpu0[name] ?? 0))) / wall;
          statusCodes[key] = r.statusCodes;
          if (target !== 'baseline') await stack.redis.client.command('FLUSHALL');
        }
        m[`ratio.${items}`] = ratio(get(m, `ingest.${items}.req_s`), get(m, `baseline.${items}.req_s`));
      }
      m['ratio.1_floor'] = ratio(get(m, 'floor.1.req_s'), get(m, 'baseline.1.req_s'));
      m['ratio.1_vs_floor'] = ratio(get(m, 'ingest.1.req_s'), get(m, 'floor.1.req_s'));
      m['ratio.100_vs_xadd'] = ratio(get(m, 'ingest.100.postbacks_s'), get(m, 'redis_bench.xadd_s'));

      // -c 1, 1 item, and a bare Redis round trip from Node, in the same run.
      const one = sampleBody(1);
      for (const target of TARGETS_1) {
        ctx.progress(`${target}, 1 item, -c 1, ${o.durationS} s`);
        const r = await cannon({ url: urls[target], body: one, connections: 1, durationS: o.durationS, warmupS: o.warmupS });
        cannonMetrics(m, `c1.${target}`, r, 1);
        statusCodes[`c1.${target}`] = r.statusCodes;
      }
      await stack.redis.client.command('FLUSHALL');
      ctx.progress(`sequential PING, ${o.durationS} s (RESP client), ${o.durationS} s (ioredis)`);
      const ping = await sequentialCalls(() => stack.redis.client.command('PING'), o.durationS, o.warmupS);
      const ioredis = new Redis(stack.redis.url, { lazyConnect: true });
      try {
        await ioredis.connect();
        const ioPing = await sequentialCalls(() => ioredis.ping(), o.durationS, o.warmupS);
        m['c1.ping_ioredis.p50_ms'] = ioPing.p50;
        m['c1.ping_ioredis.p99_ms'] = ioPing.p99;
        m['c1.ping_ioredis.max_ms'] = ioPing.max;
      } finally {
        ioredis.disconnect();
      }
      m['c1.ping.p50_ms'] = ping.p50;
      m['c1.ping.p99_ms'] = ping.p99;
      m['c1.ping.max_ms'] = ping.max;
      m['c1.ratio.p50'] = ratio(get(m, 'c1.ingest.p50_ms'), get(m, 'c1.baseline.p50_ms'));
      const ingestP50 = get(m, 'c1.ingest.p50_ms');
      const baselineP50 = get(m, 'c1.baseline.p50_ms');
      const over = ingestP50 === null || baselineP50 === null ? null : ingestP50 - baselineP50;
      m['c1.over_baseline_ms'] = over;
      m['c1.over_baseline_in_pings'] = ratio(over, get(m, 'c1.ping.p50_ms'));
      const floorP50 = get(m, 'c1.floor.p50_ms');
      m['c1.floor_over_baseline_in_pings'] = ratio(floorP50 === null || baselineP50 === null ? null : floorP50 - baselineP50, get(m, 'c1.ping.p50_ms'));
      return {
        metrics: m,
        knobs: {
          ...stack.knobs(),
          baselineEnv: knobsOf(baseline.env),
          floor: 'bench/baselines/trickle-floor.ts front: node:http, JSON.parse, one XADD of the body (ioredis), 202 after it; at 1 item and -c 1',
          connections: o.connections,
          durationS: o.durationS,
          warmupS: o.warmupS,
          sizes: SIZES,
          body: 'v1 sample, its two data objects repeated to the size',
          redisBenchmark: xaddCommand,
          c1: { connections: 1, items: 1, ping: 'sequential PING from the harness (its RESP client on one socket, and ioredis), same Redis, after the -c 1 runs' },
          statusCodes,
        },
      };
    } finally {
      await floor?.child.kill();
      await baseline.kill();
      await stack.stop();
    }
  },
  tables(m: Metrics): Table[] {
    const rows: Table['rows'] = [];
    for (const items of SIZES) {
      for (const target of targetsFor(items)) {
        const k = `${target}.${items}`;
        rows.push([
          target,
          items,
          get(m, `${k}.req_s`),
          get(m, `${k}.postbacks_s`),
          get(m, `${k}.p50_ms`),
          get(m, `${k}.p99_ms`),
          get(m, `${k}.max_ms`),
          get(m, `${k}.errors`),
          get(m, `${k}.non2xx`),
          target === 'ingest' ? get(m, `ratio.${items}`) : target === 'floor' ? get(m, 'ratio.1_floor') : null,
          get(m, `${k}.cpu_pct.${target}`),
          target !== 'baseline' ? get(m, `${k}.cpu_pct.redis`) : null,
          get(m, `${k}.harness_cpu_pct`),
        ]);
      }
    }
    rows.push(['redis-benchmark XADD -P 32', 1, get(m, 'redis_bench.xadd_s'), get(m, 'redis_bench.xadd_s'), null, null, null, null, null, null, null, null, null]);
    return [
      {
        title: 'ingest: autocannon closed loop, POST /i',
        columns: ['server', 'items', 'req/s', 'postbacks/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'non-2xx', 'x baseline', 'server CPU%', 'redis CPU%', 'harness CPU%'],
        rows,
        notes: [
          `100 items vs redis-benchmark XADD: ${fmtRatio(get(m, 'ratio.100_vs_xadd'))}`,
          `1 item: floor (node:http + one XADD through ioredis, 202 after it; nothing else) ${fmtRatio(get(m, 'ratio.1_floor'))} of the baseline; ingest ${fmtRatio(get(m, 'ratio.1_vs_floor'))} of the floor`,
          'CPU% is of one core over warmup + run; the harness (autocannon) shares the same 2 cores.',
        ],
      },
      {
        title: 'ingest -c 1: one connection, sequential, 1 item; and a bare Redis round trip from Node (sequential PING)',
        columns: ['what', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx'],
        rows: [
          ...TARGETS_1.map((t) => [t, get(m, `c1.${t}.req_s`), get(m, `c1.${t}.p50_ms`), get(m, `c1.${t}.p99_ms`), get(m, `c1.${t}.max_ms`), get(m, `c1.${t}.non2xx`)]),
          ['PING (RESP client)', null, get(m, 'c1.ping.p50_ms'), get(m, 'c1.ping.p99_ms'), get(m, 'c1.ping.max_ms'), null],
          ['PING (ioredis)', null, get(m, 'c1.ping_ioredis.p50_ms'), get(m, 'c1.ping_ioredis.p99_ms'), get(m, 'c1.ping_ioredis.max_ms'), null],
        ],
        notes: [
          `ingest p50 - baseline p50 = ${fmtMs(get(m, 'c1.over_baseline_ms'))} = ${fmtX(get(m, 'c1.over_baseline_in_pings'))} PING p50 (goal <= 1.5); ingest p50 / baseline p50 = ${fmtRatio(get(m, 'c1.ratio.p50'))}`,
          `floor p50 - baseline p50 = ${fmtX(get(m, 'c1.floor_over_baseline_in_pings'))} PING p50`,
        ],
      },
    ];
  },
};

function fmtRatio(r: number | null): string {
  return r === null ? 'n/a' : `${r.toFixed(3)}x`;
}

function fmtMs(v: number | null): string {
  return v === null ? 'n/a' : `${v.toFixed(3)} ms`;
}

function fmtX(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(2);
}
