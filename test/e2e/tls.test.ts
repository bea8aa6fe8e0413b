/**
 * https partners through real processes: ingest and delivery (dist/cli.js)
 * against a real redis-server and real https sinks on 127.0.0.1, whose
 * certificates come from a throwaway CA made by openssl at test time
 * (bench/lib/certs.ts). Partners are reached by name (partner.pb.test,
 * through a real DNS server), so SNI and the host name check are those of
 * production. One stack; delivery processes with different trust take
 * turns on it.
 */
import t from 'tap';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createTestCa, opensslMissing } from '../../bench/lib/certs.js';
import { startDnsServer } from '../../bench/lib/dns-server.js';
import { waitForLines } from '../helpers/log.js';
import { runCli } from '../helpers/procs.js';
import { startSink, type Received } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { tally } from '../helpers/count.js';

const SECRET = 'tls-test-secret-0123456789';

/** The README's receiver, as a partner on https would run it. */
function verified(r: Received, secret: string): boolean {
  const ts = String(r.headers['x-postback-timestamp']);
  const url = `https://${r.headers.host}${r.url}`;
  const payload = `${r.headers['x-postback-id']}\n${ts}\n${r.method}\n${url}\n${r.body}`;
  const want = Buffer.from(createHmac('sha256', secret).update(payload).digest('hex'));
  return String(r.headers['x-postback-signature'])
    .split(',')
    .some((s) => {
      const got = Buffer.from(s.replace(/^v1=/, ''));
      return got.length === want.length && timingSafeEqual(got, want);
    });
}

t.test('https partners', { skip: opensslMissing() ?? false }, async (t) => {
  const ca = createTestCa('pb e2e CA');
  const dns = await startDnsServer({ zone: 'pb.test' });
  t.teardown(() => dns.close());
  const partner = await startSink(() => ({ status: 200 }), { tls: ca.issue({ names: ['partner.pb.test'] }) });
  t.teardown(() => partner.close());
  const stack = await startStack(
    {
      DELIVERY_DNS_SERVERS: dns.server,
      DELIVERY_CA_FILE: ca.certFile,
      SIGNING_SECRET: SECRET,
      DELIVERY_MAX_ATTEMPTS: '2',
      DELIVERY_BACKOFF_BASE_MS: '50',
      DELIVERY_BACKOFF_MAX_MS: '100',
    },
    { deliveries: 0 },
  );
  t.teardown(() => stack.stop());
  const logDir = stack.env.LOG_DIR as string;
  const url = (port: number, path: string) => `https://partner.pb.test:${port}${path}`;

  t.test('trusting the CA (DELIVERY_CA_FILE, and a second CA through NODE_EXTRA_CA_CERTS)', async (t) => {
    const second = createTestCa('pb e2e second CA');
    const viaNode = await startSink(() => ({ status: 200 }), { tls: second.issue({ names: ['partner.pb.test'] }) });
    t.teardown(() => viaNode.close());
    // Worker threads: the CAs cross to them with their settings.
    const d = await stack.startDelivery({ DELIVERY_WORKERS: '2', DELIVERY_CONNECTIONS_PER_ORIGIN: '8', NODE_EXTRA_CA_CERTS: second.certFile });
    t.teardown(() => d.stop());

    t.test('each postback once, by name, signed, one TLS handshake per connection', async (t) => {
      const ids = new Set<string>();
      for (let r = 0; r < 3; r++) {
        const data = Array.from({ length: 100 }, (_, i) => ({ n: r * 100 + i }));
        const res = await stack.send({ endpoint: { method: r === 2 ? 'POST' : 'GET', url: url(partner.port, '/cb?n={n}') }, data });
        t.equal(res.status, 202);
        for (let i = 0; i < 100; i++) ids.add(`${res.json.id}:${i}`);
      }
      await partner.waitFor(300);
      t.ok(await stack.drained(), 'every postback finished');
      t.same(tally(partner, ids), { distinct: 300, duplicates: 0, lost: 0 }, 'each postback once');
      t.equal(partner.received.filter((r) => verified(r, SECRET)).length, 300, 'every signature verifies over the https URL');
      t.same([...partner.servernames], ['partner.pb.test'], 'SNI: the partner host name');
      t.equal(partner.handshakes, partner.connections, 'one TLS handshake per connection');
      t.ok(partner.connections <= 2 * 8, `${partner.connections} connection(s) for 300 postbacks (2 threads x 8 at most)`);
      t.comment(`300 postbacks over https: ${partner.connections} connection(s), ${partner.handshakes} handshake(s), ${partner.resumed} resumed`);
    });

    t.test('NODE_EXTRA_CA_CERTS keeps working beside DELIVERY_CA_FILE', async (t) => {
      const res = await stack.send({ endpoint: { method: 'GET', url: url(viaNode.port, '/extra?x={x}') }, data: [{ x: 1 }, { x: 2 }] });
      t.equal(res.status, 202);
      await viaNode.waitFor(2);
      t.ok(await stack.drained());
      t.equal(viaNode.count, 2, 'delivered, each once');
    });

    t.test('a certificate for another host name: refused, logged PB_ERR_TLS, dead after its attempts, never sent', async (t) => {
      const other = await startSink(() => ({ status: 200 }), { tls: ca.issue({ names: ['other.pb.test'] }) });
      t.teardown(() => other.close());
      const res = await stack.send({ endpoint: { method: 'GET', url: url(other.port, '/wrong?x={x}') }, data: [{ x: 1 }] });
      const id = `${res.json.id}:0`;
      const lines = (await waitForLines(logDir, (ls) => ls.some((l) => l.id === id && l.outcome === 'dead'))).filter((l) => l.id === id);
      t.same(lines.map((l) => [l.attempt, l.outcome, l.errorCode, l.status]), [
        [1, 'retry', 'PB_ERR_TLS', null],
        [2, 'dead', 'PB_ERR_TLS', null],
      ]);
      t.match(lines[0]!.error, /^TLS: the partner's certificate is for another host name \(ERR_TLS_CERT_ALTNAME_INVALID: .*partner\.pb\.test.*DNS:other\.pb\.test\)$/);
      t.ok(await stack.drained());
      t.equal(other.count, 0, 'no request reached it');
    });
  });

  t.test('without DELIVERY_CA_FILE the same partner is refused: PB_ERR_TLS naming the fix, a dead letter', async (t) => {
    const before = partner.count;
    const d = await stack.startDelivery({ DELIVERY_CA_FILE: '' });
    const res = await stack.send({ endpoint: { method: 'GET', url: url(partner.port, '/untrusted?x={x}') }, data: [{ x: 1 }] });
    const id = `${res.json.id}:0`;
    const lines = (await waitForLines(logDir, (ls) => ls.some((l) => l.id === id && l.outcome === 'dead'))).filter((l) => l.id === id);
    t.equal(lines.length, 2, 'retried, then dead');
    for (const l of lines) {
      t.match(l, { errorCode: 'PB_ERR_TLS', status: null, body: null, responseTime: null });
      t.match(l.error, /^TLS: the partner's certificate is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY): .*\); if the partner uses a private CA, add it to DELIVERY_CA_FILE$/);
    }
    t.ok(await stack.drained());
    t.equal(partner.count, before, 'nothing reached the partner');
    await d.stop();
    const dlq = await runCli(['dlq', 'list', '--json', '--error', 'PB_ERR_TLS'], stack.env);
    t.equal(dlq.code, 0, dlq.stderr);
    const dead = dlq.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; errorCode: string });
    t.match(dead.find((x) => x.id === id), { errorCode: 'PB_ERR_TLS' }, 'the dead letter says why, for a replay once fixed');
  });
});
