/**
 * INGEST_WAIT_REPLICAS: ingest answers 202 only once a replica has the
 * write (Redis WAIT), so a failover cannot lose what was acknowledged.
 * With the replica frozen (SIGSTOP), the request gets 503 "may have been
 * queued" after INGEST_WAIT_REPLICAS_MS (the primary has it); once the
 * replica is back, a retry with the same Idempotency-Key gets the first
 * request's id, and nothing is queued twice. A real primary, replica and
 * sentinels (bench/lib/topology.ts).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startSentinels } from '../../bench/lib/topology.js';
import { spawnRole, testEnv } from '../helpers/procs.js';
import { post } from '../helpers/http.js';
import { until } from '../helpers/count.js';

const run = promisify(execFile);

t.test('INGEST_WAIT_REPLICAS: 202 once the replica has it; 503 "may have been queued" while it is frozen', async (t) => {
  const group = await startSentinels('pbwait');
  t.teardown(() => group.stop());
  const replica = group.procs[1]!;
  const env = testEnv('', { REDIS_SENTINELS: group.nodes, REDIS_SENTINEL_NAME: 'pbwait', INGEST_PORT: '0', INGEST_WAIT_REPLICAS: '1', INGEST_WAIT_REPLICAS_MS: '300' });
  delete env.REDIS_URL;
  const ingest = await spawnRole('ingest', env);
  t.teardown(() => ingest.stop());
  const url = `http://127.0.0.1:${ingest.port('ingest')}/i`;
  const send = (n: number, key: string) =>
    post(url, JSON.stringify({ endpoint: { method: 'GET', url: 'http://127.0.0.1:9/w?n={n}' }, data: [{ n }] }), { 'content-type': 'application/json', 'idempotency-key': key });
  const entries = async () => Number((await run('redis-cli', ['-p', String(group.primaryPort), 'xlen', `${env.REDIS_PREFIX}:{0}:stream`])).stdout.trim());

  // A replica takes writes once its first sync is done (Redis waits 5 s
  // to start a diskless one); until then WAIT rightly counts none.
  t.ok(await until(async () => /slave0:.*state=online/.test((await run('redis-cli', ['-p', String(group.primaryPort), 'info', 'replication'])).stdout), 30_000), 'the replica is in sync');
  const first = await send(1, 'key-one');
  t.equal(first.status, 202, 'the replica confirms: 202');
  t.equal(await entries(), 1);

  replica.kill('SIGSTOP');
  t.teardown(() => void replica.kill('SIGCONT'));
  const began = Date.now();
  const frozen = await send(2, 'key-two');
  t.equal(frozen.status, 503, 'no replica confirms: 503');
  t.match(frozen.json, { error: 'unavailable', message: /0 of the 1 replicas .*may have been queued.*retry with the same Idempotency-Key/ });
  t.equal(frozen.headers['retry-after'], '1');
  t.ok(Date.now() - began >= 300, 'after INGEST_WAIT_REPLICAS_MS');
  t.equal(await entries(), 2, 'the primary has it: "may have been queued" is true');

  replica.kill('SIGCONT');
  const retry = await send(2, 'key-two');
  t.equal(retry.status, 202, 'the replica back: the retry gets 202');
  t.match(retry.json, { accepted: 1 });
  t.equal(await entries(), 2, 'and nothing was queued twice');
  t.equal(ingest.proc.exitCode, null);
});
