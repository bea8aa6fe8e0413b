/**
 * The whole path through real processes: `dist/cli.js ingest` and
 * `dist/cli.js delivery` against a real redis-server and a real sink.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis } from '../helpers/redis.js';
import { startSink } from '../helpers/sink.js';
import { spawnRole, testEnv } from '../helpers/procs.js';
import { post } from '../helpers/http.js';
import { until } from '../helpers/count.js';
import { requestCase, requestCases } from '../helpers/fixtures.js';

t.test('ingest to delivery to sink', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  const sink = await startSink();
  t.teardown(() => sink.close());
  const env = testEnv(redis.url, { INGEST_PORT: '0', DELIVERY_WORKERS: '2' });
  const ingest = await spawnRole('ingest', env);
  const delivery = await spawnRole('delivery', env);
  t.teardown(async () => {
    await ingest.stop();
    await delivery.stop();
  });
  const base = `http://127.0.0.1:${ingest.port('ingest')}`;
  const check = redis.client();
  /** Every postback finished and acknowledged (the count key reads 0): nothing more can arrive. */
  const drained = () => until(async () => ((await check.get(`${env.REDIS_PREFIX}:{0}:count`)) ?? '0') === '0', 10_000);
  const seen = () => sink.received.map((r) => (r.method === 'POST' ? `POST ${sink.origin}${r.url} ${r.body}` : `GET ${sink.origin}${r.url}`));

  t.test('the v1 sample on /ingest.php and on /i gives exactly the two expected requests', async (t) => {
    const { body, expected } = requestCase('assignment-v1', sink.origin);
    for (const path of ['/ingest.php', '/i']) {
      sink.received.length = 0;
      const res = await post(base + path, body);
      t.equal(res.status, 202);
      t.equal(res.json.accepted, 2);
      await sink.waitFor(2);
      t.ok(await drained(), 'all acknowledged');
      t.same(seen().sort(), [...expected].sort(), path);
      const ids = sink.received.map((r) => r.headers['x-postback-id']).sort();
      t.same(ids, [`${res.json.id}:0`, `${res.json.id}:1`], 'X-Postback-Id is <request id>:<index>');
      for (const r of sink.received) {
        t.match(r.headers['user-agent'], /^postback-delivery\/\d+\.\d+\.\d+$/);
        t.equal(r.body, '', 'GET has no body');
      }
    }
  });

  t.test('every request case gives its expected requests', async (t) => {
    for (const { name: f, body, expected } of requestCases(sink.origin)) {
      sink.received.length = 0;
      t.equal((await post(`${base}/i`, body)).status, 202, f);
      await sink.waitFor(expected.length);
      t.ok(await drained(), `${f}: all acknowledged`);
      t.same(seen().sort(), [...expected].sort(), f);
    }
  });

  t.test('POST carries the data object as JSON', async (t) => {
    sink.received.length = 0;
    const { body } = requestCase('post-body', sink.origin);
    await post(`${base}/i`, body);
    await sink.waitFor(2);
    for (const r of sink.received) {
      t.equal(r.method, 'POST');
      t.equal(r.headers['content-type'], 'application/json');
      const data = JSON.parse(r.body) as { key: string };
      t.match(r.url, `key=${data.key}`);
    }
  });

  t.test('a lone UTF-16 surrogate arrives as one U+FFFD, exactly as /preview shows', async (t) => {
    sink.received.length = 0;
    // JSON.stringify writes a lone surrogate as the escape "\ud800".
    const body = JSON.stringify({ endpoint: { method: 'POST', url: `${sink.origin}/s?k={key}` }, data: [{ key: 'A\ud800B', ['k\udc00']: 1 }] });
    t.match(body, '\\ud800');
    const preview = await post(`${base}/preview`, body);
    t.equal(preview.status, 200);
    const shown = preview.json.requests[0] as { url: string; body: string };
    t.equal(shown.url, `${sink.origin}/s?k=A%EF%BF%BDB`);
    t.same(JSON.parse(shown.body), { key: 'A\uFFFDB', 'k\uFFFD': 1 });
    t.equal((await post(`${base}/i`, body)).status, 202);
    await sink.waitFor(1);
    const got = sink.received[0];
    t.equal(`${sink.origin}${got?.url}`, shown.url, 'the URL delivered is the one previewed');
    t.equal(got?.body, shown.body, 'the body delivered is the one previewed');
    t.ok(await drained(), 'acknowledged');
  });

  t.test('1000 data items give 1000 deliveries with distinct ids', async (t) => {
    sink.received.length = 0;
    const data = Array.from({ length: 1000 }, (_, i) => ({ n: i }));
    const res = await post(`${base}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/k?n={n}` }, data }));
    t.equal(res.status, 202);
    t.equal(res.json.accepted, 1000);
    await sink.waitFor(1000);
    t.ok(await drained(), 'all acknowledged');
    t.equal(sink.received.length, 1000, 'no duplicates');
    const ids = new Set(sink.received.map((r) => r.headers['x-postback-id']));
    t.equal(ids.size, 1000);
    const ns = new Set(sink.received.map((r) => Number(new URL(r.url, sink.origin).searchParams.get('n'))));
    t.equal(ns.size, 1000);
    t.ok([...ns].every((n) => n >= 0 && n < 1000));
  });

  t.test('the delivery log holds one line per attempt with every field', async (t) => {
    await delivery.stop();
    const lines = readFileSync(join(env.LOG_DIR!, 'postback.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const sampleItems = requestCases().reduce((sum, c) => sum + c.expected.length, 0);
    const expectedAttempts = 2 * 2 + sampleItems + 2 + 1 + 1000;
    t.equal(lines.length, expectedAttempts);
    for (const field of ['id', 'method', 'url', 'attempt', 'requestTime', 'deliveryTime', 'responseTime', 'latencyMs', 'status', 'body', 'outcome', 'error']) {
      t.ok(lines.every((l) => field in l), `every line has ${field}`);
    }
    const l = lines[0];
    t.equal(l.outcome, 'delivered');
    t.equal(l.status, 200);
    t.equal(l.attempt, 1);
    t.equal(l.body, 'ok');
    t.equal(l.error, null);
    t.ok(l.requestTime <= l.deliveryTime && l.deliveryTime <= l.responseTime, 'times in order');
    t.ok(l.latencyMs >= 0);
  });
});

t.test('with one worker and one connection, order is FIFO', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  const sink = await startSink();
  t.teardown(() => sink.close());
  const env = testEnv(redis.url, { INGEST_PORT: '0', DELIVERY_WORKERS: '1', DELIVERY_CONNECTIONS_PER_ORIGIN: '1' });
  const ingest = await spawnRole('ingest', env);
  t.teardown(() => ingest.stop());
  // Queue everything first, then start delivery: the backlog is read in order.
  for (let r = 0; r < 5; r++) {
    const data = Array.from({ length: 100 }, (_, i) => ({ n: r * 100 + i }));
    t.equal((await post(`http://127.0.0.1:${ingest.port('ingest')}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/?n={n}` }, data }))).status, 202);
  }
  const delivery = await spawnRole('delivery', env);
  t.teardown(() => delivery.stop());
  await sink.waitFor(500);
  const order = sink.received.map((r) => Number(new URL(r.url, sink.origin).searchParams.get('n')));
  t.same(order, Array.from({ length: 500 }, (_, i) => i));
});
