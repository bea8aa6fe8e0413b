/**
 * The delivery role: Redis connections, the Piscina pool of delivery
 * threads, the service loop, shutdown in order (stop reading, finish what
 * was read, acknowledge, close the pool, quit Redis, flush logs).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Piscina } from 'piscina';
import { loadConfig } from '../config/index.js';
import { announceListening, installShutdown, signalReady } from '../lifecycle.js';
import { createAttemptLog, createLogger } from '../observability/logger.js';
import { createRegistry, registerQueueGauges } from '../observability/metrics.js';
import { createOpsServer } from '../observability/ops-server.js';
import { StatsRecorder } from '../observability/stats.js';
import { allShards } from '../queue/keys.js';
import { closeRedis, createRedis } from '../queue/redis.js';
import { encodeDefault } from '../postback/template.js';
import { USER_AGENT } from '../version.js';
import type { AttemptResult, BatchTask, WorkerSettings } from './attempt.js';
import { BatchRunner } from './batch-runner.js';
import { fdWarning, openFilesLimit } from './fd-limit.js';
import { DeliveryMetrics } from './metrics.js';
import { loadPoliciesOrExit } from '../partners/policy-file.js';
import { DeliveryService } from './service.js';
import { waitForThreads } from './thread-ready.js';

/** How long delivery waits at start for its threads to load before it goes on without the late ones. */
const THREADS_READY_MS = 60_000;

export async function runDelivery(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'delivery');
  const policies = loadPoliciesOrExit(config, logger);
  const attemptLog = createAttemptLog(config);
  const d = config.delivery;
  const consumer = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  let limits = '';
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    // not Linux: nothing to check
  }
  const fds = fdWarning(openFilesLimit(limits), d.concurrency);
  if (fds !== null) logger.warn(fds);

  const redis = createRedis(config, 'delivery', `delivery:${consumer}`);
  // One blocking connection per shard: a blocked XREADGROUP holds its connection.
  const shards = allShards(config.redis.prefix, config.redis.shards).map((keys) => ({
    keys,
    blocking: createRedis(config, 'blocking', `delivery-read:${keys.shard}:${consumer}`),
  }));
  for (const client of [redis, ...shards.map((s) => s.blocking)]) {
    client.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis connection error'));
  }

  const settings: WorkerSettings = {
    timeoutMs: d.timeoutMs,
    responseBodyMax: d.responseBodyMax,
    // Each thread may carry an origin's whole share: the main thread sends an
    // origin no more than DELIVERY_CONNECTIONS_PER_ORIGIN at once, to whichever threads.
    connectionsPerOrigin: d.connectionsPerOrigin,
    encodedDefault: encodeDefault(d.unmatchedDefault),
    userAgent: USER_AGENT,
    allowPrivate: d.allowPrivate,
    allowedCidrs: d.allowedCidrs,
    allowedOrigins: d.allowedOrigins,
    dnsServers: d.dnsServers,
    signingSecrets: d.signingSecrets,
    signingScheme: d.signingScheme,
    caCerts: d.caCerts.length > 0 ? [...d.nodeExtraCaCerts, ...d.caCerts] : [],
  };
  // DELIVERY_WORKERS=0: no threads, the main thread sends the requests itself.
  const inline = d.workers === 0 ? new BatchRunner(settings) : null;
  // Listening before the pool exists, so no thread's word is missed.
  const threadsReady = waitForThreads(inline ? 0 : d.workers, THREADS_READY_MS);
  const pool = inline ? null : new Piscina<BatchTask, AttemptResult[]>({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: d.workers,
    maxThreads: d.workers,
    // Room on the threads for every batch the scheduler can have in flight:
    // a batch holds one origin, so with many small partners each is one
    // postback, and up to DELIVERY_CONCURRENCY of them run at once. Less
    // room left the rest in Piscina's queue, counted as in flight yet not
    // started: out of reach of pauses and of the hand-back at shutdown,
    // and holding up every other partner.
    concurrentTasksPerWorker: Math.ceil(d.concurrency / d.workers) + 1,
    idleTimeout: Number.MAX_SAFE_INTEGER,
    atomics: 'disabled',
    workerData: settings,
  });

  const registry = createRegistry('delivery');
  registerQueueGauges(
    registry,
    redis,
    shards.map((s) => s.keys),
  );
  // Scrapes start after the service exists (the ops server listens below).
  const metrics: DeliveryMetrics = new DeliveryMetrics(registry, () => service.sizes);
  const stats = new StatsRecorder(redis, (shards[0] as (typeof shards)[number]).keys, config.monitor.retentionS);
  const service: DeliveryService = new DeliveryService({ config, logger, attemptLog, redis, shards, pool, inline, consumer, stats, metrics, policies });
  const ops = createOpsServer(registry, () => service.ready);

  installShutdown(logger, config.shutdownTimeoutMs, [
    { name: 'ops', run: () => new Promise<void>((resolve) => ops.close(() => resolve())) },
    { name: 'policies', run: () => policies.close() },
    { name: 'delivery', run: () => service.close() },
    // The last attempt lines, while the process can still wait for a disk
    // (the exit's synchronous flush gives up a file that refuses writes).
    { name: 'attempt log', run: () => attemptLog.flush(2_000).then(() => undefined) },
    { name: 'workers', run: () => (pool ? pool.close() : (inline as BatchRunner).close()) },
    { name: 'redis', run: () => Promise.all([redis, ...shards.map((s) => s.blocking)].map((c) => closeRedis(c))).then(() => undefined) },
  ]);

  if (config.monitor.deliveryPort !== 0) {
    ops.listen(config.monitor.deliveryPort, config.monitor.host);
    try {
      await once(ops, 'listening');
      announceListening('delivery-metrics', (ops.address() as { port: number }).port);
    } catch (err) {
      // A second delivery process on the machine: it still delivers.
      logger.warn({ err: (err as Error).message, port: config.monitor.deliveryPort }, 'metrics port unavailable: running without /metrics');
    }
  }
  const ready = await threadsReady;
  if (ready < d.workers && !inline) {
    logger.warn({ ready, workers: d.workers, waitedMs: THREADS_READY_MS }, 'delivery threads still loading: going on without waiting for them (batches given to them start when they are up)');
  }
  stats.start();
  await service.start();
  logger.info({ consumer, workers: d.workers, concurrency: d.concurrency }, 'delivery running');
  signalReady();
}
