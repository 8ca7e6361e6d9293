/**
 * ICMP for IPv4 (RFC 792).
 *
 *   0 u8 type   1 u8 code   2 u16 checksum (over the whole ICMP message)
 *   4 u32 rest of header: echo: u16 id, u16 seq; errors: unused (zero), or
 *         for "fragmentation needed" the next-hop MTU in the low 16 bits (RFC 1191)
 *   8 ... data: echo: the payload to return; errors: the offending IP header + 8 bytes
 */
import { internetChecksum } from './checksum.ts';
import { WireError } from './wire-error.ts';

export const IcmpType = { EchoReply: 0, DestUnreachable: 3, EchoRequest: 8, TimeExceeded: 11 } as const;
export type IcmpType = (typeof IcmpType)[keyof typeof IcmpType];

const ICMP_HEADER = 8;

export class IcmpPacket {
  private constructor(readonly buffer: Buffer) {}

  /** Unlike IPv4 and UDP, the ICMP checksum is mandatory (RFC 792), so it is always verified. */
  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a WireError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(buf: Buffer): IcmpPacket | undefined {
    try {
      return IcmpPacket.parse(buf);
    } catch (err) {
      if (err instanceof WireError) return undefined;
      throw err;
    }
  }

  /**
   * The ICMP header quoted inside an ICMP error (RFC 792: the first 8 bytes
   * of the offending datagram's payload): type, code, and an echo's id and
   * seq can be read; the checksum covers bytes the quote cut, so it is not checked.
   */
  static tryParseQuoted(buf: Buffer): IcmpPacket | undefined {
    return buf.length >= ICMP_HEADER ? new IcmpPacket(buf) : undefined;
  }

  static parse(buf: Buffer): IcmpPacket {
    if (buf.length < ICMP_HEADER) throw new WireError(`ICMP message too short: ${buf.length} bytes`);
    if (internetChecksum(buf) !== 0) throw new WireError('bad ICMP checksum');
    return new IcmpPacket(buf);
  }

  get type(): number {
    return this.buffer[0];
  }
  get code(): number {
    return this.buffer[1];
  }
  get checksum(): number {
    return this.buffer.readUInt16BE(2);
  }
  /** Echo identifier (meaningful for echo request/reply only). */
  get id(): number {
    return this.buffer.readUInt16BE(4);
  }
  /** Echo sequence number (meaningful for echo request/reply only). */
  get seq(): number {
    return this.buffer.readUInt16BE(6);
  }
  /** RFC 1191 4: the next-hop MTU of a "fragmentation needed" (type 3 code 4); 0 from a router older than RFC 1191. */
  get nextHopMtu(): number {
    return this.buffer.readUInt16BE(6);
  }
  get data(): Buffer {
    return this.buffer.subarray(ICMP_HEADER);
  }
}

function writeChecksum(target: Buffer, off: number, length: number): void {
  target.writeUInt16BE(0, off + 2);
  target.writeUInt16BE(internetChecksum(target, off, off + length), off + 2);
}

/** Echo request (8) or reply (0) with `data` copied in; returns the message length. */
export function emitIcmpEcho(target: Buffer, off: number, e: { type: 0 | 8; id: number; seq: number; data: Buffer }): number {
  const length = ICMP_HEADER + e.data.length;
  if (off < 0 || off + length > target.length) throw new RangeError('ICMP echo does not fit');
  if (e.type !== IcmpType.EchoReply && e.type !== IcmpType.EchoRequest) throw new RangeError(`bad echo type ${e.type}`);
  target[off] = e.type;
  target[off + 1] = 0;
  target.writeUInt16BE(e.id, off + 4);
  target.writeUInt16BE(e.seq, off + 6);
  e.data.copy(target, off + ICMP_HEADER);
  writeChecksum(target, off, length);
  return length;
}

/**
 * An error message (destination unreachable, time exceeded, ...) quoting
 * `original`, the offending IP header plus the first 8 bytes of its payload
 * (RFC 792), copied as given. `nextHopMtu` fills bytes 6..7 for "fragmentation
 * needed and DF set" (type 3 code 4, RFC 1191); otherwise they are zero.
 */
export function emitIcmpError(
  target: Buffer,
  off: number,
  e: { type: number; code: number; original: Buffer; nextHopMtu?: number },
): number {
  const length = ICMP_HEADER + e.original.length;
  if (off < 0 || off + length > target.length) throw new RangeError('ICMP error does not fit');
  target[off] = e.type;
  target[off + 1] = e.code;
  target.writeUInt32BE(0, off + 4);
  if (e.nextHopMtu !== undefined) target.writeUInt16BE(e.nextHopMtu, off + 6);
  e.original.copy(target, off + ICMP_HEADER);
  writeChecksum(target, off, length);
  return length;
}
