/**
 * TCP (RFC 9293 section 3.1).
 *
 *   0 u16 source port   2 u16 destination port   4 u32 sequence number
 *   8 u32 acknowledgment number
 *  12 u8 data offset:4 (header length in 32-bit words) reserved:4
 *  13 u8 flags CWR ECE URG ACK PSH RST SYN FIN (RFC 3168 added CWR and ECE)
 *  14 u16 window   16 u16 checksum over the IPv4 pseudo-header, header and data
 *  18 u16 urgent pointer
 *  20 options (data offset > 5), then the data
 *
 * Options are kind [length data...], except End (0) and Nop (1), which are a
 * single byte. Interpreted here: MSS (RFC 9293 3.2), window scale (RFC 7323
 * 2.2), SACK-permitted (RFC 2018 2), timestamps (RFC 7323 3.2) and the shared
 * experimental kind 254 (RFC 6994); every other kind is kept as raw bytes.
 */
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';
import { IPV4_HEADER, IpProto } from './ipv4.ts';
import { WireError } from './wire-error.ts';

export const TCP_HEADER = 20;

export const TcpFlag = { Fin: 0x01, Syn: 0x02, Rst: 0x04, Psh: 0x08, Ack: 0x10, Urg: 0x20, Ece: 0x40, Cwr: 0x80 } as const;
export type TcpFlag = (typeof TcpFlag)[keyof typeof TcpFlag];

export const TcpOptionKind = { End: 0, Nop: 1, Mss: 2, WindowScale: 3, SackPermitted: 4, Sack: 5, Timestamps: 8, Experimental: 254 } as const;
export type TcpOptionKind = (typeof TcpOptionKind)[keyof typeof TcpOptionKind];

export interface TcpOptions {
  /** Maximum segment size the sender can receive (RFC 9293 3.7.1). */
  mss?: number;
  /** Shift count, as sent; RFC 7323 2.3 has a receiver use 14 for anything larger. */
  windowScale?: number;
  sackPermitted?: boolean;
  /** TSval and TSecr (RFC 7323 3.2). */
  timestamps?: { value: number; echo: number };
  /**
   * Kind 254 options (RFC 6994). `data` is everything after kind and length,
   * the ExID included: a 16-bit ExID or a 32-bit magic number, whose first
   * 16 bits are unique among ExIDs (RFC 6994 section 3), so `exid` (the first
   * two bytes) identifies the experiment either way.
   */
  experimental?: Array<{ exid: number; data: Buffer }>;
  /** Any other kind (SACK blocks included), with the bytes after kind and length. */
  unknown?: Array<{ kind: number; data: Buffer }>;
}

/** The data offset is 4 bits of 32-bit words: a header is at most 60 bytes, 40 of options. */
const MAX_HEADER = 60;
const MAX_OPTIONS = MAX_HEADER - TCP_HEADER;
/** The IPv4 total length is 16 bits and the IP header takes at least 20 of them. */
const MAX_SEGMENT = 0xffff - IPV4_HEADER;
/** The highest window scale shift a sender may use (RFC 7323 2.3). */
const MAX_WINDOW_SCALE = 14;
/** Kinds with a field of their own in TcpOptions, refused in `unknown` so none is sent twice. */
const DEDICATED_KINDS: ReadonlySet<number> = new Set([
  TcpOptionKind.End,
  TcpOptionKind.Nop,
  TcpOptionKind.Mss,
  TcpOptionKind.WindowScale,
  TcpOptionKind.SackPermitted,
  TcpOptionKind.Timestamps,
  TcpOptionKind.Experimental,
]);

export class TcpSegment {
  private constructor(readonly buffer: Buffer) {}

  /**
   * `buf` must be exactly the segment (the IPv4 payload, which ends at the IP
   * total length): TCP has no length field, so the data runs to the end.
   *
   * The checksum is verified when `pseudo` gives the addresses it covers and
   * the field is non-zero. In TCP the checksum is mandatory (RFC 9293 3.1)
   * and 0 is a value a correct computation can give, but the platform's
   * internal hops, whose links already guarantee integrity, write 0 meaning
   * "not computed", as they do in IPv4 headers; so a zero passes unverified.
   * `fillTcpChecksum` writes a computed 0 as 0, which is then not verified. A wrong
   * non-zero checksum means someone computed it and got it wrong: an error.
   *
   * Options are not looked at until `options()` is called.
   */
  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a WireError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(buf: Buffer, pseudo?: { src: number; dst: number }): TcpSegment | undefined {
    try {
      return TcpSegment.parse(buf, pseudo);
    } catch (err) {
      if (err instanceof WireError) return undefined;
      throw err;
    }
  }

  static parse(buf: Buffer, pseudo?: { src: number; dst: number }): TcpSegment {
    if (buf.length < TCP_HEADER) throw new WireError(`TCP segment too short: ${buf.length} bytes`);
    if (buf.length > MAX_SEGMENT) throw new WireError(`TCP segment of ${buf.length} bytes exceeds what IPv4 can carry`);
    const headerLength = (buf[12] >> 4) * 4;
    if (headerLength < TCP_HEADER) throw new WireError(`TCP data offset ${headerLength} bytes is below 20`);
    if (headerLength > buf.length) throw new WireError(`TCP data offset ${headerLength} exceeds the ${buf.length} bytes received`);
    if (pseudo !== undefined && buf.readUInt16BE(16) !== 0) {
      const initial = pseudoHeaderSum(pseudo.src, pseudo.dst, IpProto.Tcp, buf.length);
      if (internetChecksum(buf, 0, buf.length, initial) !== 0) throw new WireError('bad TCP checksum');
    }
    return new TcpSegment(buf);
  }

  get srcPort(): number {
    return this.buffer.readUInt16BE(0);
  }
  get dstPort(): number {
    return this.buffer.readUInt16BE(2);
  }
  get seq(): number {
    return this.buffer.readUInt32BE(4);
  }
  /** The acknowledgment number, meaningful only with the ACK flag (`isAck`). */
  get ack(): number {
    return this.buffer.readUInt32BE(8);
  }
  /** The header length in bytes (the field counts 32-bit words). */
  get dataOffset(): number {
    return (this.buffer[12] >> 4) * 4;
  }
  /** TcpFlag bits. */
  get flags(): number {
    return this.buffer[13];
  }
  get isFin(): boolean {
    return (this.buffer[13] & TcpFlag.Fin) !== 0;
  }
  get isSyn(): boolean {
    return (this.buffer[13] & TcpFlag.Syn) !== 0;
  }
  get isRst(): boolean {
    return (this.buffer[13] & TcpFlag.Rst) !== 0;
  }
  get isPsh(): boolean {
    return (this.buffer[13] & TcpFlag.Psh) !== 0;
  }
  get isAck(): boolean {
    return (this.buffer[13] & TcpFlag.Ack) !== 0;
  }
  get isUrg(): boolean {
    return (this.buffer[13] & TcpFlag.Urg) !== 0;
  }
  get isEce(): boolean {
    return (this.buffer[13] & TcpFlag.Ece) !== 0;
  }
  get isCwr(): boolean {
    return (this.buffer[13] & TcpFlag.Cwr) !== 0;
  }
  /** As sent: scaling it by the negotiated shift (RFC 7323 2.3) is the connection's business. */
  get window(): number {
    return this.buffer.readUInt16BE(14);
  }
  get checksum(): number {
    return this.buffer.readUInt16BE(16);
  }
  get urgentPointer(): number {
    return this.buffer.readUInt16BE(18);
  }
  /** From the end of the header (options skipped) to the end of the buffer. */
  get payload(): Buffer {
    return this.buffer.subarray(this.dataOffset);
  }
  /** SEG.LEN of RFC 9293 3.3.1: the sequence space taken, data plus one each for SYN and FIN. */
  get segmentLength(): number {
    const flags = this.buffer[13];
    return this.buffer.length - this.dataOffset + (flags & TcpFlag.Syn ? 1 : 0) + (flags & TcpFlag.Fin ? 1 : 0);
  }

  /**
   * Decodes the options on each call, so the receive path pays for them only
   * where it wants them (on SYNs, or for timestamps). Buffers in the result
   * are views of the segment, not copies. A repeated option keeps the last
   * value. A list that cannot be walked (a length below 2, or an option
   * running past the header) or a known kind with the wrong length throws
   * WireError: such a segment is malformed and should be dropped.
   */
  options(): TcpOptions {
    const buf = this.buffer;
    const end = this.dataOffset;
    const o: TcpOptions = {};
    let i = TCP_HEADER;
    while (i < end) {
      const kind = buf[i];
      // What follows End is padding (RFC 9293 3.1), whatever its bytes.
      if (kind === TcpOptionKind.End) break;
      if (kind === TcpOptionKind.Nop) {
        i++;
        continue;
      }
      if (i + 1 >= end) throw new WireError(`TCP option ${kind} has no length byte before the end of the header`);
      const len = buf[i + 1];
      // The length counts kind and length themselves: below 2 the walk would never advance.
      if (len < 2) throw new WireError(`TCP option ${kind} has length ${len}, below 2`);
      if (i + len > end) throw new WireError(`TCP option ${kind} of length ${len} at byte ${i} runs past the ${end}-byte header`);
      switch (kind) {
        case TcpOptionKind.Mss:
          checkOptionLength(kind, len, 4);
          o.mss = buf.readUInt16BE(i + 2);
          break;
        case TcpOptionKind.WindowScale:
          checkOptionLength(kind, len, 3);
          o.windowScale = buf[i + 2];
          break;
        case TcpOptionKind.SackPermitted:
          checkOptionLength(kind, len, 2);
          o.sackPermitted = true;
          break;
        case TcpOptionKind.Timestamps:
          checkOptionLength(kind, len, 10);
          o.timestamps = { value: buf.readUInt32BE(i + 2), echo: buf.readUInt32BE(i + 6) };
          break;
        case TcpOptionKind.Experimental:
          // RFC 6994 section 3: the ExID is mandatory, so kind 254 is at least 4 bytes.
          if (len < 4) throw new WireError(`TCP experimental option of length ${len} has no ExID`);
          (o.experimental ??= []).push({ exid: buf.readUInt16BE(i + 2), data: buf.subarray(i + 2, i + len) });
          break;
        default:
          (o.unknown ??= []).push({ kind, data: buf.subarray(i + 2, i + len) });
      }
      i += len;
    }
    return o;
  }
}

function checkOptionLength(kind: number, len: number, want: number): void {
  if (len !== want) throw new WireError(`TCP option ${kind} has length ${len}, not ${want}`);
}

function checkRange(n: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`bad TCP ${what} ${n}`);
}

/**
 * Bytes the options take in a header, padded to a multiple of 4 because the
 * data offset counts 32-bit words; 0 for none. Throws RangeError when they
 * do not fit the 40 bytes a header has for them.
 */
export function tcpOptionsLength(o?: TcpOptions): number {
  if (o === undefined) return 0;
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.windowScale !== undefined) n += 3;
  if (o.sackPermitted) n += 2;
  if (o.timestamps !== undefined) n += 10;
  if (o.experimental !== undefined) for (const e of o.experimental) n += 2 + e.data.length;
  if (o.unknown !== undefined) for (const u of o.unknown) n += 2 + u.data.length;
  if (n > MAX_OPTIONS) throw new RangeError(`TCP options take ${n} bytes, more than the ${MAX_OPTIONS} a header has`);
  return (n + 3) & ~3;
}

/**
 * Writes the header at `target[off]`, with checksum 0 ("not computed"; see
 * `fillTcpChecksum`); returns its length, 20 plus `tcpOptionsLength(options)`.
 *
 * Options go in the order MSS, window scale, SACK-permitted, timestamps,
 * experimental, unknown, packed without alignment NOPs, then an End and zero
 * padding to the word boundary (RFC 9293 3.1: the padding is zeros, and End
 * is itself the byte 0).
 */
export function emitTcpHeader(
  target: Buffer,
  off: number,
  h: {
    srcPort: number;
    dstPort: number;
    seq: number;
    ack: number;
    flags: number;
    window: number;
    urgentPointer?: number;
    options?: TcpOptions;
  },
): number {
  const o = h.options;
  const length = TCP_HEADER + tcpOptionsLength(o);
  const urgentPointer = h.urgentPointer ?? 0;
  if (off < 0 || off + length > target.length) throw new RangeError('TCP header does not fit');
  checkRange(h.srcPort, 0xffff, 'source port');
  checkRange(h.dstPort, 0xffff, 'destination port');
  checkRange(h.seq, 0xffffffff, 'sequence number');
  checkRange(h.ack, 0xffffffff, 'acknowledgment number');
  checkRange(h.flags, 0xff, 'flags');
  checkRange(h.window, 0xffff, 'window');
  checkRange(urgentPointer, 0xffff, 'urgent pointer');
  target.writeUInt16BE(h.srcPort, off);
  target.writeUInt16BE(h.dstPort, off + 2);
  target.writeUInt32BE(h.seq, off + 4);
  target.writeUInt32BE(h.ack, off + 8);
  target[off + 12] = (length / 4) << 4;
  target[off + 13] = h.flags;
  target.writeUInt16BE(h.window, off + 14);
  target.writeUInt16BE(0, off + 16);
  target.writeUInt16BE(urgentPointer, off + 18);
  if (o === undefined) return length;

  let p = off + TCP_HEADER;
  if (o.mss !== undefined) {
    checkRange(o.mss, 0xffff, 'MSS');
    target[p] = TcpOptionKind.Mss;
    target[p + 1] = 4;
    target.writeUInt16BE(o.mss, p + 2);
    p += 4;
  }
  if (o.windowScale !== undefined) {
    checkRange(o.windowScale, MAX_WINDOW_SCALE, 'window scale');
    target[p] = TcpOptionKind.WindowScale;
    target[p + 1] = 3;
    target[p + 2] = o.windowScale;
    p += 3;
  }
  if (o.sackPermitted) {
    target[p] = TcpOptionKind.SackPermitted;
    target[p + 1] = 2;
    p += 2;
  }
  if (o.timestamps !== undefined) {
    checkRange(o.timestamps.value, 0xffffffff, 'timestamp value');
    checkRange(o.timestamps.echo, 0xffffffff, 'timestamp echo');
    target[p] = TcpOptionKind.Timestamps;
    target[p + 1] = 10;
    target.writeUInt32BE(o.timestamps.value, p + 2);
    target.writeUInt32BE(o.timestamps.echo, p + 6);
    p += 10;
  }
  if (o.experimental !== undefined) {
    for (const e of o.experimental) {
      // `data` is the wire form, ExID first, so `exid` must agree with it.
      if (e.data.length < 2 || e.data.readUInt16BE(0) !== e.exid) {
        throw new RangeError(`TCP experimental option data must begin with its ExID 0x${e.exid.toString(16)}`);
      }
      target[p] = TcpOptionKind.Experimental;
      target[p + 1] = 2 + e.data.length;
      p += 2 + e.data.copy(target, p + 2);
    }
  }
  if (o.unknown !== undefined) {
    for (const u of o.unknown) {
      checkRange(u.kind, 0xff, 'option kind');
      if (DEDICATED_KINDS.has(u.kind)) throw new RangeError(`TCP option kind ${u.kind} has its own field, not unknown`);
      target[p] = u.kind;
      target[p + 1] = 2 + u.data.length;
      p += 2 + u.data.copy(target, p + 2);
    }
  }
  target.fill(TcpOptionKind.End, p, off + length);
  return length;
}

/**
 * Computes the checksum of a whole segment (header + payload, exactly) and
 * writes it as computed. Unlike UDP, TCP has no "no checksum" value, and the
 * standard computation yields 0x0000 but never 0xffff (RFC 1624): a computed
 * 0 is written as 0, or Linux and tshark would see a bad checksum. On parse a
 * 0 is taken as "not computed" (inside the platform) and not verified, which
 * costs nothing but the check of one segment in 65536 from outside.
 */
export function fillTcpChecksum(segment: Buffer, src: number, dst: number): void {
  const headerLength = segment.length < TCP_HEADER ? 0 : (segment[12] >> 4) * 4;
  if (headerLength < TCP_HEADER || headerLength > segment.length || segment.length > MAX_SEGMENT) {
    throw new RangeError('fillTcpChecksum wants exactly the segment: header and payload');
  }
  segment.writeUInt16BE(0, 16);
  const sum = internetChecksum(segment, 0, segment.length, pseudoHeaderSum(src, dst, IpProto.Tcp, segment.length));
  segment.writeUInt16BE(sum, 16);
}

/*
 * Sequence number arithmetic (RFC 9293 3.4): sequence numbers live in a
 * space of 2^32 that wraps, so a < b means b lies less than 2^31 ahead of a
 * (the serial number arithmetic of RFC 1982 for 32 bits). `(a - b) | 0` is
 * that difference as a signed 32-bit number: exact for any u32 inputs, and
 * ToInt32 reduces it modulo 2^32. Two numbers exactly 2^31 apart are each
 * "less" than the other, as RFC 1982 leaves that case undefined; a TCP
 * window is below 2^30 (RFC 7323 2.3), so it never arises between numbers
 * a connection compares.
 */

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function seqLeq(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
export function seqGeq(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
/** `a + n` modulo 2^32, as a u32; `n` may be negative. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
/** The signed distance from `b` to `a` (a - b), in -2^31 .. 2^31 - 1. */
export function seqSub(a: number, b: number): number {
  return (a - b) | 0;
}
