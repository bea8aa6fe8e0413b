/**
 * Security rules through real processes: the SSRF guard on by default,
 * signatures a receiver can verify with an independent implementation
 * (openssl), no secret in any log, and Redis with a password over TLS.
 */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { rmSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { startRedis } from '../helpers/redis.js';
import { spawnRole, testEnv, runCli } from '../helpers/procs.js';
import { freePort } from '../../bench/lib/ports.js';
import { track } from '../../bench/lib/cleanup.js';
import { post } from '../helpers/http.js';
import { waitForLines } from '../helpers/log.js';

t.test('by default a postback to a loopback address fails for good, with a clear log line', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ DELIVERY_ALLOW_PRIVATE: 'false', DELIVERY_BACKOFF_BASE_MS: '50' });
  t.teardown(() => stack.stop());
  const local = sink.origin.replace('127.0.0.1', 'localhost');
  const res = await stack.send({ endpoint: { method: 'GET', url: `${local}/ssrf?x={x}` }, data: [{ x: 1 }] });
  t.equal(res.status, 202, 'ingest takes it: the guard is at connect time');
  const id = `${res.json.id}:0`;
  await waitForLines(stack.env.LOG_DIR!, (ls) => ls.some((l) => l.id === id));
  // Once it has left the system (count 0), no retry can follow.
  t.ok(await stack.drained(), 'the postback finished');
  const mine = (await waitForLines(stack.env.LOG_DIR!, () => true)).filter((l) => l.id === id);
  t.equal(mine.length, 1, 'one attempt, no retries');
  t.match(mine[0], { outcome: 'dead', status: null, errorCode: 'PB_ERR_BLOCKED_ADDRESS' });
  t.match(mine[0]!.error, /refused to connect to 127\.0\.0\.1 \(localhost\)/);
  t.equal(sink.received.length, 0, 'nothing reached the local endpoint');
});

t.test('signed deliveries verify with openssl, with either secret during a rotation', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const secretNew = 'new-secret-0123456789abcdef';
  const secretOld = 'old-secret-0123456789abcdef';
  const stack = await startStack({ SIGNING_SECRET: `${secretNew},${secretOld}` });
  t.teardown(() => stack.stop());
  const before = Math.floor(Date.now() / 1000);
  await stack.send({ endpoint: { method: 'POST', url: `${sink.origin}/signed?k={k}` }, data: [{ k: 'a b', n: 1 }] });
  await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/signed?k={k}` }, data: [{ k: 'é' }] });
  await sink.waitFor(2);
  for (const r of sink.received) {
    const ts = Number(r.headers['x-postback-timestamp']);
    t.ok(ts >= before - 1 && ts <= Math.floor(Date.now() / 1000) + 1, 'a fresh timestamp');
    const sigs = String(r.headers['x-postback-signature']).split(',');
    t.equal(sigs.length, 2, 'both secrets sign during a rotation');
    const payload = `${r.headers['x-postback-id']}\n${ts}\n${r.method}\n${sink.origin}${r.url}\n${r.body}`;
    const hmac = (key: string) =>
      execFileSync('openssl', ['dgst', '-sha256', '-hmac', key, '-hex'], { input: payload, encoding: 'utf8' }).trim().split(/\s+/).pop();
    t.equal(sigs[0], `v1=${hmac(secretNew)}`, `${r.method}: the new secret's signature checks out`);
    t.equal(sigs[1], `v1=${hmac(secretOld)}`, `${r.method}: so does the old one's`);
    t.not(sigs[0], `v1=${hmac('wrong-secret-0123456789')}`, 'a wrong secret does not verify');
  }
  const preview = await post(`${stack.ingestUrl}/preview`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/p` }, data: [{}] }));
  t.match(preview.json.requests[0].headers, { 'x-postback-timestamp': /^\d+$/, 'x-postback-signature': /^v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/ });
});

t.test('no token, password or Authorization header in any log', async (t) => {
  const sink = await startSink((r) => (r.url.startsWith('/fail') ? { status: 500, body: 'nope' } : { status: 200 }));
  t.teardown(() => sink.close());
  const password = 'redis-pass-7f3a9c2e1b';
  const redis = await startRedis({ args: ['--requirepass', password] });
  t.teardown(() => redis.destroy());
  const token = 'ingest-token-5d8e1f0a9b7c';
  const env = testEnv(`redis://:${password}@127.0.0.1:${redis.port}`, {
    INGEST_PORT: '0',
    INGEST_TOKENS: token,
    SIGNING_SECRET: 'signing-secret-0a1b2c3d4e',
    DELIVERY_MAX_ATTEMPTS: '2',
    DELIVERY_BACKOFF_BASE_MS: '50',
    LOG_LEVEL: 'debug',
  });
  const ingest = await spawnRole('ingest', env);
  const delivery = await spawnRole('delivery', env);
  const body = JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/fail?x={x}` }, data: [{ x: 1 }] });
  const url = `http://127.0.0.1:${ingest.port('ingest')}/i`;
  t.equal((await post(url, body, { 'content-type': 'application/json', authorization: 'Bearer wrong-token-000000' })).status, 401);
  t.equal((await post(url, body, { 'content-type': 'application/json' })).status, 401);
  t.equal((await post(url, body, { 'content-type': 'application/json', authorization: `Bearer ${token}` })).status, 202);
  await sink.waitFor(2);
  const config = await runCli(['config'], env);
  await ingest.stop();
  await delivery.stop();
  const logs = readdirSync(env.LOG_DIR!).map((f) => readFileSync(join(env.LOG_DIR!, f), 'utf8')).join('\n') + ingest.output() + delivery.output() + config.stdout;
  t.ok(logs.length > 500, 'there are logs to search');
  for (const secret of [token, password, 'signing-secret-0a1b2c3d4e', 'wrong-token-000000']) {
    t.notMatch(logs, secret, `${secret.slice(0, 12)}… appears nowhere`);
  }
  t.notMatch(logs, /authorization/i);
});

t.test('REDIS_URL with a password over TLS (rediss://)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const port = await freePort();
  const password = 'tls-redis-pass-123456';
  const server = track(spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem'), '--tls-ca-cert-file', join(dir, 'cert.pem'), '--tls-auth-clients', 'no', '--requirepass', password, '--save', '', '--dir', dir], { stdio: 'ignore' }));
  t.teardown(() => server.kill('SIGKILL'));
  const url = `rediss://:${password}@127.0.0.1:${port}`;
  const probe = new Redis(url, { tls: { ca: readFileSync(join(dir, 'cert.pem')) }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
  probe.on('error', () => undefined);
  for (let i = 0; i < 50; i++) {
    try {
      await probe.connect();
      break;
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  t.equal(await probe.ping(), 'PONG', 'the TLS Redis answers');
  probe.disconnect();

  const sink = await startSink();
  t.teardown(() => sink.close());
  const env = testEnv(url, { INGEST_PORT: '0', NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
  const ingest = await spawnRole('ingest', env);
  const delivery = await spawnRole('delivery', env);
  t.teardown(async () => {
    await ingest.stop();
    await delivery.stop();
  });
  const res = await post(`http://127.0.0.1:${ingest.port('ingest')}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/tls?x={x}` }, data: [{ x: 1 }, { x: 2 }] }));
  t.equal(res.status, 202);
  await sink.waitFor(2);
  t.same(sink.received.map((r) => r.url).sort(), ['/tls?x=1', '/tls?x=2']);
});

t.test('ingest will not start open on an address other machines reach', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  const env = testEnv(redis.url, { INGEST_PORT: '0', INGEST_HOST: '0.0.0.0' });
  const refused = await runCli(['ingest'], env, 20_000);
  t.equal(refused.code, 1, 'exit 1 before listening');
  t.match(refused.stderr, /ingest refuses to start: INGEST_HOST=0\.0\.0\.0 can be reached from other machines.*set INGEST_TOKENS.*INGEST_ALLOW_ANONYMOUS=true/);
  t.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('DELIVERY_ALLOWED_ORIGINS at delivery: a postback queued before it was set fails for good, unsent', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  // Ingest without the list (it was queued before the setting), delivery with it.
  const stack = await startStack({ DELIVERY_BACKOFF_BASE_MS: '50' }, { deliveries: 0 });
  t.teardown(() => stack.stop());
  const res = await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/x?n={n}` }, data: [{ n: 1 }] });
  t.equal(res.status, 202);
  await stack.startDelivery({ DELIVERY_ALLOWED_ORIGINS: 'https://*.partner.example' });
  const lines = await waitForLines(stack.env.LOG_DIR!, (ls) => ls.length >= 1);
  t.match(lines[0], { outcome: 'dead', errorCode: 'PB_ERR_ORIGIN_NOT_ALLOWED', attempt: 1 });
  t.ok(await stack.drained(), 'finished');
  t.equal(sink.received.length, 0, 'nothing sent');
});
