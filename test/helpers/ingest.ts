/** The ingest HTTP server in-process, on a real Redis, for tests of its contract. */
import { once } from 'node:events';
import pino from 'pino';
import type { Test } from 'tap';
import { createIngestServer } from '../../src/ingest/server.js';
import { Enqueuer } from '../../src/ingest/enqueue.js';
import { createRedis } from '../../src/queue/redis.js';
import type { ShardKeys } from '../../src/queue/keys.js';
import { createRequestIdGenerator } from '../../src/postback/ids.js';
import type { Config } from '../../src/config/defaults.js';

/** Starts it on 127.0.0.1:0; closed at the test's teardown. Resolves with the port. */
export async function startIngest(t: Test, config: Config, shards: ShardKeys[], maxQueue = 0): Promise<number> {
  const redis = createRedis(config, 'ingest', 'test-ingest');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  const ingest = createIngestServer({
    config,
    redis,
    enqueuer: new Enqueuer(redis, shards, { lifetimeMs: 1000, maxQueue, statsRetentionS: 60, idempotencyTtlMs: 60_000 }),
    logger: pino({ level: 'silent' }),
    nextId: createRequestIdGenerator(),
  });
  ingest.server.listen(0, '127.0.0.1');
  await once(ingest.server, 'listening');
  t.teardown(async () => {
    await ingest.close();
    redis.disconnect();
  });
  return (ingest.server.address() as { port: number }).port;
}
