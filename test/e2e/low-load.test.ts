/**
 * At low load nothing waits for a connection (scheduler.ts, light load):
 * a postback arriving while another to the same partner is in flight goes
 * out at once, and a request of ten items reaches the partner as ten
 * requests at once, not in rounds on two connections. The partner here
 * holds every answer until it has seen what the test waits for, so the
 * test counts what was in flight together; it measures no time.
 */
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import t from 'tap';
import { startStack } from '../helpers/stack.js';
import { until } from '../helpers/count.js';

interface HoldingPartner {
  origin: string;
  /** Requests received so far. */
  readonly received: number;
  /** The most requests it held unanswered at once. */
  readonly maxHeld: number;
  /** Answers everything held (200), and from now on answers at once. */
  release(): void;
  /** Holds answers again, its most held counted afresh. */
  hold(): void;
  close(): Promise<void>;
}

async function holdingPartner(): Promise<HoldingPartner> {
  const held: ServerResponse[] = [];
  let received = 0;
  let maxHeld = 0;
  let holding = true;
  const server = createServer((req, res) => {
    received++;
    req.resume();
    req.on('end', () => {
      if (!holding) {
        res.end('ok');
        return;
      }
      held.push(res);
      maxHeld = Math.max(maxHeld, held.length);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const release = () => {
    holding = false;
    for (const res of held.splice(0)) res.end('ok');
  };
  return {
    origin: `http://127.0.0.1:${port}`,
    get received() {
      return received;
    },
    get maxHeld() {
      return maxHeld;
    },
    release,
    hold() {
      holding = true;
      maxHeld = 0;
    },
    async close() {
      release();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

for (const workers of ['0', '2']) {
  t.test(`low load, DELIVERY_WORKERS=${workers}: a second postback does not wait for the first's answer; ten items go out at once`, async (t) => {
    const partner = await holdingPartner();
    t.teardown(() => partner.close());
    // No attempt times out within the test (30 s): what went out while
    // another was held went out beside it, not after its deadline.
    const stack = await startStack({ DELIVERY_WORKERS: workers, DELIVERY_TIMEOUT_MS: '30000', DELIVERY_VISIBILITY_MS: '65000', SHUTDOWN_TIMEOUT_MS: '35000' });
    t.teardown(async () => {
      partner.release();
      await stack.stop();
    });
    const url = `${partner.origin}/cb?n={n}`;

    // A trickle: one postback is in flight (held), the next arrives.
    t.equal((await stack.send({ endpoint: { method: 'GET', url }, data: [{ n: 1 }] })).status, 202);
    t.ok(await until(() => partner.received >= 1), 'the first arrived');
    t.equal((await stack.send({ endpoint: { method: 'GET', url }, data: [{ n: 2 }] })).status, 202);
    t.ok(await until(() => partner.received >= 2, 10_000), 'the second arrived while the first was still unanswered');
    t.equal(partner.maxHeld, 2, 'both in flight together');
    partner.release();
    t.ok(await stack.drained(), 'both recorded');

    // A request of ten items to a partner that answers nothing until it has them all.
    partner.hold();
    const before = partner.received;
    const ten = await stack.send({ endpoint: { method: 'GET', url }, data: Array.from({ length: 10 }, (_, n) => ({ n: 10 + n })) });
    t.equal(ten.status, 202);
    t.ok(await until(() => partner.received >= before + 10, 10_000), 'all ten arrived before any was answered');
    t.equal(partner.maxHeld, 10, 'ten in flight at once');
    partner.release();
    t.ok(await stack.drained(), 'all recorded');
  });
}

