/** The admission policy as tables: plain numbers in, plain numbers out. */
import t from 'tap';
import {
  DrainPace,
  PACE_DECAY,
  handBackPlan,
  HOLD_FACTOR,
  MAX_READ_COUNT,
  PARK_BUDGET_MIN,
  PARK_EARN,
  PARK_MAX_MS,
  PARK_MIN_MS,
  ParkBudget,
  parkBudgetPerSecond,
  parkDelay,
  readAllowance,
  readCount,
  readRoom,
  readThreshold,
  shouldPark,
  type AdmissionLimits,
} from '../../src/delivery/admission.js';

const limits: AdmissionLimits = { concurrency: 1024, batchSize: 64, shards: 1 };

t.test('read room: what could start now within the concurrency, all held within the hold cap', async (t) => {
  const cases: [string, number, number, number][] = [
    // name, readyLoad, load, room
    ['idle', 0, 0, 1024],
    ['half busy', 512, 512, 512],
    ['full', 1024, 1024, 0],
    ['a saturated origin backlog does not count against reading', 100, 3000, 924],
    ['the hold cap binds', 0, HOLD_FACTOR * 1024 - 10, 10],
    ['past the hold cap: negative', 0, HOLD_FACTOR * 1024 + 5, -5],
  ];
  for (const [name, readyLoad, load, room] of cases) t.equal(readRoom(limits, { readyLoad, load }), room, name);
});

t.test('read threshold: at once when idle, a worthwhile amount when busy', async (t) => {
  const cases: [string, AdmissionLimits, number, number][] = [
    ['idle reads at once', limits, 0, 1],
    ['busy: an eighth of 1024', limits, 10, 128],
    ['busy, big batches: a batch', { concurrency: 1024, batchSize: 200, shards: 1 }, 10, 200],
    ['small concurrency: never above it', { concurrency: 16, batchSize: 64, shards: 1 }, 1, 16],
    ['concurrency 1', { concurrency: 1, batchSize: 64, shards: 1 }, 1, 1],
  ];
  for (const [name, l, load, want] of cases) t.equal(readThreshold(l, { readyLoad: 0, load }), want, name);
});

t.test('read allowance: the read room, or past a saturated backlog as far as the parking budget goes', async (t) => {
  const cap = HOLD_FACTOR * 1024;
  const cases: [string, number, number, number, number, boolean][] = [
    // name, readyLoad, load, parkable, postbacks, past
    ['idle: the whole room', 0, 0, 0, 1024, false],
    ['room worth a read: the room, whatever the budget', 100, 3000, 0, 924, false],
    ['busy and below the threshold: wait', 1000, 1000, 1000, 0, false],
    ['hold cap full of a saturated backlog, budget empty: wait', 64, cap, 0, 0, false],
    ['hold cap full, budget short of a worthwhile read: wait', 64, cap, 127, 0, false],
    ['hold cap full, budget covers a read: read past it, as far as the budget goes', 64, cap, 500, 500, true],
    ['read past never beyond the room for work that could start', 800, cap, 1000, 224, true],
    ['the budget counts in whole postbacks', 64, cap, 200.7, 200, true],
    ['nothing could start: no read past either', 1024, cap, 1000, 0, false],
  ];
  for (const [name, readyLoad, load, parkable, postbacks, past] of cases) t.same(readAllowance(limits, { readyLoad, load }, parkable), { postbacks, past }, name);
});

t.test('parking budget: refills at its rate from empty, earned by postbacks that could start, bounded', async (t) => {
  t.equal(parkBudgetPerSecond({ ...limits, concurrency: 100 }), PARK_BUDGET_MIN, 'at least the minimum');
  t.equal(parkBudgetPerSecond({ ...limits, concurrency: 5000 }), 5000, 'or the concurrency, if more');
  const b = new ParkBudget(1000, 0);
  const steps: [string, (b: ParkBudget) => unknown, unknown][] = [
    ['empty at first', (b) => b.available(0), 0],
    ['nothing to spend: no park', (b) => b.take(1, 0), false],
    ['refills at its rate', (b) => b.available(100), 100],
    ['ms until 300 are there', (b) => b.msUntil(300, 100), 200],
    ['spends what it has', (b) => b.take(64, 100), true],
    ['what is left', (b) => b.available(100), 36],
    ['an entry larger than what is left still goes (the read was sized to it)', (b) => b.take(64, 100), true],
    ['in debt', (b) => b.available(100), -28],
    ['in debt: no park', (b) => b.take(1, 100), false],
    ['unless read past a backlog: parked, deeper in debt', (b) => b.take(2, 100, true), true],
    ['in debt by that much', (b) => b.available(100), -30],
    ['earned: PARK_EARN a postback', (b) => (b.earn(100), b.available(100)), -30 + 100 * PARK_EARN],
    ['never more than a second of it', (b) => (b.earn(10_000), b.available(100)), 1000],
    ['nor by waiting', (b) => b.available(60_000), 1000],
    ['a clock going back changes nothing', (b) => b.available(50_000), 1000],
    ['none needed when there', (b) => b.msUntil(500, 60_000), 0],
    ['asking for more than the whole budget waits for a full one', (b) => (b.take(1000, 60_000), b.msUntil(5000, 60_000)), 1000],
  ];
  for (const [name, step, want] of steps) t.equal(step(b), want, name);
});

t.test('read count: the shard\'s part of the room in average entries, 1 to MAX_READ_COUNT', async (t) => {
  const cases: [string, AdmissionLimits, number, number, number][] = [
    ['single postbacks', limits, 100, 1, 100],
    ['64-item entries', limits, 1024, 64, 16],
    ['rounds up', limits, 100, 64, 2],
    ['two shards split the room', { ...limits, shards: 2 }, 1024, 64, 8],
    ['never 0', limits, 0, 64, 1],
    ['never past the cap', limits, 100_000, 1, MAX_READ_COUNT],
    ['an average below 1 counts as 1', limits, 10, 0.5, 10],
  ];
  for (const [name, l, room, avg, want] of cases) t.equal(readCount(l, room, avg), want, name);
});

t.test('park: an origin with twice its limit waiting, and at least half the concurrency', async (t) => {
  const cases: [AdmissionLimits, number, number, boolean][] = [
    [limits, 0, 64, false],
    [limits, 511, 64, false],
    [limits, 512, 64, true],
    [limits, 1000, 64, true],
    [limits, 511, 1, false],
    [limits, 512, 1, true],
    [{ ...limits, concurrency: 100 }, 127, 64, false],
    [{ ...limits, concurrency: 100 }, 128, 64, true],
    [{ ...limits, concurrency: 1 }, 2, 1, true],
  ];
  for (const [l, waiting, perOrigin, want] of cases) t.equal(shouldPark(l, waiting, perOrigin), want, `${waiting} waiting, limit ${perOrigin}, concurrency ${l.concurrency}`);
});

t.test('park delay: what waits, at the pace it drains, no further than the pace was watched, bounded, jittered 0.75x to 1.25x', async (t) => {
  const long = 3_600_000;
  const cases: [string, number, number | undefined, number, number, number][] = [
    // name, waiting, ms per postback, busy ms, random, want
    ['4,000 waiting at 0.2 ms each, no jitter (random 0.5)', 4000, 0.2, long, 0.5, 800],
    ['pace not yet measured: back soon', 4000, undefined, long, 0.5, PARK_MIN_MS],
    ['lowest jitter', 4000, 0.2, long, 0, 600],
    ['highest jitter', 4000, 0.2, long, 1, 1000],
    ['never below the minimum', 512, 0.01, long, 0.5, PARK_MIN_MS],
    ['never above the maximum', 10_000, 1000, long, 0.5, PARK_MAX_MS],
    ['a cold start\'s pace, 20 ms each, watched for 1.5 s: 1.5 s, not 10 s', 512, 20, 1_500, 0.5, 1_500],
    ['watched for 30 s: the drain estimate', 512, 20, 30_000, 0.5, 10_240],
    ['busy for less than the minimum: the minimum', 512, 20, 10, 0.5, PARK_MIN_MS],
  ];
  for (const [name, waiting, msPer, busy, random, want] of cases) t.equal(parkDelay(waiting, msPer, busy, random), want, name);
});

t.test('hand-back plan: the unstarted items of each entry, as runs of consecutive indexes', async (t) => {
  const a = { name: 'a' };
  const b = { name: 'b' };
  const c = { name: 'c' };
  const plan = handBackPlan([
    { held: a, k: 5 },
    { held: b, k: 0 },
    { held: a, k: 3 },
    { held: a, k: 4 },
    // Items of one entry going to several origins start out of order: 1 to 8 started, 0, 9 and 10 did not.
    { held: c, k: 10 },
    { held: c, k: 0 },
    { held: c, k: 9 },
  ]);
  t.same([...plan.entries()], [
    [a, [[3, 6]]],
    [b, [[0, 1]]],
    [c, [[0, 1], [9, 11]]],
  ]);
  t.same(handBackPlan([{ held: a, k: 2 }, { held: a, k: 2 }]).get(a), [[2, 3]], 'a job listed twice is one item');
  t.equal(handBackPlan([]).size, 0, 'nothing unstarted: nothing handed back');
});

t.test('drain pace: ms per postback between finishes of a busy origin, as a ratio of decayed sums, bounded', async (t) => {
  const pace = new DrainPace(3);
  pace.done('a', 64, 1000, true);
  t.equal(pace.msPerPostback('a'), undefined, 'one finish: no pace yet');
  pace.done('a', 64, 1064, true);
  t.equal(pace.msPerPostback('a'), 1, '64 more 64 ms later: 1 ms each');
  pace.done('a', 10, 1074, false);
  t.equal(pace.msPerPostback('a'), 1, '10 in 10 ms, and now it has nothing left: still 1 ms each');
  pace.done('a', 5, 9000, true);
  t.equal(pace.msPerPostback('a'), 1, 'the time it had nothing is not counted as draining');

  // A batch of one after a 10 ms pause, then 63 in the same millisecond:
  // 64 postbacks in 10 ms. A mean of the two ratios (10 and 0) would say 5.
  const burst = new DrainPace();
  burst.done('x', 1, 0, true);
  burst.done('x', 1, 10, true);
  burst.done('x', 63, 10, true);
  const both = (10 * PACE_DECAY + 0) / (1 * PACE_DECAY + 63);
  t.equal(burst.msPerPostback('x'), both, 'weighted by postbacks: about 0.16 ms each');
  t.ok((burst.msPerPostback('x') as number) < 0.2, 'not the mean of the ratios');

  // Older finishes fade: a pace that changes is followed within tens of finishes.
  const slower = new DrainPace();
  slower.done('s', 10, 0, true);
  for (let i = 1; i <= 50; i++) slower.done('s', 10, i * 10, true);
  t.equal(slower.msPerPostback('s'), 1, '10 every 10 ms: 1 ms each');
  for (let i = 1; i <= 50; i++) slower.done('s', 10, 500 + i * 100, true);
  t.ok(Math.abs((slower.msPerPostback('s') as number) - 10) < 0.1, `then 10 every 100 ms: 10 ms each (${slower.msPerPostback('s')})`);

  // How long it has been busy without a break: from the first finish after
  // which it still had work.
  const stretch = new DrainPace();
  t.equal(stretch.busyMs('q', 500), 0, 'never seen: not busy');
  stretch.done('q', 64, 1_000, true);
  t.equal(stretch.busyMs('q', 1_500), 500, 'busy since its first finish');
  stretch.done('q', 64, 2_000, true);
  t.equal(stretch.busyMs('q', 2_500), 1_500, 'still that stretch');
  stretch.done('q', 64, 3_000, false);
  t.equal(stretch.busyMs('q', 3_500), 0, 'ran dry: not busy');
  stretch.done('q', 64, 9_000, true);
  t.equal(stretch.busyMs('q', 9_250), 250, 'a new stretch starts over');
  t.equal(stretch.busyMs('q', 8_000), 0, 'never negative');

  pace.done('b', 1, 0, true);
  pace.done('c', 1, 0, true);
  pace.done('a', 1, 9001, true);
  pace.done('d', 1, 0, true);
  t.equal(pace.size, 3, 'never more than the bound');
  t.equal(pace.msPerPostback('b'), undefined, 'b was updated longest ago');
  t.equal(pace.msPerPostback('a'), 1, 'a kept (1 more in 1 ms: still 1 ms each)');
});
