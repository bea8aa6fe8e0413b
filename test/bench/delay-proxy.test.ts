/**
 * The harness's delay proxy (bench/lib/delay-proxy.ts), which the
 * e2e-remote-redis scenario puts between the roles and Redis: bytes pass
 * whole and in order both ways, through the delay line and past
 * back-pressure; a half-close is passed on after the data before it;
 * traffic is counted per role from the connection name. No timing is
 * asserted (the scenario records the round trip it measures).
 */
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { startDelayProxy } from '../../bench/lib/delay-proxy.js';
import { until } from '../helpers/count.js';
import { startRedis } from '../helpers/redis.js';

/** An echo server: every byte back, and the end after them. */
async function echoServer(t: Test): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** Sends `payload` in chunks, ends, and resolves with everything read back until the end. */
async function roundTrip(port: number, payload: Buffer, chunk: number): Promise<Buffer> {
  const s: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  const ended = once(s, 'end');
  for (let i = 0; i < payload.length; i += chunk) {
    if (!s.write(payload.subarray(i, i + chunk))) await once(s, 'drain');
  }
  s.end();
  await ended;
  s.destroy();
  return Buffer.concat(got);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('bytes come back whole and in order through the delay line, past back-pressure, then the end', async (t) => {
  const echo = await echoServer(t);
  const proxy = await startDelayProxy({ targetPort: (echo.address() as AddressInfo).port, delayMs: 0.5 });
  t.teardown(() => proxy.close());
  // 24 MiB in 16 KiB chunks: more than the line's high-water mark and the sockets' buffers hold.
  const payload = randomBytes(24 * 1_048_576);
  const back = await roundTrip(proxy.port, payload, 16_384);
  t.equal(back.length, payload.length, 'every byte');
  t.equal(sha(back), sha(payload), 'in order');
  const traffic = await proxy.traffic();
  t.equal(traffic.other?.upBytes, payload.length, 'counted up');
  t.equal(traffic.other?.downBytes, payload.length, 'counted down');
});

t.test('at 0 ms it is the same relay; the delay can change between uses', async (t) => {
  const echo = await echoServer(t);
  const proxy = await startDelayProxy({ targetPort: (echo.address() as AddressInfo).port, delayMs: 0 });
  t.teardown(() => proxy.close());
  const payload = randomBytes(1_048_576);
  t.equal(sha(await roundTrip(proxy.port, payload, 1_000)), sha(payload), 'at 0 ms');
  await proxy.setDelay(2);
  t.equal(proxy.delayMs, 2);
  t.equal(sha(await roundTrip(proxy.port, payload, 1_000)), sha(payload), 'at 2 ms');
});

t.test('a long delay holds what is in the line; a shorter one applies to it too and releases it', async (t) => {
  const echo = await echoServer(t);
  const proxy = await startDelayProxy({ targetPort: (echo.address() as AddressInfo).port, delayMs: 600_000 });
  t.teardown(() => proxy.close());
  const payload = randomBytes(65_536);
  const back = roundTrip(proxy.port, payload, 4_096);
  // Read by the proxy and held (ten minutes: the test would time out first).
  t.ok(await until(async () => ((await proxy.traffic()).other?.upBytes ?? 0) >= payload.length), 'read by the proxy');
  await proxy.setDelay(0);
  t.equal(sha(await back), sha(payload), 'released whole and in order');
});

t.test('Redis through it: replies in order, traffic counted per role from the connection name', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  const proxy = await startDelayProxy({ targetPort: redis.port, delayMs: 0.5 });
  t.teardown(() => proxy.close());
  const client = new Redis(proxy.port, '127.0.0.1', { connectionName: 'ingest:42', enableAutoPipelining: true });
  t.teardown(() => client.disconnect());
  const n = 2_000;
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => client.incr('k').then((v) => [i, v])));
  t.ok(replies.every(([i, v]) => v === (i as number) + 1), 'each reply to its own command, in order');
  const traffic = await proxy.traffic();
  t.equal(traffic.ingest?.connections, 1, 'one connection named ingest:...');
  t.ok((traffic.ingest?.upChunks ?? 0) >= 1 && (traffic.ingest?.upChunks ?? 0) < n, 'commands of one turn went as a few bursts');
  await client.quit();
});
