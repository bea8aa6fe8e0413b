/**
 * The queue state (the dashboard's queue, the monitor's /readyz, the
 * pb_queue_* gauges and pb_redis_up) against a real Redis, also when it is
 * full: a full Redis (maxmemory, noeviction) refuses every command queued in
 * a MULTI, reads too, and a state read through MULTI said "Redis down".
 */
import t from 'tap';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { startRedis } from '../helpers/redis.js';
import { testConfig } from '../helpers/config.js';
import { createRedis } from '../../src/queue/redis.js';
import { GROUP, shardKeys } from '../../src/queue/keys.js';
import { readQueueState } from '../../src/queue/state.js';

t.test('a full Redis reads as full, not as down', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const config = testConfig({ REDIS_URL: server.url, REDIS_PREFIX: `t${randomBytes(4).toString('hex')}` });
  const keys = shardKeys(config.redis.prefix, 0);
  const c = server.client();
  await c.xadd(keys.stream, '*', 'm', 'a');
  await c.xgroup('CREATE', keys.stream, GROUP, '0');
  await c.xadd(keys.retry, '*', 'm', 'b');
  await c.zadd(keys.delayed, 1, 'd');
  await c.zadd(keys.retries, 1, 'r1', 2, 'r2');
  await c.xadd(keys.dead, '*', 'm', 'x');
  await c.set(keys.count, '5');
  const redis = createRedis(config, 'monitor', 'test-state');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  t.teardown(() => redis.disconnect());
  const now = Date.now();
  const before = await readQueueState(redis, [keys], now);
  t.match(before, { postbacks: 5, freshEntries: 1, retryEntries: 1, delayed: 1, retries: 2, deadLetters: 1, groupPresent: true });

  await c.config('SET', 'maxmemory', '1');
  t.teardown(() => c.config('SET', 'maxmemory', '0'));
  await t.rejects(c.set('another', 'key'), /OOM/, 'Redis is full: it refuses writes');
  t.same(await readQueueState(redis, [keys], now), before, 'and the state reads as before');
});
