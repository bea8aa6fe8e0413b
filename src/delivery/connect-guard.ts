/**
 * The SSRF guard where connections are made: the address policy
 * (address-policy.ts, pure) applied to the address a socket will actually
 * connect to. Two halves, as undici keeps `core/connect.js` apart from its
 * clients:
 * - `lookup`, handed to undici's connector: a DNS lookup that drops the
 *   addresses the policy refuses and fails when none is left, so a name
 *   that resolves (or rebinds) to 127.0.0.1 is refused as surely as the
 *   literal;
 * - `refusal(origin)`: IP literals never reach a lookup, so they are
 *   checked here, once per origin, before a pool is made for them.
 * With DELIVERY_ALLOW_PRIVATE there is no guard at all (no lookup wrapper).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { createAddressPolicy, type AddressPolicy, type AddressPolicySettings } from './address-policy.js';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type GuardedLookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

export interface ConnectGuard {
  /** For undici's `connect.lookup`; undefined when private targets are allowed. */
  readonly lookup: GuardedLookup | undefined;
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

function guardedLookup(policy: AddressPolicy): GuardedLookup {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const list = addresses as LookupAddress[];
      const allowed = list.filter((a) => policy(a.address));
      if (allowed.length === 0) return callback(blockedError(hostname, list[0]?.address ?? hostname), '');
      if (options.all) return callback(null, allowed);
      const first = allowed[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}

export function createConnectGuard(settings: AddressPolicySettings): ConnectGuard {
  const policy = createAddressPolicy(settings);
  return {
    lookup: settings.allowPrivate ? undefined : guardedLookup(policy),
    refusal(origin) {
      const host = new URL(origin).hostname.replace(/^\[|\]$/g, '');
      return isIP(host) !== 0 && !policy(host) ? blockedError(host, host).message : null;
    },
  };
}
