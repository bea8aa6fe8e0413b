/**
 * HttpClient (src/delivery/http-client.ts) in-process against real https
 * partners on 127.0.0.1: certificates from a throwaway CA made by openssl
 * at test time (bench/lib/certs.ts), names resolved by a real DNS server
 * (bench/lib/dns-server.ts) so the partner is reached by name, with SNI,
 * as in production. A certificate we do not trust, or a port that speaks
 * no TLS, ends the attempt with PB_ERR_TLS, before any request is sent.
 */
import t from 'tap';
import { createServer as createHttpServer } from 'node:http';
import { once } from 'node:events';
import { HttpClient, errorCodeOf, type SendRequest } from '../../src/delivery/http-client.js';
import type { WorkerSettings } from '../../src/delivery/attempt.js';
import { classify, health } from '../../src/delivery/outcome.js';
import { createTestCa, opensslMissing } from '../../bench/lib/certs.js';
import { startDnsServer } from '../../bench/lib/dns-server.js';
import { startSink } from '../helpers/sink.js';

const skip = opensslMissing() ?? false;

const SETTINGS: WorkerSettings = {
  timeoutMs: 5_000,
  responseBodyMax: 64,
  connectionsPerOrigin: 4,
  encodedDefault: '',
  userAgent: 'test',
  allowPrivate: true,
  allowedCidrs: [],
  allowedOrigins: [],
  dnsServers: [],
  signingSecrets: [],
  signingScheme: 'postback',
  caCerts: [],
};

function get(origin: string, path = '/cb?x=1'): SendRequest {
  return { origin, path, url: origin + path, method: 'GET', headers: { 'user-agent': 'test', 'x-postback-id': 'r:0' }, body: null };
}

t.test('Node TLS errors map to PB_ERR_TLS, worded by what to do', async (t) => {
  const cases: [string, RegExp][] = [
    ['SELF_SIGNED_CERT_IN_CHAIN', /^TLS: the partner's certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN: .*DELIVERY_CA_FILE/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', /not trusted/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /not trusted/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /^TLS: the partner's certificate is for another host name \(ERR_TLS_CERT_ALTNAME_INVALID/],
    ['CERT_HAS_EXPIRED', /^TLS: the partner's certificate is expired or not yet valid \(CERT_HAS_EXPIRED/],
    ['CERT_NOT_YET_VALID', /expired or not yet valid/],
    ['CERT_REVOKED', /^TLS: the partner's certificate was refused \(CERT_REVOKED/],
    ['ERR_SSL_WRONG_VERSION_NUMBER', /^TLS handshake failed \(ERR_SSL_WRONG_VERSION_NUMBER: wrong version number\)$/],
  ];
  for (const [code, want] of cases) {
    const err = Object.assign(new Error('raw text'), { code, reason: code.startsWith('ERR_SSL_') ? 'wrong version number' : undefined });
    const r = errorCodeOf(err, false);
    t.equal(r.code, 'PB_ERR_TLS', code);
    t.match(r.message, want, code);
  }
  t.equal(errorCodeOf(Object.assign(new Error('x'), { code: 'ECONNRESET' }), false).code, 'PB_ERR_SOCKET', 'other codes unchanged');
  t.equal(classify(null, 'PB_ERR_TLS'), 'retryable', 'retried: a certificate gets fixed (renewed, or our CA file)');
  t.equal(health(null, 'PB_ERR_TLS'), 'down', 'counts toward the breaker like a refused connection');
});

t.test('against real https partners', { skip }, async (t) => {
  const ca = createTestCa('pb tls test CA');
  const dns = await startDnsServer({ zone: 'pb.test' });
  t.teardown(() => dns.close());
  const sink = await startSink(() => ({ status: 200, body: 'ok' }), { tls: ca.issue({ names: ['partner.pb.test'], ips: ['127.0.0.1'] }) });
  t.teardown(() => sink.close());
  const byName = `https://partner.pb.test:${sink.port}`;
  const settings: WorkerSettings = { ...SETTINGS, dnsServers: [dns.server] };

  t.test('a certificate from a CA we do not trust: PB_ERR_TLS, nothing sent', async (t) => {
    const client = new HttpClient(settings);
    t.teardown(() => client.close());
    for (const origin of [byName, sink.origin]) {
      const r = await client.send(get(origin));
      t.equal(r.errorCode, 'PB_ERR_TLS', origin);
      t.match(r.error, /certificate is not trusted .*DELIVERY_CA_FILE/, origin);
      t.equal(r.status, null);
      t.equal(r.body, null);
      t.equal(r.responseTime, null);
    }
    t.equal(sink.count, 0, 'no request reached the partner');
    t.ok(sink.tlsErrors >= 1, 'the partner saw the handshake refused');
  });

  t.test('NODE_TLS_REJECT_UNAUTHORIZED=0 does not turn verification off for deliveries', async (t) => {
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    t.teardown(() => {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
    });
    const client = new HttpClient(settings);
    t.teardown(() => client.close());
    const r = await client.send(get(byName));
    t.equal(r.errorCode, 'PB_ERR_TLS');
    t.equal(sink.count, 0);
  });

  t.test('with the CA trusted (caCerts, from DELIVERY_CA_FILE): delivered by name with SNI, and by IP literal', async (t) => {
    const client = new HttpClient({ ...settings, caCerts: [ca.cert] });
    t.teardown(() => client.close());
    const r = await client.send(get(byName));
    t.equal(r.status, 200);
    t.equal(r.body, 'ok');
    t.equal(r.errorCode, null);
    t.ok(sink.servernames.has('partner.pb.test'), 'SNI is the partner host name');
    const ip = await client.send(get(sink.origin));
    t.equal(ip.status, 200, 'the certificate lists 127.0.0.1 too');
    t.equal(sink.count, 2);
  });

  t.test('trust is added for those CAs only: another CA\'s certificate is still refused', async (t) => {
    const stranger = createTestCa('a CA nobody trusts');
    const other = await startSink(() => ({ status: 200 }), { tls: stranger.issue({ names: ['partner.pb.test'] }) });
    t.teardown(() => other.close());
    const client = new HttpClient({ ...settings, caCerts: [ca.cert] });
    t.teardown(() => client.close());
    const r = await client.send(get(`https://partner.pb.test:${other.port}`));
    t.equal(r.errorCode, 'PB_ERR_TLS');
    t.match(r.error, /not trusted/);
    t.equal(other.count, 0);
  });

  t.test('a trusted certificate for another host name is refused: PB_ERR_TLS, nothing sent', async (t) => {
    const wrong = await startSink(() => ({ status: 200 }), { tls: ca.issue({ names: ['other.pb.test'] }) });
    t.teardown(() => wrong.close());
    const client = new HttpClient({ ...settings, caCerts: [ca.cert] });
    t.teardown(() => client.close());
    const r = await client.send(get(`https://partner.pb.test:${wrong.port}`));
    t.equal(r.errorCode, 'PB_ERR_TLS');
    t.match(r.error, /for another host name \(ERR_TLS_CERT_ALTNAME_INVALID: .*partner\.pb\.test.*other\.pb\.test/);
    t.equal(wrong.count, 0, 'no request reached it');
    const ip = await client.send(get(wrong.origin));
    t.equal(ip.errorCode, 'PB_ERR_TLS', 'nor by an address the certificate does not list');
  });

  t.test('keep-alive: 200 attempts, 40 at a time, one TLS handshake per connection', async (t) => {
    const ka = await startSink(() => ({ status: 200 }), { tls: ca.issue({ names: ['partner.pb.test'] }) });
    t.teardown(() => ka.close());
    const client = new HttpClient({ ...settings, caCerts: [ca.cert] });
    t.teardown(() => client.close());
    const origin = `https://partner.pb.test:${ka.port}`;
    let ok = 0;
    for (let wave = 0; wave < 5; wave++) {
      const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => client.send(get(origin, `/k?w=${wave}&i=${i}`))));
      ok += rs.filter((r) => r.status === 200).length;
    }
    t.equal(ok, 200);
    t.equal(ka.handshakes, ka.connections, 'one handshake per connection');
    t.ok(ka.connections <= settings.connectionsPerOrigin, `${ka.connections} connection(s) for 200 attempts (at most ${settings.connectionsPerOrigin})`);
    t.equal(ka.tlsErrors, 0);
  });

  t.test('https to a port that speaks plain HTTP: PB_ERR_TLS, handshake failed', async (t) => {
    const plain = createHttpServer((_req, res) => res.end('plain'));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    t.teardown(() => new Promise((r) => plain.close(r)));
    const client = new HttpClient(settings);
    t.teardown(() => client.close());
    const r = await client.send(get(`https://partner.pb.test:${(plain.address() as { port: number }).port}`));
    t.equal(r.errorCode, 'PB_ERR_TLS');
    t.match(r.error, /^TLS handshake failed \(ERR_SSL_/);
    t.equal(r.status, null);
  });
});
