/**
 * The shipped logrotate file (ops/logrotate/postback-delivery) is one
 * logrotate takes, and a forced rotation with it, pointed at a real
 * delivery process's LOG_DIR and signalling that process, leaves every
 * attempt line in exactly one file (the rotation itself is
 * test/e2e/log-files.test.ts). Skips where logrotate is not installed.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { until } from '../helpers/count.js';

const run = promisify(execFile);
const SHIPPED = fileURLToPath(new URL('../../ops/logrotate/postback-delivery', import.meta.url));
const logrotate = await run('logrotate', ['--version']).then(() => true, () => false);

t.test('logrotate takes the shipped file and rotates a live LOG_DIR without losing a line', { skip: logrotate ? false : 'logrotate is not installed' }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'pb-logrotate-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const shipped = readFileSync(SHIPPED, 'utf8');
  t.match(shipped, /^\/var\/log\/postback-delivery\/\*\.log \{$/m, 'it names the units\' LOG_DIR');
  t.match(shipped, /systemctl reload postback-ingest postback-delivery postback-monitor/, 'and reloads the roles');

  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack();
  t.teardown(() => stack.stop());
  const d = stack.deliveries[0]!;
  const dir = stack.env.LOG_DIR as string;
  // The shipped file, pointed at this LOG_DIR and at this process.
  const conf = join(work, 'postback-delivery');
  writeFileSync(conf, shipped.replace('/var/log/postback-delivery/', `${dir}/`).replace(/systemctl reload .*$/m, `kill -HUP ${d.pid}`));
  const state = join(work, 'state');
  const check = await run('logrotate', ['-d', '-s', state, conf]);
  t.notMatch(check.stderr, /^error:/m, 'logrotate -d: no error');

  const lines = () =>
    readdirSync(dir)
      .filter((f) => f.startsWith('postback.log'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id));
  const send = async (from: number) => {
    const data = Array.from({ length: 10 }, (_, i) => ({ n: from + i }));
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/r?n={n}` }, data })).status, 202);
  };
  await send(0);
  t.ok(await until(() => lines().length === 10), 'ten lines written');
  await run('logrotate', ['-f', '-s', state, conf]);
  t.ok(readdirSync(dir).includes('postback.log.1'), 'postback.log rotated to postback.log.1');
  await send(10);
  t.ok(await until(() => lines().length === 20), 'the next ten written after the rotation');
  t.equal(new Set(lines()).size, 20, 'each attempt in exactly one file');
  t.ok(readFileSync(join(dir, 'postback.log'), 'utf8').split('\n').filter(Boolean).length === 10, 'the new postback.log has the ten that came after');
});
