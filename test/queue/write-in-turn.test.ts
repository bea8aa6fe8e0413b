/**
 * Writes in the turn (write-in-turn.ts), on a real redis-server. Ingest: a
 * lone request's script call leaves in the turn that issued it (before a
 * setImmediate queued ahead of it runs), and the calls of one Enqueuer
 * flush (several templates) leave in one socket write. The replies, and
 * what lands in Redis, are what they were. Delivery's connection: plain
 * commands, a script and a MULTI issued together keep their order and
 * their replies; a Cluster client is left alone.
 */
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { Cluster, type Redis } from 'ioredis';
import { Enqueuer } from '../../src/ingest/enqueue.js';
import { writeInTurn } from '../../src/queue/write-in-turn.js';
import { validateIngest, type IngestLimits } from '../../src/ingest/parse-request.js';
import { allShards } from '../../src/queue/keys.js';
import { createRedis } from '../../src/queue/redis.js';
import { startRedis } from '../helpers/redis.js';
import { testConfig } from '../helpers/config.js';

const LIMITS: IngestLimits = {
  maxItems: 100,
  maxUrlBytes: 4096,
  maxRenderedUrlBytes: 8192,
  encodedDefault: '',
  maxDelayMs: 1000,
  defaultDelayMs: 0,
  allowedOrigins: null,
};

function request(n: number) {
  return validateIngest({ endpoint: { method: 'GET', url: `http://partner${n}.example/cb?k={k}` }, data: [{ k: n }] }, LIMITS);
}

/** Records each write the socket makes: how many chunks, and whether `flag()` held then. */
function spyWrites(redis: Redis, flag: () => boolean): { chunks: number; flag: boolean }[] {
  const writes: { chunks: number; flag: boolean }[] = [];
  const socket = redis.stream as unknown as {
    _write(chunk: unknown, enc: unknown, cb: unknown): void;
    _writev(chunks: unknown[], cb: unknown): void;
  };
  const write = socket._write.bind(socket);
  const writev = socket._writev.bind(socket);
  socket._write = (chunk, enc, cb) => {
    writes.push({ chunks: 1, flag: flag() });
    write(chunk, enc, cb);
  };
  socket._writev = (chunks, cb) => {
    writes.push({ chunks: chunks.length, flag: flag() });
    writev(chunks, cb);
  };
  return writes;
}

/** A role's connection as the role makes it (createRedis applies writeInTurn), to a fresh redis-server. */
async function connected(t: Test, use: 'ingest' | 'delivery', prefix: string) {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const redis = createRedis(testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix }), use, `test-${use}-writes`);
  redis.on('error', () => undefined);
  t.teardown(() => redis.disconnect());
  await once(redis, 'ready');
  return { server, redis };
}

t.test('ingest writes to Redis in the turn, one write per synchronous run', async (t) => {
  const { server, redis } = await connected(t, 'ingest', 'rw');
  const shards = allShards('rw', 1);
  const enqueuer = new Enqueuer(redis, shards, { lifetimeMs: 60_000, maxQueue: 0, statsRetentionS: 60, idempotencyTtlMs: 60_000 });
  // The first call on a connection carries the script itself (EVAL); later ones EVALSHA.
  await enqueuer.enqueue(request(0), 'warm0', Date.now());

  let immediateRan = false;
  const writes = spyWrites(redis as Redis, () => immediateRan);

  // A lone request: the Enqueuer flushes at the end of its turn (its own
  // setImmediate); the write must follow at once, not one more turn later.
  const lone = enqueuer.enqueue(request(1), 'lone1', Date.now());
  setImmediate(() => {
    // Queued after the Enqueuer's flush: runs in the same check phase, after it.
    immediateRan = true;
  });
  t.same(await lone, { id: 'lone1', accepted: 1, replayed: false });
  t.equal(writes.length, 1, 'one write');
  t.equal(writes[0]?.flag, false, 'written before the next setImmediate of the same turn ran: no extra turn');

  // Three requests of three templates in one turn: three script calls, one write.
  writes.length = 0;
  const three = await Promise.all([2, 3, 4].map((n) => enqueuer.enqueue(request(n), `req${n}`, Date.now())));
  t.same(
    three.map((r) => r.id),
    ['req2', 'req3', 'req4'],
  );
  t.equal(writes.length, 1, 'one write for the three calls');
  t.equal(writes[0]?.chunks, 3, 'three commands in it');

  const check = server.client();
  t.equal(await check.xlen(shards[0]!.stream), 5, 'every postback is in the stream');
  t.equal(await check.get(shards[0]!.count), '5');
});

t.test('delivery: commands, a script and a MULTI issued together keep their order and replies', async (t) => {
  const { redis } = await connected(t, 'delivery', 'rd');
  const [set, tx, group, get] = await Promise.all([
    redis.set('rd:a', '1'),
    redis.multi().incr('rd:n').incr('rd:n').exec(),
    redis.pbEnsureGroup('rd:s', 'g'),
    redis.get('rd:a'),
  ]);
  t.equal(set, 'OK');
  t.same(tx, [
    [null, 1],
    [null, 2],
  ]);
  t.ok(group !== undefined, 'the script ran');
  t.equal(get, '1', 'read after the write issued before it');
  t.equal(await redis.xlen('rd:s'), 0, 'the group script made its stream');
});

t.test('a Cluster client keeps ioredis auto-pipelining', async (t) => {
  const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, enableAutoPipelining: true });
  t.teardown(() => cluster.disconnect());
  writeInTurn(cluster);
  t.equal(cluster.options.enableAutoPipelining, true);
});
