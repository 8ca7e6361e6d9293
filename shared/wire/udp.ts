/**
 * UDP (RFC 768).
 *
 *   0 u16 source port   2 u16 destination port   4 u16 length (header + data)
 *   6 u16 checksum over the IPv4 pseudo-header, header and data; 0 = none
 */
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';
import { IpProto } from './ipv4.ts';
import { WireError } from './wire-error.ts';

export const UDP_HEADER = 8;

export class UdpDatagram {
  private constructor(readonly buffer: Buffer) {}

  /**
   * The checksum is verified only when it is non-zero (RFC 768: zero means
   * the sender computed none) and `pseudo` gives the IP addresses it covers.
   */
  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a WireError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(buf: Buffer, pseudo?: { src: number; dst: number }): UdpDatagram | undefined {
    try {
      return UdpDatagram.parse(buf, pseudo);
    } catch (err) {
      if (err instanceof WireError) return undefined;
      throw err;
    }
  }

  static parse(buf: Buffer, pseudo?: { src: number; dst: number }): UdpDatagram {
    if (buf.length < UDP_HEADER) throw new WireError(`UDP datagram too short: ${buf.length} bytes`);
    const length = buf.readUInt16BE(4);
    if (length < UDP_HEADER) throw new WireError(`UDP length ${length} is below 8`);
    if (length > buf.length) throw new WireError(`UDP length ${length} exceeds the ${buf.length} bytes received`);
    if (pseudo !== undefined && buf.readUInt16BE(6) !== 0) {
      const initial = pseudoHeaderSum(pseudo.src, pseudo.dst, IpProto.Udp, length);
      if (internetChecksum(buf, 0, length, initial) !== 0) throw new WireError('bad UDP checksum');
    }
    return new UdpDatagram(buf);
  }

  get srcPort(): number {
    return this.buffer.readUInt16BE(0);
  }
  get dstPort(): number {
    return this.buffer.readUInt16BE(2);
  }
  get length(): number {
    return this.buffer.readUInt16BE(4);
  }
  get checksum(): number {
    return this.buffer.readUInt16BE(6);
  }
  /** Ends at the length field, not at the buffer's end. */
  get payload(): Buffer {
    return this.buffer.subarray(UDP_HEADER, this.length);
  }
}

/** Writes the 8-byte header with checksum 0 ("none"); see `fillUdpChecksum`. */
export function emitUdpHeader(target: Buffer, off: number, h: { srcPort: number; dstPort: number; payloadLength: number }): number {
  const length = UDP_HEADER + h.payloadLength;
  if (off < 0 || off + UDP_HEADER > target.length) throw new RangeError('UDP header does not fit');
  if (!Number.isInteger(h.payloadLength) || h.payloadLength < 0 || length > 0xffff) {
    throw new RangeError(`bad UDP payload length ${h.payloadLength}`);
  }
  target.writeUInt16BE(h.srcPort, off);
  target.writeUInt16BE(h.dstPort, off + 2);
  target.writeUInt16BE(length, off + 4);
  target.writeUInt16BE(0, off + 6);
  return UDP_HEADER;
}

/**
 * Computes the checksum of a whole datagram (header + payload, exactly its
 * length field long) and writes it. A computed 0 is sent as 0xffff, its one's
 * complement equal, because 0 on the wire means "no checksum" (RFC 768).
 */
export function fillUdpChecksum(datagram: Buffer, src: number, dst: number): void {
  if (datagram.length < UDP_HEADER || datagram.readUInt16BE(4) !== datagram.length) {
    throw new RangeError('fillUdpChecksum wants exactly the datagram: header and payload');
  }
  datagram.writeUInt16BE(0, 6);
  const sum = internetChecksum(datagram, 0, datagram.length, pseudoHeaderSum(src, dst, IpProto.Udp, datagram.length));
  datagram.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
}
