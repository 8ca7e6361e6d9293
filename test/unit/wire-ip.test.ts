import { describe, expect, it } from 'vitest';
import {
  IPV4_HEADER,
  IcmpPacket,
  IcmpType,
  IpProto,
  Ipv4Packet,
  UDP_HEADER,
  UdpDatagram,
  WireError,
  emitIcmpEcho,
  emitIcmpError,
  emitIpv4Header,
  emitUdpHeader,
  fillUdpChecksum,
  fragmentPlan,
  internetChecksum,
  parseIp,
} from '../../shared/wire/index.ts';

const SRC = parseIp('10.0.0.5');
const DST = parseIp('10.0.0.6');

function ipPacket(payload: Buffer, h: Partial<Parameters<typeof emitIpv4Header>[2]> = {}): Buffer {
  const buf = Buffer.alloc(IPV4_HEADER + payload.length);
  emitIpv4Header(buf, 0, { src: SRC, dst: DST, protocol: IpProto.Udp, payloadLength: payload.length, id: 77, checksum: true, ...h });
  payload.copy(buf, IPV4_HEADER);
  return buf;
}

describe('IPv4', () => {
  it('round-trips every header field', () => {
    const buf = ipPacket(Buffer.from('payload!'), {
      protocol: IpProto.Icmp,
      id: 0xbeef,
      ttl: 3,
      tos: 0xb8,
      dontFragment: true,
      moreFragments: true,
      fragmentOffset: 8 * 0x1234,
    });
    const p = Ipv4Packet.parse(buf);
    expect(p.version).toBe(4);
    expect(p.headerLength).toBe(20);
    expect(p.tos).toBe(0xb8);
    expect(p.totalLength).toBe(28);
    expect(p.id).toBe(0xbeef);
    expect(p.dontFragment).toBe(true);
    expect(p.moreFragments).toBe(true);
    expect(p.fragmentOffset).toBe(8 * 0x1234);
    expect(p.isFragment).toBe(true);
    expect(p.ttl).toBe(3);
    expect(p.protocol).toBe(IpProto.Icmp);
    expect(p.checksum).not.toBe(0);
    expect(internetChecksum(buf, 0, 20)).toBe(0);
    expect(p.src).toBe(SRC);
    expect(p.dst).toBe(DST);
    expect(p.payload.toString()).toBe('payload!');
  });

  it('defaults: TTL 64, no flags, not a fragment; last fragment is a fragment', () => {
    const p = Ipv4Packet.parse(ipPacket(Buffer.alloc(0)));
    expect(p.ttl).toBe(64);
    expect(p.dontFragment || p.moreFragments).toBe(false);
    expect(p.isFragment).toBe(false);
    expect(Ipv4Packet.parse(ipPacket(Buffer.alloc(8), { fragmentOffset: 16 })).isFragment).toBe(true);
  });

  it('accepts a zero checksum and rejects a non-zero wrong one', () => {
    const noSum = ipPacket(Buffer.from('x'), { checksum: false });
    expect(noSum.readUInt16BE(10)).toBe(0);
    expect(Ipv4Packet.parse(noSum).payload.toString()).toBe('x');
    const bad = ipPacket(Buffer.from('x'));
    bad[10] ^= 1;
    expect(() => Ipv4Packet.parse(bad)).toThrow(WireError);
    expect(() => Ipv4Packet.parse(bad)).toThrow('checksum');
  });

  it('writes 0xffff rather than 0 when the computed checksum is zero', () => {
    // Find an id that makes the header sum to 0xffff, so the checksum computes to 0.
    const probe = ipPacket(Buffer.alloc(0), { id: 0, checksum: false });
    const rest = ~internetChecksum(probe, 0, 20) & 0xffff;
    const id = (0xffff - rest) & 0xffff;
    const buf = ipPacket(Buffer.alloc(0), { id });
    expect(buf.readUInt16BE(10)).toBe(0xffff);
    expect(Ipv4Packet.parse(buf).id).toBe(id);
  });

  it('ignores trailing bytes and skips options', () => {
    const padded = Buffer.concat([ipPacket(Buffer.from('hi')), Buffer.alloc(24)]);
    expect(Ipv4Packet.parse(padded).payload.toString()).toBe('hi');
    const withOptions = Buffer.alloc(24 + 3);
    withOptions[0] = 0x46;
    withOptions.writeUInt16BE(27, 2);
    withOptions.fill(1, 20, 24); // four NOP options
    withOptions.write('abc', 24);
    const p = Ipv4Packet.parse(withOptions);
    expect(p.headerLength).toBe(24);
    expect(p.payload.toString()).toBe('abc');
  });

  it('throws WireError on short buffers, wrong version, IHL and lengths', () => {
    const good = ipPacket(Buffer.from('abcdef'), { checksum: false });
    const mutate = (f: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good);
      f(b);
      return b;
    };
    expect(() => Ipv4Packet.parse(good.subarray(0, 19))).toThrow(WireError);
    expect(() => Ipv4Packet.parse(good.subarray(0, 25))).toThrow(WireError);
    expect(() => Ipv4Packet.parse(mutate((b) => (b[0] = 0x65)))).toThrow('version');
    expect(() => Ipv4Packet.parse(mutate((b) => (b[0] = 0x44)))).toThrow(WireError);
    expect(() => Ipv4Packet.parse(mutate((b) => (b[0] = 0x4f)))).toThrow(WireError);
    expect(() => Ipv4Packet.parse(mutate((b) => b.writeUInt16BE(19, 2)))).toThrow(WireError);
    expect(() => Ipv4Packet.parse(mutate((b) => b.writeUInt16BE(27, 2)))).toThrow(WireError);
  });

  it('refuses to emit out-of-range fields', () => {
    const b = Buffer.alloc(20);
    const h = { src: SRC, dst: DST, protocol: 17, payloadLength: 0, id: 0, checksum: true };
    expect(() => emitIpv4Header(b, 0, { ...h, payloadLength: 65516 })).toThrow(RangeError);
    expect(() => emitIpv4Header(b, 0, { ...h, fragmentOffset: 12 })).toThrow(RangeError);
    expect(() => emitIpv4Header(b, 0, { ...h, fragmentOffset: 65536 })).toThrow(RangeError);
    expect(() => emitIpv4Header(b, 0, { ...h, id: 65536 })).toThrow(RangeError);
    expect(() => emitIpv4Header(b, 0, { ...h, ttl: 256 })).toThrow(RangeError);
    expect(() => emitIpv4Header(b, 1, h)).toThrow(RangeError);
  });
});

describe('fragmentPlan', () => {
  it('covers the payload exactly with 8-byte aligned offsets', () => {
    for (const mtu of [68, 576, 1000, 1500, 9000]) {
      for (const len of [0, 1, 7, 8, 47, 48, 49, 1472, 1473, 1480, 1481, 4000, 65515]) {
        const plan = fragmentPlan(len, mtu);
        let next = 0;
        plan.forEach((f, i) => {
          expect(f.offset).toBe(next);
          expect(f.offset % 8).toBe(0);
          expect(f.length + IPV4_HEADER).toBeLessThanOrEqual(mtu);
          const last = i === plan.length - 1;
          expect(f.more).toBe(!last);
          if (!last) expect(f.length % 8).toBe(0);
          next += f.length;
        });
        expect(next).toBe(len);
        if (len + IPV4_HEADER <= mtu) expect(plan).toEqual([{ offset: 0, length: len, more: false }]);
      }
    }
  });

  it('uses as much of each fragment as 8-byte alignment allows', () => {
    expect(fragmentPlan(3000, 1500)).toEqual([
      { offset: 0, length: 1480, more: true },
      { offset: 1480, length: 1480, more: true },
      { offset: 2960, length: 40, more: false },
    ]);
    expect(fragmentPlan(100, 60, 24).map((f) => f.length)).toEqual([32, 32, 32, 4]);
  });

  it('throws RangeError when the MTU is too small or the payload too big', () => {
    expect(() => fragmentPlan(100, 27)).toThrow(RangeError);
    expect(fragmentPlan(100, 28).length).toBe(13);
    expect(() => fragmentPlan(65516, 1500)).toThrow(RangeError);
  });
});

describe('ICMP', () => {
  it('round-trips an echo request and reply', () => {
    for (const type of [IcmpType.EchoRequest, IcmpType.EchoReply] as const) {
      const data = Buffer.from('0123456789abcdefg');
      const buf = Buffer.alloc(2 + 8 + data.length);
      expect(emitIcmpEcho(buf, 2, { type, id: 0x1234, seq: 0xfedc, data })).toBe(8 + data.length);
      const p = IcmpPacket.parse(buf.subarray(2));
      expect(p.type).toBe(type);
      expect(p.code).toBe(0);
      expect(p.id).toBe(0x1234);
      expect(p.seq).toBe(0xfedc);
      expect(p.checksum).toBe(buf.readUInt16BE(4));
      expect(p.data.toString()).toBe('0123456789abcdefg');
    }
  });

  it('round-trips an error quoting the original header and 8 bytes', () => {
    const original = ipPacket(Buffer.from('12345678'));
    const buf = Buffer.alloc(8 + original.length);
    expect(emitIcmpError(buf, 0, { type: IcmpType.TimeExceeded, code: 0, original })).toBe(36);
    const p = IcmpPacket.parse(buf);
    expect(p.type).toBe(IcmpType.TimeExceeded);
    expect(p.code).toBe(0);
    expect(buf.readUInt32BE(4)).toBe(0);
    expect(p.data.equals(original)).toBe(true);
    expect(Ipv4Packet.parse(p.data).payload.toString()).toBe('12345678');

    emitIcmpError(buf, 0, { type: IcmpType.DestUnreachable, code: 4, original, nextHopMtu: 1400 });
    const frag = IcmpPacket.parse(buf);
    expect(frag.code).toBe(4);
    expect(buf.readUInt16BE(6)).toBe(1400);
  });

  it('throws WireError on short messages and bad checksums', () => {
    const buf = Buffer.alloc(12);
    emitIcmpEcho(buf, 0, { type: 8, id: 1, seq: 2, data: Buffer.from('abcd') });
    expect(() => IcmpPacket.parse(buf.subarray(0, 7))).toThrow(WireError);
    for (let i = 0; i < buf.length; i++) {
      const b = Buffer.from(buf);
      b[i] ^= 0x10;
      expect(() => IcmpPacket.parse(b)).toThrow('bad ICMP checksum');
    }
    const zero = Buffer.from(buf);
    zero.writeUInt16BE(0, 2);
    expect(() => IcmpPacket.parse(zero)).toThrow(WireError);
  });
});

describe('UDP', () => {
  function datagram(payload: Buffer): Buffer {
    const d = Buffer.alloc(UDP_HEADER + payload.length);
    expect(emitUdpHeader(d, 0, { srcPort: 40000, dstPort: 53, payloadLength: payload.length })).toBe(8);
    payload.copy(d, UDP_HEADER);
    return d;
  }

  it('round-trips without a checksum', () => {
    const d = datagram(Buffer.from('hello'));
    expect(d.readUInt16BE(6)).toBe(0);
    const u = UdpDatagram.parse(d, { src: SRC, dst: DST });
    expect(u.srcPort).toBe(40000);
    expect(u.dstPort).toBe(53);
    expect(u.length).toBe(13);
    expect(u.checksum).toBe(0);
    expect(u.payload.toString()).toBe('hello');
  });

  it('fills and verifies the checksum over the pseudo-header', () => {
    const d = datagram(Buffer.from('hello, odd'));
    fillUdpChecksum(d, SRC, DST);
    expect(d.readUInt16BE(6)).not.toBe(0);
    expect(UdpDatagram.parse(d, { src: SRC, dst: DST }).payload.toString()).toBe('hello, odd');
    // Without the pseudo-header nothing can be verified.
    expect(UdpDatagram.parse(d).checksum).toBe(d.readUInt16BE(6));
    expect(() => UdpDatagram.parse(d, { src: SRC, dst: DST + 1 })).toThrow('bad UDP checksum');
    const corrupt = Buffer.from(d);
    corrupt[9] ^= 0x40;
    expect(() => UdpDatagram.parse(corrupt, { src: SRC, dst: DST })).toThrow(WireError);
  });

  it('sends a computed zero as 0xffff, which still verifies', () => {
    // Pick the last two payload bytes so the one's complement sum comes to 0xffff.
    const d = datagram(Buffer.alloc(4));
    fillUdpChecksum(d, SRC, DST);
    const sum = d.readUInt16BE(6);
    d.writeUInt16BE((0xffff - (~sum & 0xffff)) & 0xffff, 10);
    fillUdpChecksum(d, SRC, DST);
    expect(d.readUInt16BE(6)).toBe(0xffff);
    expect(UdpDatagram.parse(d, { src: SRC, dst: DST }).checksum).toBe(0xffff);
  });

  it('ends the payload at the length field and checks it', () => {
    const d = Buffer.concat([datagram(Buffer.from('abc')), Buffer.from('trailer')]);
    expect(UdpDatagram.parse(d).payload.toString()).toBe('abc');
    expect(() => UdpDatagram.parse(d.subarray(0, 7))).toThrow(WireError);
    const short = Buffer.from(d);
    short.writeUInt16BE(7, 4);
    expect(() => UdpDatagram.parse(short)).toThrow(WireError);
    const long = datagram(Buffer.from('abc'));
    long.writeUInt16BE(12, 4);
    expect(() => UdpDatagram.parse(long)).toThrow(WireError);
  });

  it('refuses to fill a checksum over a buffer that is not exactly the datagram', () => {
    const d = Buffer.concat([datagram(Buffer.from('abc')), Buffer.alloc(1)]);
    expect(() => fillUdpChecksum(d, SRC, DST)).toThrow(RangeError);
    expect(() => emitUdpHeader(Buffer.alloc(8), 0, { srcPort: 1, dstPort: 2, payloadLength: 65528 })).toThrow(RangeError);
  });
});
