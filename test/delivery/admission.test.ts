/** The admission policy as tables: plain numbers in, plain numbers out. */
import t from 'tap';
import {
  ewma,
  handBackPlan,
  HOLD_FACTOR,
  LatencyAverages,
  MAX_READ_COUNT,
  PARK_MAX_MS,
  PARK_MIN_MS,
  parkDelay,
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

t.test('park delay: backlog rounds times latency, bounded, jittered 0.75x to 1.25x', async (t) => {
  const cases: [string, number, number, number | undefined, number, number][] = [
    // name, waiting, perOrigin, latency, random, want
    ['2 rounds of 400 ms, no jitter (random 0.5)', 128, 64, 400, 0.5, 800],
    ['unknown latency counts as 250 ms', 128, 64, undefined, 0.5, 500],
    ['lowest jitter', 128, 64, 400, 0, 600],
    ['highest jitter', 128, 64, 400, 1, 1000],
    ['never below the minimum', 128, 64, 1, 0.5, PARK_MIN_MS],
    ['never above the maximum', 10_000, 1, 10_000, 0.5, PARK_MAX_MS],
  ];
  for (const [name, waiting, perOrigin, latency, random, want] of cases) t.equal(parkDelay(waiting, perOrigin, latency, random), want, name);
});

t.test('hand-back plan: the first unstarted item of each entry', async (t) => {
  const a = { name: 'a' };
  const b = { name: 'b' };
  const plan = handBackPlan([
    { held: a, k: 5 },
    { held: b, k: 0 },
    { held: a, k: 3 },
    { held: a, k: 4 },
  ]);
  t.same([...plan.entries()], [
    [a, 3],
    [b, 0],
  ]);
  t.equal(handBackPlan([]).size, 0, 'nothing unstarted: nothing handed back');
});

t.test('latency averages: weighted, bounded, least recently updated dropped first', async (t) => {
  t.equal(ewma(undefined, 100), 100, 'first sample as is');
  t.equal(ewma(100, 200), 120, 'then 0.8 old + 0.2 new');
  const avg = new LatencyAverages(3);
  avg.add('a', 10);
  avg.add('b', 20);
  avg.add('c', 30);
  avg.add('a', 20);
  avg.add('d', 40);
  t.equal(avg.size, 3, 'never more than the bound');
  t.equal(avg.get('b'), undefined, 'b was updated longest ago');
  t.equal(avg.get('a'), 12);
  t.equal(avg.get('d'), 40);
});
