/**
 * The outcome recorder apart from the loops: each kind of result becomes
 * the right log line, retry, dead letter, statistics and metrics. Real
 * statistics go to a real Redis (flushed by close()) and metrics to a real
 * prom-client registry.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Registry } from 'prom-client';
import { noResponse, type AttemptResult } from '../../src/delivery/attempt.js';
import type { AttemptLine } from '../../src/delivery/attempt-log.js';
import { Finalizer } from '../../src/delivery/finalizer.js';
import { holdEntry, type HeldEntry } from '../../src/delivery/held-entry.js';
import { DeliveryMetrics } from '../../src/delivery/metrics.js';
import { Promoter } from '../../src/delivery/promoter.js';
import { StreamReader } from '../../src/delivery/reader.js';
import { OutcomeRecorder } from '../../src/delivery/recorder.js';
import { parseTemplate } from '../../src/postback/template.js';
import { defaultPolicy, parsePolicies } from '../../src/partners/policy.js';
import { StatsRecorder } from '../../src/observability/stats.js';
import { decodeDeadLetter, decodeEntry, encodeEntry, type Entry } from '../../src/queue/codec.js';
import { shardKeys, statsKey } from '../../src/queue/keys.js';
import { createRedis } from '../../src/queue/redis.js';
import { testConfig } from '../helpers/config.js';
import { startRedis } from '../helpers/redis.js';

const URL_TEMPLATE = 'http://partner.example/cb?n={n}';
const PIXEL = 'http://pixel.example';
const defaults = { timeoutMs: 10_000, maxTimeoutMs: 27_500, maxAttempts: 3, backoffBaseMs: 1000, backoffMaxMs: 60_000, signing: false, breaker: { failureRatio: 0.5, windowMs: 30_000, minAttempts: 20, consecutiveFailures: 10, probeIntervalMs: 5_000 } };
const policy = defaultPolicy(defaults);
const parsedPixel = parsePolicies({ partners: { [PIXEL]: { success: ['2xx', '3xx'], maxAttempts: 1 } } }, defaults);
if (!parsedPixel.ok) throw new Error(parsedPixel.problems.join('; '));
const pixel = parsedPixel.table.resolve(PIXEL);
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

function result(status: number | null, extra: Partial<AttemptResult> = {}): AttemptResult {
  return { url: 'http://partner.example/cb?n=0', deliveryTime: NOW, responseTime: status === null ? null : NOW + 5, latencyMs: 5, status, body: status === null ? null : 'x', errorCode: null, error: null, retryAfter: null, ...extra };
}

t.test('outcomes become log lines, retries, dead letters, statistics and metrics', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix });
  const redis = createRedis(config, 'delivery', 'test-recorder');
  t.teardown(() => redis.disconnect());
  const keys = shardKeys(prefix, 0);
  const logger = pino({ level: 'silent' });
  const shard = {
    keys,
    reader: new StreamReader(redis, redis, keys, 'c1', logger),
    finalizer: new Finalizer(redis, keys, logger),
    promoter: new Promoter(redis, keys, logger),
  };
  t.teardown(() => shard.promoter.stop());
  const lines: AttemptLine[] = [];
  const completed: HeldEntry[] = [];
  const registry = new Registry();
  const metrics = new DeliveryMetrics(registry, () => ({ waiting: 0, inFlight: 0 }));
  const stats = new StatsRecorder(redis, keys, 60);
  const recorder = new OutcomeRecorder({
    policyOf: (origin) => (origin === PIXEL ? pixel : policy),
    ttlMs: 3_600_000,
    encodedDefault: '',
    attemptLog: { write: (members) => lines.push(JSON.parse(`{${members}}`) as AttemptLine) },
    stats,
    metrics,
    complete: (held) => completed.push(held),
    random: () => 0.5,
  });
  const parsed = parseTemplate('GET', URL_TEMPLATE);
  if (!parsed.ok) throw new Error(parsed.message);
  const template = { stored: { method: 'GET' as const, url: URL_TEMPLATE }, compiled: parsed.template, origin: 'http://partner.example' };
  let seq = 0;
  const hold = (over: Partial<Entry> = {}, items = 1): HeldEntry => {
    const entry: Entry = { requestId: 'req', templateId: parsed.template.id, requestTime: NOW - 100, dueTime: NOW - 100, firstIndex: 0, attempts: 0, items: Array.from({ length: items }, (_, n) => ({ n })), last: null, ...over };
    const held = holdEntry(shard, keys.stream, `${NOW}-${seq++}`, encodeEntry(entry), entry, NOW);
    held.template = template;
    return held;
  };

  t.test('one attempt each: the decision, the line, the record', async (t) => {
    const cases: [string, AttemptResult, Partial<Entry>, string, { finished: number; retries: number; dead: number }][] = [
      ['2xx: delivered', result(200), {}, 'delivered', { finished: 1, retries: 0, dead: 0 }],
      ['503 on attempt 1 of 3: retry', result(503), {}, 'retry', { finished: 0, retries: 1, dead: 0 }],
      ['503 on attempt 3 of 3: dead', result(503), { attempts: 2 }, 'dead', { finished: 1, retries: 0, dead: 1 }],
      ['404: dead at once', result(404), {}, 'dead', { finished: 1, retries: 0, dead: 1 }],
      ['refused: retry', noResponse('u', 'PB_ERR_CONNECT', 'ECONNREFUSED', NOW), {}, 'retry', { finished: 0, retries: 1, dead: 0 }],
      ['blocked address: dead', noResponse('u', 'PB_ERR_BLOCKED_ADDRESS', 'private', NOW), {}, 'dead', { finished: 1, retries: 0, dead: 1 }],
      ['503 with the next try past the TTL: expired', result(503), { dueTime: NOW - 3_600_000 + 500 }, 'expired', { finished: 1, retries: 0, dead: 1 }],
    ];
    for (const [name, r, over, outcome, want] of cases) {
      const held = hold(over);
      lines.length = 0;
      completed.length = 0;
      recorder.attempt({ held, k: 0, id: 'req:0', origin: 'http://partner.example' }, r, NOW);
      t.equal(lines.length, 1, `${name}: one line`);
      const line = lines[0] as AttemptLine;
      t.equal(line.outcome, outcome, `${name}: outcome`);
      t.equal(line.attempt, (over.attempts ?? 0) + 1, `${name}: attempt number`);
      t.equal(line.status, r.status);
      t.equal(line.errorCode, r.errorCode);
      t.same({ finished: held.finished, retries: held.retries.length, dead: held.deadLetters.length }, want, `${name}: records`);
      t.same(completed, [held], `${name}: the entry is complete`);
      if (outcome === 'retry') {
        const [due, blob] = held.retries[0] as [number, Buffer];
        t.equal(due, NOW + 750, `${name}: due after the jittered backoff (random 0.5: 0.75 x 1 s)`);
        t.equal(line.nextAttemptAt, due);
        const retry = decodeEntry(blob);
        t.equal(retry.attempts, 1, 'the retry carries the attempt made');
        t.same(retry.last, { status: r.status, errorCode: r.errorCode, error: r.error });
      }
      if (want.dead === 1) {
        const letter = decodeDeadLetter(held.deadLetters[0] as Buffer);
        t.equal(letter.outcome, outcome === 'expired' ? 'expired' : 'dead');
        t.equal(letter.template, URL_TEMPLATE, 'the dead letter keeps the template for replay');
        t.same(letter.data, { n: 0 });
      }
    }
  });

  t.test('a partner policy decides: a pixel partner\'s 302 is delivered, without a redirect error', async (t) => {
    const held = hold();
    lines.length = 0;
    recorder.attempt({ held, k: 0, origin: PIXEL }, { ...result(302), errorCode: 'PB_ERR_REDIRECT', error: 'redirect not followed: Location /x' }, NOW);
    t.match(lines[0], { outcome: 'delivered', status: 302, errorCode: null, error: null });
    const other = hold();
    recorder.attempt({ held: other, k: 0, origin: PIXEL }, result(503), NOW);
    t.match(lines[1], { outcome: 'dead' }, 'its maxAttempts of 1: no retry');
  });

  t.test('an entry completes only when its last postback has an outcome', async (t) => {
    const held = hold({}, 3);
    completed.length = 0;
    recorder.attempt({ held, k: 0, origin: 'http://partner.example' }, result(200), NOW);
    recorder.attempt({ held, k: 1, origin: 'http://partner.example' }, result(200), NOW);
    t.same(completed, [], 'not after 2 of 3');
    recorder.attempt({ held, k: 2, origin: 'http://partner.example' }, result(500), NOW);
    t.same(completed, [held]);
    t.equal(held.remaining, 0);
  });

  t.test('expired before any attempt: a line per postback without delivery time, the URL rendered', async (t) => {
    const held = hold({ attempts: 2, last: { status: 502, errorCode: null, error: null } }, 2);
    lines.length = 0;
    completed.length = 0;
    recorder.expireAll(held, NOW);
    t.same(lines.map((l) => [l.outcome, l.deliveryTime, l.url, l.errorCode, l.attempt]), [
      ['expired', null, 'http://partner.example/cb?n=0', 'PB_ERR_EXPIRED', 2],
      ['expired', null, 'http://partner.example/cb?n=1', 'PB_ERR_EXPIRED', 2],
    ]);
    t.equal(held.deadLetters.length, 2);
    t.equal(decodeDeadLetter(held.deadLetters[0] as Buffer).status, 502, 'the dead letter keeps the last real answer');
    t.same(completed, [held]);
  });

  t.test('a missing template fails each postback for good', async (t) => {
    const held = hold({}, 2);
    held.template = undefined;
    lines.length = 0;
    recorder.templateMissing(held, NOW);
    t.same(lines.map((l) => [l.outcome, l.errorCode]), [
      ['dead', 'PB_ERR_TEMPLATE_MISSING'],
      ['dead', 'PB_ERR_TEMPLATE_MISSING'],
    ]);
    t.equal(held.deadLetters.length, 2);
  });

  t.test('parking puts the whole entry back, due later, with no attempt', async (t) => {
    const held = hold({}, 4);
    lines.length = 0;
    completed.length = 0;
    recorder.park(held, NOW + 2000, NOW);
    t.same(held.retries, [[NOW + 2000, held.blob]]);
    t.equal(held.finished, 0, 'nothing left the system');
    t.equal(lines.length, 0, 'no attempt line');
    t.same(completed, [held]);
  });

  t.test('statistics and metrics saw every outcome', async (t) => {
    await stats.close();
    const bucket = await redis.hgetall(statsKey(keys, Math.floor(NOW / 1000)));
    // delivered: 1 + 1 (pixel) + 2; retry: 2 + 1; dead: 3 + 1 (pixel) + 2 (template); expired: 1 + 2 (expireAll); parked 4
    t.match(bucket, { delivered: '4', retried: '3', dead: '6', expired: '3', parked: '4' });
    // Failed attempts per origin: not the two postbacks that expired before any attempt.
    t.match(bucket, { 'fo:http://partner.example': '7', 'fo:http://pixel.example': '1', 'fo:unknown': '2' });
    const text = await registry.getSingleMetricAsString('pb_delivery_attempts_total');
    t.match(text, /outcome="delivered",status_class="2xx"\} 3/);
    t.match(text, /outcome="expired",status_class="none"\} 2/);
    t.match(await registry.getSingleMetricAsString('pb_delivery_parked_total'), / 4$/m);
  });
});
