import { describe, expect, it } from 'vitest';
import {
  BROADCAST_MAC,
  INTERNAL_MAC_TAG,
  LIMITED_BROADCAST,
  WireError,
  assignedMac,
  directedBroadcast,
  emitInternalMac,
  inSubnet,
  internetChecksum,
  ipToString,
  ipv4MulticastMac,
  isBroadcastMac,
  isInternalMac,
  isIpv4Multicast,
  isMulticastMac,
  macEquals,
  macToString,
  parseCidr,
  parseInternalMac,
  parseIp,
  parseMac,
  prefixMask,
  pseudoHeaderSum,
} from '../../shared/wire/index.ts';
import { prng as rng } from '../helpers/prng.ts';


/** Textbook RFC 1071 with a fold after every add, to check the deferred fold against. */
function referenceChecksum(buf: Buffer, initial = 0): number {
  let sum = initial;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  for (let i = 0; i < buf.length; i += 2) {
    sum += (buf[i] << 8) | (i + 1 < buf.length ? buf[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe('internetChecksum', () => {
  it('matches the RFC 1071 section 3 example', () => {
    // 0001 + f203 + f4f5 + f6f7 = 2ddf0 -> ddf2; complemented 220d.
    expect(internetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex'))).toBe(0x220d);
  });

  it('pads an odd last byte with zero on the right', () => {
    expect(internetChecksum(Buffer.from('0102ab', 'hex'))).toBe(~(0x0102 + 0xab00) & 0xffff);
  });

  it('yields 0 over data that contains its own checksum', () => {
    const b = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
    b.writeUInt16BE(internetChecksum(b), 10);
    expect(b.readUInt16BE(10)).toBe(0xb861);
    expect(internetChecksum(b)).toBe(0);
  });

  it('honours start, end and initial, and agrees with a reference on random data', () => {
    const r = rng(7);
    for (let n = 0; n < 200; n++) {
      const b = Buffer.alloc(1 + ((r() * 300) | 0));
      for (let i = 0; i < b.length; i++) b[i] = (r() * 256) | 0;
      const start = (r() * b.length) | 0;
      const end = start + ((r() * (b.length - start + 1)) | 0);
      const initial = (r() * 0x3ffff) | 0;
      expect(internetChecksum(b, start, end, initial)).toBe(referenceChecksum(b.subarray(start, end), initial));
    }
    const ff = Buffer.alloc(100_000, 0xff);
    expect(internetChecksum(ff)).toBe(referenceChecksum(ff));
  });

  it('pseudoHeaderSum adds src, dst, protocol and length as 16-bit words', () => {
    expect(pseudoHeaderSum(0x0a000005, 0xc0a80101, 17, 11)).toBe(0x0a00 + 0x0005 + 0xc0a8 + 0x0101 + 17 + 11);
    expect(pseudoHeaderSum(0xffffffff, 0xffffffff, 255, 0xffff)).toBe(4 * 0xffff + 255 + 0xffff);
  });
});

describe('IPv4 addresses', () => {
  it('round-trips dotted quads as unsigned host-order numbers', () => {
    expect(parseIp('10.0.0.1')).toBe(0x0a000001);
    expect(parseIp('255.255.255.255')).toBe(LIMITED_BROADCAST);
    expect(parseIp('0.0.0.0')).toBe(0);
    expect(ipToString(0xc0a80101)).toBe('192.168.1.1');
    expect(ipToString(0xffffffff)).toBe('255.255.255.255');
    for (const s of ['1.2.3.4', '224.0.0.251', '172.16.254.3']) expect(ipToString(parseIp(s))).toBe(s);
  });

  it('rejects bad text with a WireError naming it', () => {
    for (const s of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-1', '01.2.3.4', 'a.b.c.d', '1..2.3', ' 1.2.3.4', '1.2.3.4 ']) {
      expect(() => parseIp(s)).toThrow(WireError);
      expect(() => parseIp(s)).toThrow(`"${s}"`);
    }
  });

  it('parses CIDR without masking the address', () => {
    expect(parseCidr('10.0.0.5/24')).toEqual({ ip: 0x0a000005, prefix: 24 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ ip: 0, prefix: 0 });
    expect(parseCidr('1.2.3.4/32')).toEqual({ ip: 0x01020304, prefix: 32 });
    for (const s of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10.0.0/8', '10.0.0.0/x']) {
      expect(() => parseCidr(s)).toThrow(WireError);
    }
  });

  it('computes masks, subnets and broadcasts', () => {
    expect(prefixMask(0)).toBe(0);
    expect(prefixMask(8)).toBe(0xff000000);
    expect(prefixMask(24)).toBe(0xffffff00);
    expect(prefixMask(32)).toBe(0xffffffff);
    expect(() => prefixMask(33)).toThrow(RangeError);
    expect(inSubnet(parseIp('10.0.0.200'), parseIp('10.0.0.0'), 24)).toBe(true);
    expect(inSubnet(parseIp('10.0.1.1'), parseIp('10.0.0.0'), 24)).toBe(false);
    expect(inSubnet(parseIp('200.1.1.1'), 0, 0)).toBe(true);
    expect(inSubnet(parseIp('200.1.1.1'), parseIp('200.1.1.1'), 32)).toBe(true);
    expect(directedBroadcast(parseIp('10.0.0.0'), 24)).toBe(parseIp('10.0.0.255'));
    expect(directedBroadcast(parseIp('192.168.0.0'), 16)).toBe(parseIp('192.168.255.255'));
    expect(directedBroadcast(parseIp('10.1.2.3'), 32)).toBe(parseIp('10.1.2.3'));
    expect(isIpv4Multicast(parseIp('224.0.0.1'))).toBe(true);
    expect(isIpv4Multicast(parseIp('239.255.255.255'))).toBe(true);
    expect(isIpv4Multicast(parseIp('240.0.0.0'))).toBe(false);
    expect(isIpv4Multicast(parseIp('223.255.255.255'))).toBe(false);
  });
});

describe('MAC addresses', () => {
  it('formats and parses', () => {
    const mac = parseMac('02:00:01:00:00:05');
    expect(mac).toEqual(Buffer.from([2, 0, 1, 0, 0, 5]));
    expect(macToString(mac)).toBe('02:00:01:00:00:05');
    expect(macToString(Buffer.from([9, 9, 0xab, 0xcd, 0xef, 1, 2, 3]), 2)).toBe('ab:cd:ef:01:02:03');
    expect(parseMac('AB-CD-EF-01-02-03')).toEqual(Buffer.from([0xab, 0xcd, 0xef, 1, 2, 3]));
    for (const s of ['', '02:00:01:00:00', '02:00:01:00:00:05:06', '02:00:01:00:00:0g', '0200.0100.0005']) {
      expect(() => parseMac(s)).toThrow(WireError);
    }
  });

  it('classifies broadcast and multicast by the I/G bit', () => {
    expect(isBroadcastMac(BROADCAST_MAC)).toBe(true);
    expect(isMulticastMac(BROADCAST_MAC)).toBe(true);
    expect(isBroadcastMac(parseMac('ff:ff:ff:ff:ff:fe'))).toBe(false);
    expect(isMulticastMac(parseMac('01:00:5e:00:00:01'))).toBe(true);
    expect(isMulticastMac(parseMac('02:00:01:00:00:05'))).toBe(false);
    const frame = Buffer.concat([parseMac('02:00:00:00:00:01'), BROADCAST_MAC]);
    expect(isBroadcastMac(frame, 6)).toBe(true);
    expect(macEquals(frame, 6, BROADCAST_MAC, 0)).toBe(true);
    expect(macEquals(frame, 0, BROADCAST_MAC, 0)).toBe(false);
  });

  it('maps IPv4 groups per RFC 1112 (low 23 bits)', () => {
    expect(macToString(ipv4MulticastMac(parseIp('224.0.0.251')))).toBe('01:00:5e:00:00:fb');
    expect(macToString(ipv4MulticastMac(parseIp('239.255.1.2')))).toBe('01:00:5e:7f:01:02');
    expect(macToString(ipv4MulticastMac(parseIp('224.128.1.2')))).toBe('01:00:5e:00:01:02');
    expect(() => ipv4MulticastMac(parseIp('10.0.0.1'))).toThrow(RangeError);
  });

  it('assigns locally administered unicast MACs from serial and counter', () => {
    const m = assignedMac(0x0102, 0x030405);
    expect(macToString(m)).toBe('02:01:02:03:04:05');
    expect(macToString(assignedMac(1, 5))).toBe('02:00:01:00:00:05');
    expect(macToString(assignedMac(65535, 0xffffff))).toBe('02:ff:ff:ff:ff:ff');
    expect(isMulticastMac(m)).toBe(false);
    expect(m[0] & 2).toBe(2);
    for (const [s, c] of [[0, 0], [65536, 0], [1, -1], [1, 0x1000000], [1.5, 0]]) {
      expect(() => assignedMac(s, c)).toThrow(RangeError);
    }
  });

  it('round-trips internal MACs', () => {
    const b = Buffer.alloc(10);
    for (const m of [
      { rvi: 0, dev: 0, vlan: 0 },
      { rvi: 1, dev: 2, vlan: 3 },
      { rvi: 0xabcdef, dev: 0x12, vlan: 0xfe },
      { rvi: 0xffffff, dev: 255, vlan: 255 },
    ]) {
      emitInternalMac(b, 3, m);
      expect(b[3]).toBe(INTERNAL_MAC_TAG);
      expect(isInternalMac(b, 3)).toBe(true);
      expect(isMulticastMac(b, 3)).toBe(true);
      expect(parseInternalMac(b, 3)).toEqual(m);
      expect(parseInternalMac(Buffer.from(b.subarray(3, 9)))).toEqual(m);
    }
    expect(macToString(b, 3)).toBe('a3:ff:ff:ff:ff:ff');
  });

  it('tells internal MACs from broadcast, IPv4 multicast and assigned ones', () => {
    expect(INTERNAL_MAC_TAG).toBe(0b1010_0011);
    expect(isInternalMac(BROADCAST_MAC)).toBe(false);
    expect(isInternalMac(ipv4MulticastMac(parseIp('224.0.0.1')))).toBe(false);
    expect(isInternalMac(ipv4MulticastMac(parseIp('239.255.255.255')))).toBe(false);
    expect(isInternalMac(assignedMac(1, 0))).toBe(false);
    expect(isInternalMac(assignedMac(0xa3a3, 0xa3a3a3))).toBe(false);
    expect(() => parseInternalMac(BROADCAST_MAC)).toThrow(WireError);
    expect(() => parseInternalMac(assignedMac(7, 7))).toThrow(WireError);
    expect(() => parseInternalMac(Buffer.from([0xa3, 0, 0]))).toThrow(WireError);
  });

  it('refuses out-of-range internal MAC fields', () => {
    const b = Buffer.alloc(6);
    expect(() => emitInternalMac(b, 0, { rvi: 0x1000000, dev: 0, vlan: 0 })).toThrow(RangeError);
    expect(() => emitInternalMac(b, 0, { rvi: -1, dev: 0, vlan: 0 })).toThrow(RangeError);
    expect(() => emitInternalMac(b, 0, { rvi: 1, dev: 256, vlan: 0 })).toThrow(RangeError);
    expect(() => emitInternalMac(b, 0, { rvi: 1, dev: 0, vlan: 256 })).toThrow(RangeError);
    expect(() => emitInternalMac(b, 1, { rvi: 1, dev: 0, vlan: 0 })).toThrow(RangeError);
  });
});
