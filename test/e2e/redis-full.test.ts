/**
 * A full Redis (maxmemory, noeviction) through real processes: ingest
 * refuses every write with 503 redis_full and writes nothing, Redis stays
 * near its limit, a delivery process started while it is full still starts
 * and drains it, and ingest accepts again by itself once memory frees.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { tally, until } from '../helpers/count.js';

const MAXMEMORY = 20 * 1024 * 1024;

t.test('a full Redis: every write refused, nothing half-written, delivery drains it, ingest recovers', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ INGEST_MAX_QUEUE: '0' }, { deliveries: 0, redisArgs: ['--maxmemory', String(MAXMEMORY)] });
  t.teardown(() => stack.stop());
  const c = stack.redis.client();
  const pad = 'x'.repeat(1_000);
  const body = { endpoint: { method: 'GET', url: `${sink.origin}/full?n={n}&p={p}` }, data: Array.from({ length: 100 }, (_, n) => ({ n, p: pad })) };

  const expected = new Set<string>();
  let accepted = 0;
  let refusals: { status: number; error: string; message: string; retryAfter: unknown }[] = [];
  let sent = 0;
  let lateAccepts = 0;
  // Eight senders until Redis is full, then 100 requests more: each must be refused.
  const sender = async () => {
    while (refusals.length < 100 && sent < 5_000) {
      sent++;
      const res = await stack.send(body);
      if (res.status === 202) {
        accepted++;
        for (let n = 0; n < 100; n++) expected.add(`${res.json.id}:${n}`);
        // Redis's memory moves a little (replies, fragmentation): a write that fits again is taken.
        if (refusals.length > 0) lateAccepts++;
      } else {
        refusals.push({ status: res.status, error: res.json?.error, message: res.json?.message, retryAfter: res.headers['retry-after'] });
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, sender));
  t.ok(accepted > 0, `${accepted} requests accepted before Redis was full`);
  t.ok(refusals.length >= 100, 'then refused');
  const firstRefusal = refusals[0];
  refusals = refusals.filter((r) => r.status !== 503 || r.error !== 'redis_full');
  t.same(refusals, [], `every refusal is 503 redis_full (${lateAccepts} requests fitted again meanwhile)`);
  t.match(firstRefusal, { status: 503, error: 'redis_full', retryAfter: '5' });
  t.match(firstRefusal?.message, /Redis is full/);

  const info = await c.info('memory');
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1]);
  t.ok(used < MAXMEMORY + 6 * 1024 * 1024, `Redis stays near its limit: ${(used / 2 ** 20).toFixed(1)} MiB of ${MAXMEMORY / 2 ** 20} MiB`);
  const prefix = stack.env.REDIS_PREFIX;
  t.equal(Number(await c.get(`${prefix}:{0}:count`)), accepted * 100, 'the count holds exactly the accepted postbacks');
  t.equal(await c.xlen(`${prefix}:{0}:stream`), accepted * 2, 'each accepted request whole (two entries of 64 + 36), nothing else');

  // A delivery process started while Redis is full creates its group and drains it.
  await stack.startDelivery();
  t.ok(await until(() => tally(sink, expected).distinct === expected.size, 60_000), `all ${expected.size} accepted postbacks delivered`);
  t.equal(tally(sink, expected).lost, 0);
  t.ok(await until(async () => (await stack.send(body)).status === 202, 30_000), 'ingest accepts again once memory frees');
});
