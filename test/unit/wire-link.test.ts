import { describe, expect, it } from 'vitest';
import {
  ARP_LENGTH,
  ArpOp,
  ArpPacket,
  BROADCAST_MAC,
  ETHERNET_HEADER,
  EtherType,
  EthernetFrame,
  TLV_HEADER,
  Tlv,
  TlvFlag,
  TlvType,
  VLAN_TAG,
  WireError,
  emitArp,
  emitEthernet,
  emitTlv,
  macToString,
  parseIp,
  parseMac,
} from '../../shared/wire/index.ts';

const A = parseMac('02:00:01:00:00:05');
const B = parseMac('02:00:01:00:00:06');

describe('Ethernet', () => {
  it('round-trips an untagged frame', () => {
    const buf = Buffer.alloc(ETHERNET_HEADER + 4);
    expect(emitEthernet(buf, 0, { dst: B, src: A, etherType: EtherType.Ipv4 })).toBe(14);
    buf.write('abcd', 14);
    const f = EthernetFrame.parse(buf);
    expect(macToString(f.dst)).toBe('02:00:01:00:00:06');
    expect(macToString(f.src)).toBe('02:00:01:00:00:05');
    expect(f.etherType).toBe(EtherType.Ipv4);
    expect(f.vlanId).toBeUndefined();
    expect(f.pcp).toBe(0);
    expect(f.headerLength).toBe(14);
    expect(f.payload.toString()).toBe('abcd');
    expect(f.buffer).toBe(buf);
  });

  it('round-trips an 802.1Q-tagged frame at an offset', () => {
    const buf = Buffer.alloc(4 + ETHERNET_HEADER + VLAN_TAG + 2);
    expect(emitEthernet(buf, 4, { dst: BROADCAST_MAC, src: A, etherType: EtherType.Arp, vlanId: 0xabc, pcp: 5 })).toBe(18);
    expect(buf.subarray(4 + 12, 4 + 18).toString('hex')).toBe('8100' + 'aabc' + '0806'); // PCP 5 (101), DEI 0, VID abc
    expect(buf.subarray(4 + 14, 4 + 16).readUInt16BE(0) >> 13).toBe(5);
    const f = EthernetFrame.parse(buf.subarray(4));
    expect(f.vlanId).toBe(0xabc);
    expect(f.pcp).toBe(5);
    expect(f.etherType).toBe(EtherType.Arp);
    expect(f.headerLength).toBe(18);
    expect(f.payload.length).toBe(2);
  });

  it('returns views, not copies', () => {
    const buf = Buffer.alloc(20);
    emitEthernet(buf, 0, { dst: B, src: A, etherType: EtherType.Ipv4 });
    const f = EthernetFrame.parse(buf);
    f.dst.set(A);
    expect(macToString(buf, 0)).toBe('02:00:01:00:00:05');
    f.payload[0] = 0x77;
    expect(buf[14]).toBe(0x77);
  });

  it('throws WireError on short frames and 802.3 lengths', () => {
    const buf = Buffer.alloc(18);
    emitEthernet(buf, 0, { dst: B, src: A, etherType: EtherType.Ipv4, vlanId: 1 });
    expect(() => EthernetFrame.parse(buf.subarray(0, 13))).toThrow(WireError);
    expect(() => EthernetFrame.parse(buf.subarray(0, 17))).toThrow(WireError);
    expect(() => EthernetFrame.parse(Buffer.alloc(0))).toThrow(WireError);
    const dot3 = Buffer.alloc(60);
    dot3.writeUInt16BE(46, 12);
    expect(() => EthernetFrame.parse(dot3)).toThrow('802.3 length frames are not supported');
    dot3.writeUInt16BE(0x05ff, 12);
    expect(() => EthernetFrame.parse(dot3)).toThrow(WireError);
    dot3.writeUInt16BE(0x0600, 12);
    expect(EthernetFrame.parse(dot3).etherType).toBe(0x0600);
    const taggedDot3 = Buffer.from(buf);
    taggedDot3.writeUInt16BE(46, 16);
    expect(() => EthernetFrame.parse(taggedDot3)).toThrow('802.3 length frames are not supported');
    const qinq = Buffer.from(buf);
    qinq.writeUInt16BE(EtherType.Vlan, 16);
    expect(() => EthernetFrame.parse(qinq)).toThrow(WireError);
  });

  it('refuses to emit out-of-range fields', () => {
    const buf = Buffer.alloc(18);
    expect(() => emitEthernet(buf, 0, { dst: B, src: A, etherType: 0x0800, vlanId: 4096 })).toThrow(RangeError);
    expect(() => emitEthernet(buf, 0, { dst: B, src: A, etherType: 0x0800, vlanId: 1, pcp: 8 })).toThrow(RangeError);
    expect(() => emitEthernet(buf, 0, { dst: B, src: A, etherType: 100 })).toThrow(RangeError);
    expect(() => emitEthernet(buf, 1, { dst: B, src: A, etherType: 0x0800, vlanId: 1 })).toThrow(RangeError);
  });
});

describe('ARP', () => {
  it('round-trips a request and rewrites fields in place', () => {
    const buf = Buffer.alloc(ARP_LENGTH + 18);
    const n = emitArp(buf, 0, { op: ArpOp.Request, sha: A, spa: parseIp('10.0.0.5'), tha: Buffer.alloc(6), tpa: parseIp('10.0.0.6') });
    expect(n).toBe(28);
    const a = ArpPacket.parse(buf);
    expect(a.op).toBe(ArpOp.Request);
    expect(macToString(a.sha)).toBe('02:00:01:00:00:05');
    expect(a.spa).toBe(0x0a000005);
    expect(macToString(a.tha)).toBe('00:00:00:00:00:00');
    expect(a.tpa).toBe(0x0a000006);
    a.setOp(ArpOp.Reply);
    a.setSha(B);
    a.setTha(A);
    const again = ArpPacket.parse(buf);
    expect(again.op).toBe(ArpOp.Reply);
    expect(macToString(again.sha)).toBe('02:00:01:00:00:06');
    expect(macToString(again.tha)).toBe('02:00:01:00:00:05');
    expect(again.spa).toBe(0x0a000005);
    expect(() => a.setOp(3)).toThrow(RangeError);
  });

  it('throws WireError on anything but Ethernet/IPv4 request or reply', () => {
    const good = Buffer.alloc(ARP_LENGTH);
    emitArp(good, 0, { op: ArpOp.Reply, sha: A, spa: 1, tha: B, tpa: 2 });
    expect(() => ArpPacket.parse(good.subarray(0, 27))).toThrow(WireError);
    const mutate = (at: number, v: number): Buffer => {
      const b = Buffer.from(good);
      b[at] = v;
      return b;
    };
    expect(() => ArpPacket.parse(mutate(1, 6))).toThrow(WireError); // htype 6 (IEEE 802)
    expect(() => ArpPacket.parse(mutate(2, 0x86))).toThrow(WireError); // ptype 0x86dd-ish
    expect(() => ArpPacket.parse(mutate(4, 8))).toThrow(WireError);
    expect(() => ArpPacket.parse(mutate(5, 16))).toThrow(WireError);
    expect(() => ArpPacket.parse(mutate(7, 0))).toThrow(WireError);
    expect(() => ArpPacket.parse(mutate(7, 3))).toThrow(WireError); // RARP request
  });
});

describe('TLV', () => {
  it('round-trips every field', () => {
    const frame = Buffer.from('the ethernet frame');
    const buf = Buffer.alloc(TLV_HEADER + frame.length);
    const n = emitTlv(buf, 0, {
      type: TlvType.Relayed,
      flags: TlvFlag.Annotated | TlvFlag.LocalReply,
      length: frame.length,
      dstDev: 0x0102,
      srcDev: 0x0304,
      vlan: 0x0506,
      seq: 0x0708,
      srcRvi: 0x090a0b0c,
    });
    expect(n).toBe(16);
    frame.copy(buf, n);
    expect(buf.subarray(0, 16).toString('hex')).toBe('050300120102030405060708090a0b0c');
    const t = Tlv.parse(buf);
    expect(t.type).toBe(TlvType.Relayed);
    expect(t.flags).toBe(3);
    expect(t.length).toBe(frame.length);
    expect(t.dstDev).toBe(0x0102);
    expect(t.srcDev).toBe(0x0304);
    expect(t.vlan).toBe(0x0506);
    expect(t.seq).toBe(0x0708);
    expect(t.srcRvi).toBe(0x090a0b0c);
    expect(t.value.toString()).toBe('the ethernet frame');
  });

  it('defaults optional fields to zero and rewrites in place', () => {
    const buf = Buffer.alloc(TLV_HEADER);
    emitTlv(buf, 0, { type: TlvType.Heartbeat, length: 0, vlan: 0 });
    expect(buf.toString('hex')).toBe('07' + '00'.repeat(15));
    const t = Tlv.parse(buf);
    t.setType(TlvType.HeartbeatAck);
    t.setFlags(TlvFlag.Cluster);
    t.setDstDev(9);
    t.setSrcDev(0xffff);
    t.setSrcRvi(0xffffffff);
    expect(buf.toString('hex')).toBe('08040000' + '0009' + 'ffff' + '0000' + '0000' + 'ffffffff');
    expect(() => t.setType(0)).toThrow(RangeError);
    expect(() => t.setSrcDev(0x10000)).toThrow(RangeError);
  });

  it('throws WireError on short buffers, unknown types and length mismatches', () => {
    const buf = Buffer.alloc(TLV_HEADER + 4);
    emitTlv(buf, 0, { type: TlvType.Unicast, length: 4, vlan: 1 });
    expect(Tlv.parse(buf).value.length).toBe(4);
    expect(() => Tlv.parse(buf.subarray(0, 15))).toThrow(WireError);
    expect(() => Tlv.parse(buf.subarray(0, 19))).toThrow(WireError);
    expect(() => Tlv.parse(Buffer.concat([buf, Buffer.alloc(1)]))).toThrow(WireError);
    for (const type of [0, 9, 255]) {
      const b = Buffer.from(buf);
      b[0] = type;
      expect(() => Tlv.parse(b)).toThrow(WireError);
    }
  });

  it('refuses to emit out-of-range fields', () => {
    const buf = Buffer.alloc(TLV_HEADER);
    expect(() => emitTlv(buf, 0, { type: 9, length: 0, vlan: 0 })).toThrow(RangeError);
    expect(() => emitTlv(buf, 0, { type: 1, length: 0x10000, vlan: 0 })).toThrow(RangeError);
    expect(() => emitTlv(buf, 0, { type: 1, length: 0, vlan: 0, srcRvi: -1 })).toThrow(RangeError);
    expect(() => emitTlv(buf, 1, { type: 1, length: 0, vlan: 0 })).toThrow(RangeError);
  });
});
