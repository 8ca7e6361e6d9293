import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EtherType,
  IPV4_HEADER,
  IpProto,
  PcapWriter,
  TCP_HEADER,
  TcpFlag,
  TcpOptionKind,
  TcpSegment,
  WireError,
  emitEthernet,
  emitIpv4Header,
  emitTcpHeader,
  fillTcpChecksum,
  internetChecksum,
  parseIp,
  parseMac,
  seqAdd,
  seqGeq,
  seqGt,
  seqLeq,
  seqLt,
  seqSub,
  tcpOptionsLength,
  type TcpOptions,
} from '../../shared/wire/index.ts';
import { prng } from '../helpers/prng.ts';

const SRC = parseIp('10.0.0.5');
const DST = parseIp('10.0.0.6');

type Header = Parameters<typeof emitTcpHeader>[2];

/** A whole segment: header, options and payload, checksum filled unless told not to. */
function segment(h: Header, payload = Buffer.alloc(0), checksum = true): Buffer {
  const buf = Buffer.alloc(TCP_HEADER + tcpOptionsLength(h.options) + payload.length);
  const hl = emitTcpHeader(buf, 0, h);
  payload.copy(buf, hl);
  if (checksum) fillTcpChecksum(buf, SRC, DST);
  return buf;
}

const BASE: Header = { srcPort: 40000, dstPort: 5201, seq: 1000, ack: 0, flags: TcpFlag.Syn, window: 64240 };

/** The bytes the pseudo-header contributes (RFC 9293 3.1), laid out by hand rather than with pseudoHeaderSum. */
function pseudoHeader(src: number, dst: number, length: number): Buffer {
  const p = Buffer.alloc(12);
  p.writeUInt32BE(src, 0);
  p.writeUInt32BE(dst, 4);
  p[8] = 0;
  p[9] = 6;
  p.writeUInt16BE(length, 10);
  return p;
}

function expectedChecksum(seg: Buffer): number {
  const copy = Buffer.from(seg);
  copy.writeUInt16BE(0, 16);
  return internetChecksum(Buffer.concat([pseudoHeader(SRC, DST, seg.length), copy]));
}

describe('TCP constants', () => {
  it('match RFC 9293 and the option registry', () => {
    expect(TCP_HEADER).toBe(20);
    expect(TcpFlag).toEqual({ Fin: 0x01, Syn: 0x02, Rst: 0x04, Psh: 0x08, Ack: 0x10, Urg: 0x20, Ece: 0x40, Cwr: 0x80 });
    expect(TcpOptionKind).toEqual({ End: 0, Nop: 1, Mss: 2, WindowScale: 3, SackPermitted: 4, Sack: 5, Timestamps: 8, Experimental: 254 });
  });
});

describe('TcpSegment round trip', () => {
  it('reads back every header field, over random values', () => {
    const r = prng(9293);
    const u32 = () => Math.floor(r() * 0x100000000);
    const u16 = () => Math.floor(r() * 0x10000);
    for (let n = 0; n < 300; n++) {
      const h: Header = { srcPort: u16(), dstPort: u16(), seq: u32(), ack: u32(), flags: Math.floor(r() * 256), window: u16(), urgentPointer: u16() };
      const payload = Buffer.alloc(Math.floor(r() * 40));
      for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(r() * 256);
      const s = TcpSegment.parse(segment(h, payload), { src: SRC, dst: DST });
      expect(s.srcPort).toBe(h.srcPort);
      expect(s.dstPort).toBe(h.dstPort);
      expect(s.seq).toBe(h.seq);
      expect(s.ack).toBe(h.ack);
      expect(s.flags).toBe(h.flags);
      expect(s.window).toBe(h.window);
      expect(s.urgentPointer).toBe(h.urgentPointer);
      expect(s.dataOffset).toBe(20);
      expect(s.payload.equals(payload)).toBe(true);
      expect(s.options()).toEqual({});
      const f = h.flags;
      expect([s.isFin, s.isSyn, s.isRst, s.isPsh, s.isAck, s.isUrg, s.isEce, s.isCwr]).toEqual(
        [TcpFlag.Fin, TcpFlag.Syn, TcpFlag.Rst, TcpFlag.Psh, TcpFlag.Ack, TcpFlag.Urg, TcpFlag.Ece, TcpFlag.Cwr].map((b) => (f & b) !== 0),
      );
      expect(s.segmentLength).toBe(payload.length + (f & TcpFlag.Syn ? 1 : 0) + (f & TcpFlag.Fin ? 1 : 0));
    }
  });

  it('reads back every combination of options', () => {
    const all: Array<[keyof TcpOptions, TcpOptions[keyof TcpOptions]]> = [
      ['mss', 1460],
      ['windowScale', 14],
      ['sackPermitted', true],
      ['timestamps', { value: 0xfedcba98, echo: 0x01234567 }],
      ['experimental', [{ exid: 0xe2d4, data: Buffer.from('e2d4c3d9', 'hex') }, { exid: 0xf989, data: Buffer.from('f989', 'hex') }]],
      ['unknown', [{ kind: TcpOptionKind.Sack, data: Buffer.from('0000000100000009', 'hex') }, { kind: 99, data: Buffer.alloc(0) }]],
    ];
    for (let mask = 0; mask < 1 << all.length; mask++) {
      const options: Record<string, unknown> = {};
      all.forEach(([k, v], i) => {
        if (mask & (1 << i)) options[k] = v;
      });
      const o = options as TcpOptions;
      let length: number;
      try {
        length = tcpOptionsLength(o);
      } catch (err) {
        // Everything at once is 47 bytes: the only set that must not fit.
        expect(mask).toBe((1 << all.length) - 1);
        expect(err).toBeInstanceOf(RangeError);
        continue;
      }
      const payload = Buffer.from('data');
      const s = TcpSegment.parse(segment({ ...BASE, options: o }, payload), { src: SRC, dst: DST });
      expect(s.dataOffset).toBe(TCP_HEADER + length);
      expect(length % 4).toBe(0);
      expect(s.options()).toEqual(o);
      expect(s.payload.equals(payload)).toBe(true);
    }
  });

  it('leaves out sackPermitted: false', () => {
    expect(tcpOptionsLength({ sackPermitted: false })).toBe(0);
    expect(TcpSegment.parse(segment({ ...BASE, options: { sackPermitted: false } })).options()).toEqual({});
  });

  it('overwrites whatever the target held, options and padding included', () => {
    const h: Header = { ...BASE, options: { windowScale: 2 } };
    const clean = segment(h, undefined, false);
    const dirty = Buffer.alloc(clean.length, 0xa5);
    expect(emitTcpHeader(dirty, 0, h)).toBe(24);
    expect(dirty.equals(clean)).toBe(true);
  });

  it('writes at an offset and returns the header length', () => {
    const buf = Buffer.alloc(8 + 36);
    expect(emitTcpHeader(buf, 8, { ...BASE, options: { mss: 536, timestamps: { value: 1, echo: 0 } } })).toBe(20 + 16);
    expect(buf.subarray(0, 8).equals(Buffer.alloc(8))).toBe(true);
    const s = TcpSegment.parse(buf.subarray(8, 8 + 36));
    expect(s.options()).toEqual({ mss: 536, timestamps: { value: 1, echo: 0 } });
  });
});

describe('TCP option padding', () => {
  it('pads to a word with End and zeros, without alignment NOPs', () => {
    const cases: Array<[TcpOptions, string]> = [
      [{ mss: 1460 }, '020405b4'],
      [{ windowScale: 7 }, '03030700'],
      [{ sackPermitted: true }, '04020000'],
      [{ timestamps: { value: 0x11223344, echo: 0x55667788 } }, '080a11223344556677880000'],
      [{ experimental: [{ exid: 0xe2d4, data: Buffer.from('e2d4c3d9', 'hex') }] }, 'fe06e2d4c3d90000'],
      [{ unknown: [{ kind: 30, data: Buffer.from('ab', 'hex') }] }, '1e03ab00'],
      [
        { mss: 1460, windowScale: 7, sackPermitted: true, timestamps: { value: 1, echo: 0 } },
        '020405b4' + '030307' + '0402' + '080a0000000100000000' + '00',
      ],
    ];
    for (const [o, hex] of cases) {
      const buf = segment({ ...BASE, options: o }, undefined, false);
      expect(tcpOptionsLength(o)).toBe(hex.length / 2);
      expect(buf.subarray(TCP_HEADER).toString('hex')).toBe(hex);
      expect(buf[12] >> 4).toBe((TCP_HEADER + hex.length / 2) / 4);
    }
    expect(tcpOptionsLength()).toBe(0);
    expect(tcpOptionsLength({})).toBe(0);
  });

  it('fills the 40 bytes of options exactly, and refuses one more', () => {
    const full: TcpOptions = { mss: 1, experimental: [{ exid: 0x1212, data: Buffer.alloc(34, 0x12) }] };
    expect(tcpOptionsLength(full)).toBe(40);
    const s = TcpSegment.parse(segment({ ...BASE, options: full }));
    expect(s.dataOffset).toBe(60);
    expect(s.options()).toEqual(full);
    const over: TcpOptions = { mss: 1, experimental: [{ exid: 0x1212, data: Buffer.alloc(35, 0x12) }] };
    expect(() => tcpOptionsLength(over)).toThrow(RangeError);
    expect(() => emitTcpHeader(Buffer.alloc(100), 0, { ...BASE, options: over })).toThrow(RangeError);
  });

  it('parses NOP-aligned option lists as other stacks send them, and ignores what follows End', () => {
    // Linux's SYN: MSS, SACK-permitted, timestamps, NOP, window scale.
    const hex = '020405b4' + '0402080a000003e800000000' + '01030307';
    const buf = segment({ ...BASE }, undefined, false);
    const withOptions = Buffer.concat([buf, Buffer.from(hex, 'hex')]);
    withOptions[12] = ((TCP_HEADER + hex.length / 2) / 4) << 4;
    expect(TcpSegment.parse(withOptions).options()).toEqual({ mss: 1460, sackPermitted: true, timestamps: { value: 1000, echo: 0 }, windowScale: 7 });
    // Garbage after End is padding, not options.
    const afterEnd = Buffer.concat([buf, Buffer.from('0101' + '00' + 'ff', 'hex')]);
    afterEnd[12] = 6 << 4;
    expect(TcpSegment.parse(afterEnd).options()).toEqual({});
  });

  it('keeps the last of a repeated option', () => {
    const buf = Buffer.concat([segment(BASE, undefined, false), Buffer.from('02040100' + '02040200', 'hex')]);
    buf[12] = 7 << 4;
    expect(TcpSegment.parse(buf).options()).toEqual({ mss: 0x200 });
  });
});

describe('TcpSegment.parse errors', () => {
  /** A header of `20 + hex` bytes whose data offset covers exactly the given option bytes. */
  function withOptions(hex: string, payload = ''): Buffer {
    const buf = Buffer.concat([segment(BASE, undefined, false), Buffer.from(hex + payload, 'hex')]);
    buf[12] = ((TCP_HEADER + hex.length / 2) / 4) << 4;
    return buf;
  }

  it('refuses a segment shorter than the header', () => {
    expect(() => TcpSegment.parse(Buffer.alloc(19))).toThrow(WireError);
    expect(() => TcpSegment.parse(Buffer.alloc(0))).toThrow(/too short/);
  });

  it('refuses a data offset below 5 words or past the end of the buffer', () => {
    const buf = segment(BASE, Buffer.alloc(8), false);
    for (const words of [0, 1, 4]) {
      buf[12] = words << 4;
      expect(() => TcpSegment.parse(buf)).toThrow(/below 20/);
    }
    buf[12] = 7 << 4; // 28 bytes: exactly the buffer, legal
    expect(TcpSegment.parse(buf).payload.length).toBe(0);
    buf[12] = 8 << 4;
    expect(() => TcpSegment.parse(buf)).toThrow(/exceeds the 28 bytes/);
    buf[12] = 15 << 4;
    expect(() => TcpSegment.parse(buf)).toThrow(WireError);
  });

  it('ignores the reserved bits next to the data offset', () => {
    const buf = segment(BASE, Buffer.from('x'), false);
    buf[12] |= 0x0f;
    const s = TcpSegment.parse(buf);
    expect(s.dataOffset).toBe(20);
    expect(s.payload.toString()).toBe('x');
  });

  it('refuses malformed option lists when options() is called, not before', () => {
    const bad: Array<[string, RegExp]> = [
      ['02080000', /runs past the 24-byte header/], // MSS claiming 8 bytes in a 4-byte list
      ['0101fe05', /runs past/], // experimental running past the header
      ['1e000000', /length 0, below 2/], // zero-length option: the walk would never advance
      ['1e010000', /length 1, below 2/],
      ['01010102', /no length byte/], // MSS kind in the last byte
      ['02030500', /length 3, not 4/],
      ['03040700', /length 4, not 3/],
      ['04030000', /length 3, not 2/],
      ['fe030000', /no ExID/],
      ['fe020000', /no ExID/],
    ];
    for (const [hex, message] of bad) {
      const s = TcpSegment.parse(withOptions(hex));
      expect(() => s.options(), hex).toThrow(WireError);
      expect(() => s.options(), hex).toThrow(message);
    }
    // Timestamps are 10 bytes even where a longer option would fit the list.
    expect(() => TcpSegment.parse(withOptions('080c00000000000000000000')).options()).toThrow(/length 12, not 10/);
    expect(TcpSegment.parse(withOptions('080a00000001000000020000')).options()).toEqual({ timestamps: { value: 1, echo: 2 } });
  });

  it('bounds the options by the header, not by the segment', () => {
    // The MSS option's length would run into the payload: still past the header.
    const s = TcpSegment.parse(withOptions('01010206', '0000aaaa'));
    expect(() => s.options()).toThrow(/runs past the 24-byte header/);
  });
});

describe('TCP checksum', () => {
  // Written from the RFC 9293 3.1 layout: ports 12345 -> 80, seq 0xfffffff0,
  // ack 0x12345678, data offset 6 words, PSH|ACK, window 0x7210, checksum 0,
  // urgent 0, MSS 1460; then an odd-length payload "hi!".
  const GOLDEN = Buffer.from('3039' + '0050' + 'fffffff0' + '12345678' + '60' + '18' + '7210' + '0000' + '0000' + '020405b4' + '686921', 'hex');

  it('emits the golden header byte for byte', () => {
    const buf = segment(
      { srcPort: 12345, dstPort: 80, seq: 0xfffffff0, ack: 0x12345678, flags: TcpFlag.Psh | TcpFlag.Ack, window: 0x7210, options: { mss: 1460 } },
      Buffer.from('hi!'),
      false,
    );
    expect(buf.toString('hex')).toBe(GOLDEN.toString('hex'));
  });

  it('fills the checksum the pseudo-header and segment give, and parse verifies it', () => {
    const seg = Buffer.from(GOLDEN);
    fillTcpChecksum(seg, SRC, DST);
    // 0xef62 was also computed outside this code base, by a Python sum of the same 16-bit words.
    expect(expectedChecksum(GOLDEN)).toBe(0xef62);
    expect(seg.readUInt16BE(16)).toBe(0xef62);
    expect(internetChecksum(Buffer.concat([pseudoHeader(SRC, DST, seg.length), seg]))).toBe(0);
    const s = TcpSegment.parse(seg, { src: SRC, dst: DST });
    expect(s.checksum).toBe(seg.readUInt16BE(16));
    expect(s.payload.toString()).toBe('hi!');
    expect(s.segmentLength).toBe(3);
    expect(s.options()).toEqual({ mss: 1460 });
  });

  it('refuses a wrong non-zero checksum: a flipped bit, or the wrong addresses', () => {
    const seg = Buffer.from(GOLDEN);
    fillTcpChecksum(seg, SRC, DST);
    expect(() => TcpSegment.parse(seg, { src: SRC, dst: DST + 1 })).toThrow(/bad TCP checksum/);
    for (const at of [0, 13, 22, seg.length - 1]) {
      const bad = Buffer.from(seg);
      bad[at] ^= 0x10;
      expect(() => TcpSegment.parse(bad, { src: SRC, dst: DST }), `byte ${at}`).toThrow(WireError);
      // Without the pseudo-header parse cannot verify, so it does not try.
      expect(TcpSegment.parse(bad).seq).toBe(bad.readUInt32BE(4));
    }
  });

  it('accepts a zero checksum unverified: internal hops leave it not computed', () => {
    const seg = Buffer.from(GOLDEN);
    expect(seg.readUInt16BE(16)).toBe(0);
    expect(TcpSegment.parse(seg, { src: SRC, dst: DST }).checksum).toBe(0);
  });

  it('writes a computed 0 as 0 (RFC 1624: the computation never gives 0xffff), accepted unverified', () => {
    // Put the would-be checksum into a zero payload word: the sum then comes to 0xffff, the checksum to 0.
    const seg = Buffer.from(GOLDEN.toString('hex') + '000000', 'hex');
    const c = expectedChecksum(seg);
    seg.writeUInt16BE(c, 28);
    expect(expectedChecksum(seg)).toBe(0);
    fillTcpChecksum(seg, SRC, DST);
    expect(seg.readUInt16BE(16)).toBe(0);
    expect(TcpSegment.parse(seg, { src: SRC, dst: DST }).checksum).toBe(0);
  });

  it('agrees with the independent computation on random segments', () => {
    const r = prng(1624);
    for (let n = 0; n < 200; n++) {
      const payload = Buffer.alloc(Math.floor(r() * 64));
      for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(r() * 256);
      const seg = segment({ ...BASE, seq: Math.floor(r() * 0x100000000), options: r() < 0.5 ? { mss: 1400, sackPermitted: true } : undefined }, payload);
      const want = expectedChecksum(seg);
      expect(seg.readUInt16BE(16)).toBe(want);
      TcpSegment.parse(seg, { src: SRC, dst: DST });
    }
  });

  it('fillTcpChecksum wants a whole segment', () => {
    expect(() => fillTcpChecksum(Buffer.alloc(19), SRC, DST)).toThrow(RangeError);
    const seg = Buffer.from(GOLDEN.subarray(0, 22));
    expect(() => fillTcpChecksum(seg, SRC, DST)).toThrow(RangeError);
  });
});

describe('emitTcpHeader checks its input', () => {
  it('refuses out-of-range fields and a header that does not fit', () => {
    const buf = Buffer.alloc(64);
    const bad: Header[] = [
      { ...BASE, srcPort: 0x10000 },
      { ...BASE, dstPort: -1 },
      { ...BASE, seq: 0x100000000 },
      { ...BASE, ack: 1.5 },
      { ...BASE, flags: 0x100 },
      { ...BASE, window: 0x10000 },
      { ...BASE, urgentPointer: 0x10000 },
      { ...BASE, options: { mss: 0x10000 } },
      { ...BASE, options: { windowScale: 15 } },
      { ...BASE, options: { timestamps: { value: -1, echo: 0 } } },
      { ...BASE, options: { experimental: [{ exid: 0x1234, data: Buffer.from('4321', 'hex') }] } },
      { ...BASE, options: { experimental: [{ exid: 0x12, data: Buffer.from('12', 'hex') }] } },
      { ...BASE, options: { unknown: [{ kind: TcpOptionKind.Mss, data: Buffer.from('05b4', 'hex') }] } },
      { ...BASE, options: { unknown: [{ kind: TcpOptionKind.Nop, data: Buffer.alloc(0) }] } },
      { ...BASE, options: { unknown: [{ kind: 256, data: Buffer.alloc(0) }] } },
    ];
    for (const h of bad) expect(() => emitTcpHeader(buf, 0, h), JSON.stringify(h)).toThrow(RangeError);
    expect(() => emitTcpHeader(Buffer.alloc(19), 0, BASE)).toThrow(/does not fit/);
    expect(() => emitTcpHeader(Buffer.alloc(23), 0, { ...BASE, options: { mss: 1 } })).toThrow(/does not fit/);
    expect(() => emitTcpHeader(Buffer.alloc(40), 21, BASE)).toThrow(/does not fit/);
    expect(() => emitTcpHeader(Buffer.alloc(40), -1, BASE)).toThrow(/does not fit/);
  });
});

describe('sequence number arithmetic', () => {
  it('orders numbers across the 0xffffffff -> 0 wrap', () => {
    const pairs: Array<[number, number]> = [
      [0xffffffff, 0],
      [0xfffffff0, 0x10],
      [0x7fffffff, 0x80000000],
      [0, 1],
      [5, 0x7fffffff + 5],
    ];
    for (const [a, b] of pairs) {
      expect([seqLt(a, b), seqLeq(a, b), seqGt(a, b), seqGeq(a, b)], `${a} vs ${b}`).toEqual([true, true, false, false]);
      expect([seqLt(b, a), seqLeq(b, a), seqGt(b, a), seqGeq(b, a)], `${b} vs ${a}`).toEqual([false, false, true, true]);
    }
    for (const a of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff]) {
      expect([seqLt(a, a), seqLeq(a, a), seqGt(a, a), seqGeq(a, a)]).toEqual([false, true, false, true]);
    }
  });

  it('adds and subtracts modulo 2^32', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0xfffffff0, 0x20)).toBe(0x10);
    expect(seqAdd(0, -1)).toBe(0xffffffff);
    expect(seqAdd(5, 0x100000000)).toBe(5);
    expect(seqAdd(1, 2)).toBe(3);
    expect(seqSub(0, 0xffffffff)).toBe(1);
    expect(seqSub(0xffffffff, 0)).toBe(-1);
    expect(seqSub(0x10, 0xfffffff0)).toBe(0x20);
    expect(seqSub(0xfffffff0, 0x10)).toBe(-0x20);
    expect(seqSub(0x7fffffff, 0)).toBe(0x7fffffff);
    expect(seqSub(0x80000000, 0)).toBe(-0x80000000);
  });

  it('agrees with a BigInt reference on random pairs near the wrap', () => {
    const r = prng(1982);
    const M = 1n << 32n;
    for (let n = 0; n < 2000; n++) {
      const a = (0xffffffff - Math.floor(r() * 0x10000) + Math.floor(r() * 0x20000)) >>> 0;
      const d = Math.floor(r() * 0x100000) - 0x80000;
      const b = seqAdd(a, d);
      expect(Number((BigInt(b) - BigInt(a) + M) % M)).toBe(d >>> 0);
      expect(seqSub(b, a)).toBe(d);
      expect(seqLt(a, b)).toBe(d > 0);
      expect(seqGt(a, b)).toBe(d < 0);
      expect(seqLeq(a, b)).toBe(d >= 0);
      expect(seqGeq(a, b)).toBe(d <= 0);
    }
  });
});

const tsharkPresent = spawnSync('tshark', ['--version']).error === undefined;

describe('tshark decodes emitted TCP segments', () => {
  if (!tsharkPresent) {
    it('needs tshark', () => {
      throw new Error('tshark is not installed: apt-get install tshark');
    });
    return;
  }

  const dir = mkdtempSync(join(tmpdir(), 'wire-tcp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const PREFS = ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE'];
  const A_MAC = parseMac('02:00:01:00:00:05');
  const B_MAC = parseMac('02:00:01:00:00:06');

  function tshark(args: string[]): string {
    const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /** Ethernet + IPv4 + TCP, both checksums computed; `fromA` picks the direction. */
  function frame(fromA: boolean, h: Header, payload = Buffer.alloc(0)): Buffer {
    const seg = segment(h, payload, false);
    const [src, dst] = fromA ? [SRC, DST] : [DST, SRC];
    fillTcpChecksum(seg, src, dst);
    const buf = Buffer.alloc(14 + IPV4_HEADER + seg.length);
    let o = emitEthernet(buf, 0, { dst: fromA ? B_MAC : A_MAC, src: fromA ? A_MAC : B_MAC, etherType: EtherType.Ipv4 });
    o += emitIpv4Header(buf, o, { src, dst, protocol: IpProto.Tcp, payloadLength: seg.length, id: 1, dontFragment: true, checksum: true });
    seg.copy(buf, o);
    return buf;
  }

  async function writePcap(name: string, frames: Buffer[]): Promise<string> {
    const path = join(dir, name);
    const w = new PcapWriter(path);
    frames.forEach((f, i) => w.write(1_700_000_000_000 + i * 1.5, f));
    await w.close();
    return path;
  }

  it('as Ethernet/IPv4/TCP with the options, no malformed packet or error, and good checksums', async () => {
    const ISN_A = 0xfffffffe; // the FIN's sequence number wraps through 0
    const ISN_B = 0x12345678;
    const data = Buffer.from('lparlab tcp payload');
    const ports = { srcPort: 40000, dstPort: 40001 };
    const back = { srcPort: 40001, dstPort: 40000 };
    const frames = [
      frame(true, {
        ...ports,
        seq: ISN_A,
        ack: 0,
        flags: TcpFlag.Syn,
        window: 64240,
        options: {
          mss: 1460,
          windowScale: 7,
          sackPermitted: true,
          timestamps: { value: 0x01020304, echo: 0 },
          experimental: [{ exid: 0xe2d4, data: Buffer.from('e2d4c3d9', 'hex') }],
        },
      }),
      frame(false, {
        ...back,
        seq: ISN_B,
        ack: seqAdd(ISN_A, 1),
        flags: TcpFlag.Syn | TcpFlag.Ack,
        window: 65160,
        options: { mss: 1400, windowScale: 6, sackPermitted: true, timestamps: { value: 0x0a0b0c0d, echo: 0x01020304 } },
      }),
      frame(true, { ...ports, seq: seqAdd(ISN_A, 1), ack: seqAdd(ISN_B, 1), flags: TcpFlag.Psh | TcpFlag.Ack, window: 502, options: { timestamps: { value: 0x01020305, echo: 0x0a0b0c0d } } }, data),
      frame(true, { ...ports, seq: seqAdd(ISN_A, 1 + data.length), ack: seqAdd(ISN_B, 1), flags: TcpFlag.Fin | TcpFlag.Ack, window: 502 }),
    ];
    const file = await writePcap('tcp.pcap', frames);

    const stacks = tshark(['-r', file, ...PREFS, '-T', 'fields', '-e', 'frame.protocols']).trim().split('\n');
    expect(stacks).toEqual(['eth:ethertype:ip:tcp', 'eth:ethertype:ip:tcp', 'eth:ethertype:ip:tcp:data', 'eth:ethertype:ip:tcp']);

    const bad = tshark(['-r', file, ...PREFS, '-Y', '_ws.malformed || _ws.expert.severity >= error', '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message']);
    expect(bad.trim()).toBe('');

    const fields = [
      'ip.checksum.status',
      'tcp.checksum.status',
      'tcp.seq_raw',
      'tcp.ack_raw',
      'tcp.hdr_len',
      'tcp.flags',
      'tcp.len',
      'tcp.options.mss_val',
      'tcp.options.wscale.shift',
      'tcp.option_kind',
      'tcp.options.timestamp.tsval',
      'tcp.options.timestamp.tsecr',
      'tcp.options.experimental.exid',
      'tcp.options.experimental.data',
    ];
    const rows = tshark(['-r', file, ...PREFS, '-T', 'fields', '-E', 'separator=;', ...fields.flatMap((f) => ['-e', f])])
      .trimEnd()
      .split('\n')
      .map((line) => Object.fromEntries(line.split(';').map((v, i) => [fields[i], v])));
    expect(rows.map((r) => [r['ip.checksum.status'], r['tcp.checksum.status']])).toEqual(Array(4).fill(['1', '1']));
    expect(rows.map((r) => Number(r['tcp.seq_raw']))).toEqual([ISN_A, ISN_B, seqAdd(ISN_A, 1), seqAdd(ISN_A, 1 + data.length)]);
    expect(rows.map((r) => Number(r['tcp.ack_raw']))).toEqual([0, seqAdd(ISN_A, 1), seqAdd(ISN_B, 1), seqAdd(ISN_B, 1)]);
    expect(rows.map((r) => Number(r['tcp.flags']))).toEqual([0x02, 0x12, 0x18, 0x11]);
    expect(rows.map((r) => Number(r['tcp.hdr_len']))).toEqual([20 + 28, 20 + 20, 20 + 12, 20]);
    expect(rows.map((r) => Number(r['tcp.len']))).toEqual([0, 0, data.length, 0]);
    expect(rows.map((r) => r['tcp.options.mss_val'])).toEqual(['1460', '1400', '', '']);
    expect(rows.map((r) => r['tcp.options.wscale.shift'])).toEqual(['7', '6', '', '']);
    // Kinds in the order written: MSS, WS, SACK-permitted, TS, experimental, then
    // the zero padding, which tshark lists as one End per byte.
    expect(rows[0]['tcp.option_kind']).toBe('2,3,4,8,254,0,0,0');
    expect(rows[1]['tcp.option_kind']).toBe('2,3,4,8,0');
    expect(rows.map((r) => r['tcp.options.timestamp.tsval'])).toEqual([String(0x01020304), String(0x0a0b0c0d), String(0x01020305), '']);
    expect(rows.map((r) => r['tcp.options.timestamp.tsecr'])).toEqual(['0', String(0x01020304), String(0x0a0b0c0d), '']);
    expect(rows[0]['tcp.options.experimental.exid']).toBe('0xe2d4');
    expect(rows[0]['tcp.options.experimental.data']).toBe('c3d9');
  });

  it('writes a computed 0 as 0, which tshark finds good (RFC 1624)', async () => {
    const h: Header = { srcPort: 40000, dstPort: 40001, seq: 1, ack: 1, flags: TcpFlag.Psh | TcpFlag.Ack, window: 100 };
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(expectedChecksum(segment(h, payload, false)), 0);
    const f = frame(true, h, payload);
    expect(f.readUInt16BE(14 + IPV4_HEADER + 16)).toBe(0);
    const file = await writePcap('zero.pcap', [f]);
    const out = tshark(['-r', file, ...PREFS, '-T', 'fields', '-E', 'separator=;', '-e', 'tcp.checksum.status', '-e', '_ws.expert.message']);
    expect(out.trim()).toBe('1;');
    expect(tshark(['-r', file, ...PREFS, '-Y', '_ws.malformed || _ws.expert.severity >= warning']).trim()).toBe('');
  });
});
