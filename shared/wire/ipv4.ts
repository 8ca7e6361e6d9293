/**
 * IPv4 (RFC 791).
 *
 *   0 u8 version:4 IHL:4   1 u8 TOS   2 u16 total length   4 u16 id
 *   6 u16 flags:3 (reserved, DF, MF) fragment offset:13 (units of 8 bytes)
 *   8 u8 TTL   9 u8 protocol   10 u16 header checksum   12 u32 src   16 u32 dst
 *  20 options (IHL > 5), then the payload
 */
import { internetChecksum } from './checksum.ts';
import { WireError } from './wire-error.ts';

export const IpProto = { Icmp: 1, Tcp: 6, Udp: 17 } as const;
export type IpProto = (typeof IpProto)[keyof typeof IpProto];

export const IPV4_HEADER = 20;

/** The total length field is 16 bits: no datagram, reassembled or not, is longer. */
export const MAX_DATAGRAM = 0xffff;
const DF = 0x4000;
const MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export class Ipv4Packet {
  private constructor(
    readonly buffer: Buffer,
    readonly headerLength: number,
    readonly totalLength: number,
  ) {}

  /**
   * Bytes past the total length (Ethernet padding of short frames) are
   * ignored. The header checksum is verified only when non-zero: hops inside
   * the platform leave it zero because the links already guarantee integrity,
   * but a non-zero wrong one means someone computed it and got it wrong.
   */
  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a WireError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(buf: Buffer): Ipv4Packet | undefined {
    try {
      return Ipv4Packet.parse(buf);
    } catch (err) {
      if (err instanceof WireError) return undefined;
      throw err;
    }
  }

  /**
   * The header an ICMP error quotes (RFC 792: the header and the first 8
   * bytes of the payload, RFC 1812 4.3.2.3: possibly more): the header must be
   * whole, the payload may be cut short, so the view's payload ends where the
   * quote ends. The checksum is not verified: the router quoted it after its
   * own TTL change, or before.
   */
  static tryParseQuoted(buf: Buffer): Ipv4Packet | undefined {
    if (buf.length < IPV4_HEADER || buf[0] >> 4 !== 4) return undefined;
    const headerLength = (buf[0] & 0x0f) * 4;
    if (headerLength < IPV4_HEADER || headerLength > buf.length) return undefined;
    const totalLength = buf.readUInt16BE(2);
    if (totalLength < headerLength) return undefined;
    return new Ipv4Packet(buf, headerLength, Math.min(totalLength, buf.length));
  }

  static parse(buf: Buffer): Ipv4Packet {
    if (buf.length < IPV4_HEADER) throw new WireError(`IPv4 packet too short: ${buf.length} bytes`);
    const version = buf[0] >> 4;
    if (version !== 4) throw new WireError(`IP version ${version} is not 4`);
    const headerLength = (buf[0] & 0x0f) * 4;
    if (headerLength < IPV4_HEADER) throw new WireError(`IPv4 header length ${headerLength} is below 20`);
    const totalLength = buf.readUInt16BE(2);
    if (totalLength < headerLength) throw new WireError(`IPv4 total length ${totalLength} is below the header length ${headerLength}`);
    if (totalLength > buf.length) throw new WireError(`IPv4 total length ${totalLength} exceeds the ${buf.length} bytes received`);
    if (buf.readUInt16BE(10) !== 0 && internetChecksum(buf, 0, headerLength) !== 0) {
      throw new WireError('bad IPv4 header checksum');
    }
    return new Ipv4Packet(buf, headerLength, totalLength);
  }

  get version(): number {
    return this.buffer[0] >> 4;
  }
  get tos(): number {
    return this.buffer[1];
  }
  get id(): number {
    return this.buffer.readUInt16BE(4);
  }
  get dontFragment(): boolean {
    return (this.buffer.readUInt16BE(6) & DF) !== 0;
  }
  get moreFragments(): boolean {
    return (this.buffer.readUInt16BE(6) & MF) !== 0;
  }
  /** In bytes (the field counts 8-byte units). */
  get fragmentOffset(): number {
    return (this.buffer.readUInt16BE(6) & OFFSET_MASK) * 8;
  }
  get isFragment(): boolean {
    return (this.buffer.readUInt16BE(6) & (MF | OFFSET_MASK)) !== 0;
  }
  get ttl(): number {
    return this.buffer[8];
  }
  get protocol(): number {
    return this.buffer[9];
  }
  get checksum(): number {
    return this.buffer.readUInt16BE(10);
  }
  get src(): number {
    return this.buffer.readUInt32BE(12);
  }
  get dst(): number {
    return this.buffer.readUInt32BE(16);
  }
  /** The total length field: differs from `totalLength` only in a quoted (cut) header. */
  get declaredLength(): number {
    return this.buffer.readUInt16BE(2);
  }
  /** The whole datagram: header, options and payload (no Ethernet padding). */
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.totalLength);
  }

  /**
   * A router's TTL decrement (RFC 1812 5.3.1). A zero checksum (left so by
   * the platform's hops) stays zero; a real one is updated incrementally
   * (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), with m the TTL/protocol word).
   */
  decrementTtl(): void {
    const b = this.buffer;
    const oldWord = (b[8] << 8) | b[9];
    b[8] = b[8] - 1;
    const hc = b.readUInt16BE(10);
    if (hc === 0) return;
    const newWord = (b[8] << 8) | b[9];
    let sum = (~hc & 0xffff) + (~oldWord & 0xffff) + newWord;
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    const out = ~sum & 0xffff;
    // As emitIpv4Header: a computed checksum is written as 0xffff rather than 0, never read as "none".
    b.writeUInt16BE(out === 0 ? 0xffff : out, 10);
  }

  /** Computes the header checksum in place (a datagram leaving the platform must carry one). */
  fillChecksum(): void {
    this.buffer.writeUInt16BE(0, 10);
    const sum = internetChecksum(this.buffer, 0, this.headerLength);
    this.buffer.writeUInt16BE(sum === 0 ? 0xffff : sum, 10);
  }

  /** From the end of the header (options skipped) to the total length. */
  get payload(): Buffer {
    return this.buffer.subarray(this.headerLength, this.totalLength);
  }
}

/**
 * Writes a 20-byte header (no options) at `target[off]`; returns 20. With
 * `checksum: false` the field stays zero, which `Ipv4Packet.parse` accepts.
 */
export function emitIpv4Header(
  target: Buffer,
  off: number,
  h: {
    src: number;
    dst: number;
    protocol: number;
    payloadLength: number;
    id: number;
    ttl?: number;
    tos?: number;
    dontFragment?: boolean;
    moreFragments?: boolean;
    fragmentOffset?: number;
    checksum: boolean;
  },
): number {
  const total = IPV4_HEADER + h.payloadLength;
  const fragOff = h.fragmentOffset ?? 0;
  const ttl = h.ttl ?? 64;
  const tos = h.tos ?? 0;
  if (off < 0 || off + IPV4_HEADER > target.length) throw new RangeError('IPv4 header does not fit');
  if (!Number.isInteger(h.payloadLength) || h.payloadLength < 0 || total > MAX_DATAGRAM) {
    throw new RangeError(`bad IPv4 payload length ${h.payloadLength}`);
  }
  if (!Number.isInteger(fragOff) || fragOff < 0 || fragOff % 8 !== 0 || fragOff / 8 > OFFSET_MASK) {
    throw new RangeError(`bad fragment offset ${fragOff}`);
  }
  if (!Number.isInteger(h.id) || h.id < 0 || h.id > 0xffff) throw new RangeError(`bad IPv4 id ${h.id}`);
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw new RangeError(`bad TTL ${ttl}`);
  if (!Number.isInteger(tos) || tos < 0 || tos > 255) throw new RangeError(`bad TOS ${tos}`);
  if (!Number.isInteger(h.protocol) || h.protocol < 0 || h.protocol > 255) throw new RangeError(`bad protocol ${h.protocol}`);
  target[off] = 0x45;
  target[off + 1] = tos;
  target.writeUInt16BE(total, off + 2);
  target.writeUInt16BE(h.id, off + 4);
  target.writeUInt16BE((h.dontFragment ? DF : 0) | (h.moreFragments ? MF : 0) | (fragOff / 8), off + 6);
  target[off + 8] = ttl;
  target[off + 9] = h.protocol;
  target.writeUInt16BE(0, off + 10);
  target.writeUInt32BE(h.src >>> 0, off + 12);
  target.writeUInt32BE(h.dst >>> 0, off + 16);
  if (h.checksum) {
    // 0x0000 and 0xffff are both one's complement zero and both verify; write
    // 0xffff so a computed checksum is never mistaken for "no checksum".
    const sum = internetChecksum(target, off, off + IPV4_HEADER);
    target.writeUInt16BE(sum === 0 ? 0xffff : sum, off + 10);
  }
  return IPV4_HEADER;
}

/**
 * How to split `payloadLength` bytes into fragments fitting `mtu` (RFC 791
 * section 3.2, "fragmentation"): every fragment but the last carries a
 * multiple of 8 bytes because offsets count 8-byte units. A payload that fits
 * gives one entry with `more: false`.
 */
export function fragmentPlan(
  payloadLength: number,
  mtu: number,
  headerLength = IPV4_HEADER,
): Array<{ offset: number; length: number; more: boolean }> {
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength + headerLength > MAX_DATAGRAM) {
    throw new RangeError(`bad IPv4 payload length ${payloadLength}`);
  }
  if (payloadLength + headerLength <= mtu) return [{ offset: 0, length: payloadLength, more: false }];
  const step = Math.floor((mtu - headerLength) / 8) * 8;
  if (step < 8) throw new RangeError(`MTU ${mtu} leaves no room for 8 bytes of data after a ${headerLength}-byte header`);
  const plan: Array<{ offset: number; length: number; more: boolean }> = [];
  for (let offset = 0; offset < payloadLength; offset += step) {
    const length = Math.min(step, payloadLength - offset);
    plan.push({ offset, length, more: offset + length < payloadLength });
  }
  return plan;
}
