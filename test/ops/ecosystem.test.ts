/**
 * ecosystem.config.cjs: which PM2 apps it declares for each way of naming
 * Redis. The private Redis app runs only when no other Redis is named
 * (REDIS_URL or REDIS_URL_FILE, REDIS_CLUSTER_NODES, REDIS_SENTINELS), as
 * `npm start` does.
 */
import t from 'tap';
import { killTimeoutWarning } from '../../src/lifecycle.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function appsWith(env: Record<string, string>): Promise<string[]> {
  const { stdout } = await run(
    process.execPath,
    ['-e', "process.stdout.write(JSON.stringify(require('./ecosystem.config.cjs').apps.map((a) => a.name)))"],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } },
  );
  return JSON.parse(stdout) as string[];
}

const ROLES = ['postback-ingest', 'postback-delivery', 'postback-monitor'];

const cases: [string, Record<string, string>, string[]][] = [
  ['no Redis named: the private one too', {}, ['postback-redis', ...ROLES]],
  ['REDIS_URL', { REDIS_URL: 'redis://10.0.0.5:6379' }, ROLES],
  ['REDIS_URL_FILE', { REDIS_URL_FILE: '/run/secrets/redis_url' }, ROLES],
  ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: '10.0.0.5:7000,10.0.0.6:7000' }, ROLES],
  ['REDIS_SENTINELS', { REDIS_SENTINELS: '10.0.0.5:26379' }, ROLES],
];

for (const [name, env, apps] of cases) {
  t.test(name, async (t) => {
    t.same(await appsWith(env), apps);
  });
}

t.test("PM2's kill_timeout stays 5 s above SHUTDOWN_TIMEOUT_MS", async (t) => {
  const timeouts = async (env: Record<string, string>) => {
    const { stdout } = await run(
      process.execPath,
      ['-e', "process.stdout.write(JSON.stringify(require('./ecosystem.config.cjs').apps.map((a) => a.kill_timeout)))"],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } },
    );
    return [...new Set(JSON.parse(stdout) as number[])];
  };
  t.same(await timeouts({}), [20_000], 'default: 15 s + 5 s');
  t.same(await timeouts({ SHUTDOWN_TIMEOUT_MS: '40000' }), [45_000]);
});

t.test('a role under PM2 warns when kill_timeout is not above SHUTDOWN_TIMEOUT_MS', async (t) => {
  const cases: [NodeJS.ProcessEnv, number, boolean, string][] = [
    [{ pm_id: '0', kill_timeout: '20000' }, 15_000, false, 'the ecosystem file\'s margin'],
    [{ pm_id: '0', kill_timeout: '20000' }, 40_000, true, 'SHUTDOWN_TIMEOUT_MS raised with --update-env'],
    [{ pm_id: '0', kill_timeout: '15500' }, 15_000, true, 'less than a second above'],
    [{ pm_id: '0', kill_timeout: '16000' }, 15_000, false, 'a second above'],
    [{ kill_timeout: '1000' }, 15_000, false, 'not under PM2 (no pm_id)'],
    [{ pm_id: '0' }, 15_000, false, 'no kill_timeout'],
    [{ pm_id: '0', kill_timeout: 'soon' }, 15_000, false, 'not a number'],
  ];
  for (const [env, timeoutMs, warns, why] of cases) {
    const w = killTimeoutWarning(env, timeoutMs);
    t.equal(w !== null, warns, why);
    if (w !== null) t.match(w, /kill_timeout \(\d+ ms\) is not above SHUTDOWN_TIMEOUT_MS .*Recreate the app/);
  }
});
