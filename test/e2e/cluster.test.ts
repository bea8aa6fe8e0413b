/**
 * Scale-out on real topologies: a 3-master Redis Cluster with QUEUE_SHARDS
 * streams and two ingest plus two delivery processes; a Sentinel group with
 * a failover forced under load (what the old primary acknowledged after the
 * replica was promoted may be lost, as docs/SCALING.md says). Counts at the
 * partner by X-Postback-Id.
 */
import t from 'tap';
import { Cluster } from 'ioredis';
import { startSink } from '../helpers/sink.js';
import { tally, until } from '../helpers/count.js';
import { startCluster, startSentinels } from '../../bench/lib/topology.js';
import { spawnRole, testEnv, runCli, type RoleProcess } from '../helpers/procs.js';
import { post } from '../helpers/http.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

function envFor(extra: Record<string, string>): Record<string, string> {
  const env = testEnv('', extra);
  delete env.REDIS_URL;
  return env;
}



t.test('Redis Cluster: 4 shards over 3 masters, 2 ingest and 2 delivery processes, nothing lost', async (t) => {
  const cluster = await startCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const sink = await startSink();
  t.teardown(() => sink.close());
  const env = envFor({ REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_SHARDS: '4', DELIVERY_METRICS_PORT: '0' });
  const roles: RoleProcess[] = [];
  t.teardown(() => Promise.all(roles.map((r) => r.stop())));
  for (let i = 0; i < 2; i++) roles.push(await spawnRole('ingest', { ...env, INGEST_PORT: '0' }));
  const ports = roles.map((r) => r.port('ingest'));
  for (let i = 0; i < 2; i++) roles.push(await spawnRole('delivery', env));

  const expected = new Set<string>();
  // Eight at a time: each ingest process writes several shards in the same
  // turn (its commands to different slots must not share a pipeline).
  for (let r = 0; r < 40; r += 8) {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, k) => {
        const data = Array.from({ length: 50 }, (_, i) => ({ n: (r + k) * 50 + i }));
        return post(`http://127.0.0.1:${ports[(r + k) % 2]}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/c?n={n}` }, data }));
      }),
    );
    for (const res of answers) {
      t.equal(res.status, 202);
      for (let i = 0; i < 50; i++) expected.add(`${res.json.id}:${i}`);
    }
  }
  t.ok(await until(() => tally(sink, expected).distinct >= expected.size, 30_000), 'every postback delivered');
  const { distinct, duplicates, lost } = tally(sink, expected);
  t.comment(`cluster: ${expected.size} postbacks, ${distinct} delivered, lost ${lost}, duplicated ${duplicates}`);
  t.equal(lost, 0);
  t.equal(duplicates, 0);

  // The shards live on different masters: the queue really is spread.
  const client = new Cluster(cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })));
  t.teardown(() => client.disconnect());
  await client.ping();
  const holding = await Promise.all(client.nodes('master').map(async (node) => (await node.keys(`${env.REDIS_PREFIX}:*`)).length));
  t.ok(holding.filter((n) => n > 0).length >= 2, `keys on ${holding.filter((n) => n > 0).length} of 3 masters (${holding.join(', ')})`);
  const list = await runCli(['dlq', 'list', '--json'], env);
  t.equal(list.code, 0, 'the CLI works against the cluster');
  const usage = await runCli(['usage', '--json'], env);
  t.equal(usage.code, 0, usage.stderr);
  const u = JSON.parse(usage.stdout) as { families: { id: string; keys: number }[]; usedBytes: number };
  t.equal(u.families.find((f) => f.id === 'count')?.keys, 4, 'usage sees the count key of each of the 4 shards, over every master');
  t.ok(u.usedBytes > 0, 'and the masters\' memory');
});

t.test('Sentinel: a failover forced under load; ingest recovers, delivery resumes, acknowledged postbacks arrive', async (t) => {
  const group = await startSentinels('pbmaster');
  t.teardown(() => group.stop());
  const sink = await startSink();
  t.teardown(() => sink.close());
  const env = envFor({ REDIS_SENTINELS: group.nodes, REDIS_SENTINEL_NAME: 'pbmaster', INGEST_PORT: '0', DELIVERY_METRICS_PORT: '0' });
  const ingest = await spawnRole('ingest', env);
  const port = ingest.port('ingest');
  const delivery = await spawnRole('delivery', env);
  t.teardown(async () => {
    await ingest.stop();
    await delivery.stop();
  });

  // Postback id -> when ingest acknowledged it.
  const acked = new Map<string, number>();
  const statuses = new Map<number, number>();
  let unavailableFrom = 0;
  let longestOutage = 0;
  let sending = true;
  const load = (async () => {
    for (let r = 0; sending; r++) {
      const res = await post(`http://127.0.0.1:${port}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/s?n={n}` }, data: [{ n: r }, { n: -r }] })).catch(() => ({ status: 0, json: {} as { id?: string } }));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 202) {
        acked.set(`${res.json.id}:0`, Date.now());
        acked.set(`${res.json.id}:1`, Date.now());
        if (unavailableFrom) longestOutage = Math.max(longestOutage, Date.now() - unavailableFrom);
        unavailableFrom = 0;
      } else if (!unavailableFrom) {
        unavailableFrom = Date.now();
      }
      await new Promise((res2) => setTimeout(res2, 10));
    }
  })();
  await until(() => acked.size >= 200, 20_000);
  const before = await group.primary();
  t.match((await run('redis-cli', ['-p', String(before), 'client', 'list'])).stdout, ' name=ingest:', 'ingest is on the primary');
  const failoverFrom = Date.now();
  await group.failover();
  t.not(await group.primary(), before, 'the replica is primary now');
  // Sentinel promotes the replica without pausing the old primary, which
  // acknowledges writes until ingest moves to the new one; they are lost
  // when it is made a replica (docs/SCALING.md, What happens on a
  // failover). So the promise is for what was acknowledged before the
  // failover began or after ingest left the old primary.
  t.ok(await until(async () => !(await run('redis-cli', ['-p', String(before), 'client', 'list'])).stdout.includes(' name=ingest:'), 30_000), 'ingest left the old primary');
  const failoverTo = Date.now();
  const atFailover = acked.size;
  t.ok(await until(() => acked.size >= atFailover + 200, 30_000), 'ingest accepts again after the failover');
  sending = false;
  await load;
  const outside = new Set([...acked].filter(([, at]) => at < failoverFrom || at > failoverTo).map(([id]) => id));
  const during = new Set([...acked].filter(([, at]) => at >= failoverFrom && at <= failoverTo).map(([id]) => id));
  t.ok(await until(() => tally(sink, outside).lost === 0, 30_000), 'delivery resumed and caught up');
  const { distinct, duplicates, lost } = tally(sink, outside);
  t.comment(`sentinel failover: ${acked.size} acknowledged (${during.size} while it ran), ${distinct} delivered, lost ${lost} (${tally(sink, during).lost} of those acknowledged while it ran), duplicated ${duplicates}; answers ${JSON.stringify(Object.fromEntries(statuses))}; longest 503 stretch ${longestOutage} ms`);
  t.equal(lost, 0, 'no postback acknowledged before or after the failover lost');
  t.ok(longestOutage < 15_000, `ingest unavailable at most briefly (${longestOutage} ms)`);
  t.equal(delivery.proc.exitCode, null, 'delivery never exited');
});
