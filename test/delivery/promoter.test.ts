/**
 * The promoter and promote-5.lua in-process against a real Redis: due
 * delayed postbacks go to the stream and due retries to the retry stream,
 * never before their time; the script reports the next due time; two
 * promoters racing never move the same postback twice; a release pass
 * that waits on Redis never holds promotion up.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Promoter } from '../../src/delivery/promoter.js';
import { shardKeys } from '../../src/queue/keys.js';
import { createRedis, type RedisClient } from '../../src/queue/redis.js';
import { testConfig } from '../helpers/config.js';
import { until } from '../helpers/count.js';
import { startRedis } from '../helpers/redis.js';

const logger = pino({ level: 'silent' });

t.test('promotion against a real Redis', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const check = server.client();
  const clients: RedisClient[] = [];
  const promoters: Promoter[] = [];
  t.teardown(() => {
    for (const p of promoters) p.stop();
    for (const c of clients) c.disconnect();
  });
  const setup = () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const redis = createRedis(testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix }), 'delivery', 'test-promoter');
    clients.push(redis);
    const keys = shardKeys(prefix, 0);
    const promoter = () => {
      const p = new Promoter(redis, keys, logger);
      promoters.push(p);
      return p;
    };
    return { keys, redis, promoter };
  };
  const members = async (stream: string) => ((await check.xrange(stream, '-', '+')) as [string, string[]][]).map(([, f]) => f[1]);

  t.test('the script: what is due moves, the rest stays, the next due time comes back', async (t) => {
    const { keys, redis } = setup();
    const now = Date.now();
    await check.zadd(keys.delayed, now - 10, 'd-due', now + 60_000, 'd-later');
    await check.zadd(keys.retries, now - 5, 'r-due1', now, 'r-due2', now + 30_000, 'r-later');
    const [moved, next] = await redis.pbPromote(keys.delayed, keys.stream, keys.retries, keys.retry, keys.heldIndex, now, 1000);
    t.equal(moved, 3);
    t.equal(next, now + 30_000, 'the earliest left in either set');
    t.same(await members(keys.stream), ['d-due'], 'delayed first attempts to the stream');
    t.same(await members(keys.retry), ['r-due1', 'r-due2'], 'retries to the retry stream, in due order');
    t.same(await check.zrange(keys.delayed, 0, -1), ['d-later']);
    t.same(await check.zrange(keys.retries, 0, -1), ['r-later']);
    const [none, empty] = await redis.pbPromote(keys.delayed, keys.stream, keys.retries, keys.retry, keys.heldIndex, now, 1000);
    t.equal(none, 0);
    t.equal(empty, now + 30_000);
    await check.del(keys.delayed, keys.retries);
    t.same(await redis.pbPromote(keys.delayed, keys.stream, keys.retries, keys.retry, keys.heldIndex, now, 1000), [0, -1, 0], 'both empty: -1 (and nothing held)');
  });

  t.test('the script moves at most the limit per set', async (t) => {
    const { keys, redis } = setup();
    const now = Date.now();
    for (let i = 0; i < 5; i++) await check.zadd(keys.retries, now - 100 + i, `r${i}`);
    const [moved] = await redis.pbPromote(keys.delayed, keys.stream, keys.retries, keys.retry, keys.heldIndex, now, 2);
    t.equal(moved, 2);
    t.same(await members(keys.retry), ['r0', 'r1'], 'the earliest first');
  });

  /** When `stream` first holds `n` entries (polled every 10 ms), or null after `ms`. */
  const whenLength = async (stream: string, n: number, ms: number): Promise<number | null> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if ((await check.xlen(stream)) >= n) return Date.now();
      await new Promise((r) => setTimeout(r, 10));
    }
    return null;
  };

  t.test('a promoter brings a kicked retry back on time, not before', async (t) => {
    const { keys, promoter } = setup();
    const p = promoter();
    p.start();
    const due = Date.now() + 300;
    await check.zadd(keys.retries, due, 'soon');
    p.kick(due);
    const arrived = await whenLength(keys.retry, 1, 3_000);
    t.not(arrived, null, 'promoted');
    t.ok((arrived as number) >= due, 'not before its time');
    t.ok((arrived as number) - due < 500, `soon after it (${(arrived as number) - due} ms)`);
  });

  t.test('without a kick, a postback another process scheduled is seen within about a second', async (t) => {
    const { keys, promoter } = setup();
    const p = promoter();
    p.start();
    const scheduled = Date.now();
    await check.zadd(keys.delayed, scheduled, 'from elsewhere');
    const arrived = await whenLength(keys.stream, 1, 3_000);
    t.not(arrived, null, 'promoted');
    t.ok((arrived as number) - scheduled < 1_500, `within about a second (${(arrived as number) - scheduled} ms)`);
  });

  t.test('a release pass still waiting on Redis does not hold promotion up, and never runs twice at once', async (t) => {
    const { keys, redis } = setup();
    // Something held in this shard, so every tick offers a release pass.
    await check.hset(keys.heldIndex, 'https://held.example', 1);
    let passes = 0;
    let finish: () => void = () => undefined;
    const release = () => {
      passes++;
      // A pass waiting on its round trips (Redis far away): it ends when the test says so.
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    };
    const p = new Promoter(redis, keys, logger, release);
    promoters.push(p);
    p.start();
    t.ok(await until(() => passes === 1), 'a release pass began');
    const due = Date.now();
    await check.zadd(keys.delayed, due, 'first');
    p.kick(due);
    t.ok(await until(async () => (await check.xlen(keys.stream)) === 1), 'a due postback was promoted meanwhile');
    // A later one, due past RELEASE_MS (500 ms) from the pass's start: the tick that moves it could start a second pass.
    const later = Date.now() + 600;
    await check.zadd(keys.delayed, later, 'second');
    p.kick(later);
    t.ok(await until(async () => (await check.xlen(keys.stream)) === 2), 'and one due later');
    t.equal(passes, 1, 'no second pass while the first runs');
    finish();
    t.ok(await until(() => passes === 2), 'the next pass comes once the first ended');
    finish();
  });

  t.test('promoters racing on one shard move each postback once', async (t) => {
    const { keys, promoter } = setup();
    const now = Date.now();
    const args: (string | number)[] = [];
    for (let i = 0; i < 3000; i++) args.push(now - 1, `p${i}`);
    await check.zadd(keys.retries, ...args);
    const racers = Array.from({ length: 4 }, () => promoter());
    for (const r of racers) r.start();
    const end = Date.now() + 10_000;
    while (Date.now() < end && (await check.zcard(keys.retries)) > 0) await new Promise((r) => setTimeout(r, 20));
    const moved = await members(keys.retry);
    t.equal(moved.length, 3000, 'every one moved');
    t.equal(new Set(moved).size, 3000, 'none twice');
  });
});
