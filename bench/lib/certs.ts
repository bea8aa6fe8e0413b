/**
 * Throwaway TLS material for the harness (tests and the benchmark), made
 * with the `openssl` command line (no npm dependency): a private CA, and
 * server certificates it signs for the names and addresses asked for.
 * ECDSA P-256 keys (fast to make and to handshake), valid for 2 days. The
 * files live in a scratch directory removed when the process ends; only
 * the CA certificate is meant to leave it (as DELIVERY_CA_FILE).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onExit } from './cleanup.js';

export interface TestCa {
  /** The CA certificate, PEM (what DELIVERY_CA_FILE holds). */
  cert: string;
  /** Its path. */
  certFile: string;
  dir: string;
  /** A server certificate signed by this CA for these DNS names and IP addresses. */
  issue(opts: { names?: string[]; ips?: string[]; file?: string }): ServerCert;
}

export interface ServerCert {
  key: string;
  cert: string;
}

/** Why TLS material cannot be made here (no openssl on PATH), or null. */
export function opensslMissing(): string | null {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'openssl is not on PATH: the TLS tests and the e2e-tls scenario make their certificates with it';
  }
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A new CA (its own scratch directory), named `cn`. */
export function createTestCa(cn = 'postback-delivery test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'pb-tls-'));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  openssl(
    ['req', '-x509', ...KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  let serial = 0;
  const certFile = join(dir, 'ca.pem');
  return {
    cert: readFileSync(certFile, 'utf8'),
    certFile,
    dir,
    issue({ names = [], ips = [], file }) {
      const base = file ?? `server${++serial}`;
      const san = [...names.map((n) => `DNS:${n}`), ...ips.map((a) => `IP:${a}`)].join(',');
      writeFileSync(
        join(dir, `${base}.ext`),
        `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(['req', ...KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0] ?? ips[0] ?? 'server'}`], dir);
      openssl(
        ['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(Date.now() * 1000 + serial),
          '-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.pem`],
        dir,
      );
      return { key: readFileSync(join(dir, `${base}.key`), 'utf8'), cert: readFileSync(join(dir, `${base}.pem`), 'utf8') };
    },
  };
}
