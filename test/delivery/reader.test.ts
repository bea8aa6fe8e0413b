/**
 * The stream reader in-process against a real Redis (BullMQ tests its
 * scripts and commands this way): consumer groups, blocking reads of both
 * streams, reclaim of a stopped consumer's entries, heartbeats, and
 * consumer housekeeping.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { StreamReader } from '../../src/delivery/reader.js';
import { GROUP, shardKeys } from '../../src/queue/keys.js';
import { createRedis, type RedisClient } from '../../src/queue/redis.js';
import { testConfig } from '../helpers/config.js';
import { startRedis } from '../helpers/redis.js';

const logger = pino({ level: 'silent' });

t.test('stream reader against a real Redis', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const check = server.client();
  const clients: RedisClient[] = [];
  const setup = () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const config = testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix });
    const redis = createRedis(config, 'delivery', 'test-reader');
    const blocking = createRedis(config, 'blocking', 'test-reader-blocking');
    clients.push(redis, blocking);
    const keys = shardKeys(prefix, 0);
    const reader = (consumer: string) => new StreamReader(redis, blocking, keys, consumer, logger);
    return { keys, reader, redis };
  };
  t.teardown(() => {
    for (const c of clients) c.disconnect();
  });

  t.test('groups are created from the start of both streams, and again without complaint', async (t) => {
    const { keys, reader } = setup();
    await check.xadd(keys.stream, '*', 'm', 'written before any consumer');
    const r = reader('c1');
    await r.ensureGroups();
    await r.ensureGroups();
    for (const stream of [keys.stream, keys.retry]) {
      const groups = (await check.xinfo('GROUPS', stream)) as unknown[][];
      t.equal(groups.length, 1, `${stream}: one group`);
    }
    const read = await r.read(10, 100);
    t.same(read.map((e) => e.blob?.toString()), ['written before any consumer'], 'an entry written before the group is read');
  });

  t.test('read takes up to COUNT from each stream, first attempts and retries side by side', async (t) => {
    const { keys, reader } = setup();
    const r = reader('c1');
    await r.ensureGroups();
    for (let i = 0; i < 5; i++) await check.xadd(keys.stream, '*', 'm', `fresh${i}`);
    for (let i = 0; i < 2; i++) await check.xadd(keys.retry, '*', 'm', `retry${i}`);
    const read = await r.read(3, 100);
    t.same(
      read.map((e) => [e.stream, e.blob?.toString()]),
      [
        [keys.stream, 'fresh0'],
        [keys.stream, 'fresh1'],
        [keys.stream, 'fresh2'],
        [keys.retry, 'retry0'],
        [keys.retry, 'retry1'],
      ],
    );
    t.ok(read.every((e) => Buffer.isBuffer(e.blob)), 'blobs come back as Buffers (MessagePack is binary)');
    const pending = (await check.xpending(keys.stream, GROUP)) as [number, ...unknown[]];
    t.equal(pending[0], 3, 'what was read is pending until acknowledged');
  });

  t.test('an empty read blocks, and wakes as soon as an entry arrives', async (t) => {
    const { keys, reader } = setup();
    const r = reader('c1');
    await r.ensureGroups();
    const started = Date.now();
    t.same(await r.read(10, 200), [], 'nothing: [] after the block time');
    t.ok(Date.now() - started >= 150, 'it waited');
    const reading = r.read(10, 5_000);
    const written = Date.now();
    await check.xadd(keys.stream, '*', 'm', 'wake');
    const got = await reading;
    t.same(got.map((e) => e.blob?.toString()), ['wake']);
    t.ok(Date.now() - written < 1_000, 'woken by the write, not by the timeout');
  });

  t.test('a lost group (Redis came back empty) is created again by the next read', async (t) => {
    const { keys, reader } = setup();
    const r = reader('c1');
    await r.ensureGroups();
    await check.del(keys.stream, keys.retry);
    t.same(await r.read(10, 50), [], 'the read that found NOGROUP returns nothing');
    await check.xadd(keys.stream, '*', 'm', 'after');
    t.same((await r.read(10, 50)).map((e) => e.blob?.toString()), ['after']);
  });

  t.test('reclaim takes only entries idle past the visibility time; a heartbeat keeps them', async (t) => {
    const { keys, reader } = setup();
    const dead = reader('dead');
    const other = reader('other');
    await dead.ensureGroups();
    for (let i = 0; i < 3; i++) await check.xadd(keys.stream, '*', 'm', `e${i}`);
    const held = await dead.read(10, 50);
    t.equal(held.length, 3);
    t.same(await other.reclaim(60_000, 10), [], 'nothing is idle for a minute yet');
    // Two minutes pass (XCLAIM IDLE sets the idle time the clock would have):
    await check.xclaim(keys.stream, GROUP, 'dead', 0, ...held.map((e) => e.id), 'IDLE', 120_000, 'JUSTID');
    // the holder heartbeats one entry, then stops for good.
    await dead.heartbeat(keys.stream, [(held[0] as { id: string }).id]);
    const taken = await other.reclaim(60_000, 10);
    t.same(taken.map((e) => e.blob?.toString()).sort(), ['e1', 'e2'], 'the heartbeated entry stays with its holder');
    const owners = (await check.xpending(keys.stream, GROUP, '-', '+', 10)) as [string, string, number, number][];
    t.same(owners.map((p) => p[1]).sort(), ['dead', 'other', 'other']);
    t.same(await other.reclaim(60_000, 10), [], 'reclaiming resets the idle time: not taken twice at once');
  });

  t.test('an entry deleted while pending is not handed out by reclaim', async (t) => {
    const { keys, reader } = setup();
    const r = reader('a');
    await r.ensureGroups();
    const id = await check.xadd(keys.stream, '*', 'm', 'gone');
    await r.read(10, 50);
    await check.xclaim(keys.stream, GROUP, 'a', 0, id as string, 'IDLE', 120_000, 'JUSTID');
    await check.xdel(keys.stream, id as string);
    t.same(await reader('b').reclaim(60_000, 10), []);
  });

  t.test('housekeeping deletes idle consumers that hold nothing, never one with pending entries', async (t) => {
    const { keys, reader } = setup();
    // A consumer exists in a stream's group once it was handed an entry there.
    const served = async (name: string) => {
      const r = reader(name);
      await r.ensureGroups();
      await check.xadd(keys.stream, '*', 'm', name);
      return { r, entry: (await r.read(1, 50))[0] as { id: string } };
    };
    await served('busy');
    const empty = await served('empty');
    await check.xack(keys.stream, GROUP, empty.entry.id);
    t.equal(await reader('janitor').pruneConsumers(0), 1, '"empty" is deleted (any idle time counts here)');
    const names = () => check.xinfo('CONSUMERS', keys.stream, GROUP).then((list) => (list as unknown[][]).map((c) => c[1]));
    t.same(await names(), ['busy'], 'the consumer holding an entry stays, however idle');
    const leaving = await served('leaving');
    await check.xack(keys.stream, GROUP, leaving.entry.id);
    t.equal(await reader('janitor').pruneConsumers(60_000), 0, 'a consumer idle for less than the threshold stays');
    t.equal(await leaving.r.pruneConsumers(60_000, true), 1, 'a stopping process removes itself at once');
    t.same(await names(), ['busy']);
  });
});
