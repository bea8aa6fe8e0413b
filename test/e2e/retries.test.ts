/**
 * Retries, dead letters and expiry through real processes and scripted
 * partners: what each failure becomes, how often it is tried, and what the
 * log and the dead-letter store say about it.
 */
import t from 'tap';
import { startSink, type Received, type Reply } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { runCli } from '../helpers/procs.js';
import { waitForLines, type LogLine } from '../helpers/log.js';

function byId(lines: LogLine[], id: string): LogLine[] {
  return lines.filter((l) => l.id === id);
}

t.test('retries, dead letters, replay and purge', async (t) => {
  const flakyCount = new Map<string, number>();
  let permanentFixed = false;
  const sink = await startSink((r: Received): Reply => {
    const path = new URL(r.url, 'http://x').pathname;
    const n = (flakyCount.get(path) ?? 0) + 1;
    flakyCount.set(path, n);
    if (path === '/flaky') return n <= 2 ? { status: 503, body: 'busy' } : { status: 200, body: 'ok' };
    if (path === '/gone') return permanentFixed ? { status: 200 } : { status: 404, body: 'no such click' };
    if (path === '/broken') return { status: 500, body: 'boom' };
    if (path === '/moved') return { status: 302, headers: { location: 'http://elsewhere.example/x' } };
    if (path === '/slow-down') return n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 };
    return { status: 200 };
  });
  t.teardown(() => sink.close());
  const stack = await startStack({
    DELIVERY_BACKOFF_BASE_MS: '50',
    DELIVERY_BACKOFF_MAX_MS: '2000',
    DELIVERY_MAX_ATTEMPTS: '3',
  });
  t.teardown(() => stack.stop());
  const logDir = stack.env.LOG_DIR as string;
  const send = async (path: string) => {
    const res = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}${path}?x={x}` }, data: [{ x: path }] });
    t.equal(res.status, 202);
    return `${res.json.id}:0`;
  };

  t.test('a flaky partner gets the postback on the third attempt, same id each time', async (t) => {
    const id = await send('/flaky');
    const lines = await waitForLines(logDir, (ls) => byId(ls, id).some((l) => l.outcome === 'delivered'));
    const mine = byId(lines, id);
    t.same(mine.map((l) => [l.attempt, l.status, l.outcome]), [
      [1, 503, 'retry'],
      [2, 503, 'retry'],
      [3, 200, 'delivered'],
    ]);
    t.ok(mine[0]!.nextAttemptAt! > mine[0]!.deliveryTime!, 'a retry says when the next attempt is due');
    const got = sink.received.filter((r) => r.url.startsWith('/flaky'));
    t.same(new Set(got.map((r) => r.headers['x-postback-id'])), new Set([id]), 'X-Postback-Id is stable across attempts');
    t.ok(mine[1]!.deliveryTime! >= mine[0]!.deliveryTime! + 25, 'backoff between attempts');
  });

  t.test('a 404 is dead at once, a 500 after every attempt, a 302 is not followed', async (t) => {
    const gone = await send('/gone');
    const broken = await send('/broken');
    const moved = await send('/moved');
    const lines = await waitForLines(logDir, (ls) =>
      [gone, broken, moved].every((id) => byId(ls, id).some((l) => l.outcome === 'dead')),
    );
    t.same(byId(lines, gone).map((l) => [l.attempt, l.status, l.outcome]), [[1, 404, 'dead']]);
    t.equal(byId(lines, gone)[0]!.body, 'no such click', 'the response body is logged');
    t.same(byId(lines, broken).map((l) => [l.attempt, l.outcome]), [
      [1, 'retry'],
      [2, 'retry'],
      [3, 'dead'],
    ]);
    const m = byId(lines, moved);
    t.same(m.map((l) => [l.status, l.outcome, l.errorCode]), [[302, 'dead', 'PB_ERR_REDIRECT']]);
    t.match(m[0]!.error, /elsewhere\.example/, 'the Location is logged');

    const list = await runCli(['dlq', 'list', '--json'], stack.env);
    t.equal(list.code, 0);
    const dead = list.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const find = (id: string) => dead.find((d: { id: string }) => d.id === id);
    t.match(find(gone), { id: gone, method: 'GET', attempts: 1, outcome: 'dead', status: 404, url: `${sink.origin}/gone?x=%2Fgone` });
    t.match(find(broken), { attempts: 3, outcome: 'dead', status: 500, body: 'boom' });
    t.match(find(moved), { attempts: 1, status: 302, errorCode: 'PB_ERR_REDIRECT' });
    const text = await runCli(['dlq', 'list'], stack.env);
    t.match(text.stdout, gone);
    t.match(text.stderr, /3 dead letters/);

    permanentFixed = true;
    const replay = await runCli(['dlq', 'replay', gone, 'nosuch:1'], stack.env);
    t.equal(replay.code, 1, 'exit 1: one id was not found');
    t.match(replay.stdout, 'replayed 1');
    t.match(replay.stderr, 'not found: nosuch:1');
    const after = await waitForLines(logDir, (ls) => byId(ls, gone).some((l) => l.outcome === 'delivered'));
    t.same(byId(after, gone).at(-1)!.attempt, 1, 'a replay starts with a fresh attempt count');

    const purge = await runCli(['dlq', 'purge', broken], stack.env);
    t.equal(purge.code, 0);
    const left = (await runCli(['dlq', 'list', '--json'], stack.env)).stdout.trim().split('\n').map((l) => JSON.parse(l).id);
    t.same(left, [moved]);
    t.equal((await runCli(['dlq', 'purge', '--all'], stack.env)).code, 0);
    t.equal((await runCli(['dlq', 'list', '--json'], stack.env)).stdout, '');
    t.equal((await runCli(['dlq', 'frobnicate'], stack.env)).code, 2, 'bad usage exits 2');
  });

  t.test('Retry-After is honoured', async (t) => {
    const id = await send('/slow-down');
    const lines = await waitForLines(logDir, (ls) => byId(ls, id).some((l) => l.outcome === 'delivered'));
    const [first, second] = byId(lines, id);
    t.equal(first!.status, 429);
    t.ok(second!.deliveryTime! - first!.deliveryTime! >= 1000, `waited ${second!.deliveryTime! - first!.deliveryTime!} ms`);
  });

  t.test('every postback leaves the count', async (t) => {
    t.ok(await stack.drained(), 'the count key reads 0');
  });
});

t.test('a postback past DELIVERY_TTL_MS expires instead of being tried again', async (t) => {
  const sink = await startSink(() => ({ status: 503 }));
  t.teardown(() => sink.close());
  const stack = await startStack({
    DELIVERY_TTL_MS: '3000',
    DELIVERY_TIMEOUT_MS: '500',
    DELIVERY_VISIBILITY_MS: '6000',
    DELIVERY_BACKOFF_BASE_MS: '400',
    DELIVERY_BACKOFF_MAX_MS: '400',
    DELIVERY_MAX_ATTEMPTS: '50',
  });
  t.teardown(() => stack.stop());
  const res = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/e?x={x}` }, data: [{ x: 1 }] });
  const id = `${res.json.id}:0`;
  const lines = await waitForLines(stack.env.LOG_DIR!, (ls) => byId(ls, id).some((l) => l.outcome === 'expired'));
  const mine = byId(lines, id);
  t.ok(mine.length >= 1 && mine.length < 50, `${mine.length} attempts, far fewer than the 50 allowed`);
  const first = mine[0]!.requestTime;
  t.ok(mine.every((l) => (l.deliveryTime ?? 0) <= first + 3000), 'no attempt after the deadline');
  t.equal(mine.at(-1)!.outcome, 'expired');
  t.ok(mine.slice(0, -1).every((l) => l.outcome === 'retry'));
  const dead = (await runCli(['dlq', 'list', '--json'], stack.env)).stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.match(dead, [{ id, outcome: 'expired', status: 503 }]);
});
