/**
 * Ingest with its metrics on, as every role runs it (src/ingest/main.ts
 * passes a registry; the contract tests run without one): every kind of
 * answer is counted, and none of them throws. An `Expect` other than
 * 100-continue used to reach the metrics without a start time: the
 * duration was NaN, prom-client threw, and the process shut down on one
 * header.
 */
import t from 'tap';
import { once } from 'node:events';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createIngestServer } from '../../src/ingest/server.js';
import { Enqueuer } from '../../src/ingest/enqueue.js';
import { createRedis } from '../../src/queue/redis.js';
import { shardKeys } from '../../src/queue/keys.js';
import { createRequestIdGenerator } from '../../src/postback/ids.js';
import { startRedis } from '../helpers/redis.js';
import { testConfig } from '../helpers/config.js';
import { get } from '../helpers/http.js';

/** One raw request on its own connection; resolves with everything the server sent before it closed (or 5 s passed). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    s.setTimeout(5_000, () => s.destroy());
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

t.test('ingest with metrics: every answer is counted and none throws', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = testConfig({ REDIS_URL: redisServer.url, REDIS_PREFIX: prefix });
  const redis = createRedis(config, 'ingest', 'test-ingest-metrics');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  const errors: unknown[] = [];
  const ingest = createIngestServer({
    config,
    redis,
    enqueuer: new Enqueuer(redis, [shardKeys(prefix, 0)], { lifetimeMs: 1000, maxQueue: 0, statsRetentionS: 60, idempotencyTtlMs: 60_000 }),
    logger: pino({ level: 'silent' }),
    nextId: createRequestIdGenerator(),
    registry: new Registry(),
  });
  // An exception out of a server event is what stopped the process (uncaughtException).
  ingest.server.on('error', (err) => errors.push(err));
  const onUncaught = (err: unknown) => errors.push(err);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => void process.off('uncaughtException', onUncaught));
  ingest.server.listen(0, '127.0.0.1');
  await once(ingest.server, 'listening');
  const port = (ingest.server.address() as { port: number }).port;
  t.teardown(async () => {
    await ingest.close();
    redis.disconnect();
  });

  const body = JSON.stringify({ endpoint: { method: 'GET', url: 'http://example.com/cb?k={k}' }, data: [{ k: 1 }] });
  const len = Buffer.byteLength(body);
  const cases: [string, string, number][] = [
    ['Expect other than 100-continue', `POST /i HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 417],
    ['Expect on an unknown path', `POST /nope HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 417],
    ['a valid request', `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 202],
    ['unknown path', 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 404],
    ['wrong method', 'GET /i HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 405],
    ['malformed HTTP', 'POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n', 400],
  ];
  for (const [name, text, status] of cases) {
    const out = await raw(port, text);
    t.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status}`);
  }
  t.same(errors, [], 'no exception escaped');
  t.equal(ingest.server.listening, true, 'still listening');

  const metrics = await get(`http://127.0.0.1:${port}/metrics`);
  t.match(metrics.body, /^pb_ingest_requests_total\{route="ingest",status="417"\} 1$/m, 'the 417 on /i is counted under its route');
  t.match(metrics.body, /^pb_ingest_requests_total\{route="unknown",status="417"\} 1$/m, 'and on an unknown path under "unknown"');
  t.match(metrics.body, /^pb_ingest_requests_total\{route="ingest",status="202"\} 1$/m, 'the 202 is counted');
  t.notMatch(metrics.body, /NaN/, 'no NaN in any duration');
});
