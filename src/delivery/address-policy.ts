/**
 * Which addresses delivery may connect to (SSRF guard). Pure: an address
 * in, allowed or not out. By default refuses loopback, private, link-local
 * (cloud metadata at 169.254.169.254), carrier-grade NAT, unique-local,
 * multicast, unspecified, reserved and documentation ranges, IPv4 and IPv6,
 * IPv4-mapped and NAT64-embedded IPv4 included, and the IPv4-compatible
 * (::/96) and IPv4-translated (::ffff:0:0:0/96) forms refused whole. DELIVERY_ALLOW_PRIVATE
 * lifts it; DELIVERY_ALLOWED_CIDRS lets chosen ranges through.
 *
 * It is applied to the address actually connected to (the connector's DNS
 * lookup, and IP literals before connecting), so DNS rebinding cannot slip
 * past a check made on the name.
 */
import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../config/cidr.js';

export { parseCidr } from '../config/cidr.js';

const BLOCKED_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

const BLOCKED_V6: [string, number][] = [
  // ::/96 holds unspecified (::), loopback (::1) and the deprecated
  // IPv4-compatible form (::a.b.c.d, so [::127.0.0.1] is ::7f00:1).
  ['::', 96],
  ['::ffff:0:0:0', 96], // IPv4-translated (SIIT): ::ffff:0:a.b.c.d, not globally routable
  ['100::', 64], // discard
  ['64:ff9b:1::', 48], // local-use NAT64
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds arbitrary IPv4)
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

export interface AddressPolicySettings {
  allowPrivate: boolean;
  /** CIDRs allowed even inside the blocked ranges, e.g. "10.1.2.0/24". */
  allowedCidrs: readonly string[];
}

export type AddressPolicy = (address: string) => boolean;

/** The IPv4 address embedded in a NAT64 (64:ff9b::/96) address, else null. */
function nat64Embedded(v6: string): string | null {
  const lower = v6.toLowerCase();
  if (!lower.startsWith('64:ff9b::')) return null;
  const tail = lower.slice('64:ff9b::'.length);
  if (isIP(tail) === 4) return tail;
  const parts = tail.split(':');
  if (parts.length !== 2) return null;
  const hi = parseInt(parts[0] as string, 16);
  const lo = parseInt(parts[1] as string, 16);
  if (!(hi >= 0 && hi <= 0xffff && lo >= 0 && lo <= 0xffff)) return null;
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function createAddressPolicy(s: AddressPolicySettings): AddressPolicy {
  if (s.allowPrivate) return () => true;
  const blocked = new BlockList();
  for (const [a, p] of BLOCKED_V4) blocked.addSubnet(a, p, 'ipv4');
  for (const [a, p] of BLOCKED_V6) blocked.addSubnet(a, p, 'ipv6');
  const allowed = new BlockList();
  for (const c of s.allowedCidrs) {
    const { address, prefix, family } = parseCidr(c);
    allowed.addSubnet(address, prefix, family);
  }
  const check = (address: string): boolean => {
    const kind = isIP(address);
    if (kind === 0) return false;
    const family = kind === 4 ? 'ipv4' : 'ipv6';
    if (allowed.check(address, family)) return true;
    if (kind === 6) {
      const embedded = nat64Embedded(address);
      if (embedded !== null) return check(embedded);
    }
    return !blocked.check(address, family);
  };
  return check;
}
