import t from 'tap';
import { parseConfig } from '../../src/config/parse.js';
import { DEFAULTS } from '../../src/config/defaults.js';

t.test('allowed origins and anonymous ingest', async (t) => {
  const bad = parseConfig({ DELIVERY_ALLOWED_ORIGINS: 'https://ok.example,partner.com' });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.problems.join(';'), /DELIVERY_ALLOWED_ORIGINS: "partner\.com" must start with http/);
  const good = parseConfig({ DELIVERY_ALLOWED_ORIGINS: 'https://*.ok.example, http://h:8080', INGEST_ALLOW_ANONYMOUS: 'true' });
  t.ok(good.ok);
  if (good.ok) {
    t.same(good.config.delivery.allowedOrigins, ['https://*.ok.example', 'http://h:8080']);
    t.equal(good.config.ingest.allowAnonymous, true);
  }
});

t.test('defaults when the environment is empty', async (t) => {
  const r = parseConfig({});
  t.ok(r.ok);
  if (!r.ok) return;
  const c = r.config;
  t.equal(c.redis.url, undefined);
  t.equal(c.redis.port, 6380);
  t.equal(c.ingest.host, '127.0.0.1', 'ingest listens on loopback unless told otherwise');
  t.equal(c.ingest.allowAnonymous, false);
  t.same(c.delivery.allowedOrigins, []);
  t.equal(c.ingest.port, 8080);
  t.equal(c.monitor.port, 9090);
  t.equal(c.monitor.host, '127.0.0.1', 'the monitor and delivery metrics listen on loopback unless told otherwise');
  t.equal(c.delivery.unmatchedDefault, '');
  t.equal(c.delivery.maxAttempts, 5);
  t.equal(c.delivery.timeoutMs, 10_000);
  t.equal(c.delivery.backoffBaseMs, 1_000);
  t.equal(c.delivery.backoffMaxMs, 600_000);
  t.equal(c.delivery.ttlMs, 86_400_000);
  t.equal(c.delivery.delayMs, 0);
  t.equal(c.delivery.maxDelayMs, 86_400_000);
  t.equal(c.delivery.concurrency, 1024);
  t.equal(c.delivery.workers, DEFAULTS.DELIVERY_WORKERS);
  t.equal(c.delivery.allowPrivate, false);
  t.equal(c.delivery.responseBodyMax, 1024);
  t.equal(c.ingest.maxBodyBytes, 1_048_576);
  t.equal(c.ingest.maxInflightBytes, 67_108_864, 'ingest holds at most 64 MiB of request bodies at once');
  t.equal(c.ingest.maxItems, 10_000);
  t.equal(c.log.dir, './var/log');
  t.same(c.ingest.tokens, []);
});

t.test('every variable of the contract is read', async (t) => {
  const r = parseConfig({
    REDIS_URL: 'redis://10.0.0.1:6400',
    REDIS_PORT: '6500',
    INGEST_HOST: '127.0.0.1',
    INGEST_PORT: '8081',
    MONITOR_PORT: '9091',
    UNMATCHED_DEFAULT: 'n/a',
    DELIVERY_MAX_ATTEMPTS: '3',
    DELIVERY_TIMEOUT_MS: '2000',
    DELIVERY_BACKOFF_BASE_MS: '50',
    DELIVERY_BACKOFF_MAX_MS: '5000',
    DELIVERY_TTL_MS: '60000',
    DELIVERY_DELAY_MS: '10',
    DELIVERY_MAX_DELAY_MS: '1000',
    DELIVERY_CONCURRENCY: '64',
    DELIVERY_WORKERS: '1',
    DELIVERY_ALLOW_PRIVATE: 'true',
    RESPONSE_BODY_MAX: '16',
    INGEST_MAX_BODY_BYTES: '4096',
    INGEST_MAX_ITEMS: '7',
    LOG_DIR: '/tmp/x',
    INGEST_TOKENS: 'aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb',
  });
  t.ok(r.ok, r.ok ? '' : r.problems.join('; '));
  if (!r.ok) return;
  const c = r.config;
  t.equal(c.redis.url, 'redis://10.0.0.1:6400');
  t.equal(c.redis.port, 6500);
  t.equal(c.ingest.host, '127.0.0.1');
  t.equal(c.ingest.port, 8081);
  t.equal(c.monitor.port, 9091);
  t.equal(c.delivery.unmatchedDefault, 'n/a');
  t.equal(c.delivery.maxAttempts, 3);
  t.equal(c.delivery.timeoutMs, 2000);
  t.equal(c.delivery.backoffBaseMs, 50);
  t.equal(c.delivery.backoffMaxMs, 5000);
  t.equal(c.delivery.ttlMs, 60000);
  t.equal(c.delivery.delayMs, 10);
  t.equal(c.delivery.maxDelayMs, 1000);
  t.equal(c.delivery.concurrency, 64);
  t.equal(c.delivery.workers, 1);
  t.equal(c.delivery.allowPrivate, true);
  t.equal(c.delivery.responseBodyMax, 16);
  t.equal(c.ingest.maxBodyBytes, 4096);
  t.equal(c.ingest.maxItems, 7);
  t.equal(c.log.dir, '/tmp/x');
  t.same(c.ingest.tokens, ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
});

t.test('DELIVERY_WORKERS: 0 means the main thread sends; the default leaves a core for it', async (t) => {
  const r = parseConfig({ DELIVERY_WORKERS: '0' });
  t.ok(r.ok && r.config.delivery.workers === 0);
  const cores = (await import('node:os')).availableParallelism();
  t.equal(DEFAULTS.DELIVERY_WORKERS, cores > 2 ? cores - 1 : 0);
});

t.test('UNMATCHED_DEFAULT keeps spaces and may be set to empty', async (t) => {
  const r = parseConfig({ UNMATCHED_DEFAULT: ' x ' });
  t.ok(r.ok && r.config.delivery.unmatchedDefault === ' x ');
});

t.test('every bad value is reported at once, each naming its variable', async (t) => {
  const r = parseConfig({
    INGEST_PORT: 'eighty',
    DELIVERY_MAX_ATTEMPTS: '0',
    DELIVERY_ALLOW_PRIVATE: 'maybe',
    REDIS_URL: 'http://nope',
    LOG_LEVEL: 'loud',
    DELIVERY_CONCURRENCY: '-5',
    DELIVERY_TIMEOUT_MS: '1.5',
  });
  t.notOk(r.ok);
  if (r.ok) return;
  const text = r.problems.join('\n');
  for (const name of ['INGEST_PORT', 'DELIVERY_MAX_ATTEMPTS', 'DELIVERY_ALLOW_PRIVATE', 'REDIS_URL', 'LOG_LEVEL', 'DELIVERY_CONCURRENCY', 'DELIVERY_TIMEOUT_MS']) {
    t.match(text, name, `${name} named`);
  }
  t.equal(r.problems.length, 7);
});

t.test('cross-variable rules', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ DELIVERY_BACKOFF_BASE_MS: '5000', DELIVERY_BACKOFF_MAX_MS: '1000' }, /DELIVERY_BACKOFF_BASE_MS/],
    [{ DELIVERY_DELAY_MS: '5000', DELIVERY_MAX_DELAY_MS: '1000' }, /DELIVERY_DELAY_MS/],
    [{ DELIVERY_TIMEOUT_MS: '60000', DELIVERY_TTL_MS: '5000' }, /DELIVERY_TIMEOUT_MS/],
    [{ INGEST_TOKENS: 'short' }, /INGEST_TOKENS/],
    [{ SIGNING_SECRET: 'short' }, /SIGNING_SECRET must be .*at least 16 characters/],
    [{ SIGNING_SECRET: `whsec_${Buffer.alloc(8).toString('base64')}` }, /SIGNING_SECRET .*24 to 64 bytes \(this one: 8\)/],
    [{ SIGNING_SECRET: 'a-long-enough-secret-1,a-long-enough-secret-2,a-long-enough-secret-3' }, /one or two/],
    [{ SIGNING_SCHEME: 'svix' }, /SIGNING_SCHEME/],
    [{ INGEST_REQUEST_TIMEOUT_MS: '3000' }, /INGEST_HEADERS_TIMEOUT_MS \(10000\) must not exceed INGEST_REQUEST_TIMEOUT_MS \(3000\)/],
    [{ INGEST_MAX_URL_BYTES: '20000' }, /INGEST_MAX_RENDERED_URL_BYTES \(16384\) must not be below INGEST_MAX_URL_BYTES/],
    [{ REDIS_PREFIX: 'a b' }, /REDIS_PREFIX must be 1 to 64 letters/],
    [{ INGEST_MAX_INFLIGHT_BYTES: '1000' }, /INGEST_MAX_INFLIGHT_BYTES \(1000\) must be at least INGEST_MAX_BODY_BYTES \(1048576\)/],
    [{ INGEST_WAIT_REPLICAS: '1' }, /INGEST_WAIT_REPLICAS needs a Redis with replicas .*the private Redis has none/],
    [{ INGEST_WAIT_REPLICAS: '1', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, /INGEST_WAIT_REPLICAS works with one primary .*not with REDIS_CLUSTER_NODES/],
    [{ INGEST_WAIT_REPLICAS: '1', REDIS_URL: 'redis://127.0.0.1:7000', INGEST_WAIT_REPLICAS_MS: '2000' }, /INGEST_WAIT_REPLICAS_MS \(2000\) must be below INGEST_WRITE_TIMEOUT_MS \(2000\)/],
  ];
  for (const [env, re] of cases) {
    const r = parseConfig(env);
    t.notOk(r.ok, JSON.stringify(env));
    if (!r.ok) t.match(r.problems.join(';'), re);
  }
  t.ok(parseConfig({ INGEST_REQUEST_TIMEOUT_MS: '3000', INGEST_HEADERS_TIMEOUT_MS: '3000' }).ok, 'headers timeout equal to the request timeout is fine');
  t.ok(parseConfig({ INGEST_WAIT_REPLICAS: '1', REDIS_SENTINELS: '127.0.0.1:26379' }).ok, 'WAIT with Sentinel is fine');
  t.ok(parseConfig({ INGEST_WAIT_REPLICAS: '0' }).ok, 'no WAIT with the private Redis is fine');
});

t.test('signing: the scheme and whsec_ secrets', async (t) => {
  const r = parseConfig({ SIGNING_SCHEME: 'standard', SIGNING_SECRET: `whsec_${Buffer.alloc(32).toString('base64')},raw-secret-0123456789` });
  t.ok(r.ok, r.ok ? '' : r.problems.join('; '));
  if (r.ok) t.equal(r.config.delivery.signingScheme, 'standard');
  const d = parseConfig({});
  if (d.ok) t.equal(d.config.delivery.signingScheme, 'postback', 'the default stays the postback scheme');
});

t.test('a bad token is never echoed', async (t) => {
  const r = parseConfig({ INGEST_TOKENS: 'secret-but-short' + ' x' });
  t.notOk(r.ok);
  if (!r.ok) t.notMatch(r.problems.join(';'), /secret/);
});

t.test('Redis modes: exactly one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS', async (t) => {
  const mode = (env: Record<string, string>) => {
    const r = parseConfig(env);
    return r.ok ? r.config.redis.mode : r.problems.join('; ');
  };
  t.equal(mode({}), 'private');
  t.equal(mode({ REDIS_URL: 'redis://h:1' }), 'url');
  t.equal(mode({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7000' }), 'cluster');
  t.equal(mode({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'pb' }), 'sentinel');
  t.match(mode({ REDIS_URL: 'redis://h:1', REDIS_SENTINELS: 's1:26379' }), /only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS/);
  t.match(mode({ REDIS_CLUSTER_NODES: 'nohost' }), /REDIS_CLUSTER_NODES must be a comma list of host:port/);
  const r = parseConfig({ REDIS_CLUSTER_NODES: '[::1]:7000', QUEUE_SHARDS: '8', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' });
  t.ok(r.ok && r.config.redis.shards === 8 && r.config.redis.password === 'pw' && r.config.redis.tls);
  t.notOk(parseConfig({ QUEUE_SHARDS: '0' }).ok);
  t.notOk(parseConfig({ REDIS_PORT: '6379' }).ok, 'never the default port');
});
