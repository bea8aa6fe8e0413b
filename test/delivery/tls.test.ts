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
