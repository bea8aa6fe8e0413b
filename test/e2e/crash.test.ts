/**
 * Nothing lost when a delivery process dies or stops under load. Each test
 * counts, at the partner, by X-Postback-Id: every postback must arrive at
 * least once (lost = 0); duplicates are counted and reported.
 */
import t from 'tap';
import { startSink, type TestSink } from '../helpers/sink.js';
import { tally, until } from '../helpers/count.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { get } from '../helpers/http.js';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { freePort } from '../../bench/lib/ports.js';

const REQUESTS = 40;
const ITEMS = 100;
const TOTAL = REQUESTS * ITEMS;

async function load(stack: Stack, sink: TestSink): Promise<Set<string>> {
  const expected = new Set<string>();
  for (let r = 0; r < REQUESTS; r++) {
    const data = Array.from({ length: ITEMS }, (_, i) => ({ n: r * ITEMS + i }));
    const res = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/p?n={n}` }, data });
    if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
    for (let i = 0; i < ITEMS; i++) expected.add(`${res.json.id}:${i}`);
  }
  return expected;
}



const FAST_RECLAIM = {
  DELIVERY_TIMEOUT_MS: '1000',
  DELIVERY_VISIBILITY_MS: '7000',
  SHUTDOWN_TIMEOUT_MS: '8000',
  DELIVERY_CONCURRENCY: '64',
  DELIVERY_BATCH_SIZE: '16',
};

t.test('kill -9 of a delivery process under load loses nothing', async (t) => {
  // A partner that takes 5 ms per request keeps postbacks in flight at the kill.
  const sink = await startSink(() => ({ status: 200, delayMs: 5 }));
  t.teardown(() => sink.close());
  const stack = await startStack(FAST_RECLAIM, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const expected = await load(stack, sink);
  const victim = await stack.startDelivery();
  await stack.startDelivery();
  t.ok(await until(() => sink.received.length >= TOTAL / 4, 30_000), 'load under way');
  victim.proc.kill('SIGKILL');
  t.equal(await victim.exited, 'SIGKILL');
  t.ok(await until(() => tally(sink, expected).distinct >= TOTAL, 60_000), 'the survivor reclaims and finishes');
  const { distinct, duplicates, lost } = tally(sink, expected);
  t.comment(`kill -9: ${TOTAL} postbacks, ${distinct} delivered, lost ${lost}, duplicated ${duplicates}`);
  t.equal(lost, 0, 'lost: 0');
  // Sent again: the postbacks of every entry the victim held unacknowledged (in flight, finished
  // in its last few ms, the finished part of entries in progress), at most 4 x DELIVERY_CONCURRENCY.
  t.ok(duplicates <= 4 * 64, `duplicates (${duplicates}) bounded by what the killed process held`);
  t.ok(await stack.drained(), 'every entry acknowledged in the end');
});

t.test('SIGTERM under load: exit 0 within the bound, nothing lost, nothing twice', async (t) => {
  const sink = await startSink(() => ({ status: 200, delayMs: 5 }));
  t.teardown(() => sink.close());
  const stack = await startStack(FAST_RECLAIM, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const expected = await load(stack, sink);
  const first = await stack.startDelivery();
  t.ok(await until(() => sink.received.length >= TOTAL / 4, 30_000), 'load under way');
  const began = Date.now();
  const code = await first.stop('SIGTERM');
  const took = Date.now() - began;
  t.equal(code, 0, 'exit code 0');
  t.ok(took < 8_000, `stopped in ${took} ms (bound: SHUTDOWN_TIMEOUT_MS 8000)`);
  const atStop = sink.received.length;
  t.ok(atStop < TOTAL, 'work was left when it stopped');
  await stack.startDelivery();
  t.ok(await until(() => tally(sink, expected).distinct >= TOTAL, 60_000), 'a new process delivers the rest at once');
  const { distinct, duplicates, lost } = tally(sink, expected);
  t.comment(`SIGTERM: ${TOTAL} postbacks, ${distinct} delivered, lost ${lost}, duplicated ${duplicates}`);
  t.equal(lost, 0, 'lost: 0');
  t.equal(duplicates, 0, 'duplicated: 0 (in-flight finished, the rest handed back)');
});

t.test('SIGTERM with entries whose items go to several origins: nothing lost, nothing twice', async (t) => {
  // A placeholder in the host sends each item of an entry to its own
  // origin, each with its own queue: items of one entry start out of order.
  const sink = await startSink(() => ({ status: 200, delayMs: 800 }));
  t.teardown(() => sink.close());
  // The second origin: the same port on 127.0.0.2 (loopback too), counted with the sink's.
  const other = createServer((req, res) => {
    sink.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' } as (typeof sink.received)[number]);
    req.resume();
    setTimeout(() => res.end('ok'), 800);
  });
  other.listen(sink.port, '127.0.0.2');
  await once(other, 'listening');
  t.teardown(() => new Promise<void>((resolve) => {
    other.closeAllConnections();
    other.close(() => resolve());
  }));
  const stack = await startStack(
    { DELIVERY_TIMEOUT_MS: '3000', DELIVERY_VISIBILITY_MS: '11000', SHUTDOWN_TIMEOUT_MS: '8000', DELIVERY_CONNECTIONS_PER_ORIGIN: '4' },
    { deliveries: 0 },
  );
  t.teardown(() => stack.stop());
  const url = `http://{h}:${sink.port}/m?n={n}`;
  const expected = new Set<string>();
  // 20 for the first origin, then an entry with one item for it (queued behind them) and ten for the second.
  // At 4 connections and 800 ms an answer, the 20 keep n=100 unstarted for 4 s: far longer than from
  // the second origin's first request to the SIGTERM, which follows it at once.
  for (const data of [Array.from({ length: 20 }, (_, n) => ({ h: '127.0.0.1', n })), [{ h: '127.0.0.1', n: 100 }, ...Array.from({ length: 10 }, (_, i) => ({ h: '127.0.0.2', n: 101 + i }))]]) {
    const res = await stack.send({ endpoint: { method: 'GET', url }, data });
    t.equal(res.status, 202);
    for (let i = 0; i < data.length; i++) expected.add(`${res.json.id}:${i}`);
  }
  const first = await stack.startDelivery();
  t.ok(await until(() => sink.received.some((r) => r.url.includes('n=101')), 10_000), 'the second origin under way');
  t.equal(await first.stop('SIGTERM'), 0, 'exit code 0');
  await stack.startDelivery();
  t.ok(await until(() => tally(sink, expected).distinct >= expected.size, 30_000), 'a new process delivers the rest');
  t.ok(await stack.drained(15_000), 'every entry acknowledged (none left pending for a reclaim)');
  const { duplicates, lost } = tally(sink, expected);
  t.equal(lost, 0, 'lost: 0');
  t.equal(duplicates, 0, 'duplicated: 0');
});

t.test('a second signal forces the exit', async (t) => {
  const sink = await startSink(() => 'hang');
  t.teardown(() => sink.close());
  const stack = await startStack({ ...FAST_RECLAIM, DELIVERY_TIMEOUT_MS: '3000', SHUTDOWN_TIMEOUT_MS: '8000', DELIVERY_VISIBILITY_MS: '11000', DELIVERY_METRICS_PORT: String(await freePort()) });
  t.teardown(() => stack.stop());
  await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/hang?n={n}` }, data: [{ n: 1 }] });
  t.ok(await until(() => sink.received.length >= 1, 10_000), 'a request is hanging');
  const d = stack.deliveries[0]!;
  const ready = `http://127.0.0.1:${d.port('delivery-metrics')}/readyz`;
  d.proc.kill('SIGTERM');
  // The shutdown's first step closes the ops listener: then the first signal is being handled.
  t.ok(await until(() => get(ready).then(() => false, () => true), 5_000), 'the first signal started the shutdown');
  const began = Date.now();
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 1, 'exit code 1');
  t.ok(Date.now() - began < 2_000, 'at once');
});
