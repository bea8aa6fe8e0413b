/**
 * Idempotency-Key through real ingest processes and a real Redis: a
 * repeated key gets the first answer (same id, Idempotent-Replayed: true)
 * and queues nothing, sequentially and with 50 connections at once on two
 * ingest processes; the same key with another body gets 422; keys are
 * scoped per token; a key expires after INGEST_IDEMPOTENCY_TTL_MS; the
 * record survives a Redis restart (AOF).
 */
import t from 'tap';
import { startStack } from '../helpers/stack.js';
import { spawnRole } from '../helpers/procs.js';
import { post, type HttpResult } from '../helpers/http.js';
import { until } from '../helpers/count.js';

const TOKEN_A = 'token-aaaaaaaaaaaaaaaa';
const TOKEN_B = 'token-bbbbbbbbbbbbbbbb';

t.test('repeated keys queue once', async (t) => {
  const stack = await startStack({ INGEST_TOKENS: `${TOKEN_A},${TOKEN_B}`, QUEUE_SHARDS: '2', INGEST_IDEMPOTENCY_TTL_MS: '3000' }, { deliveries: 0, aof: true });
  t.teardown(() => stack.stop());
  const second = await spawnRole('ingest', stack.env);
  t.teardown(() => second.stop('SIGKILL'));
  const urls = [stack.ingestUrl, `http://127.0.0.1:${second.port('ingest')}`];
  const redis = stack.redis.client();
  const queued = async () => Number((await redis.get(`${stack.env.REDIS_PREFIX}:{0}:count`)) ?? 0) + Number((await redis.get(`${stack.env.REDIS_PREFIX}:{1}:count`)) ?? 0);
  const body = (n: number, tag = 'x') => JSON.stringify({ endpoint: { method: 'GET', url: `http://127.0.0.1:9/${tag}?n={n}` }, data: Array.from({ length: n }, (_, i) => ({ n: i })) });
  const send = (url: string, b: string, key: string | null, token = TOKEN_A): Promise<HttpResult> =>
    post(`${url}/i`, b, { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...(key === null ? {} : { 'idempotency-key': key }) });

  const first = await send(urls[0]!, body(3), 'order-1');
  t.match(first, { status: 202, json: { accepted: 3 } });
  t.equal(first.headers['idempotent-replayed'], undefined, 'the first answer is not a replay');
  const again = await send(urls[1]!, body(3), 'order-1');
  t.match(again, { status: 202, json: { id: first.json.id, accepted: 3 } }, 'a retry, on the other ingest process: the first answer');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(await queued(), 3, 'queued once');

  const concurrent = await Promise.all(Array.from({ length: 50 }, (_, i) => send(urls[i % 2]!, body(2, 'c'), 'order-2')));
  t.ok(concurrent.every((r) => r.status === 202), '50 at once, on two processes: all 202');
  t.equal(new Set(concurrent.map((r) => r.json.id)).size, 1, 'all with the same request id');
  t.equal(concurrent.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1, 'one of them the first');
  t.equal(await queued(), 5, 'queued exactly once');

  const reused = await send(urls[0]!, body(4), 'order-1');
  t.match(reused, { status: 422, json: { error: 'idempotency_key_reused' } }, 'the same key with another body');
  const otherToken = await send(urls[0]!, body(3), 'order-1', TOKEN_B);
  t.match(otherToken, { status: 202, json: { accepted: 3 } }, 'another client\'s token: its own key');
  t.not(otherToken.json.id, first.json.id);
  t.equal(await queued(), 8);
  t.match(await send(urls[0]!, body(1), 'x'.repeat(201)), { status: 400, json: { error: 'invalid_request', message: /Idempotency-Key/ } }, 'a malformed key');
  const plain = await Promise.all([send(urls[0]!, body(1), null), send(urls[0]!, body(1), null)]);
  t.not(plain[0]!.json.id, plain[1]!.json.id, 'without a key, each request is its own');
  t.equal(await queued(), 10);

  // The record survives a Redis restart (AOF, fsync always in tests).
  const kept = await send(urls[0]!, body(2, 'k'), 'order-3');
  await stack.redis.stop();
  await stack.redis.start();
  t.ok(await until(async () => (await send(urls[0]!, body(2, 'k'), 'order-3').catch(() => null))?.status === 202, 15_000), 'ingest is back');
  const afterRestart = await send(urls[0]!, body(2, 'k'), 'order-3');
  t.match(afterRestart, { status: 202, json: { id: kept.json.id } }, 'after the restart: still the first answer');
  t.equal(afterRestart.headers['idempotent-replayed'], 'true');

  // Past INGEST_IDEMPOTENCY_TTL_MS (3 s here) the key is free again.
  const idemKeys = async () => (await redis.keys(`${stack.env.REDIS_PREFIX}:{*}:idem:*`)).length;
  t.ok(await until(async () => (await idemKeys()) === 0, 10_000), 'records expire');
  const late = await send(urls[0]!, body(3), 'order-1');
  t.match(late, { status: 202, json: { accepted: 3 } });
  t.not(late.json.id, first.json.id, 'an expired key queues again');
  t.equal(late.headers['idempotent-replayed'], undefined);
});
