/**
 * `dlq` through real processes: usage errors, filters over a mixed set of
 * dead letters, a replay while the partner still fails (it takes what was
 * there when it started, each once), and `purge --all` counting exactly
 * what it deleted while new dead letters arrive, and on a full Redis.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startSink, type TestSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { CLI, runCli } from '../helpers/procs.js';
import { until } from '../helpers/count.js';
import { freePort } from '../../bench/lib/ports.js';

const perId = (sink: TestSink): Map<string, number> => {
  const seen = new Map<string, number>();
  for (const r of sink.received) {
    const id = String(r.headers['x-postback-id']);
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
};

t.test('dlq against a mixed set of dead letters', async (t) => {
  const notFound = await startSink(() => ({ status: 404 }));
  t.teardown(() => notFound.close());
  const broken = await startSink(() => ({ status: 500 }));
  t.teardown(() => broken.close());
  const refusing = `http://127.0.0.1:${await freePort()}`;
  const stack = await startStack({ DELIVERY_MAX_ATTEMPTS: '1' });
  t.teardown(() => stack.stop());
  const c = stack.redis.client();
  const deadKey = `${stack.env.REDIS_PREFIX}:{0}:dead`;
  const dead = () => c.xlen(deadKey);
  const send = async (origin: string, n: number, tag: string) => {
    for (let i = 0; i < n; i += 100) {
      const data = Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ n: i + k }));
      t.equal((await stack.send({ endpoint: { method: 'GET', url: `${origin}/${tag}?n={n}` }, data })).status, 202);
    }
  };
  await send(notFound.origin, 2500, 'a');
  t.ok(await until(async () => (await dead()) === 2500, 30_000), '2,500 dead letters from the 404 partner');
  const between = Date.now();
  await send(broken.origin, 10, 'b');
  await send(refusing, 5, 'c');
  t.ok(await until(async () => (await dead()) === 2515, 30_000), '15 more from the 500 and the refusing partners');
  const env = stack.env;
  const lines = async (args: string[]) => {
    const r = await runCli(['dlq', 'list', '--json', ...args], env);
    t.equal(r.code, 0, `list ${args.join(' ')}`);
    return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; status: number | null; errorCode: string | null });
  };

  // The commands of these two subtests change nothing (usage errors, lists,
  // a dry run): they run side by side, each checked as before.
  t.test('bad usage: the usage text and exit 2', async (t) => {
    const usages = [['list', '--foo'], ['list', '--limit', '-1'], ['list', '--limit', ''], ['replay'], ['purge', 'x:1', '--all'], ['replay', '--status', 'teapot'], ['frobnicate']];
    const results = await Promise.all(usages.map((args) => runCli(['dlq', ...args], env)));
    usages.forEach((args, i) => {
      const r = results[i]!;
      t.equal(r.code, 2, `dlq ${args.join(' ')}: exit 2`);
      t.match(r.stderr, /^dlq: .+\nusage: node dist\/cli\.js dlq/, 'a reason, then the usage');
    });
    t.equal(await dead(), 2515, 'nothing changed');
  });

  t.test('filters', async (t) => {
    const [byOrigin, byPattern, fivexx, refused, none, some, since, until_, expired, limited, dry] = await Promise.all([
      lines(['--origin', notFound.origin]),
      lines(['--origin', 'http://*.example.com']),
      lines(['--status', '5xx']),
      lines(['--error', 'PB_ERR_CONNECT']),
      lines(['--status', 'none']),
      lines(['--status', '404,5xx']),
      lines(['--since', String(between)]),
      lines(['--until', String(between)]),
      lines(['--outcome', 'expired']),
      lines(['--status', '404', '--limit', '7']),
      runCli(['dlq', 'replay', '--origin', notFound.origin, '--dry-run'], env),
    ]);
    t.equal(byOrigin.length, 2500);
    t.equal(byPattern.length, 0);
    t.same([fivexx.length, fivexx.every((l) => l.status === 500)], [10, true]);
    t.same([refused.length, refused.every((l) => l.status === null)], [5, true]);
    t.equal(none.length, 5);
    t.equal(some.length, 2510);
    t.equal(since.length, 15, '--since: only what died after');
    t.equal(until_.length, 2500);
    t.equal(expired.length, 0);
    t.equal(limited.length, 7);
    t.equal(dry.code, 0);
    t.match(dry.stdout, 'would be replayed: 2500');
    t.equal(await dead(), 2515, 'a dry run changes nothing');
  });

  t.test('replay --all while the partners still fail: each dead letter once, and it ends', async (t) => {
    notFound.received.length = 0;
    broken.received.length = 0;
    const replay = await runCli(['dlq', 'replay', '--all'], env, 60_000);
    t.notOk(replay.timedOut, 'it finished');
    t.equal(replay.code, 0);
    t.match(replay.stdout, 'replayed 2515');
    t.ok(await until(async () => (await dead()) === 2515 && (await stack.drained(100)), 30_000), 'they died again, once');
    const a = perId(notFound);
    t.equal(a.size, 2500, 'every 404 postback tried again');
    t.ok([...a.values()].every((n) => n === 1), 'each once');
    t.equal(perId(broken).size, 10);
  });

  // At 3 am: `dlq list --json | head`. The reader closes the pipe early.
  t.test('a reader that stops early (| head): the list ends quietly, exit 0', async (t) => {
    const child = spawn(process.execPath, [CLI, 'dlq', 'list', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const [code] = (await once(child, 'exit')) as [number | null];
    t.equal(code, 0, 'exit 0');
    t.notMatch(stderr, /EPIPE|Unhandled|at /, `no stack trace: ${stderr.slice(0, 300)}`);
    t.equal(await dead(), 2515, 'nothing changed');
  });

  t.test('replay into a full Redis: a clear word, nothing replayed', async (t) => {
    const admin = stack.redis.client();
    const before = await dead();
    await admin.config('SET', 'maxmemory', '1');
    try {
      const r = await runCli(['dlq', 'replay', '--status', '5xx'], env);
      t.equal(r.code, 1);
      t.match(r.stderr, /Redis is full \(maxmemory\): none of this page of 10 dead letters was replayed/);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    t.equal(await dead(), before, 'every dead letter still there');
  });

  t.test('replay by filter takes only those', async (t) => {
    broken.received.length = 0;
    const r = await runCli(['dlq', 'replay', '--status', '5xx'], env);
    t.match(r.stdout, 'replayed 10');
    t.ok(await until(async () => broken.received.length === 10 && (await stack.drained(100)), 30_000));
    t.equal(await dead(), 2515);
  });

  t.test('purge --all counts exactly what it deleted while dead letters arrive', async (t) => {
    let writing = true;
    let added = 0;
    const writer = (async () => {
      const w = stack.redis.client();
      while (writing) {
        await w.xadd(deadKey, '*', 'm', 'x');
        added++;
      }
    })();
    await until(() => added > 100, 5_000);
    const purge = await runCli(['dlq', 'purge', '--all'], env);
    writing = false;
    await writer;
    const purged = Number(/purged (\d+)/.exec(purge.stdout)?.[1]);
    t.equal(purge.code, 0);
    t.equal(purged + (await dead()), 2515 + added, `purged ${purged} + left ${await dead()} = all there ever were`);
  });

  t.test('purge --all into a full Redis: it purges (what a full Redis needs), counted', async (t) => {
    const admin = stack.redis.client();
    for (let i = 0; i < 50; i++) await admin.xadd(deadKey, '*', 'm', 'x');
    const before = await dead();
    await admin.config('SET', 'maxmemory', '1');
    try {
      await t.rejects(admin.set('another', 'key'), /OOM/, 'Redis is full');
      const r = await runCli(['dlq', 'purge', '--all'], env);
      t.equal(r.code, 0, r.stderr);
      t.match(r.stdout, `purged ${before}`);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    t.equal(await dead(), 0);
  });
});

t.test('with several shards, list is one list oldest first: --limit N is the N oldest overall', async (t) => {
  const notFound = await startSink(() => ({ status: 404 }));
  t.teardown(() => notFound.close());
  const stack = await startStack({ DELIVERY_MAX_ATTEMPTS: '1', QUEUE_SHARDS: '3' });
  t.teardown(() => stack.stop());
  const c = stack.redis.client();
  const dead = async () => {
    let n = 0;
    for (let s = 0; s < 3; s++) n += await c.xlen(`${stack.env.REDIS_PREFIX}:{${s}}:dead`);
    return n;
  };
  // Requests go round-robin over the shards; each dies before the next is
  // sent, so its place in time is its number.
  for (let k = 0; k < 9; k++) {
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${notFound.origin}/x?k={k}` }, data: [{ k }] })).status, 202);
    t.ok(await until(async () => (await dead()) === k + 1), `request ${k} dead-lettered`);
  }
  const perShard = [];
  for (let s = 0; s < 3; s++) perShard.push(await c.xlen(`${stack.env.REDIS_PREFIX}:{${s}}:dead`));
  t.same(perShard, [3, 3, 3], 'spread over the three shards');
  const order = async (args: string[]) => {
    const r = await runCli(['dlq', 'list', '--json', ...args], stack.env);
    t.equal(r.code, 0);
    return r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { data: { k: number } }).data.k);
  };
  t.same(await order([]), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'oldest first across the shards');
  t.same(await order(['--limit', '4']), [0, 1, 2, 3], 'the four oldest, not shard 0 first');
});
