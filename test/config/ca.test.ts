/**
 * DELIVERY_CA_FILE: read and checked at start with the rest of the
 * configuration (a missing, unreadable or invalid file is a problem naming
 * the variable, and a process does not start), its certificates kept for
 * the TLS context; NODE_EXTRA_CA_CERTS listed again beside it, since a CA
 * list replaces Node's own trust. Real files, made by openssl.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/parse.js';
import { redactConfig } from '../../src/config/redact.js';
import { createTestCa, opensslMissing } from '../../bench/lib/certs.js';
import { runCli } from '../helpers/procs.js';

const skip = opensslMissing() ?? false;
const read = (path: string) => readFileSync(path, 'utf8');

t.test('DELIVERY_CA_FILE', { skip }, async (t) => {
  const ca = createTestCa('config test CA');
  const other = createTestCa('second CA');
  const dir = mkdtempSync(join(tmpdir(), 'pb-ca-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const problems = (env: Record<string, string>) => {
    const r = parseConfig(env, read);
    return r.ok ? [] : r.problems;
  };

  t.test('unset: nothing read, Node\'s trust untouched', async (t) => {
    const r = parseConfig({ NODE_EXTRA_CA_CERTS: ca.certFile }, read);
    t.ok(r.ok);
    if (!r.ok) return;
    t.equal(r.config.delivery.caFile, undefined);
    t.same(r.config.delivery.caCerts, []);
    t.same(r.config.delivery.nodeExtraCaCerts, [], 'NODE_EXTRA_CA_CERTS is Node\'s business without DELIVERY_CA_FILE');
  });

  t.test('a bundle: every certificate kept, comments between them allowed', async (t) => {
    const bundle = file('bundle.pem', `# our partners' private CAs\n${ca.cert}\n# the second one\n${other.cert}`);
    const r = parseConfig({ DELIVERY_CA_FILE: bundle }, read);
    t.ok(r.ok, r.ok ? '' : r.problems.join('; '));
    if (!r.ok) return;
    t.equal(r.config.delivery.caFile, bundle);
    t.equal(r.config.delivery.caCerts.length, 2);
    t.match(r.config.delivery.caCerts[0], /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    const printed = redactConfig(r.config).delivery.caCerts;
    t.match(printed[0], /^CN=config test CA \(until \d{4}-\d\d-\d\d\)$/, '`config` shows each as its subject and expiry');
  });

  t.test('with NODE_EXTRA_CA_CERTS, its certificates are listed again beside the file\'s', async (t) => {
    const r = parseConfig({ DELIVERY_CA_FILE: other.certFile, NODE_EXTRA_CA_CERTS: ca.certFile }, read);
    t.ok(r.ok);
    if (!r.ok) return;
    t.same(r.config.delivery.nodeExtraCaCerts, [`${ca.cert.trim()}\n`]);
    t.same(r.config.delivery.caCerts, [`${other.cert.trim()}\n`]);
    const missing = parseConfig({ DELIVERY_CA_FILE: other.certFile, NODE_EXTRA_CA_CERTS: join(dir, 'nope.pem') }, read);
    t.ok(missing.ok, 'a NODE_EXTRA_CA_CERTS Node could not load is ignored, as Node ignores it');
  });

  t.test('a missing, unreadable or invalid file is a problem naming the variable', async (t) => {
    const key = readFileSync(join(ca.dir, 'ca.key'), 'utf8');
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.pem'), /^DELIVERY_CA_FILE \(.*missing\.pem\) cannot be read: ENOENT$/],
      [dir, /^DELIVERY_CA_FILE \(.*\) cannot be read: EISDIR$/],
      [file('empty.pem', ''), /holds no PEM certificate/],
      [file('der.pem', 'not a certificate at all\n'), /holds no PEM certificate/],
      [file('key.pem', `${ca.cert}${key}`), /^DELIVERY_CA_FILE \(.*\) holds a private key: it must hold only CA certificates/],
      [file('csr.pem', `${ca.cert}-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n`), /holds a "CERTIFICATE REQUEST" block/],
      [file('cut.pem', ca.cert.slice(0, 200)), /without its END line/],
      [file('bad.pem', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'), /certificate 1 is not a valid X\.509 certificate/],
    ];
    for (const [path, want] of cases) {
      const p = problems({ DELIVERY_CA_FILE: path });
      t.equal(p.length, 1, path);
      t.match(p[0], want, path);
    }
    const p = problems({ DELIVERY_CA_FILE: file('key2.pem', key) }).join(';');
    t.notMatch(p, key.split('\n')[1] as string, 'nothing of the key is echoed');
  });

  t.test('a role does not start with a bad file: one line, naming the variable', async (t) => {
    const bad = await runCli(['config'], { PATH: process.env.PATH ?? '', DELIVERY_CA_FILE: join(dir, 'missing.pem') });
    t.equal(bad.code, 1);
    t.match(bad.stderr, /^postback-delivery: bad configuration: DELIVERY_CA_FILE \(.*missing\.pem\) cannot be read: ENOENT\n$/);
    const good = await runCli(['config'], { PATH: process.env.PATH ?? '', DELIVERY_CA_FILE: ca.certFile });
    t.equal(good.code, 0, good.stderr);
    const printed = JSON.parse(good.stdout) as { delivery: { caFile: string; caCerts: string[] } };
    t.equal(printed.delivery.caFile, ca.certFile);
    t.match(printed.delivery.caCerts, [/^CN=config test CA /]);
  });
});
