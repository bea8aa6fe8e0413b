/**
 * Cached name resolution against a real DNS server on 127.0.0.1 (the
 * harness's) and the system resolver: TTLs honoured, one query for
 * concurrent lookups, failures kept briefly, a bounded cache, and the SSRF
 * check applied to cached answers too.
 */
import t from 'tap';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { LookupAddress } from 'node:dns';
import { startDnsServer } from '../../bench/lib/dns-server.js';
import { createNameResolver, type NameResolver } from '../../src/delivery/resolver.js';
import { HttpClient } from '../../src/delivery/http-client.js';
import type { WorkerSettings } from '../../src/delivery/attempt.js';

const resolve = (r: NameResolver, name: string) =>
  new Promise<{ err: NodeJS.ErrnoException | null; addresses: LookupAddress[] }>((done) => r.resolve(name, (err, addresses) => done({ err, addresses })));

t.test('answers from the configured servers, kept for their TTL', async (t) => {
  const dns = await startDnsServer({ zone: 'pb.test', ttl: 30 });
  t.teardown(() => dns.close());
  let clock = Date.now();
  const r = createNameResolver([dns.server], { now: () => clock });
  const first = await resolve(r, 'a.pb.test');
  t.equal(first.err, null);
  t.same(first.addresses, [{ address: '127.0.0.1', family: 4 }]);
  t.equal(dns.queries.get('a.pb.test'), 1);
  clock += 29_000;
  await resolve(r, 'a.pb.test');
  t.equal(dns.queries.get('a.pb.test'), 1, 'within the TTL: from the cache');
  clock += 2_000;
  await resolve(r, 'a.pb.test');
  t.equal(dns.queries.get('a.pb.test'), 2, 'past it: asked again');
});

t.test('concurrent lookups of one name share one query; a slow server is waited for', async (t) => {
  const dns = await startDnsServer({ zone: 'pb.test', ttl: 30, delayMs: 50 });
  t.teardown(() => dns.close());
  const r = createNameResolver([dns.server]);
  const all = await Promise.all(Array.from({ length: 20 }, () => resolve(r, 'busy.pb.test')));
  t.ok(all.every((x) => x.err === null && x.addresses[0]?.address === '127.0.0.1'), 'all answered');
  t.equal(dns.queries.get('busy.pb.test'), 1, 'one query');
});

t.test('an unknown name fails with ENOTFOUND, kept a second', async (t) => {
  const dns = await startDnsServer({ zone: 'pb.test' });
  t.teardown(() => dns.close());
  let clock = Date.now();
  const r = createNameResolver([dns.server], { now: () => clock });
  const miss = await resolve(r, 'nowhere.example');
  t.equal(miss.err?.code, 'ENOTFOUND');
  t.same(miss.addresses, []);
  const before = dns.total;
  await resolve(r, 'nowhere.example');
  t.equal(dns.total, before, 'the failure is kept');
  clock += 1_500;
  await resolve(r, 'nowhere.example');
  t.ok(dns.total > before, 'then asked again');
});

t.test('the cache is bounded: the least recently used name goes first', async (t) => {
  const dns = await startDnsServer({ zone: 'pb.test', ttl: 300 });
  t.teardown(() => dns.close());
  const r = createNameResolver([dns.server], { maxNames: 3 });
  for (const n of ['a', 'b', 'c']) await resolve(r, `${n}.pb.test`);
  await resolve(r, 'a.pb.test'); // a used again: b is now the oldest
  await resolve(r, 'd.pb.test');
  t.equal(r.size, 3);
  await resolve(r, 'a.pb.test');
  t.equal(dns.queries.get('a.pb.test'), 1, 'a stayed');
  await resolve(r, 'b.pb.test');
  t.equal(dns.queries.get('b.pb.test'), 2, 'b was dropped and asked again');
});

t.test('without servers: the system resolver (/etc/hosts), kept', async (t) => {
  const r = createNameResolver([]);
  const local = await resolve(r, 'localhost');
  t.equal(local.err, null);
  t.ok(local.addresses.some((a) => a.address === '127.0.0.1' || a.address === '::1'));
  t.equal(local.addresses[0]?.family, local.addresses.some((a) => a.family === 4) ? 4 : 6, 'IPv4 first');
  t.equal(r.size, 1);
});

t.test('a partner name through the client: delivered when allowed, refused from the cache too when private', async (t) => {
  const dns = await startDnsServer({ zone: 'pb.test', ttl: 300 });
  t.teardown(() => dns.close());
  const server = createServer((_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((r) => server.close(r)));
  const port = (server.address() as { port: number }).port;
  const settings: WorkerSettings = { timeoutMs: 2_000, responseBodyMax: 16, connectionsPerOrigin: 2, encodedDefault: '', userAgent: 't', allowPrivate: true, allowedCidrs: [], allowedOrigins: [], dnsServers: [dns.server], signingSecrets: [], signingScheme: 'postback', caCerts: [] };
  const send = (c: HttpClient, host: string) => c.send({ origin: `http://${host}:${port}`, path: '/', url: `http://${host}:${port}/`, method: 'GET', headers: {}, body: null });
  const open = new HttpClient(settings);
  t.teardown(() => open.close());
  t.equal((await send(open, 'partner.pb.test')).status, 200, 'resolved through DELIVERY_DNS_SERVERS');
  const guarded = new HttpClient({ ...settings, allowPrivate: false });
  t.teardown(() => guarded.close());
  for (const attempt of [1, 2]) {
    const r = await send(guarded, 'evil.pb.test');
    t.equal(r.errorCode, 'PB_ERR_BLOCKED_ADDRESS', `attempt ${attempt}: a name resolving to loopback is refused`);
  }
  t.equal(dns.queries.get('evil.pb.test'), 1, 'the second refusal came from the cached answer');
});

t.test('many partners: idle pools are bounded (each costs undici a 2,048-slot queue), the longest idle closed first', async (t) => {
  const dns = await startDnsServer({ zone: 'pb.test', ttl: 300 });
  t.teardown(() => dns.close());
  let sockets = 0;
  const server = createServer((_req, res) => res.end('ok'));
  server.on('connection', (s) => {
    sockets++;
    s.once('close', () => sockets--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((r) => server.close(r)));
  const port = (server.address() as { port: number }).port;
  const client = new HttpClient({ timeoutMs: 2_000, responseBodyMax: 16, connectionsPerOrigin: 4, encodedDefault: '', userAgent: 't', allowPrivate: true, allowedCidrs: [], allowedOrigins: [], dnsServers: [dns.server], signingSecrets: [], signingScheme: 'postback', caCerts: [] });
  t.teardown(() => client.close());
  const origins = 1_500;
  for (let i = 0; i < origins; i += 100) {
    const batch = Array.from({ length: 100 }, (_, k) => `http://p${i + k}.pb.test:${port}`);
    const results = await Promise.all(batch.map((origin) => client.send({ origin, path: '/', url: `${origin}/`, method: 'GET', headers: {}, body: null })));
    t.ok(results.every((r) => r.status === 200), `partners ${i} to ${i + 99} delivered`);
  }
  t.ok(client.poolCount <= 256, `at most 256 idle pools kept for ${origins} partners: ${client.poolCount}`);
  // The closed pools' sockets close too (seen from the server side).
  const until = Date.now() + 5_000;
  while (sockets > 256 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.ok(sockets <= 256, `open connections follow: ${sockets}`);
});
