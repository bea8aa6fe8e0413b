/**
 * The rate leases and the control plane in-process against a real Redis:
 * two lease holders share one budget (what they are granted in a second
 * is the rate plus the burst, less the jitter allowance), a park cursor
 * spreads parked entries at the rate for the whole cluster, and a
 * PartnerControl sees another process's pause within its poll, counts
 * the live processes (on Redis's clock, whatever the machines' clocks
 * say), and tidies a pause that ended.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { RateLeases } from '../../src/partners/rate-leases.js';
import { liveMembers, PartnerControl, setLimit, setPause } from '../../src/partners/control.js';
import { controlKeys } from '../../src/queue/keys.js';
import { createRedis } from '../../src/queue/redis.js';
import { testConfig } from '../helpers/config.js';
import { startRedis } from '../helpers/redis.js';
import { until } from '../helpers/count.js';

const logger = pino({ level: 'silent' });

t.test('against a real Redis', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const redis = createRedis(testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix }), 'delivery', 'test-leases');
  t.teardown(() => redis.disconnect());
  const keys = controlKeys(prefix);

  t.test('two holders share one budget', async (t) => {
    let kicks = 0;
    const a = new RateLeases(redis, keys, () => kicks++);
    const b = new RateLeases(redis, keys, () => kicks++);
    t.teardown(() => {
      a.close();
      b.close();
    });
    const origin = 'https://capped.example';
    let granted = 0;
    const start = Date.now();
    // Both keep asking for more than the rate allows, for one second.
    while (Date.now() - start < 1_000) {
      granted += a.take(origin, 100, 10, 2, 50) + b.take(origin, 100, 10, 2, 50);
      await new Promise((r) => setTimeout(r, 5));
    }
    t.ok(granted <= 100 + 10, `at most rate + burst in a second (${granted})`);
    t.ok(granted >= 80, `and most of it (${granted})`);
    t.ok(kicks > 0, 'holders are told when tokens arrive or the wait is over');
    t.ok(a.requests + b.requests < granted, `fewer Redis calls than requests granted (${a.requests + b.requests} for ${granted})`);
    const slots = await a.parkSlots(origin, 100, 10, [10, 10, 5]);
    t.ok(slots !== null && slots.length === 3);
    const [s1, s2, s3] = slots as [number, number, number];
    t.ok(s1 >= Date.now() + 1_500, 'parked beyond what memory holds (2 s of the rate)');
    t.ok(Math.abs(s2 - s1 - 100) <= 6 && Math.abs(s3 - s2 - 100) <= 6, `one after another at the rate (${s2 - s1}, ${s3 - s2} ms)`);
    const more = (await b.parkSlots(origin, 100, 10, [1])) as [number];
    t.ok(more[0] >= s3 + 45, 'another process parks after them: one cursor for the cluster');
  });

  t.test('a process sees another\'s pause and limit within its poll', async (t) => {
    const changes: string[][] = [];
    const control = new PartnerControl(redis, keys, 'c1', logger, (o) => changes.push([...o]));
    await control.start();
    t.teardown(() => control.stop());
    t.equal(control.live, 1, 'itself, live');
    const origin = 'https://paused.example';
    await setPause(redis, keys, origin, { until: null, by: 'operator', reason: 'test', at: Date.now() });
    t.ok(await until(() => control.pauseOf(origin, Date.now()) !== null, 2_500), 'within the 1 s poll');
    t.ok(changes.some((c) => c.includes(origin)), 'and it is told which origin changed');
    await setLimit(redis, keys, origin, { rate: 5 });
    t.ok(await until(() => control.limitOf(origin)?.rate === 5, 2_500));
    t.same([...control.origins()], [origin]);
    await control.pause(origin, Date.now() + 300, 'retry-after', 'HTTP 429', 'extend');
    t.match(control.pauseOf(origin, Date.now()), { by: 'operator' }, 'an automatic pause never replaces an operator\'s');
    const other = 'https://limited.example';
    await control.pause(other, Date.now() + 300, 'retry-after', 'HTTP 429 Retry-After: 0.3', 'extend');
    t.match(control.pauseOf(other, Date.now()), { by: 'retry-after' }, 'in force here at once');
    t.ok(await until(async () => (await redis.hget(keys.partners, other)) === null, 3_000), 'tidied away once it ended');
    t.equal(control.breakerOf(other), null);
    control.setBreaker(other, { state: 'open', since: 1, probeAt: 2, reason: 'x' });
    t.same([...control.breakerOrigins()].map(([o]) => o), [other]);
  });

  t.test('processes on machines whose clocks disagree by two minutes count each other live', async (t) => {
    const realNow = Date.now;
    t.teardown(() => {
      Date.now = realNow;
    });
    // Each heartbeats once as it starts, with this process's clock set as
    // that machine's would be: one a minute behind, one a minute ahead.
    const startSkewed = async (name: string, skewMs: number) => {
      const control = new PartnerControl(redis, keys, name, logger);
      Date.now = () => realNow() + skewMs;
      try {
        await control.start();
      } finally {
        Date.now = realNow;
      }
      t.teardown(() => control.stop());
      return control;
    };
    await startSkewed('behind', -60_000);
    const ahead = await startSkewed('ahead', 60_000);
    t.equal(ahead.live, 2, 'the one ahead counts the one behind');
    t.same((await liveMembers(redis, keys)).sort(), ['ahead', 'behind'], 'so does a reader (the monitor)');
  });
});
