/**
 * The queue history a newly opened dashboard starts from (queue-history.ts,
 * pure): at most one reading a second, none older than QUEUE_HISTORY_S,
 * so its size is bounded by that constant however long the monitor runs.
 */
import t from 'tap';
import { QUEUE_HISTORY_S, QueueHistory } from '../../src/monitor/queue-history.js';
import type { QueueState } from '../../src/queue/state.js';

const state = (postbacks: number, deadLetters = 0, lagSeconds = 0): QueueState => ({
  postbacks,
  freshEntries: 0,
  retryEntries: 0,
  delayed: 0,
  retries: 0,
  deadLetters,
  lagSeconds,
  pending: 0,
  consumers: 1,
  groupPresent: true,
});

const T0 = 1_800_000_000_000;

t.test('readings in the shape of the charts, oldest first', async (t) => {
  const h = new QueueHistory();
  h.record(state(5, 2, 0.5), T0);
  h.record(state(7, 3, 1.5), T0 + 1_000);
  t.same(h.since(60, T0 + 1_500), [
    { t: T0 / 1000, postbacks: 5, lagSeconds: 0.5, deadLetters: 2 },
    { t: T0 / 1000 + 1, postbacks: 7, lagSeconds: 1.5, deadLetters: 3 },
  ]);
});

t.test('one reading a second: a later one in the same second replaces it, an older one is dropped', async (t) => {
  const h = new QueueHistory();
  h.record(state(1), T0 + 100);
  h.record(state(2), T0 + 900);
  t.same(h.since(60, T0 + 1_000).map((s) => s.postbacks), [2]);
  h.record(state(3), T0 - 2_000);
  t.same(h.since(60, T0 + 1_000).map((s) => s.postbacks), [2], 'a slow read that comes back after a newer one');
});

t.test('bounded: QUEUE_HISTORY_S readings at most, however long it runs', async (t) => {
  const h = new QueueHistory();
  for (let i = 0; i < 10 * QUEUE_HISTORY_S; i++) {
    h.record(state(i), T0 + i * 1_000);
    h.record(state(i), T0 + i * 1_000 + 500); // a scrape in the same second
  }
  t.equal(h.size, QUEUE_HISTORY_S, `${QUEUE_HISTORY_S} readings held`);
  const now = T0 + (10 * QUEUE_HISTORY_S - 1) * 1_000;
  const all = h.since(QUEUE_HISTORY_S, now);
  t.equal(all.length, QUEUE_HISTORY_S);
  t.equal(all[0]?.postbacks, 9 * QUEUE_HISTORY_S, 'the newest kept, the oldest gone');
  t.equal(h.since(10, now).length, 10, 'since() gives the last seconds asked for');
  t.equal(h.since(10 * QUEUE_HISTORY_S, now).length, QUEUE_HISTORY_S, 'never more than it holds');
});

t.test('readings far apart (an idle monitor): the old ones leave by age', async (t) => {
  const h = new QueueHistory();
  h.record(state(1), T0);
  h.record(state(2), T0 + 60_000);
  h.record(state(3), T0 + (QUEUE_HISTORY_S + 30) * 1_000);
  t.equal(h.size, 2, 'the reading older than QUEUE_HISTORY_S is gone');
  t.same(h.since(QUEUE_HISTORY_S, T0 + (QUEUE_HISTORY_S + 100) * 1_000).map((s) => s.postbacks), [3], 'and since() leaves out what aged since');
});
