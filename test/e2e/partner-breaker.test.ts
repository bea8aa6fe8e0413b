/**
 * Circuit breaking and Retry-After with real delivery processes:
 *
 * - A partner that refuses connections for 12 s while it holds 30% of the
 *   traffic: its breaker opens for the whole cluster, its postbacks wait
 *   without spending attempts (none is lost or dead-lettered, though each
 *   has only 4 attempts), what reaches it while open is only the probes,
 *   one per interval for the cluster; once it is back the probe closes the
 *   breaker and its backlog is delivered; the healthy partner's postbacks
 *   keep going out on time meanwhile.
 * - A 429 with Retry-After: 3 pauses the partner for 3 s in every process.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { waitForLines } from '../helpers/log.js';
import { until } from '../helpers/count.js';
import { runCli } from '../helpers/procs.js';

const PROBE_MS = 2_000;
// Long against what the breaker must outlast: six probe intervals (the
// test wants at least 3 probes after the first 1.5 s), and
// several times the span of a postback's 4 attempts (backoff 200 ms up to
// 1 s), which without the breaker would all be spent within ~2 s.
const OUTAGE_MS = 12_000;

t.test('a partner down for 12 s: the breaker holds its postbacks, probes, and lets them go when it is back', async (t) => {
  const healthy = await startSink();
  let down = await startSink();
  const port = down.port;
  await down.close(); // refuses connections from now on
  t.teardown(async () => {
    await healthy.close();
    await down.close();
  });
  const stack = await startStack(
    { PARTNER_BREAKER_CONSECUTIVE: '10', PARTNER_BREAKER_MIN_ATTEMPTS: '20', PARTNER_PROBE_INTERVAL_MS: String(PROBE_MS), DELIVERY_MAX_ATTEMPTS: '4', DELIVERY_BACKOFF_BASE_MS: '200', DELIVERY_BACKOFF_MAX_MS: '1000', LOG_LEVEL: 'info' },
    { deliveries: 2 },
  );
  t.teardown(() => stack.stop());
  const redis = stack.redis.client();
  const breakersKey = `${stack.env.REDIS_PREFIX}:{ctl}:breakers`;
  const downOrigin = `http://127.0.0.1:${port}`;

  let sending = true;
  let sent = { healthy: 0, down: 0 };
  const traffic = (async () => {
    while (sending) {
      await stack.send({ endpoint: { method: 'GET', url: `${healthy.origin}/h?n={n}` }, data: Array.from({ length: 7 }, (_, n) => ({ n })) });
      await stack.send({ endpoint: { method: 'GET', url: `${downOrigin}/d?n={n}` }, data: Array.from({ length: 3 }, (_, n) => ({ n })) });
      sent = { healthy: sent.healthy + 7, down: sent.down + 3 };
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  t.ok(await until(async () => (await redis.hget(breakersKey, downOrigin)) !== null, 10_000), 'the breaker opens');
  const openedAt = (JSON.parse((await redis.hget(breakersKey, downOrigin)) as string) as { since: number }).since;
  const downAt = Date.now();
  await until(() => Date.now() - downAt >= OUTAGE_MS, OUTAGE_MS + 5_000); // the outage lasts OUTAGE_MS
  down = await startSink(() => ({ status: 200 }), { port });
  const backAt = Date.now();
  t.ok(await until(async () => (await redis.hget(breakersKey, downOrigin)) === null, 3 * PROBE_MS + 2_000), 'a probe closes it once the partner is back');
  sending = false;
  await traffic;
  t.ok(await stack.drained(60_000), 'every postback leaves the system');

  const delivered = (ls: { url: string; outcome: string; id: string }[], origin: string) => new Set(ls.filter((l) => l.url.startsWith(origin) && l.outcome === 'delivered').map((l) => l.id)).size;
  const lines = await waitForLines(stack.env.LOG_DIR!, (ls) => delivered(ls, downOrigin) === sent.down && delivered(ls, healthy.origin) === sent.healthy);
  const ofDown = lines.filter((l) => l.url.startsWith(downOrigin));
  t.equal(await redis.xlen(`${stack.env.REDIS_PREFIX}:{0}:dead`), 0, 'nothing dead-lettered by the outage');
  const deliveredDown = new Set(ofDown.filter((l) => l.outcome === 'delivered').map((l) => l.id));
  t.equal(deliveredDown.size, sent.down, `each of its ${sent.down} postbacks delivered once it was back`);
  t.equal(new Set(down.received.map((r) => r.headers['x-postback-id'])).size, sent.down, 'as the partner counts them');

  // While open (after the attempts already in flight when it opened), only probes went out.
  const whileOpen = ofDown.filter((l) => (l.deliveryTime ?? 0) > openedAt + 1_500 && (l.deliveryTime ?? 0) < backAt);
  t.ok(whileOpen.every((l) => l.probe === true), `only probes while open (${whileOpen.length} attempts)`);
  const bound = Math.ceil((backAt - openedAt) / PROBE_MS) + 1;
  t.ok(whileOpen.length <= bound, `probes bounded by the interval for the cluster: ${whileOpen.length} <= ${bound}`);
  t.ok(whileOpen.length >= 3, 'and it was probed');
  const spent = new Map<string, number>();
  for (const l of ofDown) if (l.probe !== true) spent.set(l.id, (spent.get(l.id) ?? 0) + 1);
  const most = Math.max(...spent.values());
  t.ok(most <= 3, `no postback spent its 4 attempts: at most ${most} each (the ones before it opened, then the delivery)`);

  const ofHealthy = lines.filter((l) => l.url.startsWith(healthy.origin));
  t.equal(new Set(ofHealthy.filter((l) => l.outcome === 'delivered').map((l) => l.id)).size, sent.healthy, 'the healthy partner got all of its own');
  const lags = ofHealthy.map((l) => (l.deliveryTime ?? 0) - l.requestTime).sort((a, b) => a - b);
  const p99 = lags[Math.floor(lags.length * 0.99)] ?? 0;
  t.ok(p99 < 1_000, `and on time throughout (p99 lag ${p99} ms)`);
  const log = stack.deliveries.map((d) => d.output()).join('');
  t.match(log, /circuit breaker opened/, 'the transitions are logged');
  t.match(log, /circuit breaker closed/);
});

t.test('a 429 with Retry-After: 3 pauses the partner for 3 s in every process', async (t) => {
  let limitedAt = 0;
  const sink = await startSink((req, n) => {
    if (n === 20) {
      limitedAt = req.at;
      return { status: 429, headers: { 'retry-after': '3' } };
    }
    return { status: 200 };
  });
  t.teardown(() => sink.close());
  const stack = await startStack({ LOG_LEVEL: 'info' }, { deliveries: 2 });
  t.teardown(() => stack.stop());
  let sending = true;
  let sent = 0;
  const traffic = (async () => {
    while (sending) {
      await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/r?n={n}` }, data: [{ n: sent }, { n: sent + 1 }] });
      sent += 2;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  t.ok(await until(() => limitedAt > 0 && Date.now() > limitedAt + 4_000, 20_000));
  sending = false;
  await traffic;
  t.ok(await stack.drained(20_000), 'all delivered in the end');
  // Requests in flight when it answered, and what the other process sent
  // before its next poll (1 s), may still arrive; then nothing until the end.
  const inPause = sink.received.filter((r) => r.at > limitedAt + 1_500 && r.at < limitedAt + 2_900);
  t.same(inPause.map((r) => r.url), [], 'nothing reaches it during the pause, from either process');
  const after = sink.received.filter((r) => r.at >= limitedAt + 2_900);
  t.ok(after.length > 0, 'it is called again once the pause ends');
  const lines = await waitForLines(stack.env.LOG_DIR!, (ls) => ls.filter((l) => l.outcome === 'delivered').length === sent);
  const refused = lines.find((l) => l.status === 429);
  t.ok(refused, 'the 429 is logged');
  const again = lines.find((l) => l.id === refused?.id && l.outcome === 'delivered');
  t.ok(again && (again.deliveryTime ?? 0) >= (refused?.deliveryTime ?? 0) + 3_000, 'its postback is tried again after the 3 s');
  t.match(stack.deliveries.map((d) => d.output()).join(''), /partner paused/, 'the pause is logged');
  t.equal(new Set(sink.received.filter((r) => r.url.startsWith('/r')).map((r) => r.headers['x-postback-id'])).size, sent, 'every postback delivered');
});

t.test('a partner open longer than PARTNER_DISABLE_AFTER_MS is paused until an operator resumes it', async (t) => {
  const gone = await startSink();
  const port = gone.port;
  await gone.close();
  const stack = await startStack({ PARTNER_BREAKER_CONSECUTIVE: '3', PARTNER_PROBE_INTERVAL_MS: '300', PARTNER_DISABLE_AFTER_MS: '1500', DELIVERY_BACKOFF_BASE_MS: '100' });
  t.teardown(() => stack.stop());
  const origin = `http://127.0.0.1:${port}`;
  await stack.send({ endpoint: { method: 'GET', url: `${origin}/x?n={n}` }, data: Array.from({ length: 10 }, (_, n) => ({ n })) });
  const redis = stack.redis.client();
  const partners = `${stack.env.REDIS_PREFIX}:{ctl}:partners`;
  t.ok(await until(async () => (await redis.hget(partners, origin)) !== null, 15_000), 'paused once open for 1.5 s');
  t.match(JSON.parse((await redis.hget(partners, origin)) as string), { pause: { by: 'breaker', until: null, reason: /circuit open since/ } });
  // The log line follows the write in Redis, and reaches the process's output a little later.
  t.ok(await until(() => /"errorCode":"PB_ERR_PARTNER_DISABLED".*partner disabled/.test(stack.deliveries[0]!.output()), 5_000), 'reported as an error');
  t.equal(await redis.xlen(`${stack.env.REDIS_PREFIX}:{0}:dead`), 0, 'its postbacks wait, none dead');

  // The partner is back and an operator resumes it: probed at once, closed, everything delivered.
  const back = await startSink(undefined, { port });
  t.teardown(() => back.close());
  const resumed = await runCli(['partners', 'resume', origin], stack.env);
  t.equal(resumed.code, 0, resumed.stderr);
  t.ok(await until(() => new Set(back.received.map((r) => r.headers['x-postback-id'])).size === 10, 15_000), 'all 10 delivered after the resume');
  t.equal(await redis.hget(partners, origin), null, 'not disabled again');
});
