/**
 * ecosystem.config.cjs: which PM2 apps it declares for each way of naming
 * Redis. The private Redis app runs only when no other Redis is named
 * (REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS), as `npm start` does.
 */
import t from 'tap';
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
