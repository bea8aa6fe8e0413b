/**
 * A partner's rate limit, shared by four real delivery processes: with a
 * backlog of 3,000 for an origin limited to 200/s (burst 20), no more
 * than 220 go out in any one-second window, the sink gets at least 90% of
 * the limit while the backlog lasts, and every postback once; an
 * unlimited origin's backlog meanwhile goes out at full speed. An
 * operator's `partners limit` overrides the policy for every process.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSink, type Received } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { runCli, spawnRole } from '../helpers/procs.js';
import { attemptLines } from '../helpers/log.js';
import { until } from '../helpers/count.js';

const dir = mkdtempSync(join(tmpdir(), 'pb-limit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** The most requests in any window of `ms` (sliding). */
function maxInWindow(received: readonly Received[], ms: number): number {
  const at = received.map((r) => r.at).sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; j < at.length; j++) {
    while ((at[j] as number) - (at[i] as number) >= ms) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

t.test('4 delivery processes share a 200/s limit', async (t) => {
  // The unlimited partner is a process of its own (the sink role): its
  // traffic does not delay the capped sink's clock, which the test reads.
  const capped = await startSink();
  t.teardown(() => capped.close());
  const file = join(dir, 'partners.json');
  writeFileSync(file, JSON.stringify({ partners: { [capped.origin]: { rate: 200, burst: 20 } } }));
  const stack = await startStack({ PARTNERS_FILE: file }, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const freeSink = await spawnRole('sink', stack.env, ['--port', '0', '--quiet']);
  t.teardown(() => freeSink.stop('SIGKILL'));
  const free = { origin: `http://127.0.0.1:${/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(freeSink.output())?.[1]}` };
  const N = 3_000;
  for (let i = 0; i < N; i += 100) {
    const data = Array.from({ length: 100 }, (_, k) => ({ n: i + k }));
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${capped.origin}/c?n={n}` }, data })).status, 202);
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${free.origin}/f?n={n}` }, data })).status, 202);
  }
  await Promise.all([1, 2, 3, 4].map(() => stack.startDelivery()));
  t.ok(await stack.drained(60_000), 'both backlogs delivered');
  t.equal(capped.received.length, N);
  t.equal(new Set(capped.received.map((r) => r.headers['x-postback-id'])).size, N, 'each once');
  // The attempt log is written out within a second of the last lines.
  const freeDelivered = () => attemptLines(stack.env.LOG_DIR!).filter((l) => l.url.startsWith(free.origin) && l.outcome === 'delivered').length;
  await until(() => freeDelivered() >= N, 5_000);
  t.equal(freeDelivered(), N, 'the unlimited origin\'s postbacks each logged delivered');

  // When each request went out, as the delivery processes logged it: the
  // pace the service keeps, within the limit plus burst in any second. The
  // sink's own arrival times are not held to it: it timestamps them in this
  // test process's event loop, which shares the two cores with four
  // delivery processes, Redis, the other sink and the suite's other files,
  // and its stalls bunch arrivals that were sent apart (seen: sent peak
  // 212, sink peak 248 in a clean-clone CI run); a partner on its own
  // machine sees the send pace.
  const cappedLines = () => attemptLines(stack.env.LOG_DIR!).filter((l) => l.url.startsWith(capped.origin));
  t.ok(await until(() => cappedLines().length >= N, 5_000), 'one attempt logged per postback');
  const sentAt = cappedLines().map((l) => ({ at: l.deliveryTime ?? 0 })) as Received[];
  const sentPeak = maxInWindow(sentAt, 1_000);
  t.ok(sentPeak <= 220, `at most the limit plus burst sent in any 1 s window (peak ${sentPeak}; the sink counted ${maxInWindow(capped.received, 1_000)})`);
  const first = Math.min(...capped.received.map((r) => r.at));
  const last = Math.max(...capped.received.map((r) => r.at));
  const achieved = (N - 20) / ((last - first) / 1000);
  t.ok(achieved >= 180, `at least 90% of the limit while the backlog lasts (${achieved.toFixed(1)}/s over ${((last - first) / 1000).toFixed(1)} s)`);
  const freeLast = Math.max(...attemptLines(stack.env.LOG_DIR!).filter((l) => l.url.startsWith(free.origin)).map((l) => l.deliveryTime ?? 0));
  // The process up first reads most of the backlog and parks what its
  // unlimited origin has beyond twice its in-flight limit, for no longer
  // than it has watched that origin drain (README, Delivery): the other
  // processes get those entries as soon as they are back, so the unlimited
  // origin is done long before the capped one.
  t.ok(freeLast < first + (last - first) / 2, `the unlimited origin is not held behind it (done ${((freeLast - first) / 1000).toFixed(1)} s in)`);

  // The operator lowers it for every process to 20/s: obeyed within 2 s.
  // The backlog lasts 15 s at the policy's 200/s, so it is still there
  // when the CLI has written the override however long the CLI takes to
  // start on a loaded machine (a 600 backlog once ran out first in CI).
  capped.received.length = 0;
  for (let i = 0; i < 3_000; i += 1_000) {
    const more = Array.from({ length: 1_000 }, (_, k) => ({ n: i + k }));
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${capped.origin}/c2?n={n}` }, data: more })).status, 202);
  }
  t.ok(await until(() => capped.received.length >= 50, 10_000), 'delivering at the policy\'s rate');
  // Obeyed within 2 s of the write, which is done when the CLI exits (its
  // own start-up is not the processes' to answer for).
  t.equal((await runCli(['partners', 'limit', capped.origin, '--rate', '20'], stack.env)).code, 0);
  const limitedAt = Date.now();
  const before = capped.received.length;
  t.ok(before < 3_000, `the backlog outlasts the CLI (${before} of 3000 delivered when it exited)`);
  t.ok(await until(() => capped.received.some((r) => r.at > limitedAt + 4_000), 20_000),
    `it keeps delivering (${capped.received.length - before} since the override)`);
  const slow = maxInWindow(capped.received.filter((r) => r.at > limitedAt + 2_000), 1_000);
  t.ok(slow <= 22, `the override holds: at most 20/s plus burst 2 (peak ${slow})`);
});
