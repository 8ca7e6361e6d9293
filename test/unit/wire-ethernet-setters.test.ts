import { describe, expect, it } from 'vitest';
import { EthernetFrame, EtherType, emitEthernet } from '../../shared/wire/ethernet.ts';
import { assignedMac, isAssignedMac, macSerial, parseMac } from '../../shared/wire/mac.ts';

const A = parseMac('02:00:01:00:00:05');
const B = parseMac('a3:00:00:07:01:02');

function frame(vlanId?: number): Buffer {
  const buf = Buffer.alloc(40, 0x55);
  emitEthernet(buf, 0, { dst: A, src: B, etherType: EtherType.Ipv4, vlanId, pcp: vlanId === undefined ? undefined : 5 });
  return buf;
}

describe('EthernetFrame setters', () => {
  it('rewrite dst and src in place, leaving type and payload alone', () => {
    const buf = frame();
    const eth = EthernetFrame.parse(buf);
    eth.setDst(B).setSrc(A);
    expect(buf.subarray(0, 6)).toEqual(B);
    expect(buf.subarray(6, 12)).toEqual(A);
    expect(eth.etherType).toBe(EtherType.Ipv4);
    expect(eth.payload.every((b) => b === 0x55)).toBe(true);
  });

  it('set the inner EtherType of a tagged frame and keep PCP when the VLAN id changes', () => {
    const buf = frame(100);
    const eth = EthernetFrame.parse(buf);
    eth.setEtherType(EtherType.Arp).setVlanId(0xabc);
    expect(buf.readUInt16BE(12)).toBe(EtherType.Vlan);
    expect(buf.readUInt16BE(16)).toBe(EtherType.Arp);
    expect(eth.vlanId).toBe(0xabc);
    expect(eth.pcp).toBe(5);
    const reread = EthernetFrame.parse(buf);
    expect([reread.vlanId, reread.etherType]).toEqual([0xabc, EtherType.Arp]);
  });

  it('refuse what would make the frame unparseable', () => {
    const eth = EthernetFrame.parse(frame());
    expect(() => eth.setEtherType(0x05dc)).toThrow(RangeError);
    expect(() => eth.setEtherType(EtherType.Vlan)).toThrow(RangeError);
    expect(() => eth.setVlanId(1)).toThrow(/untagged/);
    expect(() => EthernetFrame.parse(frame(1)).setVlanId(0x1000)).toThrow(RangeError);
    expect(() => eth.setDst(Buffer.alloc(5))).toThrow(RangeError);
  });
});

describe('assigned MACs', () => {
  it('name the serial of the control node that assigned them', () => {
    const mac = assignedMac(0x0102, 7);
    expect(isAssignedMac(mac)).toBe(true);
    expect(macSerial(mac)).toBe(0x0102);
    const inFrame = Buffer.concat([Buffer.alloc(3), mac]);
    expect(macSerial(inFrame, 3)).toBe(0x0102);
  });

  it('are not internal, multicast, serial-0 or short addresses', () => {
    for (const s of ['a3:00:00:07:01:02', '01:00:5e:00:00:01', '06:00:01:00:00:01', '02:00:00:00:00:01']) {
      expect(isAssignedMac(parseMac(s))).toBe(false);
      expect(macSerial(parseMac(s))).toBeUndefined();
    }
    expect(isAssignedMac(Buffer.from([2, 0, 1]))).toBe(false);
  });
});
