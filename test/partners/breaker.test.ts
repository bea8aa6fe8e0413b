/**
 * breaker-3.lua and the reporter against a real Redis: the thresholds as a
 * table (failures in a row, a failure ratio over the window with a minimum
 * of attempts), reports while open ignored, one probe per interval however
 * many processes ask, and the probe's result closing or keeping it open.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { BreakerReporter } from '../../src/partners/breaker.js';
import { parseBreaker, type BreakerRecord } from '../../src/partners/control-state.js';
import type { BreakerSettings } from '../../src/partners/policy.js';
import { controlKeys } from '../../src/queue/keys.js';
import { createRedis } from '../../src/queue/redis.js';
import { testConfig } from '../helpers/config.js';
import { startRedis } from '../helpers/redis.js';

const logger = pino({ level: 'silent' });
const settings: BreakerSettings = { failureRatio: 0.5, windowMs: 30_000, minAttempts: 20, consecutiveFailures: 10, probeIntervalMs: 200 };

t.test('circuit breakers against a real Redis', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const check = server.client();
  const setup = () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const redis = createRedis(testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix }), 'delivery', 'test-breaker');
    t.teardown(() => redis.disconnect());
    const keys = controlKeys(prefix);
    const opened: [string, BreakerRecord][] = [];
    const reporter = new BreakerReporter(redis, keys, logger, (o, r) => opened.push([o, r]));
    return { redis, keys, reporter, opened };
  };

  t.test('thresholds', async (t) => {
    type Step = ['ok' | 'fail' | 'down', number];
    const table: [string, Step[], string | null][] = [
      ['9 connection failures in a row: closed', [['down', 9]], null],
      ['10 in a row: open', [['down', 10]], '10 connection failures or timeouts in a row'],
      ['a response breaks the run', [['down', 9], ['ok', 1], ['down', 9]], null],
      ['a 5xx breaks the run too (the ratio counts it)', [['down', 9], ['fail', 1], ['down', 5]], null],
      ['half of 20 failed: open', [['ok', 10], ['fail', 10]], '10 of 20 attempts failed in 30 s'],
      ['under the minimum of attempts: closed', [['fail', 9], ['ok', 9]], null],
      ['under the ratio: closed', [['ok', 30], ['fail', 20]], null],
      ['successes alone cost nothing', [['ok', 500]], null],
    ];
    for (const [name, steps, reason] of table) {
      const { reporter, opened, keys } = setup();
      const origin = 'https://p.example';
      for (const [h, n] of steps) {
        for (let i = 0; i < n; i++) reporter.record(origin, h, settings, Date.now());
        await reporter.flush();
      }
      if (reason === null) {
        t.same(opened, [], name);
        t.equal(await check.hget(keys.breakers, origin), null, `${name}: nothing in Redis`);
      } else {
        t.match(opened, [[origin, { state: 'open', reason }]], name);
        t.match(parseBreaker((await check.hget(keys.breakers, origin)) as string), { state: 'open', reason }, `${name}: every process sees it`);
      }
    }
  });

  t.test('two processes\' reports add up; reports while open are ignored', async (t) => {
    const a = setup();
    const b = new BreakerReporter(a.redis, a.keys, logger, (o, r) => a.opened.push([o, r]));
    const origin = 'https://shared.example';
    for (let i = 0; i < 5; i++) a.reporter.record(origin, 'down', settings, Date.now());
    for (let i = 0; i < 5; i++) b.record(origin, 'down', settings, Date.now());
    await a.reporter.flush();
    await b.flush();
    t.equal(a.opened.length, 1, '5 + 5 in a row, from two processes: open once');
    const version = await check.get(a.keys.version);
    for (let i = 0; i < 20; i++) b.record(origin, 'down', settings, Date.now());
    await b.flush();
    t.equal(a.opened.length, 1, 'not opened again');
    t.equal(await check.get(a.keys.version), version, 'and nothing written');
  });

  t.test('one probe per interval for the whole cluster; its result closes or keeps it open', async (t) => {
    const { reporter, keys } = setup();
    const origin = 'https://down.example';
    for (let i = 0; i < 10; i++) reporter.record(origin, 'down', settings, Date.now());
    await reporter.flush();
    const early = await Promise.all([1, 2, 3].map(() => reporter.claimProbe(origin, settings)));
    t.same(early, [false, false, false], 'not before the interval');
    await new Promise((r) => setTimeout(r, settings.probeIntervalMs + 20));
    const claims = await Promise.all([1, 2, 3, 4].map(() => reporter.claimProbe(origin, settings)));
    t.equal(claims.filter(Boolean).length, 1, 'four processes ask at once: one probes');
    t.match(parseBreaker((await check.hget(keys.breakers, origin)) as string), { state: 'half-open' });
    t.equal(await reporter.probeResult(origin, false, settings), 'open', 'a failed probe: still open');
    t.match(parseBreaker((await check.hget(keys.breakers, origin)) as string), { state: 'open' });
    t.equal(await reporter.probeResult(origin, true, settings), 'closed', 'a good one closes it');
    t.equal(await check.hget(keys.breakers, origin), null);
    t.equal(await reporter.probeResult(origin, true, settings), null, 'nothing to do when closed');
    t.equal(await reporter.claimProbe(origin, settings), false);
  });

  t.test('with Redis full (maxmemory, noeviction) the probe is still claimed and its result still recorded', async (t) => {
    const { reporter, keys } = setup();
    const origin = 'https://full.example';
    await check.hset(keys.breakers, origin, JSON.stringify({ state: 'open', since: Date.now(), probeAt: 0, reason: 'test' }));
    await check.config('SET', 'maxmemory', '1');
    try {
      t.equal(await reporter.claimProbe(origin, settings), true, 'claimed: the partner can be probed and its held postbacks released');
      t.match(parseBreaker((await check.hget(keys.breakers, origin)) as string), { state: 'half-open' });
      t.equal(await reporter.probeResult(origin, false, settings), 'open', 'a failed probe recorded');
      t.equal(await reporter.probeResult(origin, true, settings), 'closed', 'a good one closes it');
    } finally {
      await check.config('SET', 'maxmemory', '0');
    }
  });
});
