/**
 * Emitters against bytes written by hand from the RFC field layouts, with the
 * checksums worked out on paper (one's complement sums of the 16-bit words).
 */
import { describe, expect, it } from 'vitest';
import {
  ARP_LENGTH,
  ArpOp,
  ArpPacket,
  BROADCAST_MAC,
  ETHERNET_HEADER,
  EtherType,
  EthernetFrame,
  IPV4_HEADER,
  IcmpPacket,
  IcmpType,
  IpProto,
  Ipv4Packet,
  UDP_HEADER,
  UdpDatagram,
  emitArp,
  emitEthernet,
  emitIcmpEcho,
  emitIpv4Header,
  emitUdpHeader,
  fillUdpChecksum,
  parseIp,
  parseMac,
} from '../../shared/wire/index.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const A_MAC = parseMac('02:00:01:00:00:05');
const B_MAC = parseMac('02:00:01:00:00:06');
const A_IP = parseIp('10.0.0.5');
const B_IP = parseIp('10.0.0.6');

describe('golden bytes', () => {
  it('ARP request in Ethernet (RFC 826)', () => {
    const expected = hex(`
      ffffffffffff 020001000005 0806
      0001 0800 06 04 0001
      020001000005 0a000005
      000000000000 0a000006`);
    const f = Buffer.alloc(ETHERNET_HEADER + ARP_LENGTH);
    const n = emitEthernet(f, 0, { dst: BROADCAST_MAC, src: A_MAC, etherType: EtherType.Arp });
    emitArp(f, n, { op: ArpOp.Request, sha: A_MAC, spa: A_IP, tha: Buffer.alloc(6), tpa: B_IP });
    expect(f.toString('hex')).toBe(expected.toString('hex'));
    const arp = ArpPacket.parse(EthernetFrame.parse(expected).payload);
    expect([arp.op, arp.spa, arp.tpa]).toEqual([ArpOp.Request, A_IP, B_IP]);
  });

  it('ICMP echo request in IPv4 in Ethernet (RFC 791, 792)', () => {
    // IP:   4500+0020+1234+0000+4001+0a00+0005+0a00+0006 = ab60 -> 549f
    // ICMP: 0800+4242+0001+6162+6364 = 10f09 -> 0f0a -> f0f5
    const expected = hex(`
      020001000006 020001000005 0800
      4500 0020 1234 0000 4001 549f 0a000005 0a000006
      0800 f0f5 4242 0001 61626364`);
    const data = Buffer.from('abcd');
    const f = Buffer.alloc(ETHERNET_HEADER + IPV4_HEADER + 8 + data.length);
    let o = emitEthernet(f, 0, { dst: B_MAC, src: A_MAC, etherType: EtherType.Ipv4 });
    o += emitIpv4Header(f, o, { src: A_IP, dst: B_IP, protocol: IpProto.Icmp, payloadLength: 8 + data.length, id: 0x1234, checksum: true });
    o += emitIcmpEcho(f, o, { type: IcmpType.EchoRequest, id: 0x4242, seq: 1, data });
    expect(o).toBe(f.length);
    expect(f.toString('hex')).toBe(expected.toString('hex'));
    const icmp = IcmpPacket.parse(Ipv4Packet.parse(EthernetFrame.parse(expected).payload).payload);
    expect([icmp.type, icmp.id, icmp.seq, icmp.data.toString()]).toEqual([8, 0x4242, 1, 'abcd']);
  });

  it('UDP in IPv4 in Ethernet with an odd payload (RFC 768)', () => {
    // IP:  4500+001f+0001+4000+4011+0a00+0005+0a00+0006 = d93c -> 26c3
    // UDP: pseudo 0a00+0005+0a00+0006+0011+000b = 1427; header 9c40+9c41+000b = 1388c;
    //      data 6869+2100 (padded) = 8969; total 1d61c -> d61d -> 29e2
    const expected = hex(`
      020001000006 020001000005 0800
      4500 001f 0001 4000 4011 26c3 0a000005 0a000006
      9c40 9c41 000b 29e2 686921`);
    const data = Buffer.from('hi!');
    const f = Buffer.alloc(ETHERNET_HEADER + IPV4_HEADER + UDP_HEADER + data.length);
    let o = emitEthernet(f, 0, { dst: B_MAC, src: A_MAC, etherType: EtherType.Ipv4 });
    o += emitIpv4Header(f, o, {
      src: A_IP,
      dst: B_IP,
      protocol: IpProto.Udp,
      payloadLength: UDP_HEADER + data.length,
      id: 1,
      dontFragment: true,
      checksum: true,
    });
    const udpStart = o;
    o += emitUdpHeader(f, o, { srcPort: 40000, dstPort: 40001, payloadLength: data.length });
    data.copy(f, o);
    fillUdpChecksum(f.subarray(udpStart), A_IP, B_IP);
    expect(f.toString('hex')).toBe(expected.toString('hex'));
    const ip = Ipv4Packet.parse(EthernetFrame.parse(expected).payload);
    const udp = UdpDatagram.parse(ip.payload, { src: ip.src, dst: ip.dst });
    expect([udp.srcPort, udp.dstPort, udp.payload.toString()]).toEqual([40000, 40001, 'hi!']);
  });
});
