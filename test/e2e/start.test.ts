/**
 * `node dist/cli.js start` (what `npm start` runs): a private Redis with AOF
 * on a free port, the three roles, a sample delivered, and Ctrl-C (SIGINT)
 * stopping everything cleanly, Redis last.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSink } from '../helpers/sink.js';
import { spawnRole } from '../helpers/procs.js';
import { freePort } from '../../bench/lib/ports.js';
import { get, post } from '../helpers/http.js';
import { ping, probePort } from '../../src/start/private-redis.js';
import { runCli } from '../helpers/procs.js';
import { until } from '../helpers/count.js';
import { createServer as createNetServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { once } from 'node:events';
import { startSentinels } from '../../bench/lib/topology.js';

/** `start`'s environment: its private Redis, data and logs under `dir`, loopback listeners on the given ports. */
function startEnv(dir: string, redisPort: number, ingestPort: number, monitorPort: number, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    REDIS_PORT: String(redisPort),
    REDIS_DIR: join(dir, 'redis'),
    REDIS_PASSWORD_FILE: join(dir, 'redis.password'),
    LOG_DIR: join(dir, 'log'),
    INGEST_PORT: String(ingestPort),
    INGEST_HOST: '127.0.0.1',
    MONITOR_PORT: String(monitorPort),
    MONITOR_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** The processes `start` launched (Linux: /proc): the roles and redis-server, each with its command line and environment. */
function childrenOf(pid: number): { cmdline: string; environ: string }[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.map((child) => ({
    cmdline: readFileSync(`/proc/${child}/cmdline`, 'latin1').replaceAll('\0', ' '),
    environ: readFileSync(`/proc/${child}/environ`, 'latin1'),
  }));
}

t.test('start runs everything and Ctrl-C stops it cleanly', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const [redisPort, ingestPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'pb-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = startEnv(dir, redisPort, ingestPort, monitorPort, { DELIVERY_ALLOW_PRIVATE: 'true', DELIVERY_WORKERS: '1' });
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
  if (process.platform === 'linux') {
    const password = readFileSync(join(dir, 'redis.password'), 'utf8').trim();
    const children = childrenOf(start.pid);
    const roles = children.filter((c) => / (ingest|delivery|monitor) $/.test(c.cmdline));
    t.equal(roles.length, 3, 'three roles forked');
    t.ok(password.length >= 16, 'a generated password');
    t.notOk(children.some((c) => c.cmdline.includes(password)), 'the Redis password is on no command line (ps)');
    t.notOk(children.some((c) => c.environ.includes(password)), 'the Redis password is in no environment (ps e)');
    t.notOk(roles.some((r) => r.environ.includes('REDIS_URL=')), 'no REDIS_URL handed to the roles');
  }

  // A second start in the same place refuses, and leaves the first alone.
  const second = await runCli(['start'], env, 20_000);
  t.equal(second.code, 1, 'a second start exits 1');
  t.match(second.stdout + second.stderr, /another \\"npm start\\" \(pid \d+\) runs with REDIS_DIR/);
  t.ok(await ping(redisPort), "the first one's Redis still answers");

  // Its Redis killed: started again, and the roles carry on.
  const redisPid = Number(readFileSync(join(dir, 'redis', 'redis.pid'), 'utf8').trim());
  process.kill(redisPid, 'SIGKILL');
  t.ok(await until(async () => !(await ping(redisPort)), 5_000), 'Redis gone');
  t.ok(await until(() => ping(redisPort), 15_000), 'started again by start');
  t.ok(
    await until(async () => (await post(`http://127.0.0.1:${ingestPort}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/again` }, data: [{}] }))).status === 202, 15_000),
    'ingest accepts again',
  );
  await sink.waitFor(3);

  const began = Date.now();
  const code = await start.stop('SIGINT');
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - began < 20_000, 'stopped within the shutdown bound');
  t.notOk(await ping(redisPort), 'Redis stopped too');
  const errors = start.output().split('\n').filter((l) => /"level":5\d/.test(l) && !l.includes('the private redis-server exited'));
  t.same(errors, [], 'no errors logged but the Redis this test killed');
});

t.test('start with REDIS_SENTINELS uses that Redis and launches no private one', async (t) => {
  const group = await startSentinels('pbstart');
  t.teardown(() => group.stop());
  const sink = await startSink();
  t.teardown(() => sink.close());
  const [redisPort, ingestPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'pb-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = startEnv(dir, redisPort, ingestPort, monitorPort, {
    REDIS_SENTINELS: group.nodes,
    REDIS_SENTINEL_NAME: 'pbstart',
    DELIVERY_METRICS_PORT: '0',
    DELIVERY_ALLOW_PRIVATE: 'true',
  });
  const start = await spawnRole('start', env);
  t.teardown(() => start.stop('SIGKILL'));
  const body = JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/s?n={n}` }, data: [{ n: 1 }, { n: 2 }] });
  t.equal((await post(`http://127.0.0.1:${ingestPort}/i`, body)).status, 202, 'accepted through the Sentinel group');
  await sink.waitFor(2);
  t.same(sink.received.map((r) => r.url).sort(), ['/s?n=1', '/s?n=2'], 'delivered');
  t.notOk(await ping(redisPort), 'no private Redis on REDIS_PORT');
  t.notOk(existsSync(join(dir, 'redis.password')), 'no private password generated');
  t.equal(await start.stop('SIGINT'), 0, 'exit code 0');
  t.notMatch(start.output(), /"level":5\d/, 'no errors logged');
});

t.test('what listens on REDIS_PORT: Redis, something else, or nothing', async (t) => {
  const closer = createNetServer((s) => s.destroy());
  closer.listen(0, '127.0.0.1');
  await once(closer, 'listening');
  t.teardown(() => closer.close());
  const http = createHttpServer((_req, res) => res.end('no'));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.teardown(() => http.close());
  const silent = createNetServer(() => undefined);
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.teardown(() => {
    silent.close();
  });
  const port = (s: { address(): unknown }) => (s.address() as { port: number }).port;
  t.equal(await probePort(port(closer)), 'other', 'a listener that closes at once');
  t.equal(await probePort(port(http)), 'other', 'an HTTP server');
  t.equal(await probePort(port(silent), 200), 'other', 'a listener that says nothing');
  t.equal(await probePort(await freePort()), 'free', 'nothing');
});

t.test('start with a port in use: it says why and exits 1, no endless restarts', async (t) => {
  const taken = createNetServer(() => undefined);
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.teardown(() => {
    taken.close();
  });
  const ingestPort = (taken.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'pb-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const redisPort = await freePort();
  const env = startEnv(dir, redisPort, ingestPort, await freePort(), { DELIVERY_METRICS_PORT: '0' });
  const r = await runCli(['start'], env, 60_000);
  t.notOk(r.timedOut, 'it ended by itself');
  t.equal(r.code, 1);
  t.match(r.stdout + r.stderr, /ingest exited 5 times in a row before it was ready/);
  t.notOk(await ping(redisPort), 'its Redis stopped too');
});
