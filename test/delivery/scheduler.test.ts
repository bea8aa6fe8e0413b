import t from 'tap';
import { REQUESTS_PER_CONNECTION, Scheduler, SMALL_PARTNER_POSTBACKS } from '../../src/delivery/scheduler.js';

t.test('batches hold one origin each and respect the batch size', async (t) => {
  const s = new Scheduler<number>({ concurrency: 100, perOrigin: 100, batchSize: 3, requestsPerConnection: 1 });
  for (let i = 0; i < 5; i++) s.push('a', i);
  for (let i = 10; i < 12; i++) s.push('b', i);
  const batches = s.take();
  t.same(
    batches.map((b) => [b.origin, b.jobs]),
    [
      ['a', [0, 1, 2]],
      ['b', [10, 11]],
      ['a', [3, 4]],
    ],
  );
  t.same(s.size, { waiting: 0, inFlight: 7 });
});

t.test('total concurrency is never exceeded; completions free room', async (t) => {
  const s = new Scheduler<number>({ concurrency: 4, perOrigin: 4, batchSize: 10, requestsPerConnection: 1 });
  for (let i = 0; i < 10; i++) s.push('a', i);
  const first = s.take();
  t.same(first.map((b) => b.jobs), [[0, 1, 2, 3]]);
  t.same(s.take(), [], 'nothing more while full');
  s.done('a', 2);
  t.same(s.take().map((b) => b.jobs), [[4, 5]]);
  t.same(s.size, { waiting: 4, inFlight: 4 });
});

t.test('one origin cannot take more than its share: others keep flowing', async (t) => {
  const s = new Scheduler<string>({ concurrency: 10, perOrigin: 3, batchSize: 10, requestsPerConnection: 1 });
  for (let i = 0; i < 20; i++) s.push('slow', `s${i}`);
  for (let i = 0; i < 4; i++) s.push('fast', `f${i}`);
  const b = s.take();
  t.same(b.map((x) => [x.origin, x.jobs.length]), [
    ['slow', 3],
    ['fast', 3],
  ]);
  s.done('fast', 3);
  t.same(s.take().map((x) => [x.origin, x.jobs]), [['fast', ['f3']]], 'slow stays capped, fast goes on');
});

t.test('FIFO within an origin, across many takes', async (t) => {
  const s = new Scheduler<number>({ concurrency: 2, perOrigin: 2, batchSize: 2, requestsPerConnection: 1 });
  const seen: number[] = [];
  for (let i = 0; i < 9; i++) s.push('a', i);
  for (let round = 0; round < 10; round++) {
    for (const b of s.take()) {
      seen.push(...b.jobs);
      s.done(b.origin, b.jobs.length);
    }
  }
  t.same(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  t.same(s.size, { waiting: 0, inFlight: 0 });
});

t.test('drain hands back everything not started', async (t) => {
  const s = new Scheduler<number>({ concurrency: 2, perOrigin: 2, batchSize: 2, requestsPerConnection: 1 });
  for (let i = 0; i < 5; i++) s.push('a', i);
  s.push('b', 9);
  t.same(s.take().map((b) => b.jobs), [[0], [9]], 'two origins share the two slots');
  t.same(s.drain().sort(), [1, 2, 3, 4]);
  t.same(s.size, { waiting: 0, inFlight: 2 });
  t.same(s.take(), []);
});

t.test('readyLoad leaves out the backlog of an origin at its share', async (t) => {
  const s = new Scheduler<number>({ concurrency: 10, perOrigin: 3, batchSize: 10, requestsPerConnection: 1 });
  for (let i = 0; i < 8; i++) s.push('slow', i);
  t.equal(s.readyLoad(), 3, 'only what could start now counts');
  s.take();
  t.equal(s.size.inFlight, 3);
  t.equal(s.waitingFor('slow'), 5);
  t.equal(s.readyLoad(), 3, 'in flight at its share: its waiting jobs add nothing');
  s.push('fast', 100);
  t.equal(s.readyLoad(), 4);
});

t.test('fair share: the concurrency divided among the origins with work, 1 to perOrigin', async (t) => {
  const s = new Scheduler<string>({ concurrency: 8, perOrigin: 4, batchSize: 10, requestsPerConnection: 1 });
  for (let i = 0; i < 10; i++) s.push('alone', `a${i}`);
  t.equal(s.share(), 4, 'one origin: its full perOrigin');
  t.same(s.take().map((b) => b.jobs.length), [4]);
  for (const o of ['b', 'c', 'd']) for (let i = 0; i < 3; i++) s.push(o, `${o}${i}`);
  t.equal(s.share(), 2, 'four origins with work: 8 / 4');
  t.same(s.take().map((b) => [b.origin, b.jobs.length]), [['b', 2], ['c', 2]], '"alone" already holds more than its share now');
  const many = new Scheduler<number>({ concurrency: 8, perOrigin: 4, batchSize: 10, requestsPerConnection: 1 });
  for (let o = 0; o < 20; o++) for (let i = 0; i < 10; i++) many.push(`o${o}`, i);
  t.equal(many.share(), 1, 'more origins than slots: one each');
  const first = many.take();
  t.same([first.length, first.every((b) => b.jobs.length === 1)], [8, true], 'eight origins, one postback each');
});

t.test('under load, a small partner gets one connection for up to 16 postbacks, then one more per eight: its connections carry them in turn', async (t) => {
  const s = new Scheduler<number>({ concurrency: 1024, perOrigin: 64, batchSize: 64, lightLoad: 0 });
  t.equal(SMALL_PARTNER_POSTBACKS, 16);
  t.equal(REQUESTS_PER_CONNECTION, 8);
  const cases: [number, number][] = [
    [1, 1],
    [8, 1],
    [10, 1],
    [16, 1],
    [17, 2],
    [24, 2],
    [25, 3],
    [100, 12],
    [520, 64],
    [1000, 64],
  ];
  for (const [jobs, want] of cases) {
    const origin = `o${jobs}`;
    for (let i = 0; i < jobs; i++) s.push(origin, i);
    const batch = s.take().find((b) => b.origin === origin);
    t.equal(batch?.jobs.length, want, `${jobs} postbacks: ${want} at once`);
  }
});

t.test('lightly loaded, no postback waits for a connection: a trickle and a burst of ten start at once', async (t) => {
  const s = new Scheduler<number>({ concurrency: 1024, perOrigin: 64, batchSize: 64 });
  // A trickle: a second postback arrives while the first is in flight.
  s.push('partner', 1);
  t.same(s.take().map((b) => b.jobs), [[1]]);
  s.push('partner', 2);
  t.same(s.take().map((b) => b.jobs), [[2]], 'not held back behind the one in flight');
  s.done('partner', 2);
  // A request of ten items: ten at once, not one connection for all ten.
  for (let i = 0; i < 10; i++) s.push('partner', i);
  t.equal(s.take()[0]?.jobs.length, 10);
  s.done('partner', 10);
  t.same(s.size, { waiting: 0, inFlight: 0 });
});

t.test('the light-load rule ends where the process holds more than concurrency / 8 postbacks: then the connection economy', async (t) => {
  const s = new Scheduler<number>({ concurrency: 1024, perOrigin: 64, batchSize: 64 });
  // 128 held (the default bound: 1024 / 8): still light.
  for (let i = 0; i < 118; i++) s.push('busy', i);
  for (let i = 0; i < 10; i++) s.push('small', i);
  const light = new Map(s.take().map((b) => [b.origin, b.jobs.length]));
  t.equal(light.get('small'), 10, 'light: the small partner gets all ten at once');
  t.equal(light.get('busy'), 64, 'the busy one its perOrigin');
  // One more postback held: the economy applies to what starts from now on.
  const h = new Scheduler<number>({ concurrency: 1024, perOrigin: 64, batchSize: 64 });
  for (let i = 0; i < 119; i++) h.push('busy', i);
  for (let i = 0; i < 10; i++) h.push('small', i);
  const loaded = new Map(h.take().map((b) => [b.origin, b.jobs.length]));
  t.equal(loaded.get('small'), 1, 'loaded: ten postbacks ride one connection');
  t.equal(loaded.get('busy'), 14, 'and 119 ride fourteen (one for the first 16, one per 8 beyond)');
});

t.test('a draining backlog keeps its connections: no slow tail', async (t) => {
  const s = new Scheduler<number>({ concurrency: 1024, perOrigin: 64, batchSize: 64 });
  for (let i = 0; i < 640; i++) s.push('slow', i);
  const inFlight: number[] = [];
  for (let round = 0; round < 12; round++) {
    const started = s.take().reduce((n, b) => n + b.jobs.length, 0);
    inFlight.push(started);
    s.done('slow', started);
  }
  t.same(inFlight.slice(0, 10), Array(10).fill(64), '64 at once until the end, however little is left');
  t.same(inFlight.slice(10), [0, 0]);
});

t.test('one origin\'s waiting jobs can be taken out (its partner was paused); the others go on', async (t) => {
  const s = new Scheduler<string>({ concurrency: 4, perOrigin: 2, batchSize: 10, requestsPerConnection: 1 });
  for (let i = 0; i < 5; i++) s.push('paused', `p${i}`);
  for (let i = 0; i < 3; i++) s.push('other', `o${i}`);
  t.same(s.take().map((b) => [b.origin, b.jobs]), [['paused', ['p0', 'p1']], ['other', ['o0', 'o1']]]);
  t.same(s.drainOrigin('paused'), ['p2', 'p3', 'p4']);
  t.same(s.drainOrigin('paused'), [], 'nothing left');
  t.same(s.size, { waiting: 1, inFlight: 4 });
  s.done('other', 2);
  t.same(s.take().map((b) => [b.origin, b.jobs]), [['other', ['o2']]]);
  s.done('paused', 2);
  s.push('paused', 'p5');
  t.same(s.take().map((b) => b.jobs), [['p5']], 'the origin comes back when it gets work again');
});
