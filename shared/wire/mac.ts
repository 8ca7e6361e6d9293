/**
 * Ethernet MAC addresses as 6-byte Buffers (or 6 bytes at an offset inside a
 * frame, so headers can be inspected without slicing).
 *
 * First-byte bits (IEEE 802-2014 section 8.2): bit 0 is I/G (1 = group, i.e.
 * multicast; broadcast is the all-ones group), bit 1 is U/L (1 = locally
 * administered). Addresses this platform assigns are locally administered
 * unicast (0x02 first byte) so they can never clash with a real vendor's.
 */
import { WireError } from './wire-error.ts';

export const MAC_LENGTH = 6;

/** ff:ff:ff:ff:ff:ff. Shared: never write into it. */
export const BROADCAST_MAC: Buffer = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function macToString(b: Buffer, off = 0): string {
  return `${HEX[b[off]]}:${HEX[b[off + 1]]}:${HEX[b[off + 2]]}:${HEX[b[off + 3]]}:${HEX[b[off + 4]]}:${HEX[b[off + 5]]}`;
}

/** "02:00:01:00:00:05" (colons or dashes, either case). */
export function parseMac(s: string): Buffer {
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(s)) throw new WireError(`bad MAC address "${s}"`);
  const mac = Buffer.allocUnsafe(MAC_LENGTH);
  for (let i = 0; i < MAC_LENGTH; i++) mac[i] = parseInt(s.slice(i * 3, i * 3 + 2), 16);
  return mac;
}

export function isBroadcastMac(b: Buffer, off = 0): boolean {
  return (b[off] & b[off + 1] & b[off + 2] & b[off + 3] & b[off + 4] & b[off + 5]) === 0xff;
}

/** I/G bit set; true for broadcast too. */
export function isMulticastMac(b: Buffer, off = 0): boolean {
  return (b[off] & 1) === 1;
}

/** RFC 1112 section 6.4: 01:00:5e followed by the low 23 bits of the group. */
export function ipv4MulticastMac(group: number): Buffer {
  if (group >>> 28 !== 0xe) throw new RangeError(`not an IPv4 multicast group: 0x${(group >>> 0).toString(16)}`);
  return Buffer.from([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 255, group & 255]);
}

export function macEquals(a: Buffer, aOff: number, b: Buffer, bOff: number): boolean {
  return (
    a[aOff] === b[bOff] &&
    a[aOff + 1] === b[bOff + 1] &&
    a[aOff + 2] === b[bOff + 2] &&
    a[aOff + 3] === b[bOff + 3] &&
    a[aOff + 4] === b[bOff + 4] &&
    a[aOff + 5] === b[bOff + 5]
  );
}

/**
 * The MAC the platform gives interface `counter` of the machine with serial
 * `serial`: 02 (locally administered unicast), serial (u16), counter (u24).
 */
export function assignedMac(serial: number, counter: number): Buffer {
  if (!Number.isInteger(serial) || serial < 1 || serial > 0xffff) throw new RangeError(`bad serial ${serial}`);
  if (!Number.isInteger(counter) || counter < 0 || counter > 0xffffff) throw new RangeError(`bad MAC counter ${counter}`);
  return Buffer.from([0x02, serial >> 8, serial & 255, (counter >> 16) & 255, (counter >> 8) & 255, counter & 255]);
}

/** Whether `b[off..]` has the form of a MAC the platform assigns (`assignedMac`): locally administered unicast 02, a non-zero serial. */
export function isAssignedMac(b: Buffer, off = 0): boolean {
  return off >= 0 && off + MAC_LENGTH <= b.length && b[off] === 0x02 && (b[off + 1] | b[off + 2]) !== 0;
}

/** The serial of the control node that assigned `b[off..]`, or undefined when it is not an assigned MAC. */
export function macSerial(b: Buffer, off = 0): number | undefined {
  return isAssignedMac(b, off) ? (b[off + 1] << 8) | b[off + 2] : undefined;
}

/**
 * Internal MACs address a node inside the platform through an RVI rather than
 * a station. The seed: "internal nodes are signaled through a combination of
 * setting the locally administered bit, the multicast bit, and another
 * predefined bit pattern in the first byte ... highly improbable of being a
 * valid pattern". 0xa3 = 0b1010_0011: I/G and U/L set, plus 101000 in the
 * upper six bits. Real multicast uses 01:00:5e (IPv4), 33:33 (IPv6) or
 * 01:80:c2 (802.1D), and broadcast is ff, so no real group address collides.
 *
 *   0     u8   INTERNAL_MAC_TAG
 *   1..3  u24  RVI id (big endian)
 *   4     u8   destination device number (interface on the node the RVI leads to)
 *   5     u8   virtual LAN number
 */
export const INTERNAL_MAC_TAG = 0xa3;

export interface InternalMac {
  rvi: number;
  dev: number;
  vlan: number;
}

export function isInternalMac(b: Buffer, off = 0): boolean {
  return b[off] === INTERNAL_MAC_TAG;
}

export function emitInternalMac(target: Buffer, off: number, m: InternalMac): void {
  if (!Number.isInteger(m.rvi) || m.rvi < 0 || m.rvi > 0xffffff) throw new RangeError(`bad RVI id ${m.rvi}`);
  if (!Number.isInteger(m.dev) || m.dev < 0 || m.dev > 0xff) throw new RangeError(`bad device number ${m.dev}`);
  if (!Number.isInteger(m.vlan) || m.vlan < 0 || m.vlan > 0xff) throw new RangeError(`bad virtual LAN ${m.vlan}`);
  if (off < 0 || off + MAC_LENGTH > target.length) throw new RangeError('internal MAC does not fit');
  target[off] = INTERNAL_MAC_TAG;
  target[off + 1] = m.rvi >>> 16;
  target[off + 2] = (m.rvi >>> 8) & 255;
  target[off + 3] = m.rvi & 255;
  target[off + 4] = m.dev;
  target[off + 5] = m.vlan;
}

export function parseInternalMac(b: Buffer, off = 0): InternalMac {
  if (off < 0 || off + MAC_LENGTH > b.length) throw new WireError('internal MAC: buffer too short');
  if (b[off] !== INTERNAL_MAC_TAG) throw new WireError(`not an internal MAC: ${macToString(b, off)}`);
  return { rvi: (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3], dev: b[off + 4], vlan: b[off + 5] };
}
