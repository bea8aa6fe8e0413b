/**
 * Pure: may ingest start on this address without credentials? Ingest makes
 * this service send requests to the URLs it is given, so an ingest any
 * machine can reach, without tokens, is an open relay for the whole
 * internet (the SSRF guard protects only our own network). On a loopback
 * address it may; anywhere else it needs INGEST_TOKENS, or
 * INGEST_ALLOW_ANONYMOUS=true as an explicit choice (then one warning line
 * says so at start).
 */
import { isIP } from 'node:net';

export type Exposure = { ok: true; warning: string | null } | { ok: false; error: string };

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  const v4 = h.startsWith('::ffff:') && isIP(h.slice(7)) === 4 ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(h) === 6 && (h === '::1' || h === '0:0:0:0:0:0:0:1');
}

export function checkExposure(o: { host: string; port: number; tokens: number; allowAnonymous: boolean }): Exposure {
  if (o.tokens > 0 || isLoopbackHost(o.host)) return { ok: true, warning: null };
  if (o.allowAnonymous) {
    return { ok: true, warning: `ingest is open to anyone who can reach ${o.host}:${o.port}, without credentials (INGEST_ALLOW_ANONYMOUS=true)` };
  }
  return {
    ok: false,
    error:
      `INGEST_HOST=${o.host} can be reached from other machines, and an ingest without credentials lets anyone make this service send requests: ` +
      'set INGEST_TOKENS (clients send Authorization: Bearer <token>), or INGEST_ALLOW_ANONYMOUS=true to run it open on purpose, or INGEST_HOST=127.0.0.1',
  };
}
