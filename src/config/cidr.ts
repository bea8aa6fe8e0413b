/** Pure: "a.b.c.d/n" or "v6::/n" (or a bare address) into its parts; throws on nonsense. */
import { isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export function parseCidr(cidr: string): Cidr {
  const slash = cidr.indexOf('/');
  const address = slash === -1 ? cidr : cidr.slice(0, slash);
  const kind = isIP(address);
  if (kind === 0) throw new Error(`not an IP range: "${cidr}"`);
  const max = kind === 4 ? 32 : 128;
  const prefix = slash === -1 ? max : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`bad prefix length in "${cidr}"`);
  return { address, prefix, family: kind === 4 ? 'ipv4' : 'ipv6' };
}
