/**
 * Under PM2 each role's own log lines land in its files (LOG_DIR/pm2/<role>.out.log)
 * and in `pm2 logs <app>`: also ingest's, whose cluster-mode workers would
 * otherwise write to the daemon's descriptors, that is to PM2's own pm2.log.
 * PM2 runs with its own PM2_HOME.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../../bench/lib/ports.js';
import { onExit } from '../../bench/lib/cleanup.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PM2 = join(ROOT, 'node_modules/.bin/pm2');

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');

t.test("PM2 cluster mode: ingest's log lines go to its own files, not to pm2.log", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-pm2-logs-'));
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    PM2_HOME: join(dir, 'pm2'),
    REDIS_PORT: String(await freePort()),
    REDIS_DIR: join(dir, 'redis'),
    REDIS_PASSWORD_FILE: join(dir, 'redis.password'),
    LOG_DIR: join(dir, 'log'),
    INGEST_PORT: String(await freePort()),
    INGEST_HOST: '127.0.0.1',
    INGEST_INSTANCES: '2',
    LOG_LEVEL: 'info',
  };
  const pm2 = (...args: string[]) => run(PM2, args, { env, cwd: ROOT, timeout: 60_000 });
  const forget = onExit(() => execFile(PM2, ['kill'], { env, cwd: ROOT }));
  t.teardown(async () => {
    await pm2('kill').catch(() => undefined);
    forget();
    rmSync(dir, { recursive: true, force: true });
  });

  await pm2('start', 'ecosystem.config.cjs', '--only', 'postback-redis,postback-ingest');
  const list = JSON.parse((await pm2('jlist')).stdout) as { name: string; pid: number; pm2_env: { exec_mode: string } }[];
  const workers = list.filter((p) => p.name === 'postback-ingest');
  t.same(workers.map((p) => p.pm2_env.exec_mode), ['cluster_mode', 'cluster_mode']);

  const out = join(env.LOG_DIR, 'pm2', 'ingest.out.log');
  const listening = (pid: number) => read(out).split('\n').some((l) => l.includes('"ingest listening"') && l.includes(`"pid":${pid}`));
  t.ok(await waitFor(() => workers.every((p) => listening(p.pid)), 10_000), 'each worker says "ingest listening" in ingest.out.log');
  t.match((await pm2('logs', 'postback-ingest', '--nostream', '--lines', '20')).stdout, /ingest listening/, 'pm2 logs postback-ingest shows it');

  await pm2('stop', 'postback-ingest');
  t.ok(await waitFor(() => workers.every((p) => read(out).includes(`"pid":${p.pid},"signal":"SIGINT","msg":"shutting down"`)), 10_000), 'the shutdown lines too');
  t.notMatch(read(join(env.PM2_HOME, 'pm2.log')), /"role":"ingest"/, "none of ingest's lines in PM2's own log");
});
