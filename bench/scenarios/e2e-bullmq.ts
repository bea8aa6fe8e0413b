/**
 * `e2e-bullmq`: the e2e max phase with BullMQ in place of the service
 * (bench/baselines/bullmq.ts): a producer process adds --n jobs with
 * addBulk in batches of 1000 while a worker process (concurrency 100)
 * makes the same undici request to the same sink per job. Same measures:
 * delivered/s from the first add to the last new id at the sink, latency
 * from the `ts` in each job, duplicates, losses, CPU per postback.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { originMetrics } from '../lib/deliver.js';
import { sinkTemplate } from '../lib/payload.js';
import { benchScript, cpuOf, harnessCpu, knobsOf, spawnNode } from '../lib/procs.js';
import { startRedis } from '../lib/redis.js';
import { get, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { packageUserAgent } from '../lib/version.js';
import { cpuMetrics } from './e2e.js';

const BATCH = 1_000;
const CONCURRENCY = 100;
const CONNECTIONS = 64;

export const e2eBullmqScenario: Scenario = {
  name: 'e2e-bullmq',
  summary: 'the e2e max phase through BullMQ (addBulk x1000, Worker concurrency 100, same undici request, same sink)',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const dir = join(ctx.scratch, 'redis');
    mkdirSync(dir, { recursive: true });
    const redis = await startRedis({ dir, aof: o.aof });
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    const tag = 'bullmq';
    await sink.reset(tag);
    const env = {
      PATH: process.env.PATH ?? '',
      BULLMQ_REDIS_PORT: String(redis.port),
      BULLMQ_QUEUE: `bench${randomBytes(4).toString('hex')}`,
      BULLMQ_N: String(o.n),
      BULLMQ_BATCH: String(BATCH),
      BULLMQ_CONCURRENCY: String(CONCURRENCY),
      BULLMQ_CONNECTIONS: String(CONNECTIONS),
      BULLMQ_TEMPLATE: sinkTemplate(sink.origin('a'), tag),
      BULLMQ_USER_AGENT: packageUserAgent(),
    };
    const script = benchScript('baselines/bullmq.js');
    const worker = await spawnNode('bullmq-worker', script, { args: ['worker'], env });
    const producer = await spawnNode('bullmq-producer', script, { args: ['producer'], env });
    const m: Metrics = {};
    try {
      ctx.progress(`BullMQ: ${o.n} jobs, addBulk x${BATCH}, worker concurrency ${CONCURRENCY}`);
      const pids = { producer: producer.pid, worker: worker.pid, redis: redis.pid };
      const cpu0 = { ...cpuOf(pids), harness: harnessCpu() };
      producer.proc.send('go');
      const done = await producer.message<{ added: number; firstUs: number; lastUs: number }>(
        (x) => (x as { type?: string }).type === 'done',
      );
      ctx.progress(`added ${done.added} jobs in ${((done.lastUs - done.firstUs) / 1e6).toFixed(1)} s; waiting for the sink`);
      let lastReport = Date.now();
      const wait = await sink.waitFor((s) => (s.a?.distinct ?? 0) >= done.added, {
        idleMs: 15_000,
        timeoutMs: 600_000,
        onProgress: (s) => {
          if (Date.now() - lastReport < 5_000) return;
          lastReport = Date.now();
          ctx.progress(`sink: ${s.a?.distinct ?? 0}/${done.added}`);
        },
      });
      const cpu1 = { ...cpuOf(pids), harness: harnessCpu() };
      const stats = await sink.stats(true);
      const send = { requests: 0, ok: 0, non2xx: 0, errors: 0, accepted: done.added, firstUs: done.firstUs, lastUs: done.lastUs, statusCodes: {} };
      originMetrics(m, 'bullmq', { send, expected: { a: done.added }, stats }, 'a');
      m['bullmq.add_s'] = (done.added * 1e6) / Math.max(1, done.lastUs - done.firstUs);
      cpuMetrics(m, 'bullmq', cpu0, cpu1, stats.a?.distinct ?? 0);
      if (!wait.complete) ctx.progress(`sink got ${wait.stats.a?.distinct} of ${done.added}`);
      return {
        metrics: m,
        knobs: {
          env: knobsOf(env),
          redisArgs: redis.args,
          n: o.n,
          batch: BATCH,
          concurrency: CONCURRENCY,
          undiciConnections: CONNECTIONS,
          jobOptions: { attempts: 5, backoff: 'exponential 1000 ms', removeOnComplete: true, removeOnFail: true },
        },
      };
    } finally {
      await producer.kill();
      await worker.kill();
      await sink.close();
      await redis.stop();
    }
  },
  tables(m: Metrics): Table[] {
    const cpu = (name: string) => get(m, `bullmq.cpu_us_per_pb.${name}`);
    return [
      {
        title: 'e2e-bullmq: BullMQ producer (addBulk x1000) -> Redis -> Worker (concurrency 100, undici) -> sink',
        columns: ['phase', 'postbacks', 'delivered/s', 'p50 ms', 'p99 ms', 'p999 ms', 'max ms', 'dups', 'losses', 'note'],
        rows: [
          [
            'bullmq',
            get(m, 'bullmq.postbacks'),
            get(m, 'bullmq.delivered_s'),
            get(m, 'bullmq.p50_ms'),
            get(m, 'bullmq.p99_ms'),
            get(m, 'bullmq.p999_ms'),
            get(m, 'bullmq.max_ms'),
            get(m, 'bullmq.duplicates'),
            get(m, 'bullmq.losses'),
            `added ${Math.round(get(m, 'bullmq.add_s') ?? 0)}/s`,
          ],
        ],
        notes: [
          `CPU per delivered postback, us: producer ${f(cpu('producer'))}, worker ${f(cpu('worker'))}, redis ${f(cpu('redis'))}, total ${f(cpu('total'))}`,
        ],
      },
    ];
  },
};

function f(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(1);
}
