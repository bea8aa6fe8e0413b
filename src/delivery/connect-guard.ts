/**
 * Where connections are made: names resolved through the cached resolver
 * (resolver.ts), and the SSRF guard, the address policy (address-policy.ts,
 * pure), applied to the addresses a socket will actually connect to. Two
 * halves, as undici keeps `core/connect.js` apart from its clients:
 * - `lookup`, handed to undici's connector: resolves the name (cached),
 *   drops the addresses the policy refuses, and fails when none is left,
 *   so a name that resolves (or rebinds) to 127.0.0.1 is refused as surely
 *   as the literal, cached answer or not;
 * - `refusal(origin)`: IP literals never reach a lookup, so they are
 *   checked here, once per origin, before a pool is made for them.
 * With DELIVERY_ALLOW_PRIVATE the policy allows everything; names are still
 * resolved through the cache.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { createAddressPolicy, type AddressPolicy, type AddressPolicySettings } from './address-policy.js';
import type { NameResolver } from './resolver.js';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type GuardedLookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

export interface ConnectGuard {
  /** For undici's `connect.lookup`. */
  readonly lookup: GuardedLookup;
  /** Why a connection to this origin's IP literal is refused, or null (names are checked at lookup). */
  refusal(origin: string): string | null;
}

/** The error a refused address fails with (code PB_ERR_BLOCKED_ADDRESS, mapped by errorCodeOf). */
export function blockedError(host: string, address: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(
    `refused to connect to ${address}${host !== address ? ` (${host})` : ''}: a loopback, private, link-local or reserved address (DELIVERY_ALLOW_PRIVATE, DELIVERY_ALLOWED_CIDRS)`,
  );
  err.code = 'PB_ERR_BLOCKED_ADDRESS';
  return err;
}

function guardedLookup(resolver: NameResolver, policy: AddressPolicy | null): GuardedLookup {
  return (hostname, options, callback) => {
    resolver.resolve(hostname, (err, list) => {
      if (err) return callback(err, '');
      let allowed = policy === null ? list : list.filter((a) => policy(a.address));
      if (allowed.length === 0) return callback(blockedError(hostname, list[0]?.address ?? hostname), '');
      if (options.family === 4 || options.family === 6) {
        const family = allowed.filter((a) => a.family === options.family);
        if (family.length > 0) allowed = family;
      }
      if (options.all) return callback(null, allowed);
      const first = allowed[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}

export function createConnectGuard(settings: AddressPolicySettings, resolver: NameResolver): ConnectGuard {
  const policy = createAddressPolicy(settings);
  return {
    lookup: guardedLookup(resolver, settings.allowPrivate ? null : policy),
    refusal(origin) {
      const host = new URL(origin).hostname.replace(/^\[|\]$/g, '');
      return isIP(host) !== 0 && !policy(host) ? blockedError(host, host).message : null;
    },
  };
}
