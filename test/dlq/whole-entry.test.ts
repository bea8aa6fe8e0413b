/**
 * A whole queue entry in the dead letters: what a delivery process from
 * before entries v2 (d4f6792 and older) writes for every v2 entry it
 * reads while it runs beside a newer ingest or delivery during an upgrade
 * ("undecodable entry: dead-lettered", the blob kept as is). Those
 * postbacks were never attempted; `dlq` must list them one by one and
 * replay or purge them, whole or in part, each once.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { runCli } from '../helpers/procs.js';
import { until } from '../helpers/count.js';

t.test('an entry an older delivery process dead-lettered whole is listed, replayed and purged by postback', async (t) => {
  const sink = await startSink(() => ({ status: 200 }));
  t.teardown(() => sink.close());
  // No delivery yet: the entries stay in the stream, as the old process read them.
  const stack = await startStack({}, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const c = stack.redis.client();
  const p = stack.env.REDIS_PREFIX;
  const stream = `${p}:{0}:stream`;
  const dead = `${p}:{0}:dead`;
  const ids = new Set<string>();
  for (const n of [5, 3]) {
    const r = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/cb?n={n}` }, data: Array.from({ length: n }, (_, k) => ({ n: k })) });
    t.equal(r.status, 202);
    const id = (JSON.parse(r.body) as { id: string }).id;
    for (let k = 0; k < n; k++) ids.add(`${id}:${k}`);
  }
  // What the pre-v2 finalize script did with an entry it could not decode:
  // the blob as is to the dead letters and the entry off the queue, its
  // postbacks not counted finished (they stay in the shard's count).
  const entries = await c.xrangeBuffer(stream, '-', '+');
  t.equal(entries.length, 2, 'two entries queued');
  for (const [id, fields] of entries) {
    await c.xadd(dead, '*', 'm', fields[1] as Buffer);
    await c.xdel(stream, id.toString());
  }
  const count = async () => Number((await c.get(`${p}:{0}:count`)) ?? 0);
  t.equal(await count(), 8, 'still counted');

  const list = async () => {
    const r = await runCli(['dlq', 'list', '--json'], stack.env);
    t.equal(r.code, 0, 'dlq list exits 0');
    return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string | null; errorCode: string; url: string; template: string; outcome: string });
  };
  const before = await list();
  t.same(new Set(before.map((l) => l.id)), ids, 'every postback of both entries listed under its own id');
  t.ok(before.every((l) => l.errorCode === 'PB_ERR_CODEC' && l.outcome === 'dead' && l.template === `${sink.origin}/cb?n={n}`), 'PB_ERR_CODEC, with its template');
  const filtered = await runCli(['dlq', 'replay', '--error', 'PB_ERR_CODEC', '--dry-run'], stack.env);
  t.match(filtered.stdout, /would be replayed: 8/, 'filters see them');

  // One postback of the 5-item entry replayed alone, one purged alone: the other three stay, as dead letters of their own.
  const [first, second] = [...ids].sort();
  t.equal((await runCli(['dlq', 'replay', first as string], stack.env)).code, 0);
  t.equal((await runCli(['dlq', 'purge', second as string], stack.env)).code, 0);
  const after = await list();
  t.equal(after.length, 6, 'six left');
  t.equal(await count(), 4, 'counted: the replayed one and the untouched entry; not the purged one nor the four left as dead letters');
  t.notOk(after.some((l) => l.id === first || l.id === second), 'neither the replayed nor the purged one');
  const r = await runCli(['dlq', 'replay', '--all'], stack.env);
  t.match(r.stdout, /replayed 6/);
  t.equal(await c.xlen(dead), 0, 'no dead letters left');
  t.equal(await count(), 7, 'the seven replayed counted, once each');

  await stack.startDelivery();
  const want = new Set([...ids].filter((id) => id !== second));
  t.ok(await until(() => new Set(sink.received.map((q) => String(q.headers['x-postback-id']))).size === want.size, 20_000), 'the seven replayed arrive');
  t.ok(await stack.drained(), 'the queue drains');
  const got = sink.received.map((q) => String(q.headers['x-postback-id']));
  t.same(new Set(got), want, 'exactly the replayed ones');
  t.equal(got.length, want.size, 'each once');
});
