/**
 * Ingest's /readyz follows whether Redis answers, not only whether the
 * client is connected: a hung Redis (SIGSTOP) and a hung Cluster primary
 * leave the client 'ready' while every write times out into a 503, and a
 * load balancer must stop sending to the process meanwhile. Both recover
 * by themselves once Redis answers again.
 */
import t from 'tap';
import { get } from '../helpers/http.js';
import { until } from '../helpers/count.js';
import { startRedis } from '../helpers/redis.js';
import { startCluster } from '../../bench/lib/topology.js';
import { spawnRole, testEnv } from '../helpers/procs.js';

async function readyz(base: string): Promise<number> {
  try {
    return (await get(`${base}/readyz`)).status;
  } catch {
    return 0;
  }
}

t.test('a hung Redis: /readyz 503 while it does not answer, 200 again once it does', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  const ingest = await spawnRole('ingest', testEnv(redis.url, { INGEST_PORT: '0', INGEST_WRITE_TIMEOUT_MS: '500' }));
  t.teardown(() => ingest.stop());
  const base = `http://127.0.0.1:${ingest.port('ingest')}`;
  t.equal(await readyz(base), 200, 'ready');

  process.kill(redis.pid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(redis.pid, 'SIGCONT');
    } catch {
      // already gone
    }
  });
  t.ok(await until(async () => (await readyz(base)) === 503, 10_000), 'not ready while Redis hangs');
  t.equal((await get(`${base}/healthz`)).status, 200, 'alive all the same');

  process.kill(redis.pid, 'SIGCONT');
  t.ok(await until(async () => (await readyz(base)) === 200, 10_000), 'ready again once it answers');
});

t.test('a Redis Cluster with a primary hung: /readyz 503, then 200 once it answers', async (t) => {
  const cluster = await startCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const env = testEnv('', { REDIS_CLUSTER_NODES: cluster.nodes, INGEST_PORT: '0', INGEST_WRITE_TIMEOUT_MS: '500' });
  delete env.REDIS_URL;
  const ingest = await spawnRole('ingest', env);
  t.teardown(() => ingest.stop());
  const base = `http://127.0.0.1:${ingest.port('ingest')}`;
  t.equal(await readyz(base), 200, 'ready');

  const hung = cluster.procs[2]!;
  hung.kill('SIGSTOP');
  t.teardown(() => hung.kill('SIGCONT'));
  t.ok(await until(async () => (await readyz(base)) === 503, 10_000), 'not ready while one primary hangs');

  hung.kill('SIGCONT');
  t.ok(await until(async () => (await readyz(base)) === 200, 15_000), 'ready again once it answers');
});
