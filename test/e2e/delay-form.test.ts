/**
 * Scheduled delivery (endpoint.delay_ms) and form-encoded ingest through
 * real processes.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { post } from '../helpers/http.js';
import { formCase } from '../helpers/fixtures.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

t.test('the original clients\' form request gives the same postbacks as its JSON twin', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack();
  t.teardown(() => stack.stop());
  const { body: form, expected } = formCase('assignment-v1', sink.origin);
  for (const path of ['/ingest.php', '/i']) {
    sink.received.length = 0;
    const res = await post(`${stack.ingestUrl}${path}`, form, FORM);
    t.equal(res.status, 202, path);
    t.equal(res.json.accepted, 2);
    await sink.waitFor(2);
    t.same(sink.received.map((r) => `${r.method} ${sink.origin}${r.url}`).sort(), [...expected].sort(), path);
  }
  const bad = await post(`${stack.ingestUrl}/i`, `${form}&data[5][key]=x`, FORM);
  t.equal(bad.status, 400);
  t.equal(bad.json.error, 'bad_form');
  t.match(bad.json.message, /data\[2\] is missing/);
  const preview = await post(`${stack.ingestUrl}/preview`, form, { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' });
  t.equal(preview.status, 200);
  t.equal(preview.json.requests.length, 2);
});

t.test('delays: each postback arrives in due order and not before its time', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ DELIVERY_MAX_DELAY_MS: '60000' });
  t.teardown(() => stack.stop());
  const sent = new Map<string, number>();
  for (const delay of [2000, 300, 0]) {
    const before = Date.now();
    const res = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/d?delay={delay}`, delay_ms: delay }, data: [{ delay }] });
    t.equal(res.status, 202);
    sent.set(String(delay), before);
  }
  await sink.waitFor(3, 10_000);
  const order = sink.received.map((r) => new URL(r.url, sink.origin).searchParams.get('delay'));
  t.same(order, ['0', '300', '2000'], 'in due order, not in the order sent');
  for (const r of sink.received) {
    const delay = Number(new URL(r.url, sink.origin).searchParams.get('delay'));
    const early = sent.get(String(delay))! + delay - r.at;
    t.ok(r.at >= sent.get(String(delay))! + delay, `delay ${delay}: not before its time (${-early} ms after)`);
  }
  const tooLong = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/d`, delay_ms: 60_001 }, data: [{}] });
  t.equal(tooLong.status, 400);
  t.match(tooLong.json.message, /endpoint\.delay_ms must be an integer from 0 to 60000/);
  t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/d`, delay_ms: -1 }, data: [{}] })).status, 400);
  const preview = await post(`${stack.ingestUrl}/preview`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/d`, delay_ms: 5000 }, data: [{}] }));
  const notBefore = preview.json.requests[0].notBefore as number;
  t.ok(Math.abs(notBefore - (Date.now() + 5000)) < 1000, '/preview shows when it would first go out');
});

t.test('a delivery process restarted during the wait still delivers on time; delays survive a Redis restart', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ DELIVERY_MAX_DELAY_MS: '60000' }, { aof: true });
  t.teardown(() => stack.stop());
  const before = Date.now();
  t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/r?n={n}`, delay_ms: 3000 }, data: [{ n: 1 }, { n: 2 }] })).status, 202);
  t.equal(await stack.deliveries[0]!.stop('SIGTERM'), 0, 'delivery stopped while the postbacks wait');
  await stack.redis.stop(); // kill -9 of Redis: the delayed set comes back from the AOF
  await stack.redis.start(); // resolves once it answers PING, its AOF loaded
  await stack.startDelivery();
  await sink.waitFor(2, 15_000);
  for (const r of sink.received) {
    t.ok(r.at >= before + 3000, `not before its time (${r.at - before - 3000} ms after)`);
    t.ok(r.at <= before + 3000 + 3000, `on time: ${r.at - before - 3000} ms after it was due`);
  }
});
