/**
 * Sentinel: the primary dies (kill -9) while the sentinel the clients ask
 * first is hung (SIGSTOP: it accepts connections and never answers, as a
 * frozen machine does). ioredis's connector then fails the reconnect with
 * "Connection is closed." when the failover detector sees +switch-master,
 * and the client ends for good unless we connect it again: ingest answered
 * 503 and delivery waited until restarted. Counts at the partner by
 * X-Postback-Id.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startSink } from '../helpers/sink.js';
import { tally, until } from '../helpers/count.js';
import { startSentinels } from '../../bench/lib/topology.js';
import { spawnRole, testEnv } from '../helpers/procs.js';
import { get, post } from '../helpers/http.js';

const run = promisify(execFile);

t.test('Sentinel: the primary killed while a sentinel hangs; ingest and delivery recover without a restart', async (t) => {
  const group = await startSentinels('pbhang');
  t.teardown(() => group.stop());
  const [primary, , hung] = group.procs;
  const sink = await startSink();
  t.teardown(() => sink.close());
  const env = testEnv('', { REDIS_SENTINELS: group.nodes, REDIS_SENTINEL_NAME: 'pbhang', INGEST_PORT: '0' });
  delete env.REDIS_URL;
  const ingest = await spawnRole('ingest', env);
  const port = ingest.port('ingest');
  const delivery = await spawnRole('delivery', { ...env, DELIVERY_METRICS_PORT: '0' });
  t.teardown(async () => {
    await ingest.stop();
    await delivery.stop();
  });

  const expected = new Set<string>();
  const send = async (n: number): Promise<number> => {
    const res = await post(`http://127.0.0.1:${port}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/h?n={n}` }, data: [{ n }] })).catch(() => ({ status: 0, json: {} as { id?: string } }));
    if (res.status === 202) expected.add(`${res.json.id}:0`);
    return res.status;
  };
  for (let n = 0; n < 20; n++) t.equal(await send(n), 202);
  t.ok(await until(() => tally(sink, expected).distinct >= 20), 'delivered before the failover');

  // The first sentinel in REDIS_SENTINELS is the one a reconnect asks first.
  const before = await group.primary();
  hung?.kill('SIGSTOP');
  t.teardown(() => void hung?.kill('SIGCONT'));
  primary?.kill('SIGKILL');
  // The other two sentinels (a majority) promote the replica; the hung one stays hung.
  const ports = group.ports.slice(1);
  t.ok(await until(async () => (await primaryFrom(ports)) !== before, 30_000), 'the replica was promoted');

  let n = 20;
  t.ok(await until(async () => (await send(n++)) === 202, 30_000), 'ingest accepts again, the hung sentinel still hung');
  for (let k = 0; k < 20; k++) t.equal(await send(n++), 202);
  t.ok(await until(() => tally(sink, expected).lost === 0, 30_000), 'delivery resumed: every acknowledged postback arrived');
  t.equal((await get(`http://127.0.0.1:${port}/readyz`)).status, 200, 'ingest ready');
  t.equal(ingest.proc.exitCode, null, 'ingest never exited');
  t.equal(delivery.proc.exitCode, null, 'delivery never exited');
});

async function primaryFrom(sentinelPorts: number[]): Promise<number> {
  for (const p of sentinelPorts) {
    try {
      const { stdout } = await run('redis-cli', ['-p', String(p), 'sentinel', 'get-master-addr-by-name', 'pbhang'], { timeout: 2_000 });
      const port = Number(stdout.trim().split('\n')[1]);
      if (port) return port;
    } catch {
      // the next sentinel
    }
  }
  return 0;
}
