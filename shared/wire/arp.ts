/**
 * ARP (RFC 826) for Ethernet hardware and IPv4 protocol addresses only; the
 * platform carries no other combination.
 *
 *   0 u16 htype = 1 (Ethernet)   2 u16 ptype = 0x0800   4 u8 hlen = 6   5 u8 plen = 4
 *   6 u16 op (1 request, 2 reply)
 *   8 sha[6]  14 spa[4]  18 tha[6]  24 tpa[4]
 */
import { EtherType } from './ethernet.ts';
import { MAC_LENGTH } from './mac.ts';
import { WireError } from './wire-error.ts';

export const ArpOp = { Request: 1, Reply: 2 } as const;
export type ArpOp = (typeof ArpOp)[keyof typeof ArpOp];

export const ARP_LENGTH = 28;

const HTYPE_ETHERNET = 1;

export class ArpPacket {
  private constructor(readonly buffer: Buffer) {}

  /** Bytes past 28 (Ethernet padding) are ignored. */
  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a WireError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(buf: Buffer): ArpPacket | undefined {
    try {
      return ArpPacket.parse(buf);
    } catch (err) {
      if (err instanceof WireError) return undefined;
      throw err;
    }
  }

  static parse(buf: Buffer): ArpPacket {
    if (buf.length < ARP_LENGTH) throw new WireError(`ARP packet too short: ${buf.length} bytes`);
    const htype = buf.readUInt16BE(0);
    if (htype !== HTYPE_ETHERNET) throw new WireError(`ARP hardware type ${htype} is not Ethernet`);
    const ptype = buf.readUInt16BE(2);
    if (ptype !== EtherType.Ipv4) throw new WireError(`ARP protocol type 0x${ptype.toString(16)} is not IPv4`);
    if (buf[4] !== MAC_LENGTH || buf[5] !== 4) throw new WireError(`ARP address lengths ${buf[4]}/${buf[5]}, want 6/4`);
    const op = buf.readUInt16BE(6);
    if (op !== ArpOp.Request && op !== ArpOp.Reply) throw new WireError(`ARP opcode ${op} is not request or reply`);
    return new ArpPacket(buf);
  }

  get op(): number {
    return this.buffer.readUInt16BE(6);
  }
  get sha(): Buffer {
    return this.buffer.subarray(8, 14);
  }
  get spa(): number {
    return this.buffer.readUInt32BE(14);
  }
  get tha(): Buffer {
    return this.buffer.subarray(18, 24);
  }
  get tpa(): number {
    return this.buffer.readUInt32BE(24);
  }

  setOp(op: number): void {
    if (op !== ArpOp.Request && op !== ArpOp.Reply) throw new RangeError(`bad ARP opcode ${op}`);
    this.buffer.writeUInt16BE(op, 6);
  }
  setSha(mac: Buffer): void {
    if (mac.length < MAC_LENGTH) throw new RangeError('MAC addresses are 6 bytes');
    mac.copy(this.buffer, 8, 0, MAC_LENGTH);
  }
  setTha(mac: Buffer): void {
    if (mac.length < MAC_LENGTH) throw new RangeError('MAC addresses are 6 bytes');
    mac.copy(this.buffer, 18, 0, MAC_LENGTH);
  }
}

export function emitArp(
  target: Buffer,
  off: number,
  a: { op: number; sha: Buffer; spa: number; tha: Buffer; tpa: number },
): number {
  if (off < 0 || off + ARP_LENGTH > target.length) throw new RangeError('ARP packet does not fit');
  if (a.op !== ArpOp.Request && a.op !== ArpOp.Reply) throw new RangeError(`bad ARP opcode ${a.op}`);
  if (a.sha.length < MAC_LENGTH || a.tha.length < MAC_LENGTH) throw new RangeError('MAC addresses are 6 bytes');
  target.writeUInt16BE(HTYPE_ETHERNET, off);
  target.writeUInt16BE(EtherType.Ipv4, off + 2);
  target[off + 4] = MAC_LENGTH;
  target[off + 5] = 4;
  target.writeUInt16BE(a.op, off + 6);
  a.sha.copy(target, off + 8, 0, MAC_LENGTH);
  target.writeUInt32BE(a.spa >>> 0, off + 14);
  a.tha.copy(target, off + 18, 0, MAC_LENGTH);
  target.writeUInt32BE(a.tpa >>> 0, off + 24);
  return ARP_LENGTH;
}
