/**
 * The finalizer and finalize-4.lua in-process against a real Redis: an
 * entry's acknowledgement lands together with its retries, dead letters
 * and hand-backs, the count key goes down by what left the system, an
 * entry another consumer owns now writes nothing, and a Redis outage
 * delays the write without losing it.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Finalizer, type EntryOutcome } from '../../src/delivery/finalizer.js';
import { StreamReader } from '../../src/delivery/reader.js';
import { GROUP, heldKey, shardKeys } from '../../src/queue/keys.js';
import { createRedis, type RedisClient } from '../../src/queue/redis.js';
import { testConfig } from '../helpers/config.js';
import { startRedis } from '../helpers/redis.js';
import { until } from '../helpers/count.js';

const logger = pino({ level: 'silent' });

function outcome(stream: string, id: string, over: Partial<EntryOutcome> = {}): EntryOutcome {
  return { stream, id, finished: 0, retries: [], deadLetters: [], handBack: [], held: [], ...over };
}

t.test('finalizer against a real Redis', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const check = server.client();
  const clients: RedisClient[] = [];
  t.teardown(() => {
    for (const c of clients) c.disconnect();
  });
  /** A shard with `n` entries read by consumer c1, and the count key at `count`. */
  const setup = async (n: number, count = n) => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const config = testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix });
    const redis = createRedis(config, 'delivery', 'test-finalizer');
    clients.push(redis);
    const keys = shardKeys(prefix, 0);
    const reader = new StreamReader(redis, redis, keys, 'c1', logger);
    await reader.ensureGroups();
    for (let i = 0; i < n; i++) await check.xadd(keys.stream, '*', 'm', `entry${i}`);
    await check.set(keys.count, count);
    const ids = (await reader.read(n, 50)).map((e) => e.id);
    return { keys, redis, ids, finalizer: new Finalizer(redis, keys, logger) };
  };

  t.test('each outcome lands whole with its acknowledgement', async (t) => {
    const { keys, ids, finalizer } = await setup(3, 10);
    const [a, b, c] = ids as [string, string, string];
    finalizer.add(outcome(keys.stream, a, { finished: 4 }));
    finalizer.add(outcome(keys.stream, b, { finished: 1, retries: [[5_000, Buffer.from('r1')], [6_000, Buffer.from('r2')]], deadLetters: [Buffer.from('d1')] }));
    finalizer.add(outcome(keys.stream, c, { finished: 0, handBack: [Buffer.from('rest')] }));
    await finalizer.drain();
    t.equal(finalizer.acknowledged, 3);
    const pending = (await check.xpending(keys.stream, GROUP)) as [number];
    t.equal(pending[0], 0, 'nothing left pending');
    const left = (await check.xrange(keys.stream, '-', '+')) as [string, string[]][];
    t.same(left.map(([, f]) => f[1]), ['rest'], 'acknowledged entries deleted; the hand-back added for any consumer');
    t.same(await check.zrange(keys.retries, 0, -1, 'WITHSCORES'), ['r1', '5000', 'r2', '6000'], 'retries due at their times');
    t.same(((await check.xrange(keys.dead, '-', '+')) as [string, string[]][]).map(([, f]) => f[1]), ['d1']);
    t.equal(await check.get(keys.count), '5', 'the count went down by the 5 that left the system');
  });

  t.test('held postbacks go to their origin\'s held set, counted per origin, and come back through release', async (t) => {
    const { keys, redis, ids, finalizer } = await setup(2, 3);
    const [a, b] = ids as [string, string];
    finalizer.add(outcome(keys.stream, a, { held: [['https://p.example', 2, 100, Buffer.from('two')]] }));
    finalizer.add(outcome(keys.stream, b, { finished: 0, held: [['https://p.example', 1, 50, Buffer.from('one')], ['https://q.example', 1, 70, Buffer.from('q')]] }));
    await finalizer.drain();
    t.equal(finalizer.acknowledged, 2);
    t.same(await check.hgetall(keys.heldIndex), { 'https://p.example': '3', 'https://q.example': '1' });
    t.same(await check.zrange(heldKey(keys, 'https://p.example'), 0, -1), ['1:one', '2:two'], 'oldest due first, each with its postbacks');
    t.equal(await check.get(keys.count), '3', 'held postbacks are still in the system');
    t.same(await redis.pbRelease(keys.heldIndex, keys.retry, heldKey(keys, 'https://p.example'), 'https://p.example', 10, '', 10), [0, 0, 3], 'nothing expired by 10: nothing moves, nothing fails');
    t.same(await redis.pbRelease(keys.heldIndex, keys.retry, heldKey(keys, 'https://p.example'), 'https://p.example', 10, '', 60), [1, 1, 2], 'only what expired by 60: one entry back, two postbacks still held');
    t.same(await redis.pbRelease(keys.heldIndex, keys.retry, heldKey(keys, 'https://p.example'), 'https://p.example', 10, 'p', '+inf'), [1, 2, 0]);
    const back = (await check.xrange(keys.retry, '-', '+')) as [string, string[]][];
    t.same(back.map(([, f]) => f), [['m', 'one'], ['m', 'two', 'p', '1']], 'to the retry stream, the probe marked');
    t.same(await check.hgetall(keys.heldIndex), { 'https://q.example': '1' }, 'an origin with nothing held leaves the index');
    t.equal(await check.exists(heldKey(keys, 'https://p.example')), 0);
  });

  t.test('an entry another consumer reclaimed and finished writes nothing', async (t) => {
    const { keys, ids, finalizer } = await setup(1, 1);
    const id = ids[0] as string;
    // Another consumer took it over and acknowledged it.
    await check.xclaim(keys.stream, GROUP, 'c2', 0, id);
    await check.xack(keys.stream, GROUP, id);
    finalizer.add(outcome(keys.stream, id, { finished: 1, retries: [[1, Buffer.from('twice')]], deadLetters: [Buffer.from('twice')] }));
    await finalizer.drain();
    t.equal(finalizer.acknowledged, 0);
    t.equal(await check.zcard(keys.retries), 0, 'no retry recorded twice');
    t.equal(await check.xlen(keys.dead), 0, 'no dead letter recorded twice');
    t.equal(await check.get(keys.count), '1', 'the count untouched');
  });

  t.test('outcomes finished together share one script call', async (t) => {
    const { keys, ids, finalizer } = await setup(50, 50);
    const scriptCalls = async () => {
      const info = await check.info('commandstats');
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    const before = await scriptCalls();
    for (const id of ids) finalizer.add(outcome(keys.stream, id, { finished: 1 }));
    t.ok(await until(() => finalizer.acknowledged === 50, 5_000), 'all 50 acknowledged');
    t.equal((await scriptCalls()) - before, 1, 'one script call for the 50 entries');
    t.equal(await check.get(keys.count), '0');
  });
});

t.test('Redis down: the write waits and lands once it is back', async (t) => {
  const server = await startRedis({ aof: true });
  t.teardown(() => server.destroy());
  const check = server.client();
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix });
  const redis = createRedis(config, 'delivery', 'test-finalizer');
  t.teardown(() => redis.disconnect());
  const keys = shardKeys(prefix, 0);
  const log = pino({ level: 'silent' });
  const reader = new StreamReader(redis, redis, keys, 'c1', log);
  await reader.ensureGroups();
  await check.xadd(keys.stream, '*', 'm', 'e');
  await check.set(keys.count, 1);
  const [read] = await reader.read(1, 50);
  const finalizer = new Finalizer(redis, keys, log);
  await server.stop();
  finalizer.add(outcome(keys.stream, (read as { id: string }).id, { finished: 1, deadLetters: [Buffer.from('d')] }));
  // The delivery connection queues commands across reconnects (or the
  // finalizer retries a failed call): either way the write waits.
  t.ok(await until(() => redis.status !== 'ready', 5_000), 'the connection noticed Redis is gone');
  t.equal(finalizer.acknowledged, 0, 'not recorded while Redis is down');
  await server.start(); // from its AOF: the entry is still pending
  t.ok(await until(() => finalizer.acknowledged === 1, 10_000), 'recorded once Redis is back');
  t.equal(await check.get(keys.count), '0');
  t.equal(await check.xlen(keys.dead), 1);
  t.equal(((await check.xpending(keys.stream, GROUP)) as [number])[0], 0);
  await finalizer.drain();
});

t.test('shutdown with a write in flight to a Redis that went away: drain gives up within seconds', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const check = server.client();
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const redis = createRedis(testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix }), 'delivery', 'test-finalizer');
  t.teardown(() => redis.disconnect());
  const keys = shardKeys(prefix, 0);
  const reader = new StreamReader(redis, redis, keys, 'c1', logger);
  await reader.ensureGroups();
  await check.xadd(keys.stream, '*', 'm', 'e');
  const [read] = await reader.read(1, 50);
  const finalizer = new Finalizer(redis, keys, logger);
  await server.stop();
  // Written before the shutdown began: no timeout of its own (PM2's `stop all` stops Redis with the roles).
  finalizer.add(outcome(keys.stream, (read as { id: string }).id, { finished: 1 }));
  t.ok(await until(() => redis.status !== 'ready' && finalizer.pending === 0, 5_000), 'Redis gone, the call issued (it waits in the connection)');
  const began = Date.now();
  await finalizer.drain();
  const took = Date.now() - began;
  // Then the shutdown's own five tries of at most a second each.
  t.ok(took < 8_000, `drain returned in ${took} ms (SHUTDOWN_TIMEOUT_MS is 15 s)`);
  t.equal(finalizer.acknowledged, 0, 'nothing recorded: the entry stays pending for a reclaim');
});
