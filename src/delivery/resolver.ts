/**
 * Name resolution for delivery, cached. Partners are host names, and every
 * new connection resolves one: uncached, thousands of partners would queue
 * behind getaddrinfo on libuv's 4 threads (and a slow resolver would stall
 * them all). So answers are kept:
 * - with DELIVERY_DNS_SERVERS, queries go to those servers (c-ares, A and
 *   AAAA together, no thread pool) and answers are kept for their records'
 *   TTL (at most MAX_TTL_S);
 * - without, the system's resolver answers (getaddrinfo: /etc/hosts,
 *   nsswitch, as Node does by default) and, as it gives no TTL, answers are
 *   kept SYSTEM_TTL_MS.
 * Concurrent lookups of one name share one query; a failure is kept
 * ERROR_TTL_MS (so a dead name does not hammer the resolver); at most
 * MAX_NAMES names are kept, the least recently used dropped first. The
 * SSRF check is applied to every answer, cached or not, by the caller
 * (connect-guard.ts), which is why this module never filters.
 */
import { lookup as systemLookup, Resolver, type LookupAddress } from 'node:dns';

const MAX_NAMES = 10_000;
const MAX_TTL_S = 3_600;
const SYSTEM_TTL_MS = 30_000;
const ERROR_TTL_MS = 1_000;
const QUERY_TIMEOUT_MS = 2_000;

export type ResolveCallback = (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;

interface Cached {
  expiresAt: number;
  addresses: LookupAddress[];
  error: NodeJS.ErrnoException | null;
}

export interface NameResolver {
  /** Every address of `hostname` (IPv4 first), from the cache or a query. */
  resolve(hostname: string, callback: ResolveCallback): void;
  /** Names held now. */
  readonly size: number;
}

function notFound(hostname: string, cause?: NodeJS.ErrnoException): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  err.code = cause?.code === 'ETIMEOUT' || cause?.code === 'ESERVFAIL' || cause?.code === 'ECONNREFUSED' ? 'EAI_AGAIN' : 'ENOTFOUND';
  if (cause) err.message = `${err.code} ${hostname} (${cause.code ?? cause.message})`;
  return err;
}

/**
 * `servers`: DELIVERY_DNS_SERVERS (ip or ip:port); empty for the system's
 * resolver. `opts` for tests: a clock and a smaller bound.
 */
export function createNameResolver(servers: readonly string[], opts: { now?: () => number; maxNames?: number } = {}): NameResolver {
  const now = opts.now ?? Date.now;
  const maxNames = opts.maxNames ?? MAX_NAMES;
  const cache = new Map<string, Cached>();
  const pending = new Map<string, ResolveCallback[]>();
  let dns: Resolver | null = null;
  if (servers.length > 0) {
    dns = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: 2 });
    dns.setServers([...servers]);
  }

  const keep = (hostname: string, entry: Cached): void => {
    cache.delete(hostname);
    cache.set(hostname, entry);
    if (cache.size > maxNames) cache.delete(cache.keys().next().value as string);
  };

  /** One query: A and AAAA from the configured servers, with their TTLs. */
  const query = (hostname: string, done: (entry: Cached) => void): void => {
    const resolver = dns as Resolver;
    let left = 2;
    const found: { v4: LookupAddress[]; v6: LookupAddress[]; ttl: number; error: NodeJS.ErrnoException | null } = { v4: [], v6: [], ttl: MAX_TTL_S, error: null };
    const settle = (family: 4 | 6) => (err: NodeJS.ErrnoException | null, records: { address: string; ttl: number }[]) => {
      if (err) {
        if (err.code !== 'ENODATA' && err.code !== 'ENOTFOUND') found.error ??= err;
      } else {
        for (const r of records) {
          (family === 4 ? found.v4 : found.v6).push({ address: r.address, family });
          found.ttl = Math.min(found.ttl, r.ttl);
        }
      }
      if (--left > 0) return;
      const addresses = [...found.v4, ...found.v6];
      if (addresses.length === 0) done({ expiresAt: now() + ERROR_TTL_MS, addresses, error: notFound(hostname, found.error ?? undefined) });
      else done({ expiresAt: now() + Math.max(0, found.ttl) * 1000, addresses, error: null });
    };
    resolver.resolve4(hostname, { ttl: true }, settle(4));
    resolver.resolve6(hostname, { ttl: true }, settle(6));
  };

  /** One getaddrinfo, kept SYSTEM_TTL_MS. */
  const system = (hostname: string, done: (entry: Cached) => void): void => {
    systemLookup(hostname, { all: true }, (err, addresses) => {
      if (err) done({ expiresAt: now() + ERROR_TTL_MS, addresses: [], error: err });
      else done({ expiresAt: now() + SYSTEM_TTL_MS, addresses: [...addresses].sort((a, b) => a.family - b.family), error: null });
    });
  };

  return {
    get size() {
      return cache.size;
    },
    resolve(hostname, callback) {
      const hit = cache.get(hostname);
      if (hit !== undefined && hit.expiresAt > now()) {
        keep(hostname, hit); // now the most recently used
        callback(hit.error, hit.addresses);
        return;
      }
      const waiting = pending.get(hostname);
      if (waiting !== undefined) {
        waiting.push(callback);
        return;
      }
      pending.set(hostname, [callback]);
      (dns ? query : system)(hostname, (entry) => {
        if (entry.expiresAt > now()) keep(hostname, entry);
        else cache.delete(hostname);
        const callbacks = pending.get(hostname) ?? [];
        pending.delete(hostname);
        for (const cb of callbacks) cb(entry.error, entry.addresses);
      });
    },
  };
}
