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
const MAX_DATAGRAM = 0xffff;
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

/** A piece of a datagram's payload held until the rest arrives. */
interface Piece {
  start: number;
  data: Buffer;
}

/** One datagram being reassembled: pieces sorted by start, never overlapping. */
interface Partial {
  pieces: Piece[];
  /** Payload bytes held (the sum of the pieces' lengths). */
  held: number;
  /** Payload length, known once the fragment without MF arrived; -1 before. */
  total: number;
  /** Arrival of the first fragment: RFC 791's reassembly timer is not restarted by later ones. */
  firstSeen: number;
}

/**
 * Reassembles fragmented datagrams (RFC 791 section 3.2; RFC 815 gives the
 * hole bookkeeping, done here as a sorted list of received pieces, where the
 * holes are the gaps between them).
 *
 * Where fragments overlap, the data that arrived first wins: later bytes for
 * an already-filled range are discarded, so a crafted overlap cannot rewrite a
 * header that was already accepted (the concern of RFC 1858).
 *
 * Bounds: at most `maxDatagrams` partial datagrams and `maxBytes` payload
 * bytes held. When a new fragment would exceed them, the oldest other partial
 * datagrams are dropped first (the most likely never to complete); a single
 * datagram that alone would exceed `maxBytes` is dropped itself.
 */
/**
 * Pieces one datagram may arrive in: at RFC 791's smallest MTU (68 bytes, 48 of data per
 * fragment) a 64 KiB datagram takes 1366; more than that is an attack, not a path.
 */
const MAX_PIECES = 1400;

export class Reassembler {
  readonly stats = { completed: 0, timedOut: 0, dropped: 0 };
  private readonly partials = new Map<string, Partial>();
  private heldBytes = 0;
  private readonly timeoutMs: number;
  private readonly maxDatagrams: number;
  private readonly maxBytes: number;

  constructor(opts: { timeoutMs: number; maxDatagrams: number; maxBytes: number }) {
    if (!(opts.timeoutMs > 0) || !(opts.maxDatagrams >= 1) || !(opts.maxBytes >= 1)) {
      throw new RangeError('Reassembler bounds must be positive');
    }
    this.timeoutMs = opts.timeoutMs;
    this.maxDatagrams = opts.maxDatagrams;
    this.maxBytes = opts.maxBytes;
  }

  /** Partial datagrams held. */
  get pending(): number {
    return this.partials.size;
  }
  /** Payload bytes held across all partial datagrams. */
  get bytes(): number {
    return this.heldBytes;
  }

  /**
   * Adds a packet. Returns the whole payload when this fragment completes its
   * datagram (a new buffer), or the packet's own payload view when it is not
   * a fragment; undefined while incomplete or when the datagram was dropped.
   */
  push(p: Ipv4Packet, now: number): Buffer | undefined {
    if (!p.isFragment) return p.payload;
    const key = `${p.src}/${p.dst}/${p.protocol}/${p.id}`;
    let d = this.partials.get(key);
    if (d !== undefined && now - d.firstSeen >= this.timeoutMs) {
      this.remove(key, d);
      this.stats.timedOut++;
      d = undefined;
    }
    const data = p.payload;
    const start = p.fragmentOffset;
    const end = start + data.length;
    if (p.headerLength + end > MAX_DATAGRAM) return this.drop(key, d);
    // RFC 791: every fragment but the last carries a multiple of 8 bytes. Refusing others (and
    // empty ones) keeps a sender from splitting a datagram into thousands of 1-byte pieces.
    if ((p.moreFragments && (data.length === 0 || data.length % 8 !== 0)) || (d !== undefined && d.pieces.length >= MAX_PIECES)) return this.drop(key, d);
    if (d === undefined) {
      while (this.partials.size >= this.maxDatagrams) this.evictOldest(undefined);
      d = { pieces: [], held: 0, total: -1, firstSeen: now };
      this.partials.set(key, d);
    }
    const pieces = d.pieces;
    const lastEnd = pieces.length === 0 ? 0 : pieces[pieces.length - 1].start + pieces[pieces.length - 1].data.length;
    if (!p.moreFragments) {
      // Two different ends, or data past the end, cannot be one datagram.
      if ((d.total >= 0 && d.total !== end) || lastEnd > end) return this.drop(key, d);
      d.total = end;
    } else if (d.total >= 0 && end > d.total) {
      return this.drop(key, d);
    }

    // Find the holes that this fragment fills: triples (insert index, from, to).
    const gaps: number[] = [];
    let added = 0;
    let cur = start;
    let i = 0;
    for (; i < pieces.length && cur < end; i++) {
      const ps = pieces[i].start;
      const pe = ps + pieces[i].data.length;
      if (pe <= cur) continue;
      if (ps >= end) break;
      if (ps > cur) {
        gaps.push(i, cur, ps);
        added += ps - cur;
      }
      cur = pe;
    }
    if (cur < end) {
      gaps.push(i, cur, end);
      added += end - cur;
    }

    if (added > 0) {
      if (d.held + added > this.maxBytes) return this.drop(key, d);
      while (this.heldBytes + added > this.maxBytes) this.evictOldest(d);
      // Copy: the packet's buffer belongs to the receive path and is reused.
      for (let g = gaps.length - 3; g >= 0; g -= 3) {
        const from = gaps[g + 1];
        const to = gaps[g + 2];
        pieces.splice(gaps[g], 0, { start: from, data: Buffer.from(data.subarray(from - start, to - start)) });
      }
      d.held += added;
      this.heldBytes += added;
    }

    if (d.total < 0 || d.held !== d.total) return undefined;
    // Pieces never overlap and all lie below total, so held === total means no hole is left.
    const whole = Buffer.allocUnsafe(d.total);
    for (const piece of pieces) piece.data.copy(whole, piece.start);
    this.remove(key, d);
    this.stats.completed++;
    return whole;
  }

  /** Drops partial datagrams whose first fragment is `timeoutMs` old; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const [key, d] of this.partials) {
      if (now - d.firstSeen >= this.timeoutMs) {
        this.remove(key, d);
        n++;
      }
    }
    this.stats.timedOut += n;
    return n;
  }

  private drop(key: string, d: Partial | undefined): undefined {
    if (d !== undefined) this.remove(key, d);
    this.stats.dropped++;
    return undefined;
  }

  private remove(key: string, d: Partial): void {
    this.partials.delete(key);
    this.heldBytes -= d.held;
  }

  /** Map order is insertion order, i.e. oldest first. */
  private evictOldest(keep: Partial | undefined): void {
    for (const [key, d] of this.partials) {
      if (d === keep) continue;
      this.drop(key, d);
      return;
    }
  }
}
