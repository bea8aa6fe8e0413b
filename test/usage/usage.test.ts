/**
 * `usage`: key names map to their families (a table), and against known
 * contents in a real Redis the command reports each family's keys, items
 * and memory, as JSON and as a table.
 */
import t from 'tap';
import { familyOf, FAMILIES } from '../../src/usage/families.js';
import { startStack } from '../helpers/stack.js';
import { runCli } from '../helpers/procs.js';
import { post } from '../helpers/http.js';
import { until } from '../helpers/count.js';

t.test('every key name maps to its family', async (t) => {
  const table: [string, string | null][] = [
    ['pb:{0}:stream', 'stream'],
    ['pb:{3}:retry', 'retry'],
    ['pb:{0}:delayed', 'delayed'],
    ['pb:{0}:retries', 'retries'],
    ['pb:{0}:dead', 'dead'],
    ['pb:{0}:count', 'count'],
    ['pb:{0}:held', 'held'],
    ['pb:{0}:held:https://a.example', 'held'],
    ['pb:{0}:tpl:abc', 'templates'],
    ['pb:{1}:idem:0f0f', 'idempotency'],
    ['pb:{0}:stats:1795850000', 'stats'],
    ['pb:{ctl}:partners', 'control'],
    ['pb:{ctl}:o:https://a.example:rate', 'control'],
    ['pb:{0}:something-else', null],
    ['other:{0}:stream', null],
    ['pbx:{0}:stream', null],
  ];
  for (const [key, want] of table) t.equal(familyOf(key, 'pb'), want, key);
  t.ok(FAMILIES.every((f) => f.bound.length > 0 && f.atBound.length > 0), 'each family says what bounds it and what happens there');
});

t.test('usage against known contents', async (t) => {
  const stack = await startStack({}, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const send = (body: object, headers: Record<string, string> = {}) => post(`${stack.ingestUrl}/i`, JSON.stringify(body), { 'content-type': 'application/json', ...headers });
  const a = { method: 'GET', url: 'http://127.0.0.1:9/a?n={n}' };
  t.equal((await send({ endpoint: a, data: Array.from({ length: 100 }, (_, n) => ({ n })) })).status, 202, '100 postbacks: 2 entries');
  t.equal((await send({ endpoint: a, data: [{ n: 1 }] }, { 'idempotency-key': 'k-1' })).status, 202, 'a keyed request: 1 entry');
  t.equal((await send({ endpoint: { method: 'GET', url: 'http://127.0.0.1:9/b?n={n}', delay_ms: 60_000 }, data: [{ n: 1 }] })).status, 202, 'a delayed one');
  const redis = stack.redis.client();
  for (let i = 0; i < 5; i++) await redis.xadd(`${stack.env.REDIS_PREFIX}:{0}:dead`, '*', 'm', `d${i}`);
  // Ingest writes its statistics once a second: wait for the first bucket.
  t.ok(await until(async () => (await redis.keys(`${stack.env.REDIS_PREFIX}:{0}:stats:*`)).length > 0, 5_000), 'a statistics bucket was written');
  const r = await runCli(['usage', '--json'], stack.env);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { families: { id: string; keys: number; items: number; bytes: number }[]; usedBytes: number };
  const of = (id: string) => out.families.find((f) => f.id === id);
  t.match(of('stream'), { keys: 1, items: 3 });
  t.match(of('delayed'), { keys: 1, items: 1 });
  t.match(of('dead'), { keys: 1, items: 5 });
  t.match(of('templates'), { keys: 2, items: 2 });
  t.match(of('idempotency'), { keys: 1, items: 1 });
  t.match(of('count'), { keys: 1 });
  t.ok((of('stats')?.keys ?? 0) >= 1, 'statistics buckets');
  t.ok(out.families.every((f) => f.keys === 0 || f.bytes > 0), 'memory measured for each family present');
  t.ok(out.usedBytes > 0);
  const text = await runCli(['usage'], stack.env);
  t.match(text.stdout, /^family +keys +items +memory +bytes\/item +bound/m);
  t.match(text.stdout, /^dead +1 +5 +[\d.]+ k?B +\d+ +DLQ_MAX/m);
  t.match(text.stdout, /Redis used_memory/);
  t.equal((await runCli(['usage', '--bogus'], stack.env)).code, 2, 'bad usage exits 2');
});
