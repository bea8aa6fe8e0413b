/**
 * The README's failure-mode table is executable: a stack is brought up the
 * way the README does it (`DELIVERY_ALLOW_PRIVATE=true npm start` in a
 * project directory, default ports, private Redis with its password in
 * var/), given some traffic that delivers, retries and dies, and every
 * command of the "confirm" column is run exactly as printed. A command
 * that stops working (a password it lacks, a URL curl refuses, a file that
 * moved, a tool not on PATH) fails here. Skipped, saying so, when a default
 * port is taken on this machine.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa } from '../../bench/lib/certs.js';
import { onExit } from '../../bench/lib/cleanup.js';
import { spawnNode } from '../../bench/lib/procs.js';
import { REPO_ROOT } from '../../bench/lib/repo.js';
import { post } from '../helpers/http.js';
import { waitForLines } from '../helpers/log.js';
import { startSink } from '../helpers/sink.js';

const PORTS = [6380, 8080, 9090, 9091];

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Every code span of the "confirm" column of the README's failure-mode table, unescaped. */
export function confirmCommands(): { symptom: string; command: string }[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('### Failure modes');
  const section = readme.slice(start, readme.indexOf('\n## ', start));
  const out: { symptom: string; command: string }[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| symptom')) continue;
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const [, symptom, , confirm] = cells;
    for (const m of (confirm ?? '').matchAll(/`([^`]+)`/g)) out.push({ symptom: symptom ?? '', command: (m[1] as string).replaceAll('\\|', '|') });
  }
  return out;
}

t.test('the confirm commands of the failure-mode table parse', async (t) => {
  const commands = confirmCommands();
  t.ok(commands.length >= 10, `${commands.length} commands`);
  t.ok(commands.every((c) => /^(redis-cli|curl|grep|node) /.test(c.command)), 'each a command line');
});

const busy = (await Promise.all(PORTS.map(async (p) => ((await portFree(p)) ? null : p)))).filter((p) => p !== null);
const skip = busy.length > 0 ? `default port(s) ${busy.join(', ')} taken on this machine: a default install cannot run here` : false;

t.test('every confirm command works as printed against a default install', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-project-'));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const entry of ['dist', 'node_modules', 'package.json']) symlinkSync(join(REPO_ROOT, entry), join(dir, entry));
  const sink = await startSink((r) =>
    r.url.startsWith('/gone') ? { status: 404 } : r.url.startsWith('/busy') ? { status: 503 } : r.url.startsWith('/limited') ? { status: 429 } : { status: 200 },
  );
  t.teardown(() => sink.close());
  // An https partner whose CA the install does not trust: its attempts fail with PB_ERR_TLS.
  const untrusted = await startSink(() => ({ status: 200 }), { tls: createTestCa('untrusted partner CA').issue({ ips: ['127.0.0.1'] }) });
  t.teardown(() => untrusted.close());

  // As in the README: DELIVERY_ALLOW_PRIVATE=true npm start (the sink is on 127.0.0.1).
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, DELIVERY_ALLOW_PRIVATE: 'true' };
  if (process.env.NODE_V8_COVERAGE) env.NODE_V8_COVERAGE = process.env.NODE_V8_COVERAGE;
  const start = await spawnNode('npm start', join(dir, 'dist', 'cli.js'), { args: ['start'], env, cwd: dir, readyTimeoutMs: 60_000 });
  t.teardown(async () => {
    start.proc.kill('SIGINT');
    await start.exited;
  });

  for (const [path, n] of [['/ok', 3], ['/gone', 2], ['/busy', 1], ['/limited', 1]] as const) {
    const data = Array.from({ length: n }, (_, i) => ({ i }));
    const res = await post('http://127.0.0.1:8080/i', JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}${path}?i={i}` }, data }));
    t.equal(res.status, 202, `traffic to ${path}`);
  }
  const tls = await post('http://127.0.0.1:8080/i', JSON.stringify({ endpoint: { method: 'GET', url: `${untrusted.origin}/tls?i={i}` }, data: [{ i: 0 }] }));
  t.equal(tls.status, 202, 'traffic to an https partner we do not trust');
  await waitForLines(
    join(dir, 'var', 'log'),
    (ls) =>
      ls.some((l) => l.outcome === 'retry') &&
      ls.some((l) => l.status === 429) &&
      ls.filter((l) => l.outcome === 'dead').length >= 2 &&
      ls.some((l) => l.outcome === 'delivered') &&
      ls.some((l) => l.errorCode === 'PB_ERR_TLS'),
    30_000,
  );

  for (const { symptom, command } of confirmCommands()) {
    const r = spawnSync('bash', ['-c', command], { cwd: dir, env, encoding: 'utf8', timeout: 20_000 });
    const label = `${symptom.replace(/`/g, '').slice(0, 40)}: ${command}`;
    t.equal(r.status, 0, `${label}: exit 0`);
    const errors = /NOAUTH|WRONGPASS|\(error\)|^ERR |No such file|command not found|Unknown option|usage:|Error/m;
    t.notMatch(r.stdout, errors, `${label}: no error in its output`);
    t.notMatch(r.stderr, errors, `${label}: nor on stderr`);
    t.not(r.stdout.trim(), '', `${label}: it says something`);
  }
});
