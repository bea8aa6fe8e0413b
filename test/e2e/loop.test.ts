/**
 * A postback aimed at this service's own ingest cannot amplify: the data
 * object is flat, so it can never be a valid ingest request; the attempt
 * fails for good (405 for GET, 400 for POST) and nothing new is queued.
 */
import t from 'tap';
import { startStack } from '../helpers/stack.js';
import { waitForLines } from '../helpers/log.js';

t.test('postbacks to our own ingest fail once and queue nothing', async (t) => {
  const stack = await startStack({ DELIVERY_BACKOFF_BASE_MS: '50' });
  t.teardown(() => stack.stop());
  const c = stack.redis.client();
  const self = stack.ingestUrl;
  const evil = {
    endpoint: { method: 'POST', url: `${self}/i` },
    data: [
      { endpoint: 'x', data: 'y' },
      { url: `${self}/i`, method: 'POST' },
    ],
  };
  const viaGet = { endpoint: { method: 'GET', url: `${self}/ingest.php?endpoint={e}` }, data: [{ e: 'x' }] };
  const r1 = await stack.send(evil);
  const r2 = await stack.send(viaGet);
  t.equal(r1.status, 202);
  t.equal(r2.status, 202);
  const lines = await waitForLines(stack.env.LOG_DIR!, (ls) => ls.length >= 3);
  // Once every postback has left the system (count 0), no attempt can follow.
  t.ok(await stack.drained(), 'every postback finished');
  const all = (await waitForLines(stack.env.LOG_DIR!, () => true)).filter(Boolean);
  t.equal(all.length, 3, 'three attempts in all: one per postback, no more');
  t.same(
    all.map((l) => [l.status, l.outcome]).sort(),
    [
      [400, 'dead'],
      [400, 'dead'],
      [405, 'dead'],
    ],
  );
  t.match(lines.find((l) => l.status === 400)!.body, /invalid_request/);
  t.equal(await c.get(`${stack.env.REDIS_PREFIX}:{0}:count`), '0', 'nothing left queued');
  t.equal(await c.xlen(`${stack.env.REDIS_PREFIX}:{0}:dead`), 3);
});
