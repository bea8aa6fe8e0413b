/**
 * A slow but healthy partner through real processes: one that always
 * answers within DELIVERY_TIMEOUT_MS never gets a timeout, a duplicate or
 * a dead letter, however many of its postbacks wait, because a timeout
 * measures the attempt (not the wait for a connection) and no more is sent
 * to an origin at once than its connections carry.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { waitForLines } from '../helpers/log.js';

for (const workers of ['0', '2']) {
  t.test(`a partner answering in 400 ms with a 1 s timeout, DELIVERY_WORKERS=${workers}: no timeouts, no duplicates`, async (t) => {
    const total = workers === '0' ? 640 : 320;
    const sink = await startSink(() => ({ status: 200, delayMs: 400 }));
    t.teardown(() => sink.close());
    const stack = await startStack(
      { DELIVERY_TIMEOUT_MS: '1000', DELIVERY_VISIBILITY_MS: '7000', DELIVERY_MAX_ATTEMPTS: '3', DELIVERY_WORKERS: workers, SHUTDOWN_TIMEOUT_MS: '5000' },
      { deliveries: 0 },
    );
    t.teardown(() => stack.stop());
    for (let i = 0; i < total; i += 64) {
      const data = Array.from({ length: 64 }, (_, k) => ({ n: i + k }));
      t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/slow?n={n}` }, data })).status, 202);
    }
    await stack.startDelivery();
    const lines = await waitForLines(stack.env.LOG_DIR!, (ls) => ls.filter((l) => l.outcome === 'delivered').length >= total, 60_000);
    t.ok(await stack.drained(), 'all acknowledged');
    const outcomes = new Map<string, number>();
    for (const l of lines) outcomes.set(`${l.outcome} ${l.errorCode ?? ''}`.trim(), (outcomes.get(`${l.outcome} ${l.errorCode ?? ''}`.trim()) ?? 0) + 1);
    t.same(Object.fromEntries(outcomes), { delivered: total }, 'every attempt delivered at once: no timeout, no retry');
    t.equal(sink.received.length, total, 'the partner saw each postback once');
    t.ok(sink.maxInFlight <= 64, `at most DELIVERY_CONNECTIONS_PER_ORIGIN (64) at once: ${sink.maxInFlight}`);
    t.equal(await stack.redis.client().xlen(`${stack.env.REDIS_PREFIX}:{0}:dead`), 0, 'no dead letters');
  });
}
