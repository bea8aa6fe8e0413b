/**
 * Redis outages and backpressure through real processes.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { get, post } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { spawnRole, testEnv } from '../helpers/procs.js';
import { freePort } from '../../bench/lib/ports.js';
import { tally, until } from '../helpers/count.js';

t.test('Redis restarts having lost every key: both roles carry on without a restart', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ DELIVERY_METRICS_PORT: String(await freePort()) });
  t.teardown(() => stack.stop());
  const body = (n: number) => ({ endpoint: { method: 'POST', url: `${sink.origin}/o` }, data: [{ n }] });
  const deliveryReady = `http://127.0.0.1:${stack.deliveries[0]!.port('delivery-metrics')}/readyz`;

  t.equal((await stack.send(body(1))).status, 202);
  await sink.waitFor(1);
  t.equal((await get(deliveryReady)).status, 200, 'delivery ready');

  await stack.redis.stop();
  const down = await stack.send(body(2));
  t.equal(down.status, 503, 'ingest answers 503 while Redis is down');
  t.equal(down.json.error, 'unavailable');
  t.equal((await get(`${stack.ingestUrl}/readyz`)).status, 503);
  t.ok(await until(async () => (await get(deliveryReady)).status === 503, 10_000), 'delivery /readyz says 503 too');
  const scrapeAt = Date.now();
  const scrape = await get(deliveryReady.replace('/readyz', '/metrics'));
  const scrapeMs = Date.now() - scrapeAt;
  t.ok(scrapeMs < 5_000, `delivery's /metrics answers in ${scrapeMs} ms with Redis down (Prometheus gives up at 10 s)`);
  t.match(scrape.body, /^pb_redis_up\{role="delivery"\} 0$/m, 'saying Redis is down');
  t.match(scrape.body, /^pb_delivery_attempts_total\{/m, 'with the attempt counters');

  await stack.redis.start(); // empty: no AOF in this test
  t.ok(await until(async () => (await stack.send(body(3))).status === 202), 'ingest accepts again by itself');
  await sink.waitFor(2, 20_000);
  t.same(
    sink.received.map((r) => JSON.parse(r.body).n),
    [1, 3],
    'delivery recreated its consumer group and scripts, and delivered the new postback (never the refused one)',
  );
  t.equal(stack.deliveries[0]!.proc.exitCode, null, 'delivery never exited');
  t.equal((await get(deliveryReady)).status, 200, 'and is ready again');
});

t.test('every role starts while Redis is down, and works once it is up', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  await redis.stop();
  const env = testEnv(redis.url, { INGEST_PORT: '0', MONITOR_PORT: '0', DELIVERY_METRICS_PORT: String(await freePort()) });
  // Ingest listens at once and answers 503; it tells its supervisor 'ready' once Redis is there.
  const roles = ['ingest', 'delivery', 'monitor'].map((role) => spawnRole(role, env));
  t.teardown(async () => {
    for (const r of await Promise.allSettled(roles)) if (r.status === 'fulfilled') await r.value.stop('SIGKILL');
  });
  const monitor = await roles[2]!;
  t.equal((await get(`http://127.0.0.1:${monitor.port('monitor')}/healthz`)).status, 503, 'the monitor is up and shows Redis down');
  await redis.start();
  const [ingest, delivery] = await Promise.all([roles[0]!, roles[1]!]);
  t.equal(ingest.proc.exitCode, null, 'ingest did not exit');
  t.equal(delivery.proc.exitCode, null, 'delivery did not exit');
  const sink = await startSink();
  t.teardown(() => sink.close());
  const res = await post(`http://127.0.0.1:${ingest.port('ingest')}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/up` }, data: [{}] }));
  t.equal(res.status, 202);
  await sink.waitFor(1);
});

t.test('with AOF, what was acknowledged survives a Redis restart while delivery is down', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({}, { deliveries: 0, aof: true });
  t.teardown(() => stack.stop());
  const data = Array.from({ length: 50 }, (_, n) => ({ n }));
  t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/a?n={n}` }, data })).status, 202);
  await stack.redis.stop();
  await stack.redis.start();
  await stack.startDelivery();
  await sink.waitFor(50);
  t.equal(new Set(sink.received.map((r) => r.url)).size, 50);
});

t.test('Redis away longer than DELIVERY_VISIBILITY_MS: what was delivered meanwhile is not sent again', async (t) => {
  // Each answer takes 400 ms; Redis goes away while the batch is in
  // flight, for longer than the visibility timeout. The outcomes gathered
  // meanwhile wait in each process's finalizer: those entries are still
  // theirs, not a dead consumer's, for the process itself and for the other.
  const sink = await startSink(() => ({ status: 200, delayMs: 400 }));
  t.teardown(() => sink.close());
  const visibilityMs = 7_000;
  const stack = await startStack(
    { DELIVERY_TIMEOUT_MS: '1000', DELIVERY_VISIBILITY_MS: String(visibilityMs), DELIVERY_CONNECTIONS_PER_ORIGIN: '8' },
    { deliveries: 2, aof: true },
  );
  t.teardown(() => stack.stop());
  // Both processes past their start-up (its first reclaim included).
  const upAt = Date.now();
  await until(() => Date.now() - upAt > 1_500, 2_000);
  const expected = new Set<string>();
  for (let r = 0; r < 4; r++) {
    const res = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/v?n={n}` }, data: Array.from({ length: 10 }, (_, n) => ({ n })) });
    t.equal(res.status, 202);
    for (let i = 0; i < 10; i++) expected.add(`${res.json.id}:${i}`);
  }
  await sink.waitFor(1);
  await stack.redis.stop();
  const downAt = Date.now();
  // The outage itself: longer than the visibility timeout.
  await until(() => Date.now() - downAt > visibilityMs + 1_000, visibilityMs + 2_000);
  await stack.redis.start();
  t.ok(await stack.drained(30_000), 'every outcome recorded');
  t.ok(await until(() => tally(sink, expected).distinct === expected.size, 10_000), 'every postback delivered');
  // A reclaim runs every visibility/2 s: give any repeat the time to show.
  t.notOk(await until(() => sink.received.length > expected.size, visibilityMs), 'no postback arrived twice');
  const { duplicates, lost } = tally(sink, expected);
  t.equal(duplicates, 0, `${sink.received.length} requests for ${expected.size} postbacks`);
  t.equal(lost, 0);
});

t.test('backpressure: past INGEST_MAX_QUEUE ingest answers 503 with Retry-After, and recovers', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ INGEST_MAX_QUEUE: '10' }, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const send = (n: number) => stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/b?n={n}` }, data: Array.from({ length: n }, (_, i) => ({ i })) });
  t.equal((await send(8)).status, 202);
  const full = await send(3);
  t.equal(full.status, 503, 'the request that would pass the limit is refused whole');
  t.equal(full.json.error, 'queue_full');
  t.equal(full.headers['retry-after'], '5');
  t.equal((await send(2)).status, 202, 'one that fits still goes in');
  await stack.startDelivery();
  await sink.waitFor(10);
  t.ok(await until(async () => (await send(3)).status === 202), 'accepted again once delivery drained the queue');
});
