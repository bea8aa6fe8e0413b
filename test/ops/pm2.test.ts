/**
 * `pm2 start ecosystem.config.cjs` from this checkout: the private Redis,
 * ingest in cluster mode (2 instances), delivery and monitor come up (each
 * waited for with wait_ready), the sample is delivered, and stopping the
 * roles then Redis leaves nothing running. PM2 runs with its own PM2_HOME.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startSink } from '../helpers/sink.js';
import { freePort } from '../../bench/lib/ports.js';
import { get, post } from '../helpers/http.js';
import { onExit } from '../../bench/lib/cleanup.js';
import { ping } from '../../src/start/private-redis.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PM2 = join(ROOT, 'node_modules/.bin/pm2');

t.test('PM2 runs every role from the ecosystem file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-pm2-'));
  const [redisPort, ingestPort, monitorPort, deliveryPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    PM2_HOME: join(dir, 'pm2'),
    REDIS_PORT: String(redisPort),
    REDIS_DIR: join(dir, 'redis'),
    REDIS_PASSWORD_FILE: join(dir, 'redis.password'),
    LOG_DIR: join(dir, 'log'),
    INGEST_PORT: String(ingestPort),
    INGEST_HOST: '127.0.0.1',
    INGEST_INSTANCES: '2',
    MONITOR_PORT: String(monitorPort),
    MONITOR_HOST: '127.0.0.1',
    DELIVERY_METRICS_PORT: String(deliveryPort),
    DELIVERY_ALLOW_PRIVATE: 'true',
    LOG_LEVEL: 'warn',
  };
  const pm2 = (...args: string[]) => run(PM2, args, { env, cwd: ROOT, timeout: 60_000 });
  const kill = () => execFile(PM2, ['kill'], { env, cwd: ROOT });
  const forget = onExit(kill);
  t.teardown(async () => {
    await pm2('kill').catch(() => undefined);
    forget();
    rmSync(dir, { recursive: true, force: true });
  });
  const sink = await startSink();
  t.teardown(() => sink.close());

  await pm2('start', 'ecosystem.config.cjs');
  const list = JSON.parse((await pm2('jlist')).stdout) as { name: string; pm2_env: { status: string; exec_mode: string } }[];
  const online = list.filter((p) => p.pm2_env.status === 'online').map((p) => `${p.name}:${p.pm2_env.exec_mode}`).sort();
  t.same(online, [
    'postback-delivery:fork_mode',
    'postback-ingest:cluster_mode',
    'postback-ingest:cluster_mode',
    'postback-monitor:fork_mode',
    'postback-redis:fork_mode',
  ]);
  t.ok(await ping(redisPort), 'the private Redis answers (with its password)');
  t.equal((await get(`http://127.0.0.1:${monitorPort}/readyz`)).status, 200, 'monitor ready');
  t.equal((await get(`http://127.0.0.1:${deliveryPort}/readyz`)).status, 200, 'delivery ready');
  const body = JSON.stringify({
    endpoint: { method: 'GET', url: `${sink.origin}/data?key={key}&value={value}&foo={bar}` },
    data: [
      { key: 'Azureus', value: 'Dendrobates' },
      { key: 'Phyllobates', value: 'Terribilis' },
    ],
  });
  for (let i = 0; i < 4; i++) t.equal((await post(`http://127.0.0.1:${ingestPort}/ingest.php`, body)).status, 202);
  await sink.waitFor(8);
  t.equal(new Set(sink.received.map((r) => r.headers['x-postback-id'])).size, 8, 'every postback delivered once');

  await pm2('stop', 'postback-ingest', 'postback-delivery', 'postback-monitor');
  await pm2('stop', 'postback-redis');
  const stopped = JSON.parse((await pm2('jlist')).stdout) as { pm2_env: { status: string } }[];
  t.ok(stopped.every((p) => p.pm2_env.status === 'stopped'), 'all stopped');
  t.notOk(await ping(redisPort), 'Redis stopped last');
});
