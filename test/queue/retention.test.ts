/**
 * Dead-letter retention against a real Redis, in-process: by age (the
 * stream id is when it died) and by count (the shard's part of DLQ_MAX),
 * oldest first, each count returned for the metric and the log.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { shardKeys } from '../../src/queue/keys.js';
import { createRedis } from '../../src/queue/redis.js';
import { perShardMax, trimDeadLetters } from '../../src/queue/retention.js';
import { testConfig } from '../helpers/config.js';
import { startRedis } from '../helpers/redis.js';

t.test('trimming dead letters by age and by count', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const redis = createRedis(testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix }), 'delivery', 'test-retention');
  t.teardown(() => redis.disconnect());
  const keys = shardKeys(prefix, 0);
  const now = Date.now();
  const day = 86_400_000;
  // 5 dead 10 days ago, 3 five days ago, 12 today.
  for (let i = 0; i < 5; i++) await redis.xadd(keys.dead, `${now - 10 * day}-${i}`, 'm', `old${i}`);
  for (let i = 0; i < 3; i++) await redis.xadd(keys.dead, `${now - 5 * day}-${i}`, 'm', `mid${i}`);
  for (let i = 0; i < 12; i++) await redis.xadd(keys.dead, `${now - 1000 + i}-0`, 'm', `new${i}`);
  t.same(await trimDeadLetters(redis, keys, 1_000, 7 * day, now), { byAge: 5, byCount: 0 }, 'older than 7 days: gone');
  t.same(await trimDeadLetters(redis, keys, 10, 7 * day, now), { byAge: 0, byCount: 5 }, 'beyond 10: the oldest go');
  const left = ((await redis.xrange(keys.dead, '-', '+')) as [string, string[]][]).map(([, f]) => f[1]);
  t.same(left, ['new2', 'new3', 'new4', 'new5', 'new6', 'new7', 'new8', 'new9', 'new10', 'new11'], 'the newest 10 stay');
  t.same(await trimDeadLetters(redis, keys, 10, 7 * day, now), { byAge: 0, byCount: 0 }, 'nothing more');
  t.equal(perShardMax(1_000_000, 4), 250_000);
  t.equal(perShardMax(3, 4), 1);
});
