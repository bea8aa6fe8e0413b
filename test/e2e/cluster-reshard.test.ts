/**
 * Live resharding on a real Redis Cluster: the slot of a queue shard is
 * migrated key by key (what `redis-cli --cluster reshard` does) while
 * ingest and delivery run. A script call that reaches the slot mid-way
 * must not run on the importing node beside keys still on the other one:
 * before every key a script touches was declared, ingest's enqueue, sent
 * on by the ASK for its (already moved) template key, created a second
 * stream and count on the importing node; the migration then failed with
 * BUSYKEY and the postbacks answered 202 there were stranded.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startSink } from '../helpers/sink.js';
import { tally, until } from '../helpers/count.js';
import { startCluster } from '../../bench/lib/topology.js';
import { spawnRole, testEnv, type RoleProcess } from '../helpers/procs.js';
import { post } from '../helpers/http.js';

const run = promisify(execFile);
const cli = async (port: number, ...args: string[]): Promise<string> => (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();

t.test('a shard\'s slot migrated key by key under ingest and delivery: no BUSYKEY, every 202 delivered once', async (t) => {
  const cluster = await startCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const sink = await startSink();
  t.teardown(() => sink.close());
  const env = testEnv('', { REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_SHARDS: '1', INGEST_PORT: '0' });
  delete env.REDIS_URL;
  const roles: RoleProcess[] = [];
  t.teardown(() => Promise.all(roles.map((r) => r.stop())));
  roles.push(await spawnRole('ingest', env));
  roles.push(await spawnRole('delivery', env));
  const url = `http://127.0.0.1:${roles[0]?.port('ingest')}/i`;
  const expected = new Set<string>();
  const send = async (n: number): Promise<number> => {
    const res = await post(url, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/r?n={n}` }, data: [{ n }, { n: -n }] }));
    if (res.status === 202) for (let i = 0; i < 2; i++) expected.add(`${res.json.id}:${i}`);
    return res.status;
  };

  t.equal(await send(1), 202);
  t.ok(await until(() => tally(sink, expected).distinct === expected.size, 15_000), 'delivered before the migration');

  // The shard's slot, the master holding it (source) and another (target).
  const ports = cluster.ports;
  const slot = Number(await cli(ports[0] as number, 'cluster', 'keyslot', `${env.REDIS_PREFIX}:{0}:stream`));
  const holding = await Promise.all(ports.map(async (p) => Number(await cli(p, 'cluster', 'countkeysinslot', String(slot)))));
  const source = ports[holding.findIndex((n) => n > 0)] as number;
  const target = ports.find((p) => p !== source) as number;
  const sourceId = await cli(source, 'cluster', 'myid');
  const targetId = await cli(target, 'cluster', 'myid');
  t.equal(await cli(target, 'cluster', 'setslot', String(slot), 'importing', sourceId), 'OK');
  t.equal(await cli(source, 'cluster', 'setslot', String(slot), 'migrating', targetId), 'OK');
  const migrate = (key: string) => cli(source, 'migrate', '127.0.0.1', String(target), '', '0', '5000', 'keys', key);

  // The template first: the shard's stream and count stay on the source.
  const keys = (await cli(source, 'cluster', 'getkeysinslot', String(slot), '1000')).split('\n');
  const template = keys.find((k) => k.includes(':tpl:'));
  t.ok(template, 'the template is stored');
  t.equal(await migrate(template as string), 'OK');
  // A request for that template now: enqueue may wait (TRYAGAIN) or be refused, never split the shard.
  const during = await send(2);
  t.ok(during === 202 || during === 503, `ingest answers 202 or 503 mid-migration (${during})`);

  const refused: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const next = await cli(source, 'cluster', 'getkeysinslot', String(slot), '1');
    if (next === '') break;
    const out = await migrate(next);
    if (out !== 'OK') {
      refused.push(`${next}: ${out}`);
      break;
    }
  }
  t.same(refused, [], 'every key of the slot moved (no key of the shard was created on the importing node)');
  for (const port of cluster.ports) await cli(port, 'cluster', 'setslot', String(slot), 'node', targetId);

  t.equal(await send(3), 202, 'ingest writes to the shard on its new master');
  t.ok(await until(() => tally(sink, expected).lost === 0, 15_000), 'every postback answered 202 is delivered');
  const { lost, duplicates } = tally(sink, expected);
  t.equal(lost, 0);
  t.equal(duplicates, 0);
  t.ok(await until(async () => (await cli(target, 'get', `${env.REDIS_PREFIX}:{0}:count`)) === '0', 10_000), 'the shard\'s count is back to 0 on the new master');
});
