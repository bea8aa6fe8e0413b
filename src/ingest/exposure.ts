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

/** The host name of a Host header (`name:port`, `[v6]:port`), lower case. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

/**
 * DNS rebinding: a listener on a loopback address answers without
 * credentials (the monitor: partners and volumes), and a web page from
 * anywhere can make its own name resolve to 127.0.0.1 and read it from the
 * operator's browser as its own origin. The browser sends that name in Host, so a loopback listener
 * answers only a Host that is loopback itself (localhost, 127.x, [::1]) or
 * one the operator listed (a reverse proxy's name). On another address the
 * operator chose the exposure, and credentials guard it: no check. No Host
 * (HTTP/1.0): not a browser.
 */
export function hostAllowed(bindHost: string, allowed: readonly string[], hostHeader: string | undefined): boolean {
  if (!isLoopbackHost(bindHost) || hostHeader === undefined || hostHeader === '') return true;
  const name = hostName(hostHeader);
  return isLoopbackHost(name) || allowed.includes(name);
}

/**
 * A browser's cross-site request: any web page can make the operator's
 * browser POST a form to http://127.0.0.1:<ingest port>/i (a "simple"
 * request, sent without asking), or reach it under its own name by DNS
 * rebinding, and an ingest without INGEST_TOKENS would queue it. Traffic
 * sources are servers and send no Origin; browsers send it with every
 * POST. Without tokens, a request whose Origin is not a loopback page is
 * refused.
 */
export function originAllowed(origin: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    return isLoopbackHost(new URL(origin).hostname);
  } catch {
    return false;
  }
}
