/**
 * A long backlog through a real delivery process with a small heap: what
 * it holds is bounded by DELIVERY_CONCURRENCY and the batch sizes, not by
 * the backlog, so it drains 150,000 postbacks of one origin (whose queue
 * never empties meanwhile) within a 48 MB heap.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { until } from '../helpers/count.js';

const TOTAL = 150_000;
// What this checks is memory, not speed: the drain takes about 40 s on a
// quiet 2-core machine and several times that on a loaded one, so the file
// gets more than the suite's 180 s and the drain 200 s.
t.setTimeout(280_000);

t.test('a backlog of 150,000 for one origin drains within a 48 MB heap', async (t) => {
  const sink = await startSink(() => ({ status: 200 }), { keep: false });
  t.teardown(() => sink.close());
  const stack = await startStack({ INGEST_MAX_QUEUE: '0' }, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const data = Array.from({ length: 100 }, (_, n) => ({ n, click: `c${n}-0123456789abcdef`, payout: 1.25 }));
  let queued = 0;
  for (let i = 0; i < TOTAL / 100; i += 10) {
    const sends = Array.from({ length: 10 }, () => stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/b?n={n}&c={click}&p={payout}` }, data }));
    for (const r of await Promise.all(sends)) if (r.status === 202) queued += r.json.accepted;
  }
  t.equal(queued, TOTAL, 'the backlog is queued before delivery starts');
  const delivery = await stack.startDelivery({ NODE_OPTIONS: '--max-old-space-size=48' });
  const done = await until(() => sink.ids.size >= TOTAL || delivery.proc.exitCode !== null, 200_000);
  t.ok(done, 'finished or died');
  t.equal(delivery.proc.exitCode, null, `the delivery process is alive${delivery.proc.exitCode !== null ? `: ${delivery.output().slice(-400)}` : ''}`);
  t.equal(sink.ids.size, TOTAL, `every postback delivered (${sink.ids.size})`);
  t.ok(await stack.drained(), 'and acknowledged');
});
