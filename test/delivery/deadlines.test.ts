/** Per-attempt deadlines on one timer: due in start order, never early, finished attempts leave at once. */
import t from 'tap';
import { Deadlines, type Expirable } from '../../src/delivery/deadlines.js';

function attempt(): Expirable & { timedOutAt: number | null; promise: Promise<number> } {
  let done!: (at: number) => void;
  const a = {
    timedOutAt: null as number | null,
    promise: new Promise<number>((resolve) => (done = resolve)),
    timeout() {
      a.timedOutAt = performance.now();
      done(a.timedOutAt);
    },
  };
  return a;
}

t.test('each attempt times out at its own deadline, not before', async (t) => {
  const deadlines = new Deadlines(60);
  const first = attempt();
  const started = performance.now();
  deadlines.add(first);
  await new Promise((r) => setTimeout(r, 30));
  const second = attempt();
  const secondStarted = performance.now();
  deadlines.add(second);
  const firstAt = await first.promise;
  t.ok(firstAt - started >= 59, `the first after its 60 ms (${(firstAt - started).toFixed(1)})`);
  t.equal(second.timedOutAt, null, 'the second, started later, is still running');
  const secondAt = await second.promise;
  t.ok(secondAt - secondStarted >= 59, `the second after its own 60 ms (${(secondAt - secondStarted).toFixed(1)})`);
});

t.test('a finished attempt never times out; groups do not pile up', async (t) => {
  const deadlines = new Deadlines(40);
  const finished = Array.from({ length: 1000 }, () => attempt());
  const tickets = finished.map((a) => deadlines.add(a));
  finished.forEach((a, i) => deadlines.done(tickets[i] as Set<Expirable>, a));
  const late = attempt();
  deadlines.add(late);
  await late.promise;
  t.ok(finished.every((a) => a.timedOutAt === null), 'none of the 1000 finished ones timed out');
  t.ok(deadlines.size <= 1, `the groups were dropped once due (${deadlines.size} left)`);
});
