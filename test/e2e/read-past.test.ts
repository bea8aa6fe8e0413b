/**
 * A saturated partner's backlog ahead of another partner's postbacks in the
 * stream, larger than everything the process may hold: the process reads
 * on past it within its parking budget (admission.ts), so the other
 * partner's postbacks go out long before the backlog drains, what it
 * holds stays within its bound meanwhile, and the backlog is still
 * delivered in full, once each.
 */
import t from 'tap';
import { freePort } from '../../bench/lib/ports.js';
import { get } from '../helpers/http.js';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';

t.test('a slow partner backlog beyond the hold cap does not hide the postbacks behind it', async (t) => {
  // Slow (6 s an answer) until the healthy partner has had all of its postbacks, then quick.
  let slowMs = 6000;
  let slowAnswered = 0;
  const slow = await startSink(() => {
    const ms = slowMs;
    setTimeout(() => slowAnswered++, ms);
    return { status: 200, delayMs: ms };
  });
  const healthy = await startSink();
  t.teardown(async () => {
    await slow.close();
    await healthy.close();
  });
  // 10 in flight to an origin (40 x 0.25), at most 160 held (HOLD_FACTOR x 40):
  // nothing of the slow partner's finishes for 6 s, so nothing read makes
  // room meanwhile: only reading past its backlog reaches the postbacks
  // behind it before then.
  const metricsPort = await freePort();
  const stack = await startStack(
    { DELIVERY_METRICS_PORT: String(metricsPort), DELIVERY_CONCURRENCY: '40', DELIVERY_ORIGIN_SHARE: '0.25', DELIVERY_BATCH_SIZE: '10', DELIVERY_TIMEOUT_MS: '10000', DELIVERY_VISIBILITY_MS: '30000' },
    { deliveries: 0 },
  );
  t.teardown(() => stack.stop());
  const req = (origin: string, from: number, n: number) => ({
    endpoint: { method: 'GET', url: `${origin}/x?n={n}` },
    data: Array.from({ length: n }, (_, i) => ({ n: from + i })),
  });
  const SLOW = 1200;
  for (let i = 0; i < SLOW; i += 100) t.equal((await stack.send(req(slow.origin, i, 100))).status, 202);
  t.equal((await stack.send(req(healthy.origin, 0, 200))).status, 202);
  await stack.startDelivery();
  // What the process holds, sampled while it reads past the backlog.
  let maxWaiting = 0;
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const m = /^pb_delivery_waiting(?:\{[^}]*\})? (\d+)/m.exec((await get(`http://127.0.0.1:${metricsPort}/metrics`)).body);
      if (m) {
        maxWaiting = Math.max(maxWaiting, Number(m[1]));
        samples++;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  await healthy.waitFor(200, 30_000);
  const slowByThen = slowAnswered;
  t.equal(slowByThen, 0, `the 200 healthy postbacks went out before the slow partner had answered any (${slowByThen})`);
  slowMs = 0;
  // Go on sampling through two rounds of the slow partner, backlog returning from parking and all.
  await slow.waitFor(slow.received.length + 20, 20_000);
  sampling = false;
  await sampler;
  // Held within HOLD_FACTOR x 40, plus a read's worth (40) and a 64-item entry from each stream rounding it up.
  t.ok(samples > 10 && maxWaiting <= 160 + 40 + 2 * 64, `waiting in the process at most ${maxWaiting} (${samples} samples)`);
  await slow.waitFor(SLOW, 60_000);
  const ids = new Set(slow.received.map((r) => r.headers['x-postback-id']));
  t.equal(ids.size, SLOW, 'the slow backlog is delivered in full');
  t.equal(slow.received.length, SLOW, 'each once');
  t.ok(await stack.drained(), 'and acknowledged');
});
