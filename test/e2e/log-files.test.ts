/**
 * The log files on a bad day and at rotation.
 *
 * postback.log refuses writes (a full disk; here a file size limit lowered
 * on the running process with prlimit, which fails writes with EFBIG the
 * same way and can be lifted again): delivery starts no attempt until it
 * can write, says so (stderr, its log, /readyz, a gauge), keeps running,
 * and resumes by itself with every attempt's line; stopped meanwhile, it
 * exits within its timeout and hands back what it held. It used to crash
 * on the first failed write and then never exit (SonicBoom's flushSync
 * retries for ever), so nothing restarted it.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { until } from '../helpers/count.js';
import { get } from '../helpers/http.js';
import { freePort } from '../../bench/lib/ports.js';

const run = promisify(execFile);

/** Sets the file size limit (soft; the hard one stays unlimited) of a running process. */
async function fileSizeLimit(pid: number, bytes: number | 'unlimited'): Promise<void> {
  await run('prlimit', ['--pid', String(pid), `--fsize=${bytes}:unlimited`]);
}

/** A delivery process's gauge, from its /metrics (labelled with its role). */
async function metric(ops: string, name: string): Promise<number> {
  return Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec((await get(`${ops}/metrics`)).body)?.[1]);
}

const prlimit = await run('prlimit', ['--version']).then(() => true, () => false);

t.test('postback.log refuses writes: no attempt starts, nothing is lost, delivery resumes with every line', { skip: prlimit ? false : 'prlimit (util-linux) is not installed' }, async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ DELIVERY_METRICS_PORT: String(await freePort()), SHUTDOWN_TIMEOUT_MS: '8000', DELIVERY_TIMEOUT_MS: '3000' });
  t.teardown(() => stack.stop());
  const d = stack.deliveries[0]!;
  const ops = `http://127.0.0.1:${d.port('delivery-metrics')}`;
  const log = join(stack.env.LOG_DIR as string, 'postback.log');
  const lines = () => readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; outcome: string });
  const send = async (from: number, n: number) => {
    const data = Array.from({ length: n }, (_, i) => ({ n: from + i }));
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/l?n={n}` }, data })).status, 202);
  };

  await send(0, 5);
  t.ok(await until(() => lines().length === 5), 'five delivered and logged');

  await fileSizeLimit(d.pid, 1);
  await send(5, 5);
  t.ok(await until(() => sink.received.length === 10), 'the next five go out; their lines cannot be written');
  t.ok(await until(async () => (await get(`${ops}/readyz`)).status === 503, 10_000), 'delivery is not ready once the write fails');
  t.equal(await metric(ops, 'pb_delivery_attempt_log_writable'), 0, 'the gauge says why');
  t.match(d.output(), /cannot write .*postback\.log \(EFBIG\)/, 'stderr names the file and the error');

  await send(10, 20);
  t.ok(await until(async () => (await metric(ops, 'pb_delivery_waiting')) === 20), 'the new twenty are read and wait');
  t.equal(sink.received.length, 10, 'and none of them was sent');
  t.equal(d.proc.exitCode, null, 'the process keeps running');
  t.equal(lines().length, 5, 'the file has only what it had');

  await fileSizeLimit(d.pid, 'unlimited');
  t.ok(await until(() => sink.received.length === 30), 'once the file takes writes, the twenty go out');
  t.ok(await until(() => lines().length === 30), 'and every attempt has its line, the five in flight at the failure too');
  t.same(new Set(lines().map((l) => l.id)).size, 30, 'each postback once');
  t.equal((await get(`${ops}/readyz`)).status, 200, 'ready again');
  t.equal(await metric(ops, 'pb_delivery_attempt_log_writable'), 1);
  t.ok(await stack.drained(), 'every outcome recorded in Redis');
});

t.test('stopped while postback.log refuses writes: it exits in time, and what it held goes to the next process', { skip: prlimit ? false : 'prlimit (util-linux) is not installed' }, async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ DELIVERY_METRICS_PORT: String(await freePort()), SHUTDOWN_TIMEOUT_MS: '8000', DELIVERY_TIMEOUT_MS: '3000', LOG_LEVEL: 'info' });
  t.teardown(() => stack.stop());
  const d = stack.deliveries[0]!;
  const ops = `http://127.0.0.1:${d.port('delivery-metrics')}`;
  await fileSizeLimit(d.pid, 1);
  const send = async (n: number) => {
    const data = Array.from({ length: n }, (_, i) => ({ n: i }));
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/s?n={n}` }, data })).status, 202);
  };
  await send(1);
  t.ok(await until(async () => (await get(`${ops}/readyz`)).status === 503, 10_000), 'the first line cannot be written: not ready');
  await send(10);
  t.ok(await until(async () => (await metric(ops, 'pb_delivery_waiting')) === 10), 'ten wait');
  const began = Date.now();
  // The exit code is not asserted: under tap, its process-info hook in the
  // child writes a file at exit, which the file size limit refuses.
  await d.stop('SIGTERM');
  t.ok(Date.now() - began < 8_000, `it exited within SHUTDOWN_TIMEOUT_MS (${Date.now() - began} ms)`);
  t.match(d.output(), /"msg":"shutdown complete"/, 'after its whole shutdown');
  t.notMatch(d.output(), /graceful shutdown took too long/, 'not by the timeout');
  t.match(d.output(), /postback\.log refuses writes \(EFBIG\): the lines it still held are not written/, 'stderr says what was not written');
  stack.deliveries.length = 0;
  await stack.startDelivery({ DELIVERY_METRICS_PORT: '0' });
  t.ok(await until(() => sink.received.length === 11), 'the next process delivers the ten handed back');
  t.ok(await stack.drained());
});

t.test('logrotate moves the files away and sends SIGHUP: the lines go to new files at the paths, none lost', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ LOG_LEVEL: 'info' });
  t.teardown(() => stack.stop());
  const d = stack.deliveries[0]!;
  const dir = stack.env.LOG_DIR as string;
  const ids = (file: string) => readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
  const send = async (from: number, n: number) => {
    const data = Array.from({ length: n }, (_, i) => ({ n: from + i }));
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/r?n={n}` }, data })).status, 202);
  };
  await send(0, 10);
  t.ok(await until(() => ids('postback.log').length === 10), 'ten lines in postback.log');
  renameSync(join(dir, 'postback.log'), join(dir, 'postback.log.1'));
  d.proc.kill('SIGHUP');
  t.ok(await until(() => /SIGHUP received: log files reopened/.test(d.output())), 'the process took the signal');
  await send(10, 10);
  t.ok(await until(() => { try { return ids('postback.log').length === 10; } catch { return false; } }), 'the next ten in a new postback.log');
  t.equal(ids('postback.log.1').length, 10, 'the rotated file kept its ten and got no more');
  t.same(new Set([...ids('postback.log.1'), ...ids('postback.log')]).size, 20, 'twenty attempts, each logged once');
  t.equal(d.proc.exitCode, null, 'SIGHUP never stops a role');
});
