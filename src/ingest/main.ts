/**
 * The ingest role: config, logger, Redis, HTTP server, shutdown. Answers 503
 * until Redis is ready; tells PM2 it is ready once listening and connected.
 */
import { once } from 'node:events';
import { loadConfig } from '../config/index.js';
import { announceListening, installShutdown, signalReady } from '../lifecycle.js';
import { createLogger } from '../observability/logger.js';
import { createRegistry } from '../observability/metrics.js';
import { createRequestIdGenerator } from '../postback/ids.js';
import { allShards } from '../queue/keys.js';
import { closeRedis, createRedis, whenReady } from '../queue/redis.js';
import { Enqueuer } from './enqueue.js';
import { checkExposure } from './exposure.js';
import { loadPoliciesOrExit } from '../partners/policy-file.js';
import { createIngestServer } from './server.js';

export async function runIngest(): Promise<void> {
  const config = loadConfig();
  const exposure = checkExposure({ host: config.ingest.host, port: config.ingest.port, tokens: config.ingest.tokens.length, allowAnonymous: config.ingest.allowAnonymous });
  if (!exposure.ok) {
    process.stderr.write(`postback-delivery: ingest refuses to start: ${exposure.error}\n`);
    process.exit(1);
  }
  const logger = createLogger(config, 'ingest');
  const policies = loadPoliciesOrExit(config, logger);
  if (exposure.warning !== null) logger.warn(exposure.warning);
  const redis = createRedis(config, 'ingest', `ingest:${process.pid}`);
  let redisDown = false;
  redis.on('error', (err: Error) => {
    if (!redisDown) logger.warn({ err: err.message }, 'redis connection error: answering 503 until it is back');
    redisDown = true;
  });
  redis.on('ready', () => {
    if (redisDown) logger.info('redis connection is back');
    redisDown = false;
  });

  const enqueuer = new Enqueuer(redis, allShards(config.redis.prefix, config.redis.shards), {
    lifetimeMs: config.delivery.ttlMs + config.delivery.maxDelayMs,
    maxQueue: config.ingest.maxQueue,
    waitReplicas: config.ingest.waitReplicas,
    waitReplicasMs: config.ingest.waitReplicasMs,
    statsRetentionS: config.monitor.retentionS,
    idempotencyTtlMs: config.ingest.idempotencyTtlMs,
  });
  const registry = createRegistry('ingest');
  const ingest = createIngestServer({ config, redis, enqueuer, logger, nextId: createRequestIdGenerator(), registry, policies });

  installShutdown(logger, config.shutdownTimeoutMs, [
    { name: 'http', run: () => ingest.close() },
    { name: 'statistics', run: () => enqueuer.close() },
    { name: 'policies', run: () => policies.close() },
    { name: 'redis', run: () => closeRedis(redis) },
  ]);

  ingest.server.listen(config.ingest.port, config.ingest.host);
  await once(ingest.server, 'listening');
  const addr = ingest.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.ingest.port;
  announceListening('ingest', port);
  // Listening already: until Redis is reachable every request gets 503 (and
  // /readyz 503); PM2 hears 'ready' once it is.
  await whenReady(redis);
  logger.info({ host: config.ingest.host, port }, 'ingest listening');
  signalReady();
}
