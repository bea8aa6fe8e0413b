/**
 * Pure: a PEM bundle of CA certificates (DELIVERY_CA_FILE, or Node's
 * NODE_EXTRA_CA_CERTS) read into the certificates it holds, each parsed
 * (node:crypto's X509Certificate) so a bad file stops the process at start
 * rather than failing every handshake later. Text between the blocks
 * (comments, as in the system bundles) is allowed; a private key, or any
 * block that is not a certificate, is not. Nothing of a refused block is
 * ever echoed.
 */
import { X509Certificate } from 'node:crypto';

export type CaParse = { ok: true; certs: string[] } | { ok: false; problem: string };

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g;

/**
 * The certificates of a PEM bundle, or the first problem with it (worded to
 * follow "<VARIABLE> (<path>) "). `lenient`: keep what parses and skip the
 * rest, as Node does with NODE_EXTRA_CA_CERTS.
 */
export function parseCaPem(text: string, lenient = false): CaParse {
  const certs: string[] = [];
  const begins = [...text.matchAll(BEGIN)].map((m) => m[1] as string);
  const blocks = [...text.matchAll(BLOCK)];
  if (!lenient) {
    if (begins.some((type) => type.includes('PRIVATE KEY'))) {
      return { ok: false, problem: 'holds a private key: it must hold only CA certificates (keep the key out of it)' };
    }
    const other = begins.find((type) => type !== 'CERTIFICATE');
    if (other !== undefined) return { ok: false, problem: `holds a "${other}" block: only CERTIFICATE blocks are read` };
    if (blocks.length !== begins.length) return { ok: false, problem: 'holds a certificate block without its END line' };
  }
  for (const [i, m] of blocks.entries()) {
    if (m[1] !== 'CERTIFICATE') continue;
    try {
      new X509Certificate(m[0]);
      certs.push(`${m[0]}\n`);
    } catch (err) {
      if (!lenient) return { ok: false, problem: `certificate ${i + 1} is not a valid X.509 certificate (${(err as Error).message})` };
    }
  }
  if (certs.length === 0 && !lenient) return { ok: false, problem: 'holds no PEM certificate ("-----BEGIN CERTIFICATE-----")' };
  return { ok: true, certs };
}

/** One line about a certificate, for `node dist/cli.js config`: its subject and when it expires. */
export function describeCert(pem: string): string {
  try {
    const c = new X509Certificate(pem);
    return `${c.subject.replace(/\n/g, ', ')} (until ${new Date(c.validTo).toISOString().slice(0, 10)})`;
  } catch {
    return 'an unreadable certificate';
  }
}
