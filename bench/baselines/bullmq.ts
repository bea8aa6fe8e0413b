/**
 * Baseline: the same postbacks through a BullMQ queue instead of this
 * service. Two processes, run by the `e2e-bullmq` scenario:
 *
 *   node dist/bench/baselines/bullmq.js worker    a Worker, concurrency 100, whose
 *       processor renders the URL template with the job's data and makes the
 *       same undici request delivery makes (GET, User-Agent, X-Postback-Id,
 *       an undici Pool of 64 connections to the origin); a non-2xx throws,
 *       so BullMQ retries it (attempts 5, exponential backoff from 1 s, as
 *       the service's defaults);
 *   node dist/bench/baselines/bullmq.js producer  adds BULLMQ_N jobs with addBulk,
 *       in batches of 1000, one batch after another; each job holds what a
 *       postback is (method, URL template, data with `ts` = add time).
 *
 * Environment: BULLMQ_REDIS_PORT, BULLMQ_QUEUE, BULLMQ_N, BULLMQ_BATCH
 * (1000), BULLMQ_CONCURRENCY (100), BULLMQ_CONNECTIONS (64),
 * BULLMQ_TEMPLATE, BULLMQ_USER_AGENT. Both send 'ready' over IPC; the
 * producer then waits for 'go' and reports `{ type: 'done', added, firstUs,
 * lastUs }`. Jobs are removed on completion, as a production setup would.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Pool } from 'undici';
import { nowUs } from '../lib/histogram.js';
import { SAMPLE_ITEMS, renderSample } from '../lib/payload.js';

interface PostbackJob {
  method: 'GET';
  url: string;
  data: Record<string, string | number>;
}

const env = process.env;
const connection = { host: '127.0.0.1', port: Number(env.BULLMQ_REDIS_PORT), maxRetriesPerRequest: null };
const queueName = env.BULLMQ_QUEUE ?? 'postbacks';
const userAgent = env.BULLMQ_USER_AGENT ?? 'postback-delivery/bench';

async function runWorker(): Promise<void> {
  const pools = new Map<string, Pool>();
  const connections = Number(env.BULLMQ_CONNECTIONS ?? 64);
  const pool = (origin: string): Pool => {
    let p = pools.get(origin);
    if (p === undefined) {
      p = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 4_000 });
      pools.set(origin, p);
    }
    return p;
  };
  const worker = new Worker<PostbackJob>(
    queueName,
    async (job: Job<PostbackJob>) => {
      const url = new URL(renderSample(job.data.url, job.data.data));
      const res = await pool(url.origin).request({
        path: url.pathname + url.search,
        method: job.data.method,
        headers: { 'user-agent': userAgent, 'x-postback-id': String(job.id) },
      });
      await res.body.text();
      if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`status ${res.statusCode}`);
    },
    { connection, concurrency: Number(env.BULLMQ_CONCURRENCY ?? 100) },
  );
  worker.on('error', (err) => process.stderr.write(`bullmq worker: ${err.message}\n`));
  await worker.waitUntilReady();
  process.on('disconnect', () => process.exit(0));
  process.send?.('ready');
}

async function runProducer(): Promise<void> {
  const n = Number(env.BULLMQ_N ?? 100_000);
  const batch = Number(env.BULLMQ_BATCH ?? 1_000);
  const template = env.BULLMQ_TEMPLATE ?? '';
  const queue = new Queue<PostbackJob>(queueName, {
    connection,
    defaultJobOptions: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: true,
      removeOnFail: true,
    },
  });
  await queue.waitUntilReady();
  process.on('disconnect', () => process.exit(0));
  process.once('message', (m) => {
    if (m !== 'go') return;
    void (async () => {
      const firstUs = nowUs();
      let added = 0;
      while (added < n) {
        const size = Math.min(batch, n - added);
        const ts = nowUs();
        const jobs = [];
        for (let i = 0; i < size; i++) {
          const item = SAMPLE_ITEMS[(added + i) % SAMPLE_ITEMS.length] as { key: string; value: string };
          jobs.push({ name: 'postback', data: { method: 'GET' as const, url: template, data: { ...item, ts } } });
        }
        await queue.addBulk(jobs);
        added += size;
      }
      const lastUs = nowUs();
      process.send?.({ type: 'done', added, firstUs, lastUs });
    })();
  });
  process.send?.('ready');
}

const role = process.argv[2];
if (role === 'worker') await runWorker();
else if (role === 'producer') await runProducer();
else {
  process.stderr.write('usage: node dist/bench/baselines/bullmq.js worker|producer\n');
  process.exit(2);
}
