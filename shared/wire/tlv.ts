/**
 * The TLV header that frames every Ethernet frame on an RVI (seed 004,
 * "Virtual Ethernet Driver": "the driver prepends the packet with a TLV
 * (type-length-value) header").
 *
 *   0 u8  type    TlvType
 *   1 u8  flags   TlvFlag bits
 *   2 u16 length  of the value (the Ethernet frame; 0 for heartbeats)
 *   4 u16 dstDev  destination device number (interface on the receiving node)
 *   6 u16 srcDev  source device number
 *   8 u16 vlan    virtual LAN number
 *  10 u16 seq     heartbeat sequence (0 otherwise)
 *  12 u32 srcRvi  set by a control node: the RVI from the receiver back to the source (0 = none)
 *  16 ... value
 */
import { WireError } from './wire-error.ts';

export const TLV_HEADER = 16;

export const TlvType = {
  Unicast: 1,
  Broadcast: 2,
  Multicast: 3,
  /** A copy for a promiscuous listener. */
  Promiscuous: 4,
  /** Sent via a control node because the direct RVI failed; it forwards to dstNode/dstDev. */
  Relayed: 5,
  Arp: 6,
  Heartbeat: 7,
  HeartbeatAck: 8,
} as const;
export type TlvType = (typeof TlvType)[keyof typeof TlvType];

export const TlvFlag = {
  /** An ARP reply from a node inside the platform. */
  LocalReply: 0x01,
  /** A control node filled srcRvi/srcDev. */
  Annotated: 0x02,
  /** Reserved for service clusters. */
  Cluster: 0x04,
} as const;
export type TlvFlag = (typeof TlvFlag)[keyof typeof TlvFlag];

const MAX_TYPE = TlvType.HeartbeatAck;

function checkU16(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`bad TLV ${what} ${n}`);
}

export class Tlv {
  private constructor(readonly buffer: Buffer) {}

  /**
   * The buffer must be exactly one TLV: an RVI delivers whole messages, so
   * any difference between the length field and what arrived is corruption.
   */
  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a WireError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(buf: Buffer): Tlv | undefined {
    try {
      return Tlv.parse(buf);
    } catch (err) {
      if (err instanceof WireError) return undefined;
      throw err;
    }
  }

  static parse(buf: Buffer): Tlv {
    if (buf.length < TLV_HEADER) throw new WireError(`TLV too short: ${buf.length} bytes`);
    const type = buf[0];
    if (type < 1 || type > MAX_TYPE) throw new WireError(`unknown TLV type ${type}`);
    const length = buf.readUInt16BE(2);
    if (length !== buf.length - TLV_HEADER) {
      throw new WireError(`TLV length ${length} does not match the ${buf.length - TLV_HEADER} value bytes`);
    }
    return new Tlv(buf);
  }

  get type(): number {
    return this.buffer[0];
  }
  get flags(): number {
    return this.buffer[1];
  }
  get length(): number {
    return this.buffer.readUInt16BE(2);
  }
  get dstDev(): number {
    return this.buffer.readUInt16BE(4);
  }
  get srcDev(): number {
    return this.buffer.readUInt16BE(6);
  }
  get vlan(): number {
    return this.buffer.readUInt16BE(8);
  }
  get seq(): number {
    return this.buffer.readUInt16BE(10);
  }
  get srcRvi(): number {
    return this.buffer.readUInt32BE(12);
  }
  get value(): Buffer {
    return this.buffer.subarray(TLV_HEADER);
  }

  setType(t: number): void {
    if (!Number.isInteger(t) || t < 1 || t > MAX_TYPE) throw new RangeError(`bad TLV type ${t}`);
    this.buffer[0] = t;
  }
  setFlags(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new RangeError(`bad TLV flags ${n}`);
    this.buffer[1] = n;
  }
  setDstDev(n: number): void {
    checkU16(n, 'dstDev');
    this.buffer.writeUInt16BE(n, 4);
  }
  setSrcDev(n: number): void {
    checkU16(n, 'srcDev');
    this.buffer.writeUInt16BE(n, 6);
  }
  setSrcRvi(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`bad TLV srcRvi ${n}`);
    this.buffer.writeUInt32BE(n, 12);
  }
}

/** Writes a 16-byte TLV header at `target[off]`; the value follows it. Returns 16. */
export function emitTlv(
  target: Buffer,
  off: number,
  t: { type: number; flags?: number; length: number; dstDev?: number; srcDev?: number; vlan: number; seq?: number; srcRvi?: number },
): number {
  if (off < 0 || off + TLV_HEADER > target.length) throw new RangeError('TLV header does not fit');
  if (!Number.isInteger(t.type) || t.type < 1 || t.type > MAX_TYPE) throw new RangeError(`bad TLV type ${t.type}`);
  const flags = t.flags ?? 0;
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff) throw new RangeError(`bad TLV flags ${flags}`);
  const dstDev = t.dstDev ?? 0;
  const srcDev = t.srcDev ?? 0;
  const seq = t.seq ?? 0;
  const srcRvi = t.srcRvi ?? 0;
  checkU16(t.length, 'length');
  checkU16(dstDev, 'dstDev');
  checkU16(srcDev, 'srcDev');
  checkU16(t.vlan, 'vlan');
  checkU16(seq, 'seq');
  if (!Number.isInteger(srcRvi) || srcRvi < 0 || srcRvi > 0xffffffff) throw new RangeError(`bad TLV srcRvi ${srcRvi}`);
  target[off] = t.type;
  target[off + 1] = flags;
  target.writeUInt16BE(t.length, off + 2);
  target.writeUInt16BE(dstDev, off + 4);
  target.writeUInt16BE(srcDev, off + 6);
  target.writeUInt16BE(t.vlan, off + 8);
  target.writeUInt16BE(seq, off + 10);
  target.writeUInt32BE(srcRvi, off + 12);
  return TLV_HEADER;
}
