/**
 * Ethernet II frames (IEEE 802.3 with the type interpretation of the
 * length/type field), optionally with one IEEE 802.1Q tag. No FCS: like a
 * capture from a NIC, frames here end with the payload.
 *
 *   0  dst[6]  6  src[6]  12  u16 etherType
 * tagged:
 *   12 u16 0x8100  14 u16 TCI (PCP:3 DEI:1 VID:12)  16 u16 etherType
 */
import { MAC_LENGTH } from './mac.ts';
import { WireError } from './wire-error.ts';

export const EtherType = { Ipv4: 0x0800, Arp: 0x0806, Vlan: 0x8100 } as const;
export type EtherType = (typeof EtherType)[keyof typeof EtherType];

export const ETHERNET_HEADER = 14;
export const VLAN_TAG = 4;

/** Values below this are 802.3 lengths, not types (IEEE 802.3 clause 3.2.6). */
const MIN_ETHERTYPE = 0x0600;

export class EthernetFrame {
  private constructor(
    readonly buffer: Buffer,
    private readonly tagged: boolean,
  ) {}

  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a WireError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(buf: Buffer): EthernetFrame | undefined {
    try {
      return EthernetFrame.parse(buf);
    } catch (err) {
      if (err instanceof WireError) return undefined;
      throw err;
    }
  }

  static parse(buf: Buffer): EthernetFrame {
    if (buf.length < ETHERNET_HEADER) throw new WireError(`Ethernet frame too short: ${buf.length} bytes`);
    const type = buf.readUInt16BE(12);
    if (type === EtherType.Vlan) {
      if (buf.length < ETHERNET_HEADER + VLAN_TAG) throw new WireError(`802.1Q frame too short: ${buf.length} bytes`);
      const inner = buf.readUInt16BE(16);
      if (inner < MIN_ETHERTYPE) throw new WireError('802.3 length frames are not supported');
      // Q-in-Q would need a tag stack; nothing in the platform produces it.
      if (inner === EtherType.Vlan) throw new WireError('stacked 802.1Q tags are not supported');
      return new EthernetFrame(buf, true);
    }
    if (type < MIN_ETHERTYPE) throw new WireError('802.3 length frames are not supported');
    return new EthernetFrame(buf, false);
  }

  get dst(): Buffer {
    return this.buffer.subarray(0, MAC_LENGTH);
  }
  get src(): Buffer {
    return this.buffer.subarray(MAC_LENGTH, 2 * MAC_LENGTH);
  }
  /** 802.1Q VLAN identifier, or undefined for an untagged frame. */
  get vlanId(): number | undefined {
    return this.tagged ? this.buffer.readUInt16BE(14) & 0x0fff : undefined;
  }
  /** 802.1Q priority code point; 0 for an untagged frame. */
  get pcp(): number {
    return this.tagged ? this.buffer[14] >> 5 : 0;
  }
  /** The type of the payload: the inner one when tagged. */
  get etherType(): number {
    return this.buffer.readUInt16BE(this.tagged ? 16 : 12);
  }
  get headerLength(): number {
    return this.tagged ? ETHERNET_HEADER + VLAN_TAG : ETHERNET_HEADER;
  }
  get payload(): Buffer {
    return this.buffer.subarray(this.headerLength);
  }

  /** Rewrites the destination MAC in place (a relay readdressing a frame it forwards). */
  setDst(mac: Buffer): this {
    if (mac.length < MAC_LENGTH) throw new RangeError('MAC addresses are 6 bytes');
    mac.copy(this.buffer, 0, 0, MAC_LENGTH);
    return this;
  }

  /** Rewrites the source MAC in place. */
  setSrc(mac: Buffer): this {
    if (mac.length < MAC_LENGTH) throw new RangeError('MAC addresses are 6 bytes');
    mac.copy(this.buffer, MAC_LENGTH, 0, MAC_LENGTH);
    return this;
  }

  /** Rewrites the payload's type in place (the inner one when tagged); the tag itself is not a payload type. */
  setEtherType(type: number): this {
    if (!Number.isInteger(type) || type < MIN_ETHERTYPE || type > 0xffff || type === EtherType.Vlan) throw new RangeError(`bad EtherType 0x${type.toString(16)}`);
    this.buffer.writeUInt16BE(type, this.tagged ? 16 : 12);
    return this;
  }

  /** Rewrites the 802.1Q VLAN identifier of a tagged frame in place, keeping PCP and DEI. */
  setVlanId(vid: number): this {
    if (!this.tagged) throw new RangeError('an untagged frame has no VLAN identifier');
    if (!Number.isInteger(vid) || vid < 0 || vid > 0xfff) throw new RangeError(`bad VLAN id ${vid}`);
    this.buffer.writeUInt16BE((this.buffer.readUInt16BE(14) & 0xf000) | vid, 14);
    return this;
  }
}

/**
 * Writes an Ethernet header (tagged when `vlanId` is given) at `target[off]`;
 * returns its length. Short frames are not padded to 60 bytes: the frames
 * travel over sockets, not a real medium, and tshark reads them as captured.
 */
export function emitEthernet(
  target: Buffer,
  off: number,
  h: { dst: Buffer; src: Buffer; etherType: number; vlanId?: number; pcp?: number },
): number {
  const tagged = h.vlanId !== undefined;
  const length = tagged ? ETHERNET_HEADER + VLAN_TAG : ETHERNET_HEADER;
  if (off < 0 || off + length > target.length) throw new RangeError('Ethernet header does not fit');
  if (h.dst.length < MAC_LENGTH || h.src.length < MAC_LENGTH) throw new RangeError('MAC addresses are 6 bytes');
  if (!Number.isInteger(h.etherType) || h.etherType < MIN_ETHERTYPE || h.etherType > 0xffff) {
    throw new RangeError(`bad EtherType 0x${h.etherType.toString(16)}`);
  }
  h.dst.copy(target, off, 0, MAC_LENGTH);
  h.src.copy(target, off + MAC_LENGTH, 0, MAC_LENGTH);
  if (tagged) {
    const vid = h.vlanId as number;
    const pcp = h.pcp ?? 0;
    if (!Number.isInteger(vid) || vid < 0 || vid > 0xfff) throw new RangeError(`bad VLAN id ${vid}`);
    if (!Number.isInteger(pcp) || pcp < 0 || pcp > 7) throw new RangeError(`bad PCP ${pcp}`);
    target.writeUInt16BE(EtherType.Vlan, off + 12);
    target.writeUInt16BE((pcp << 13) | vid, off + 14);
    target.writeUInt16BE(h.etherType, off + 16);
  } else {
    target.writeUInt16BE(h.etherType, off + 12);
  }
  return length;
}
