/**
 * The SSRF guard at the HTTP client, against real listeners: names that
 * resolve to loopback and IP literals are refused before any connection,
 * by default; the flag and allowed ranges lift it; redirects are not
 * followed.
 */
import t from 'tap';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { HttpClient } from '../../src/delivery/http-client.js';
import { classify } from '../../src/delivery/outcome.js';
import type { WorkerSettings } from '../../src/delivery/attempt.js';

const base: WorkerSettings = {
  timeoutMs: 2000,
  responseBodyMax: 64,
  connectionsPerOrigin: 2,
  encodedDefault: '',
  userAgent: 'test',
  allowPrivate: false,
  allowedCidrs: [],
  allowedOrigins: [],
  dnsServers: [],
  signingSecrets: [],
  signingScheme: 'postback',
  caCerts: [],
};

async function listener(host: string, reply: (url: string) => [number, Record<string, string>]) {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    const [status, headers] = reply(req.url ?? '');
    res.writeHead(status, headers).end('ok');
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, hits: () => hits, close: () => new Promise((r) => server.close(r)) };
}

function send(client: HttpClient, origin: string) {
  return client.send({ origin, path: '/x', url: `${origin}/x`, method: 'GET', headers: {}, body: null });
}

t.test('loopback by name or literal is refused by default, allowed with the flag', async (t) => {
  const v4 = await listener('127.0.0.1', () => [200, {}]);
  const v6 = await listener('::1', () => [200, {}]);
  t.teardown(async () => {
    await v4.close();
    await v6.close();
  });
  const guarded = new HttpClient(base);
  t.teardown(() => guarded.close());
  for (const origin of [`http://localhost:${v4.port}`, `http://127.0.0.1:${v4.port}`, `http://[::1]:${v6.port}`, 'http://169.254.169.254', 'http://[::ffff:127.0.0.1]:80', 'http://0.0.0.0:80', 'http://[::127.0.0.1]:80', 'http://[::ffff:0:127.0.0.1]:80']) {
    const r = await send(guarded, origin);
    t.equal(r.errorCode, 'PB_ERR_BLOCKED_ADDRESS', `${origin} refused`);
    t.match(r.error, /refused to connect to .*DELIVERY_ALLOW_PRIVATE/);
    t.equal(r.status, null);
    t.equal(classify(r.status, r.errorCode), 'permanent', 'no retries');
  }
  t.equal(v4.hits() + v6.hits(), 0, 'no request reached a listener');

  const open = new HttpClient({ ...base, allowPrivate: true });
  t.teardown(() => open.close());
  t.equal((await send(open, `http://localhost:${v4.port}`)).status, 200, 'DELIVERY_ALLOW_PRIVATE=true: allowed');
  t.equal((await send(open, `http://[::1]:${v6.port}`)).status, 200);

  const ranged = new HttpClient({ ...base, allowedCidrs: ['127.0.0.0/8'] });
  t.teardown(() => ranged.close());
  t.equal((await send(ranged, `http://localhost:${v4.port}`)).status, 200, 'an allowed range goes through');
  t.equal((await send(ranged, `http://[::1]:${v6.port}`)).errorCode, 'PB_ERR_BLOCKED_ADDRESS', 'others stay refused');
});

t.test('a redirect to a private address is not followed', async (t) => {
  const target = await listener('127.0.0.1', () => [200, {}]);
  const redirector = await listener('127.0.0.1', () => [302, { location: `http://127.0.0.1:${target.port}/internal` }]);
  t.teardown(async () => {
    await target.close();
    await redirector.close();
  });
  const client = new HttpClient({ ...base, allowedCidrs: [`127.0.0.1/32`] });
  t.teardown(() => client.close());
  const r = await send(client, `http://127.0.0.1:${redirector.port}`);
  t.equal(r.status, 302);
  t.equal(r.errorCode, 'PB_ERR_REDIRECT');
  t.match(r.error, `127.0.0.1:${target.port}/internal`);
  t.equal(classify(r.status, r.errorCode), 'permanent');
  t.equal(target.hits(), 0, 'the redirect target was never called');
});
