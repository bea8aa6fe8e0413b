/**
 * `node dist/cli.js start` (what `npm start` runs): a private Redis with AOF
 * on a free port, the three roles, a sample delivered, and Ctrl-C (SIGINT)
 * stopping everything cleanly, Redis last.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSink } from '../helpers/sink.js';
import { spawnRole } from '../helpers/procs.js';
import { freePort } from '../../bench/lib/ports.js';
import { get, post } from '../helpers/http.js';
import { ping } from '../../src/start/private-redis.js';

t.test('start runs everything and Ctrl-C stops it cleanly', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const [redisPort, ingestPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'pb-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = {
    PATH: process.env.PATH ?? '',
    REDIS_PORT: String(redisPort),
    REDIS_DIR: join(dir, 'redis'),
    REDIS_PASSWORD_FILE: join(dir, 'redis.password'),
    LOG_DIR: join(dir, 'log'),
    INGEST_PORT: String(ingestPort),
    INGEST_HOST: '127.0.0.1',
    MONITOR_PORT: String(monitorPort),
    MONITOR_HOST: '127.0.0.1',
    DELIVERY_ALLOW_PRIVATE: 'true',
    DELIVERY_WORKERS: '1',
    LOG_LEVEL: 'warn',
  };
  const start = await spawnRole('start', env);
  t.teardown(() => start.stop('SIGKILL'));

  t.ok(await ping(redisPort), 'private Redis answers on REDIS_PORT');
  t.equal((await get(`http://127.0.0.1:${monitorPort}/healthz`)).status, 200, 'monitor /healthz');

  const body = JSON.stringify({
    endpoint: { method: 'GET', url: `${sink.origin}/data?key={key}&value={value}&foo={bar}` },
    data: [
      { key: 'Azureus', value: 'Dendrobates' },
      { key: 'Phyllobates', value: 'Terribilis' },
    ],
  });
  t.equal((await post(`http://127.0.0.1:${ingestPort}/ingest.php`, body)).status, 202);
  await sink.waitFor(2);
  t.same(sink.received.map((r) => r.url).sort(), [
    '/data?key=Azureus&value=Dendrobates&foo=',
    '/data?key=Phyllobates&value=Terribilis&foo=',
  ]);
  t.ok(existsSync(join(dir, 'redis', 'appendonlydir')), 'AOF files in REDIS_DIR');

  const began = Date.now();
  const code = await start.stop('SIGINT');
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - began < 20_000, 'stopped within the shutdown bound');
  t.notOk(await ping(redisPort), 'Redis stopped too');
  t.notMatch(start.output(), /"level":5\d/, 'no errors logged');
});
