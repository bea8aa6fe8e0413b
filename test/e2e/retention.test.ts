/**
 * DLQ_MAX and DLQ_RETENTION_MS through a real delivery process: 30
 * postbacks die at a partner that answers 404 and only the newest 10 dead
 * letters stay; dead letters older than the retention go too; each trim is
 * counted in pb_dead_letters_trimmed_total{reason} and logged.
 */
import t from 'tap';
import { freePort } from '../../bench/lib/ports.js';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { get } from '../helpers/http.js';
import { until } from '../helpers/count.js';

t.test('dead letters beyond DLQ_MAX are trimmed, counted and logged', async (t) => {
  const sink = await startSink(() => ({ status: 404 }));
  t.teardown(() => sink.close());
  const port = await freePort();
  const stack = await startStack({ DLQ_MAX: '10', DELIVERY_METRICS_PORT: String(port) });
  t.teardown(() => stack.stop());
  await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/gone?n={n}` }, data: Array.from({ length: 30 }, (_, n) => ({ n })) });
  t.ok(await stack.drained(), 'every postback died (404)');
  const dead = `${stack.env.REDIS_PREFIX}:{0}:dead`;
  const redis = stack.redis.client();
  t.ok(await until(async () => (await redis.xlen(dead)) === 10, 15_000), 'at most DLQ_MAX kept');
  const kept = ((await redis.xrange(dead, '-', '+')) as [string, string[]][]).length;
  t.equal(kept, 10);
  const metrics = (await get(`http://127.0.0.1:${port}/metrics`)).body;
  t.match(metrics, /^pb_dead_letters_trimmed_total\{reason="count",role="delivery"\} 20$/m, 'counted');
  t.match(stack.deliveries[0]!.output(), /"beyondMax":\d+.*dead letters trimmed/, 'and logged');

  // Three that died eight days ago (their stream ids say when), past the
  // 7-day default, and two today (a stream only grows at its end: start over).
  await redis.del(dead);
  const old = Date.now() - 8 * 86_400_000;
  for (let i = 0; i < 3; i++) await redis.xadd(dead, `${old}-${i}`, 'm', `old${i}`);
  for (let i = 0; i < 2; i++) await redis.xadd(dead, '*', 'm', `new${i}`);
  t.ok(await until(async () => (await redis.xlen(dead)) === 2, 15_000), 'the old ones are trimmed');
  const left = ((await redis.xrange(dead, '-', '+')) as [string, string[]][]).map(([, f]) => f[1]);
  t.same(left, ['new0', 'new1'], 'today\'s stay');
  t.match((await get(`http://127.0.0.1:${port}/metrics`)).body, /^pb_dead_letters_trimmed_total\{reason="age",role="delivery"\} 3$/m, 'counted by age');
});
