/**
 * IPv4 addresses as u32 numbers holding the host-order value (10.0.0.1 is
 * 0x0a000001), always normalised with `>>> 0` so comparisons with `===` work:
 * JS bitwise operators return signed 32-bit results.
 */
import { WireError } from './wire-error.ts';

/** 255.255.255.255: the limited broadcast, never forwarded (RFC 919). */
export const LIMITED_BROADCAST = 0xffffffff;

export function ipToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/**
 * Strict dotted quad: four decimal octets 0..255. Leading zeros are refused
 * because other tools read "010" as octal and the address would be ambiguous.
 */
export function parseIp(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) throw new WireError(`bad IPv4 address "${s}"`);
  let ip = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) throw new WireError(`bad IPv4 address "${s}"`);
    const octet = Number(part);
    if (octet > 255) throw new WireError(`bad IPv4 address "${s}"`);
    ip = ip * 256 + octet;
  }
  return ip >>> 0;
}

/** "a.b.c.d/n". The address is returned as written, not masked: "10.0.0.5/24" names a host on 10.0.0.0/24. */
export function parseCidr(s: string): { ip: number; prefix: number } {
  const slash = s.indexOf('/');
  if (slash < 0) throw new WireError(`bad CIDR "${s}": no prefix length`);
  const len = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(len) || Number(len) > 32) throw new WireError(`bad CIDR "${s}": prefix length`);
  return { ip: parseIp(s.slice(0, slash)), prefix: Number(len) };
}

export function prefixMask(prefix: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new RangeError(`bad prefix length ${prefix}`);
  // A shift count of 32 is taken mod 32 in JS, so /0 is special-cased.
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function inSubnet(ip: number, net: number, prefix: number): boolean {
  return ((ip ^ net) & prefixMask(prefix)) === 0;
}

/** Class D, 224.0.0.0/4 (RFC 1112). */
export function isIpv4Multicast(ip: number): boolean {
  return ip >>> 28 === 0xe;
}

/** The all-ones host address of a subnet (RFC 922). */
export function directedBroadcast(net: number, prefix: number): number {
  return (net | ~prefixMask(prefix)) >>> 0;
}

/** 127.0.0.0/8 (RFC 1122 3.2.1.3): never on a wire. */
export function isIpv4Loopback(ip: number): boolean {
  return ip >>> 24 === 127;
}

/**
 * Why `ip` cannot be a host's address on subnet `net`/`prefix`, or undefined
 * when it can (issue 11 item 13): it must be in the subnet, not its network
 * or broadcast address (both exist below /31, RFC 3021), and not "this
 * network" (0/8), loopback (127/8), multicast (224/4), reserved (240/4) or the
 * limited broadcast (RFC 1122 3.2.1.3, RFC 1112).
 */
export function hostAddressProblem(ip: number, net: number, prefix: number): string | undefined {
  const text = ipToString(ip);
  const cidr = `${ipToString(net)}/${prefix}`;
  if (ip === LIMITED_BROADCAST) return `${text} is the limited broadcast address`;
  if (ip >>> 24 === 0) return `${text} is in 0.0.0.0/8 ("this network"), no host's address`;
  if (isIpv4Loopback(ip)) return `${text} is a loopback address (127.0.0.0/8)`;
  if (isIpv4Multicast(ip)) return `${text} is a multicast address (224.0.0.0/4)`;
  if (ip >>> 28 === 0xf) return `${text} is a reserved address (240.0.0.0/4)`;
  if (!inSubnet(ip, net, prefix)) return `${text} is not in ${cidr}`;
  if (prefix < 31) {
    const network = (net & prefixMask(prefix)) >>> 0;
    if (ip === network) return `${text} is the network address of ${cidr}`;
    if (ip === directedBroadcast(network, prefix)) return `${text} is the broadcast address of ${cidr}`;
  }
  return undefined;
}

/** Whether two prefixes share any address (one contains the other). */
export function subnetsOverlap(a: { ip: number; prefix: number }, b: { ip: number; prefix: number }): boolean {
  return inSubnet(a.ip, b.ip, Math.min(a.prefix, b.prefix));
}
