import t from 'tap';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { createIngestServer } from '../../src/ingest/server.js';
import { Enqueuer } from '../../src/ingest/enqueue.js';
import { createRedis } from '../../src/queue/redis.js';
import { shardKeys, templateKey } from '../../src/queue/keys.js';
import { decodeEntry, decodeTemplate } from '../../src/queue/codec.js';
import { createRequestIdGenerator } from '../../src/postback/ids.js';
import { startDelayProxy } from '../../bench/lib/delay-proxy.js';
import { until } from '../helpers/count.js';
import { startRedis } from '../helpers/redis.js';
import { testConfig } from '../helpers/config.js';
import { post } from '../helpers/http.js';
import { startIngest } from '../helpers/ingest.js';
import { validateIngest } from '../../src/ingest/parse-request.js';
import { idempotencyOf } from '../../src/ingest/idempotency.js';

const SAMPLE = {
  endpoint: { method: 'GET', url: 'http://sample_domain_endpoint.com/data?key={key}&value={value}&foo={bar}' },
  data: [
    { key: 'Azureus', value: 'Dendrobates' },
    { key: 'Phyllobates', value: 'Terribilis' },
  ],
};

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: { error?: string; message?: string; id?: string; accepted?: number; requests?: unknown[]; total?: number; truncated?: boolean };
}

/** A request to the in-process server; JSON by default. */
function call(port: number, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Res> {
  return post(`http://127.0.0.1:${port}${path}`, body ?? '', { 'content-type': 'application/json', ...headers }, method);
}

t.test('ingest HTTP contract against a real Redis', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = testConfig({ REDIS_URL: redisServer.url, REDIS_PREFIX: prefix, INGEST_MAX_BODY_BYTES: '4096', INGEST_MAX_ITEMS: '100' });
  const redis = createRedis(config, 'ingest', 'test-ingest');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  const keys = shardKeys(prefix, 0);
  const enqueuer = new Enqueuer(redis, [keys], { lifetimeMs: 1000, maxQueue: 0, statsRetentionS: 60, idempotencyTtlMs: 60_000 });
  const logger = pino({ level: 'silent' });
  const ingest = createIngestServer({ config, redis, enqueuer, logger, nextId: createRequestIdGenerator() });
  ingest.server.listen(0, '127.0.0.1');
  await once(ingest.server, 'listening');
  const port = (ingest.server.address() as { port: number }).port;
  t.teardown(async () => {
    await ingest.close();
    redis.disconnect();
  });
  const check = redisServer.client();

  t.test('without tokens, a request from a web page (Origin) is refused: no cross-site form post, no DNS rebinding', async (t) => {
    const before = await check.xlen(keys.stream);
    const form = 'endpoint[method]=GET&endpoint[url]=http%3A%2F%2Fexample.com%2F%3Fk%3D%7Bk%7D&data[0][k]=1';
    for (const origin of ['https://evil.example', 'http://rebind.test:8080', 'null']) {
      const res = await call(port, 'POST', '/i', form, { 'content-type': 'application/x-www-form-urlencoded', origin });
      t.equal(res.status, 403, `Origin ${origin}: 403`);
      t.match(res.json, { error: 'cross_site_request', message: /web page .*INGEST_TOKENS.*nothing was queued/ });
    }
    t.equal(await check.xlen(keys.stream), before, 'nothing queued');
    t.equal((await call(port, 'POST', '/i', JSON.stringify(SAMPLE), { origin: 'http://localhost:3000' })).status, 202, 'a page on this machine is taken');
    t.equal((await call(port, 'POST', '/i', JSON.stringify(SAMPLE))).status, 202, 'a server (no Origin) is taken');
  });

  t.test('202 on both paths; entries and template land in Redis', async (t) => {
    for (const path of ['/ingest.php', '/i']) {
      const before = await check.xlen(keys.stream);
      const res = await call(port, 'POST', path, JSON.stringify(SAMPLE));
      t.equal(res.status, 202, path);
      t.match(res.headers['content-type'], /^application\/json/);
      t.equal(res.json.accepted, 2);
      t.match(res.json.id, /^[A-Za-z0-9_-]{9,}$/);
      t.equal(await check.xlen(keys.stream), before + 1, 'one entry holds the request');
    }
    const entries = await check.xrangeBuffer(keys.stream, '-', '+');
    const entry = decodeEntry(entries[0]![1][1]!);
    t.same(entry.items, SAMPLE.data);
    t.equal(entry.attempts, 0);
    t.equal(entry.firstIndex, 0);
    const tpl = await check.getBuffer(templateKey(keys, entry.templateId));
    t.same(decodeTemplate(tpl!), { method: 'GET', url: SAMPLE.endpoint.url });
    t.ok((await check.pttl(templateKey(keys, entry.templateId))) > 0, 'the template expires eventually');
  });

  t.test('a request larger than one entry is split, ids stay distinct and ordered', async (t) => {
    await check.del(keys.stream);
    const data = Array.from({ length: 100 }, (_, i) => ({ i }));
    const res = await call(port, 'POST', '/i', JSON.stringify({ endpoint: SAMPLE.endpoint, data }));
    t.equal(res.status, 202);
    t.equal(res.json.accepted, 100);
    const entries = (await check.xrangeBuffer(keys.stream, '-', '+')).map((e) => decodeEntry(e[1][1]!));
    t.same(entries.map((e) => [e.firstIndex, e.items.length]), [[0, 64], [64, 36]]);
    t.same(entries.flatMap((e) => e.items), data);
    t.equal(new Set(entries.map((e) => e.requestId)).size, 1);
  });

  t.test('a template Redis lost is written again', async (t) => {
    const keysBefore = await check.keys(`${prefix}:*tpl:*`);
    await check.del(...keysBefore);
    const res = await call(port, 'POST', '/i', JSON.stringify(SAMPLE));
    t.equal(res.status, 202);
    t.equal((await check.keys(`${prefix}:*tpl:*`)).length, 1);
  });

  t.test('a template expiry is refreshed once it runs an hour low, not on every request', async (t) => {
    // lifetimeMs 1000: the template's time-to-live is a day and a second.
    const ttl = 1000 + 86_400_000;
    const res0 = await call(port, 'POST', '/i', JSON.stringify(SAMPLE));
    t.equal(res0.status, 202);
    const [tpl] = await check.keys(`${prefix}:*tpl:*`);
    const cases: [string, (key: string) => Promise<unknown>, (pttl: number) => boolean][] = [
      ['low (two hours short): refreshed to the full TTL', (k) => check.pexpire(k, ttl - 7_200_000), (p) => p > ttl - 60_000],
      ['within the hour: left as it is', (k) => check.pexpire(k, ttl - 1_800_000), (p) => p <= ttl - 1_800_000 && p > ttl - 1_900_000],
      ['no expiry at all: given one', (k) => check.persist(k), (p) => p > ttl - 60_000 && p <= ttl],
    ];
    for (const [name, set, ok] of cases) {
      await set(tpl!);
      const res = await call(port, 'POST', '/i', JSON.stringify(SAMPLE));
      t.equal(res.status, 202, name);
      const pttl = await check.pttl(tpl!);
      t.ok(ok(pttl), `${name} (PTTL ${pttl})`);
    }
  });

  t.test('every error status, each a JSON body with error and message', async (t) => {
    const big = JSON.stringify({ endpoint: SAMPLE.endpoint, data: [{ k: 'x'.repeat(5000) }] });
    const cases: [string, string, string | undefined, Record<string, string>, number, string][] = [
      ['POST', '/i', '{"endpoint":', {}, 400, 'bad_json'],
      ['POST', '/i', JSON.stringify({ endpoint: { method: 'PUT', url: 'http://h/' }, data: [{}] }), {}, 400, 'invalid_request'],
      ['POST', '/i', JSON.stringify({ ...SAMPLE, data: [] }), {}, 400, 'invalid_request'],
      ['POST', '/nope', JSON.stringify(SAMPLE), {}, 404, 'not_found'],
      ['GET', '/i', undefined, {}, 405, 'method_not_allowed'],
      ['PUT', '/ingest.php', JSON.stringify(SAMPLE), {}, 405, 'method_not_allowed'],
      ['POST', '/i', big, {}, 413, 'payload_too_large'],
      ['POST', '/i', JSON.stringify(SAMPLE), { 'content-type': 'text/plain' }, 415, 'unsupported_media_type'],
      ['POST', '/i', JSON.stringify(SAMPLE), { 'content-type': 'application/xml' }, 415, 'unsupported_media_type'],
      ['POST', '/i', 'endpoint[method]=GET&data[x][', { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'bad_form'],
      ['POST', '/i', 'hello', { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'bad_form'],
      ['POST', '/i', `endpoint${'[a]'.repeat(1_000)}=1`, { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'bad_form'],
      ['POST', '/preview', `endpoint${'[a]'.repeat(1_000)}=1`, { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'bad_form'],
      ['POST', '/i', ' {"endpoint":', { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'bad_json'],
      ['POST', '/i', '{"endpoint":{"method":"GET"},"data":[{}]}', { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'invalid_request'],
    ];
    const before = await check.xlen(keys.stream);
    for (const [method, path, body, headers, status, error] of cases) {
      const res = await call(port, method, path, body, headers);
      t.equal(res.status, status, `${method} ${path} -> ${status}`);
      t.equal(res.json.error, error);
      t.type(res.json.message, 'string');
      t.match(res.headers['content-type'], /^application\/json/);
      if (status === 405) t.equal(res.headers.allow, 'POST');
    }
    t.equal(await check.xlen(keys.stream), before, 'nothing queued by a bad request');
  });

  t.test('a missing Content-Type is read as JSON; charset is ignored', async (t) => {
    const res = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/i' }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify(SAMPLE));
    });
    t.equal(res, 202);
    t.equal((await call(port, 'POST', '/i', JSON.stringify(SAMPLE), { 'content-type': 'application/json; charset=latin1' })).status, 202);
  });

  t.test('JSON sent as a form (curl -d without -H) is read as JSON', async (t) => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const before = await check.xlen(keys.stream);
    for (const body of [JSON.stringify(SAMPLE), `\r\n  ${JSON.stringify(SAMPLE, null, 2)}`, `\ufeff${JSON.stringify(SAMPLE)}`]) {
      const res = await call(port, 'POST', '/i', body, form);
      t.equal(res.status, 202, JSON.stringify(body.slice(0, 12)));
      t.equal(res.json.accepted, 2);
    }
    t.equal(await check.xlen(keys.stream), before + 3, 'each queued once');
    const preview = await call(port, 'POST', '/preview', JSON.stringify(SAMPLE), form);
    t.equal(preview.status, 200, '/preview reads it the same way');
  });

  t.test('a body that grows past the limit without Content-Length gets 413', async (t) => {
    const res = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/i', headers: { 'transfer-encoding': 'chunked' } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
      req.end();
    });
    t.equal(res, 413);
  });

  t.test('malformed HTTP gets a JSON 400 and the server lives on', async (t) => {
    const raw = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('POST /i HTTP/1.1\r\nContent-Length: nope\r\n\r\n'));
      let out = '';
      s.on('data', (d) => (out += d.toString()));
      s.on('close', () => resolve(out));
    });
    t.match(raw, /^HTTP\/1\.1 400/);
    t.match(raw, /"error":"invalid_request"/);
    t.equal((await call(port, 'POST', '/i', JSON.stringify(SAMPLE))).status, 202);
  });

  t.test('/preview shows the exact requests and queues nothing', async (t) => {
    const before = await check.xlen(keys.stream);
    const post = { endpoint: { method: 'POST', url: 'http://h.com/d?k={key}' }, data: [{ key: 'a b', v: 1 }] };
    const res = await call(port, 'POST', '/preview', JSON.stringify(post));
    t.equal(res.status, 200);
    const [r] = res.json.requests as { id: string; method: string; url: string; headers: Record<string, string>; body: string }[];
    t.equal(r!.method, 'POST');
    t.equal(r!.url, 'http://h.com/d?k=a%20b');
    t.equal(r!.body, '{"key":"a b","v":1}');
    t.equal(r!.headers['content-type'], 'application/json');
    t.equal(r!.headers['x-postback-id'], r!.id);
    t.match(r!.headers['user-agent'], /^postback-delivery\/\d+\.\d+\.\d+/);
    t.match(r!.id, /:0$/);
    t.equal(res.json.total, 1);
    t.equal(res.json.truncated, false);
    const bad = await call(port, 'POST', '/preview', '{"endpoint":{}}');
    t.equal(bad.status, 400);
    t.equal(await check.xlen(keys.stream), before);
  });

  t.test('/preview of a request that renders to far more than it holds is cut short, and says so', async (t) => {
    // 2.3 KB (this server takes 4,096 bytes and 100 items) that would
    // render to 200 KB of URLs; the answer stays near INGEST_MAX_BODY_BYTES.
    const url = `http://h.com/${'a'.repeat(2000)}?k={k}`;
    const res = await call(port, 'POST', '/preview', JSON.stringify({ endpoint: { method: 'GET', url }, data: Array.from({ length: 100 }, () => ({})) }));
    t.equal(res.status, 200);
    t.equal(res.json.total, 100);
    t.equal(res.json.truncated, true);
    t.equal(res.json.requests?.length, 2, 'the requests that fit in 4,096 bytes of URLs');
    t.ok(res.body.length < 2 * 4096, `answer of ${res.body.length} bytes`);
  });

  t.test('health endpoints', async (t) => {
    t.equal((await call(port, 'GET', '/healthz')).status, 200);
    t.equal((await call(port, 'GET', '/readyz')).status, 200);
  });

  t.test('Redis down: 503 quickly with Retry-After, nothing half-written; recovers by itself', async (t) => {
    await redisServer.stop();
    const started = Date.now();
    const res = await call(port, 'POST', '/i', JSON.stringify(SAMPLE));
    t.equal(res.status, 503);
    t.equal(res.json.error, 'unavailable');
    t.equal(res.headers['retry-after'], '1');
    t.ok(Date.now() - started < 3000, 'answered within the write timeout');
    t.equal((await call(port, 'GET', '/readyz')).status, 503);
    t.equal((await call(port, 'POST', '/i', '{bad')).status, 400, 'a bad request is still a 400');
    await redisServer.start();
    const until = Date.now() + 10_000;
    let status = 0;
    while (Date.now() < until && status !== 202) {
      status = (await call(port, 'POST', '/i', JSON.stringify(SAMPLE))).status;
      if (status !== 202) await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(status, 202, 'accepted again once Redis is back');
  });
});

t.test('INGEST_TOKENS: 401 without the right bearer token, 202 with it', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const token = 'tok_0123456789abcdef';
  const config = testConfig({ REDIS_URL: redisServer.url, INGEST_TOKENS: `other_0123456789abcd,${token}` });
  const port = await startIngest(t, config, [shardKeys('auth', 0)]);
  const body = JSON.stringify(SAMPLE);
  for (const auth of [undefined, 'Bearer wrong', `Basic ${token}`, `Bearer ${token}x`, 'Bearer ']) {
    const res = await call(port, 'POST', '/i', body, auth ? { authorization: auth } : {});
    t.equal(res.status, 401, String(auth));
    t.equal(res.json.error, 'unauthorized');
  }
  t.equal((await call(port, 'POST', '/i', body, { authorization: `Bearer ${token}` })).status, 202);
  t.equal((await call(port, 'POST', '/i', body, { authorization: `bearer ${token}` })).status, 202, 'scheme is case-insensitive');
  t.equal((await call(port, 'GET', '/healthz')).status, 200, 'health needs no token');
});

t.test('DELIVERY_ALLOWED_ORIGINS: any other destination is refused at ingest, naming the item and the origin', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const config = testConfig({ REDIS_URL: redisServer.url, DELIVERY_ALLOWED_ORIGINS: 'https://*.partner.example, http://tracker.example:8080' });
  const keys = shardKeys('orig', 0);
  const port = await startIngest(t, config, [keys]);
  const check = redisServer.client();
  const send = (url: string, data: object[], path = '/i') => call(port, 'POST', path, JSON.stringify({ endpoint: { method: 'GET', url }, data }));
  t.equal((await send('https://api.partner.example/cb?x={x}', [{ x: 1 }])).status, 202, 'a listed subdomain');
  t.equal((await send('http://tracker.example:8080/p?x={x}', [{ x: 1 }])).status, 202, 'an exact origin');
  const cases: [string, object[], RegExp][] = [
    ['https://evil.example/cb?x={x}', [{ x: 1 }], /^endpoint\.url goes to https:\/\/evil\.example, which DELIVERY_ALLOWED_ORIGINS does not allow$/],
    ['https://partner.example/cb', [{}], /endpoint\.url goes to https:\/\/partner\.example/],
    ['http://tracker.example/p', [{}], /goes to http:\/\/tracker\.example,/],
    ['https://{h}.partner.example/cb', [{ h: 'a' }, { h: 'b' }], /^$/],
    ['https://{h}/cb', [{ h: 'a.partner.example' }, { h: 'metadata.internal' }], /^data\[1\] goes to https:\/\/metadata\.internal, which DELIVERY_ALLOWED_ORIGINS does not allow$/],
  ];
  const before = await check.xlen(keys.stream);
  let accepted = 0;
  for (const [url, data, re] of cases) {
    for (const path of ['/i', '/preview']) {
      const res = await send(url, data, path);
      if (re.source === '^$') {
        t.equal(res.status, path === '/i' ? 202 : 200, `${url}: every rendering allowed`);
        if (path === '/i') accepted++;
        continue;
      }
      t.equal(res.status, 400, `${path} ${url}`);
      t.equal(res.json.error, 'origin_not_allowed');
      t.match(res.json.message, re);
    }
  }
  t.equal(await check.xlen(keys.stream), before + accepted, 'nothing of a refused request queued');
});

t.test('group commit: concurrent requests share script calls, each keeps its own answer', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const config = testConfig({ REDIS_URL: redisServer.url });
  const keys = shardKeys('grp', 0);
  const port = await startIngest(t, config, [keys], 25);
  const check = redisServer.client();
  const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await check.info('commandstats'))?.[1] ?? 0);
  const before = await calls();
  // 40 requests of 1 postback at once against a limit of 25 postbacks.
  const answers = await Promise.all(Array.from({ length: 40 }, () => call(port, 'POST', '/i', JSON.stringify({ ...SAMPLE, data: [{ key: 'k' }] }))));
  const accepted = answers.filter((a) => a.status === 202).length;
  const full = answers.filter((a) => a.status === 503 && a.json.error === 'queue_full').length;
  t.equal(accepted, 25, 'exactly as many as the limit holds');
  t.equal(full, 15, 'the rest refused, each on its own');
  t.equal(await check.xlen(keys.stream), 25, 'and only those written');
  t.equal(await check.get(keys.count), '25');
  const used = (await calls()) - before;
  t.ok(used < 40, `${used} script calls for 40 requests`);
});

t.test('Redis far away: each script call goes out at once, not after the one before it returns', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const proxy = await startDelayProxy({ targetPort: redisServer.port, delayMs: 0 });
  t.teardown(() => proxy.close());
  const config = testConfig({ REDIS_URL: proxy.url, INGEST_WRITE_TIMEOUT_MS: '60000' });
  const keys = shardKeys('far', 0);
  const port = await startIngest(t, config, [keys]);
  // Bursts of commands ingest's connection ('test-ingest') wrote through the proxy.
  const bursts = async () => (await proxy.traffic())['test-ingest']?.upChunks ?? 0;
  const before = await bursts();
  // Redis ten minutes away: every call is held in the proxy, unanswered, until released.
  await proxy.setDelay(600_000);
  let answered = 0;
  const send = () =>
    call(port, 'POST', '/i', JSON.stringify(SAMPLE)).then((r) => {
      answered++;
      return r;
    });
  const first = send();
  t.ok(await until(async () => (await bursts()) > before), 'the first request went to Redis');
  const second = send();
  t.ok(await until(async () => (await bursts()) > before + 1), 'the second one too, while the first waits for its answer');
  t.equal(answered, 0, 'neither answered yet');
  await proxy.setDelay(0);
  t.equal((await first).status, 202);
  t.equal((await second).status, 202);
  t.equal(await redisServer.client().xlen(keys.stream), 2, 'both written');
});

/**
 * A proxy to Redis that, once armed, passes the next script call through
 * and then drops the connection instead of passing Redis's reply back: the
 * write happened, its confirmation never arrives.
 */
async function replyDropper(targetPort: number): Promise<{ port: number; arm(): void; close(): void }> {
  let armed = false;
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let dropNext = false;
    client.on('data', (d: Buffer) => {
      if (armed && /evalsha/i.test(d.toString('latin1'))) {
        armed = false;
        dropNext = true;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (dropNext) {
        client.destroy();
        upstream.destroy();
      } else client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    arm: () => {
      armed = true;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

t.test('a write whose confirmation is lost is answered "may have been queued", never "nothing was queued"', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const proxy = await replyDropper(redisServer.port);
  t.teardown(() => proxy.close());
  const config = testConfig({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
  const keys = shardKeys('lost', 0);
  const port = await startIngest(t, config, [keys]);
  t.equal((await call(port, 'POST', '/i', JSON.stringify(SAMPLE))).status, 202, 'through the proxy');
  proxy.arm();
  const res = await call(port, 'POST', '/i', JSON.stringify(SAMPLE));
  t.equal(res.status, 503);
  t.equal(res.json.error, 'unavailable');
  t.match(res.json.message, /may have been queued/);
  t.notMatch(res.json.message, /nothing was queued/);
  t.equal(await redisServer.client().xlen(keys.stream), 2, 'and it was: Redis ran the script');
});

t.test('shutdown: a request on an idle keep-alive connection gets an answer, not a reset', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const config = testConfig({ REDIS_URL: redisServer.url, REDIS_PREFIX: `t${randomBytes(4).toString('hex')}` });
  const redis = createRedis(config, 'ingest', 'test-ingest');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  t.teardown(() => redis.disconnect());
  const ingest = createIngestServer({
    config,
    redis,
    enqueuer: new Enqueuer(redis, [shardKeys(config.redis.prefix, 0)], { lifetimeMs: 1000, maxQueue: 0, statsRetentionS: 60, idempotencyTtlMs: 60_000 }),
    logger: pino({ level: 'silent' }),
    nextId: createRequestIdGenerator(),
  });
  ingest.server.listen(0, '127.0.0.1');
  await once(ingest.server, 'listening');
  const port = (ingest.server.address() as { port: number }).port;
  const body = JSON.stringify(SAMPLE);
  const request = `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let out = '';
  let reset = false;
  socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
  socket.on('error', () => (reset = true));
  const closedSocket = once(socket, 'close');
  socket.write(request);
  t.ok(await until(() => /HTTP\/1\.1 202/.test(out), 5_000), 'the first request: 202, the connection kept alive');
  // The process begins to stop while the client, unaware, sends its next request on the idle connection.
  const closed = ingest.close();
  socket.write(request);
  await closedSocket;
  await closed;
  t.notOk(reset, 'no reset');
  t.match(out, /HTTP\/1\.1 202[\s\S]*HTTP\/1\.1 503[\s\S]*connection: close[\s\S]*"error":"shutting_down"/i, 'the second: 503 shutting_down, Connection: close');
});

t.test('Redis full: a keyed retry sent in the same turn as a new request still gets its first answer', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const admin = redisServer.client();
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = testConfig({ REDIS_URL: redisServer.url, REDIS_PREFIX: prefix });
  const redis = createRedis(config, 'ingest', 'test-ingest');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  const enqueuer = new Enqueuer(redis, [shardKeys(prefix, 0)], { lifetimeMs: 1000, maxQueue: 0, statsRetentionS: 60, idempotencyTtlMs: 60_000 });
  t.teardown(async () => {
    await enqueuer.close().catch(() => undefined);
    redis.disconnect();
  });
  const limits = { maxItems: 100, maxUrlBytes: 8192, maxRenderedUrlBytes: 16_384, encodedDefault: '', maxDelayMs: 0, defaultDelayMs: 0 };
  const req = validateIngest(SAMPLE, limits);
  const key = idempotencyOf('retry-me', '-', 'application/json', Buffer.from(JSON.stringify(SAMPLE)));
  const first = await enqueuer.enqueue(req, 'first-id', Date.now(), key);
  t.match(first, { id: 'first-id', replayed: false });
  await admin.config('SET', 'maxmemory', '1');
  try {
    // Both in one turn: one script call for the two, which the full Redis refuses at the new request's write.
    const [retry, fresh] = await Promise.allSettled([enqueuer.enqueue(req, 'second-id', Date.now(), key), enqueuer.enqueue(req, 'third-id', Date.now(), null)]);
    t.match(retry, { status: 'fulfilled', value: { id: 'first-id', accepted: 2, replayed: true } }, 'the retry: its first answer');
    t.match(fresh, { status: 'rejected', reason: { code: 'PB_ERR_REDIS_FULL' } }, 'the new one: redis_full');
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
});

t.test('INGEST_MAX_INFLIGHT_BYTES: requests past the budget get 503 overloaded, and the budget comes back', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const config = testConfig({ REDIS_URL: redisServer.url, INGEST_MAX_BODY_BYTES: '4096', INGEST_MAX_INFLIGHT_BYTES: '8192' });
  const port = await startIngest(t, config, [shardKeys('budget', 0)]);
  // Two slow uploads hold 3,000 bytes each of the 8,192 (their bodies never end).
  const slow = await Promise.all(
    [0, 1].map(async () => {
      const s = connect(port, '127.0.0.1');
      await once(s, 'connect');
      s.on('error', () => undefined);
      s.write(`POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n${'x'.repeat(3000)}`);
      return s;
    }),
  );
  t.teardown(() => {
    for (const s of slow) s.destroy();
  });
  // A third whose body would pass the budget: refused, nothing queued, the connection closed.
  const big = JSON.stringify({ ...SAMPLE, pad: 'p'.repeat(3000) });
  let third: Res | undefined;
  t.ok(await until(async () => {
    third = await call(port, 'POST', '/i', big);
    return third.status === 503;
  }, 5_000), 'the third request is refused once the two hold their bytes');
  t.match(third, { status: 503, json: { error: 'overloaded' }, headers: { 'retry-after': '1', connection: 'close' } });
  t.equal(await redisServer.client().xlen(shardKeys('budget', 0).stream), 0, 'nothing queued');
  // The slow clients go away: their bytes come back.
  for (const s of slow) s.destroy();
  t.ok(await until(async () => (await call(port, 'POST', '/i', big)).status === 202, 5_000), 'accepted again');
});

t.test('INGEST_MAX_QUEUE over 4 shards: a request larger than a shard\'s share goes into an empty shard', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = testConfig({ REDIS_URL: redisServer.url, REDIS_PREFIX: prefix });
  const redis = createRedis(config, 'ingest', 'test-ingest');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  const shards = [0, 1, 2, 3].map((i) => shardKeys(prefix, i));
  // 20 in all: 5 a shard.
  const enqueuer = new Enqueuer(redis, shards, { lifetimeMs: 1000, maxQueue: 20, statsRetentionS: 60, idempotencyTtlMs: 60_000 });
  t.teardown(async () => {
    await enqueuer.close().catch(() => undefined);
    redis.disconnect();
  });
  const limits = { maxItems: 100, maxUrlBytes: 8192, maxRenderedUrlBytes: 16_384, encodedDefault: '', maxDelayMs: 0, defaultDelayMs: 0 };
  const request = (n: number) => validateIngest({ endpoint: SAMPLE.endpoint, data: Array.from({ length: n }, (_, i) => ({ key: String(i) })) }, limits);
  t.match(await enqueuer.enqueue(request(5), 'a', Date.now()), { accepted: 5 }, 'shard 0: its share');
  t.match(await enqueuer.enqueue(request(6), 'b', Date.now()), { accepted: 6 }, 'shard 1, empty: 6 items, more than its share, taken');
  t.match(await enqueuer.enqueue(request(20), 'c', Date.now()), { accepted: 20 }, 'shard 2, empty: a request of the whole limit, taken');
  t.match(await enqueuer.enqueue(request(1), 'd', Date.now()), { accepted: 1 }, 'shard 3: one');
  await t.rejects(enqueuer.enqueue(request(5), 'e', Date.now()), { code: 'PB_ERR_QUEUE_FULL' }, 'shard 0 again, at its share: refused');
  const check = redisServer.client();
  t.same(await Promise.all(shards.map(async (k) => Number(await check.get(k.count)))), [5, 6, 20, 1], 'what each shard holds');
});
