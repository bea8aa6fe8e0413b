/**
 * A slow partner cannot starve the others: it holds at most its share of
 * DELIVERY_CONCURRENCY, and first attempts to a healthy partner flow while
 * a failing partner's retries pile up.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { until } from '../helpers/count.js';
import { startDnsServer } from '../../bench/lib/dns-server.js';

t.test('slow and failing partners do not hold up a healthy one', async (t) => {
  let slowInFlight = 0;
  let slowMax = 0;
  const slow = await startSink(() => {
    slowInFlight++;
    slowMax = Math.max(slowMax, slowInFlight);
    setTimeout(() => slowInFlight--, 2_000);
    return { status: 200, delayMs: 2_000 };
  });
  const failing = await startSink(() => ({ status: 503 }));
  const healthy = await startSink();
  t.teardown(async () => {
    await slow.close();
    await failing.close();
    await healthy.close();
  });
  const stack = await startStack(
    {
      DELIVERY_CONCURRENCY: '40',
      DELIVERY_ORIGIN_SHARE: '0.25',
      DELIVERY_BATCH_SIZE: '5',
      DELIVERY_TIMEOUT_MS: '5000',
      DELIVERY_VISIBILITY_MS: '20000',
      DELIVERY_BACKOFF_BASE_MS: '100',
      DELIVERY_BACKOFF_MAX_MS: '200',
      DELIVERY_MAX_ATTEMPTS: '100',
    },
    { deliveries: 0 },
  );
  t.teardown(() => stack.stop());
  const req = (origin: string, n: number) => ({
    endpoint: { method: 'GET', url: `${origin}/x?n={n}` },
    data: Array.from({ length: n }, (_, i) => ({ n: i })),
  });
  // The slow and failing partners' postbacks come first in the stream.
  t.equal((await stack.send(req(slow.origin, 200))).status, 202);
  t.equal((await stack.send(req(failing.origin, 200))).status, 202);
  t.equal((await stack.send(req(healthy.origin, 500))).status, 202);
  await stack.startDelivery();
  await healthy.waitFor(500, 30_000);
  t.ok(slow.received.length < 200, `all 500 healthy postbacks went out while the slow partner had had only ${slow.received.length} of 200`);
  t.ok(slowMax <= 10, `the slow partner never held more than its share (10 of 40): max ${slowMax}`);
  t.ok(failing.received.length > 200, `retries to the failing partner kept going meanwhile (${failing.received.length} attempts)`);
});

t.test('with worker threads, many small partners all go out at once: nothing waits in the thread pool', async (t) => {
  // 200 partners, one postback each, each answering after a second: every
  // batch holds one postback. All of them fit in DELIVERY_CONCURRENCY, so
  // all are in flight together, as without threads.
  const dns = await startDnsServer({ zone: 'many.test' });
  t.teardown(() => dns.close());
  const sink = await startSink(() => ({ status: 200, delayMs: 1_000 }));
  t.teardown(() => sink.close());
  const stack = await startStack({ DELIVERY_WORKERS: '2', DELIVERY_DNS_SERVERS: dns.server, DELIVERY_TIMEOUT_MS: '5000' });
  t.teardown(() => stack.stop());
  const data = Array.from({ length: 200 }, (_, i) => ({ h: `p${i}` }));
  t.equal((await stack.send({ endpoint: { method: 'GET', url: `http://{h}.many.test:${sink.port}/w` }, data })).status, 202);
  t.ok(await until(() => sink.maxInFlight >= 150, 15_000), `${sink.maxInFlight} in flight at once (at least 150 of 200)`);
  await sink.waitFor(200, 20_000);
  t.ok(await stack.drained(), 'all delivered and acknowledged');
});
