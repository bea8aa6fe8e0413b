/**
 * DLQ_MAX through a real delivery process: 30 postbacks die at a partner
 * that answers 404 and only the newest 10 dead letters stay; the trimming
 * is counted in pb_dead_letters_trimmed_total and logged.
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
});
