import { describe, expect, it } from 'vitest';
import { TcpFlag, TcpSegment, WireError, emitTcpHeader, tcpOptionsLength, type TcpOptions } from '../../shared/wire/index.ts';
import {
  CLC_MAX_LENGTH,
  CLC_MIN_LENGTH,
  ClcReader,
  ClcType,
  DeclineReason,
  SMC_OPTION_MAGIC,
  SmcPath,
  declineText,
  emitClc,
  hasSmcOption,
  parseClc,
  smcSynOption,
  type ClcMessage,
} from '../../shared/wire/smc-clc.ts';
import { prng, randomBytes } from '../helpers/prng.ts';

const EYE = 'e2d4c3d9';

/** A message laid out by hand: header with the right length unless told, body, trailer. */
function raw(type: number, versionPath: number, body: Buffer | string, length?: number): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'hex') : body;
  const out = Buffer.alloc(12 + b.length);
  out.writeUInt32BE(SMC_OPTION_MAGIC, 0);
  out[4] = type;
  out.writeUInt16BE(length ?? out.length, 5);
  out[7] = versionPath;
  b.copy(out, 8);
  out.writeUInt32BE(SMC_OPTION_MAGIC, out.length - 4);
  return out;
}

/** A u8-length-prefixed string field. */
function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([Buffer.of(b.length), b]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

const LONG_NAME = 'a' + 'b-9'.repeat(21);

const SAMPLES: ClcMessage[] = [
  { type: ClcType.Proposal, paths: SmcPath.R | SmcPath.D, lpar: 'lpar1', cec: 'cec-a', ringBytes: 65536 },
  { type: ClcType.Proposal, paths: SmcPath.R, lpar: LONG_NAME, cec: LONG_NAME, ringBytes: 4096 },
  { type: ClcType.Proposal, paths: SmcPath.D, lpar: 'x', cec: 'y', ringBytes: 16 * 1024 * 1024 },
  { type: ClcType.Accept, path: SmcPath.D, lpar: 'web', token: 7, ringBytes: 1 << 20, links: [] },
  {
    type: ClcType.Accept,
    path: SmcPath.R,
    lpar: 'db-2',
    token: 0xffffffff,
    ringBytes: 8192,
    links: [
      { region: 1, key: 0xdeadbeef },
      { region: 0xffffffff, key: 0 },
    ],
  },
  { type: ClcType.Confirm, path: SmcPath.D, lpar: 'a', token: 0, ringBytes: 4096, links: [] },
  {
    type: ClcType.Confirm,
    path: SmcPath.R,
    lpar: LONG_NAME,
    token: 0x12345678,
    ringBytes: 1 << 24,
    links: [
      { region: 2, key: 3 },
      { region: 4, key: 5 },
    ],
  },
  { type: ClcType.Decline, reason: DeclineReason.PeerNoSmc },
  { type: ClcType.Decline, reason: DeclineReason.NoSmcDDevice, diagnosis: 'cec-a ≠ cec-b' },
  { type: ClcType.Decline, reason: 0xffffffff, diagnosis: '\ufeff' + 'é'.repeat(30) + 'z' },
  { type: ClcType.FallbackSync, received: 0 },
  { type: ClcType.FallbackSync, received: 2 ** 32 },
  { type: ClcType.FallbackSync, received: Number.MAX_SAFE_INTEGER },
  { type: ClcType.Closed, sent: 0 },
  { type: ClcType.Closed, sent: 2 ** 40 + 7 },
];

describe('the SMC TCP option', () => {
  it('is kind 254 with the magic as its ExID, 6 bytes as Linux sends it', () => {
    const o = smcSynOption();
    expect(o.exid).toBe(0xe2d4);
    expect(o.data.toString('hex')).toBe(EYE);
    expect(smcSynOption().data).not.toBe(o.data);
    const options: TcpOptions = { mss: 1460, experimental: [o] };
    const buf = Buffer.alloc(20 + tcpOptionsLength(options));
    emitTcpHeader(buf, 0, { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TcpFlag.Syn, window: 1000, options });
    expect(buf.subarray(24, 30).toString('hex')).toBe('fe06' + EYE);
    const parsed = TcpSegment.parse(buf).options();
    expect(hasSmcOption(parsed)).toBe(true);
  });

  it('is recognized only as exactly the magic', () => {
    expect(hasSmcOption({})).toBe(false);
    expect(hasSmcOption({ experimental: [] })).toBe(false);
    expect(hasSmcOption({ experimental: [{ exid: 0xe2d4, data: Buffer.from(EYE + '00', 'hex') }] })).toBe(false);
    expect(hasSmcOption({ experimental: [{ exid: 0xe2d4, data: Buffer.from('e2d4c3d8', 'hex') }] })).toBe(false);
    expect(hasSmcOption({ experimental: [{ exid: 0xe2d4, data: Buffer.from('e2d4', 'hex') }] })).toBe(false);
    const other = { exid: 0x1234, data: Buffer.from('1234', 'hex') };
    expect(hasSmcOption({ experimental: [other, smcSynOption()] })).toBe(true);
  });
});

describe('CLC messages', () => {
  it('round-trip every type', () => {
    for (const m of SAMPLES) {
      const b = emitClc(m);
      expect(b.length, JSON.stringify(m)).toBeLessThanOrEqual(CLC_MAX_LENGTH);
      expect(b.length).toBeGreaterThanOrEqual(CLC_MIN_LENGTH);
      expect(b.readUInt16BE(5)).toBe(b.length);
      expect(parseClc(b)).toEqual(m);
    }
  });

  it('lay out header, body and trailer as documented', () => {
    expect(emitClc({ type: ClcType.FallbackSync, received: 0x0102030405 }).toString('hex')).toBe(
      EYE + '20' + '0014' + '10' + '0000000102030405' + EYE,
    );
    expect(emitClc({ type: ClcType.Closed, sent: 0x0102030405 }).toString('hex')).toBe(EYE + '21' + '0014' + '10' + '0000000102030405' + EYE);
    expect(() => emitClc({ type: ClcType.Closed, sent: -1 })).toThrow(/bad CLC sent byte count/);
    expect(emitClc({ type: ClcType.Proposal, paths: 3, lpar: 'p1', cec: 'c', ringBytes: 4096 }).toString('hex')).toBe(
      EYE + '01' + '0015' + '13' + '027031' + '0163' + '00001000' + EYE,
    );
    expect(
      emitClc({ type: ClcType.Accept, path: SmcPath.R, lpar: 'q', token: 9, ringBytes: 8192, links: [{ region: 1, key: 2 }, { region: 3, key: 4 }] }).toString('hex'),
    ).toBe(EYE + '02' + '0027' + '11' + '0171' + '00000009' + '00002000' + '02' + '0000000100000002' + '0000000300000004' + EYE);
    expect(emitClc({ type: ClcType.Decline, reason: DeclineReason.SyncError }).toString('hex')).toBe(
      EYE + '04' + '0011' + '10' + '04000000' + '00' + EYE,
    );
  });

  it('send an empty diagnosis as none', () => {
    expect(parseClc(emitClc({ type: ClcType.Decline, reason: 1, diagnosis: '' }))).toEqual({ type: ClcType.Decline, reason: 1 });
  });

  it('refuse every truncation', () => {
    for (const m of SAMPLES) {
      const b = emitClc(m);
      for (let n = 0; n < b.length; n++) {
        expect(() => parseClc(b.subarray(0, n)), `${n} of ${b.toString('hex')}`).toThrow(WireError);
        const r = new ClcReader();
        r.push(b.subarray(0, n));
        expect(r.next()).toBeUndefined();
      }
    }
  });

  it('refuse bytes beyond the declared length', () => {
    const b = emitClc(SAMPLES[0]);
    expect(() => parseClc(Buffer.concat([b, Buffer.of(0)]))).toThrow(`length ${b.length} does not match the ${b.length + 1} bytes given`);
  });

  it('name each flipped header and trailer byte', () => {
    const want = [/eyecatcher/, /eyecatcher/, /eyecatcher/, /eyecatcher/, /unknown CLC type 0xfe/, /length \d+ outside 20\.\.146/, /length \d+ outside|does not match/, /bad CLC version 14/];
    for (const m of SAMPLES) {
      const b = emitClc(m);
      for (let i = 0; i < 8; i++) {
        const bad = Buffer.from(b);
        bad[i] ^= 0xff;
        expect(() => parseClc(bad), `byte ${i} of ${b.toString('hex')}`).toThrow(WireError);
        if (m.type === ClcType.Proposal) expect(() => parseClc(bad), `byte ${i}`).toThrow(want[i]);
      }
      for (let i = b.length - 4; i < b.length; i++) {
        const bad = Buffer.from(b);
        bad[i] ^= 0xff;
        expect(() => parseClc(bad), `byte ${i}`).toThrow(/bad CLC trailer/);
      }
    }
  });

  it('refuse unknown types', () => {
    const body = Buffer.concat([str('a'), str('b'), u32(4096)]);
    expect(parseClc(raw(1, 0x11, body)).type).toBe(ClcType.Proposal);
    for (const t of [0, 5, 6, 0x1f, 0x22, 0x80, 0xff]) {
      expect(() => parseClc(raw(t, 0x11, body)), `type ${t}`).toThrow(`unknown CLC type 0x${t.toString(16).padStart(2, '0')}`);
    }
    expect(() => emitClc({ type: 9 } as unknown as ClcMessage)).toThrow(RangeError);
  });

  it('refuse lengths outside what the type allows', () => {
    const body = Buffer.concat([str('a'), str('b'), u32(4096)]);
    for (const length of [0, 1, 19, 147, 1024, 1025, 65535]) {
      expect(() => parseClc(raw(1, 0x11, body, length)), `length ${length}`).toThrow(`length ${length} outside 20..146`);
    }
    expect(() => parseClc(raw(ClcType.FallbackSync, 0x10, Buffer.alloc(8), 21))).toThrow(/outside 20\.\.20/);
    expect(() => parseClc(raw(ClcType.Decline, 0x10, Buffer.alloc(5), 0))).toThrow(/outside 17\.\.81/);
  });

  it('refuse a bad version, reserved bits or path flags', () => {
    const proposal = Buffer.concat([str('a'), str('b'), u32(4096)]);
    expect(() => parseClc(raw(1, 0x01, proposal))).toThrow('bad CLC version 0');
    expect(() => parseClc(raw(1, 0x21, proposal))).toThrow('bad CLC version 2');
    expect(() => parseClc(raw(1, 0x15, proposal))).toThrow('reserved CLC header bits 0x04');
    expect(() => parseClc(raw(1, 0x19, proposal))).toThrow('reserved CLC header bits 0x08');
    expect(() => parseClc(raw(1, 0x10, proposal))).toThrow('offers no path');
    const accept = Buffer.concat([str('a'), u32(1), u32(4096), Buffer.of(0)]);
    expect(parseClc(raw(2, 0x12, accept))).toMatchObject({ path: SmcPath.D });
    expect(() => parseClc(raw(2, 0x13, accept))).toThrow('not exactly one path');
    expect(() => parseClc(raw(3, 0x10, accept))).toThrow('not exactly one path');
    expect(() => parseClc(raw(4, 0x12, Buffer.concat([u32(1), str('')])))).toThrow('decline has path flags 2');
    expect(() => parseClc(raw(0x20, 0x11, Buffer.alloc(8)))).toThrow('fallback sync has path flags 1');
  });

  it('refuse bad node names, in parse and in emit', () => {
    const bad: Array<string | Buffer> = ['', 'A', 'Lpar', '1lpar', '-a', 'a_b', 'a b', 'a.b', 'é', 'a'.repeat(65), Buffer.of(0x61, 0xff)];
    for (const name of bad) {
      const what = typeof name === 'string' ? JSON.stringify(name) : name.toString('hex');
      expect(() => parseClc(raw(1, 0x11, Buffer.concat([str(name), str('c'), u32(4096)]))), what).toThrow(WireError);
      expect(() => parseClc(raw(1, 0x11, Buffer.concat([str('c'), str(name), u32(4096)]))), what).toThrow(WireError);
      expect(() => parseClc(raw(2, 0x12, Buffer.concat([str(name), u32(1), u32(4096), Buffer.of(0)]))), what).toThrow(WireError);
      if (typeof name !== 'string') continue;
      expect(() => emitClc({ type: ClcType.Proposal, paths: 1, lpar: name, cec: 'c', ringBytes: 4096 }), what).toThrow(RangeError);
      expect(() => emitClc({ type: ClcType.Proposal, paths: 1, lpar: 'c', cec: name, ringBytes: 4096 }), what).toThrow(RangeError);
      expect(() => emitClc({ type: ClcType.Confirm, path: 2, lpar: name, token: 1, ringBytes: 4096, links: [] }), what).toThrow(RangeError);
    }
    expect(() => parseClc(raw(1, 0x11, Buffer.concat([str('a_b'), str('c'), u32(4096)])))).toThrow('lpar "a_b" is not a node name');
    expect(() => parseClc(raw(1, 0x11, Buffer.concat([str('c'), str(Buffer.of(0x61, 0xff)), u32(4096)])))).toThrow('cec is not valid UTF-8');
    expect(parseClc(raw(1, 0x11, Buffer.concat([str('a'.repeat(64)), str('c'), u32(4096)])))).toMatchObject({ lpar: 'a'.repeat(64) });
  });

  it('refuse a ring size that is not a power of two in 4 KiB..16 MiB', () => {
    for (const r of [0, 1, 2048, 4095, 4097, 6144, 3 << 20, 32 << 20, 0xffffffff]) {
      expect(() => parseClc(raw(1, 0x11, Buffer.concat([str('a'), str('b'), u32(r)]))), `${r}`).toThrow(`ringBytes ${r} is not a power of two`);
      expect(() => parseClc(raw(3, 0x12, Buffer.concat([str('a'), u32(1), u32(r), Buffer.of(0)]))), `${r}`).toThrow(WireError);
      expect(() => emitClc({ type: ClcType.Proposal, paths: 1, lpar: 'a', cec: 'b', ringBytes: r }), `${r}`).toThrow(RangeError);
      expect(() => emitClc({ type: ClcType.Accept, path: 2, lpar: 'a', token: 1, ringBytes: r, links: [] }), `${r}`).toThrow(RangeError);
    }
    expect(() => emitClc({ type: ClcType.Proposal, paths: 1, lpar: 'a', cec: 'b', ringBytes: 4096.5 })).toThrow(RangeError);
  });

  it('want no links for SMC-D and exactly two for SMC-R', () => {
    const link = Buffer.concat([u32(1), u32(2)]);
    const body = (count: number, links: number) => Buffer.concat([str('a'), u32(1), u32(4096), Buffer.of(count), ...Array(links).fill(link)]);
    expect(() => parseClc(raw(2, 0x12, body(2, 2)))).toThrow('SMC-D has 2 links, want 0');
    expect(() => parseClc(raw(2, 0x11, body(1, 1)))).toThrow('SMC-R has 1 links, want 2');
    expect(() => parseClc(raw(2, 0x11, body(0, 0)))).toThrow('SMC-R has 0 links, want 2');
    expect(() => parseClc(raw(3, 0x11, body(2, 1)))).toThrow('link 1 region runs past the declared length');
    expect(() => parseClc(raw(3, 0x11, body(3, 2)))).toThrow(WireError);
    expect(parseClc(raw(3, 0x11, body(2, 2)))).toMatchObject({ links: [{ region: 1, key: 2 }, { region: 1, key: 2 }] });
    const l = { region: 1, key: 2 };
    expect(() => emitClc({ type: ClcType.Accept, path: SmcPath.D, lpar: 'a', token: 1, ringBytes: 4096, links: [l, l] })).toThrow(RangeError);
    expect(() => emitClc({ type: ClcType.Accept, path: SmcPath.R, lpar: 'a', token: 1, ringBytes: 4096, links: [l] })).toThrow(RangeError);
    expect(() => emitClc({ type: ClcType.Accept, path: SmcPath.R, lpar: 'a', token: 1, ringBytes: 4096, links: [l, l, l] })).toThrow(RangeError);
    expect(() => emitClc({ type: ClcType.Accept, path: SmcPath.R, lpar: 'a', token: 1, ringBytes: 4096, links: [l, { region: -1, key: 0 }] })).toThrow(RangeError);
    expect(() => emitClc({ type: ClcType.Accept, path: SmcPath.R, lpar: 'a', token: 1, ringBytes: 4096, links: [l, { region: 0, key: 2 ** 32 }] })).toThrow(RangeError);
    expect(() => emitClc({ type: ClcType.Accept, path: 3 as SmcPath, lpar: 'a', token: 1, ringBytes: 4096, links: [] })).toThrow(RangeError);
    expect(() => emitClc({ type: ClcType.Confirm, path: SmcPath.D, lpar: 'a', token: 2 ** 32, ringBytes: 4096, links: [] })).toThrow(RangeError);
  });

  it('refuse a fallback sync count beyond 2^53 - 1', () => {
    const at = (hi: number, lo: number) => raw(0x20, 0x10, Buffer.concat([u32(hi), u32(lo)]));
    expect(parseClc(at(0x1fffff, 0xffffffff))).toEqual({ type: ClcType.FallbackSync, received: Number.MAX_SAFE_INTEGER });
    expect(() => parseClc(at(0x200000, 0))).toThrow('received 0x20000000000000 exceeds 2^53 - 1');
    expect(() => parseClc(at(0xffffffff, 0xffffffff))).toThrow(WireError);
    for (const received of [2 ** 53, -1, 1.5, NaN, Infinity]) {
      expect(() => emitClc({ type: ClcType.FallbackSync, received }), `${received}`).toThrow(RangeError);
    }
  });

  it('refuse bodies that end before or after their fields', () => {
    expect(() => parseClc(raw(1, 0x11, Buffer.concat([str('a'), str('b'), u32(4096), Buffer.of(0)])))).toThrow('proposal has 1 trailing bytes inside the declared length');
    expect(() => parseClc(raw(4, 0x10, Buffer.concat([u32(1), str(''), Buffer.alloc(3)])))).toThrow('decline has 3 trailing bytes');
    expect(() => parseClc(raw(4, 0x10, Buffer.concat([u32(1), Buffer.of(10), Buffer.from('abc')])))).toThrow('decline diagnosis runs past the declared length');
    expect(() => parseClc(raw(1, 0x11, Buffer.concat([str('abc'), str('b'), Buffer.alloc(2)])))).toThrow('ringBytes runs past');
  });

  it('refuse a decline diagnosis over 64 bytes or not well formed', () => {
    expect(() => emitClc({ type: ClcType.Decline, reason: 1, diagnosis: 'é'.repeat(33) })).toThrow(/66 bytes, more than 64/);
    expect(() => emitClc({ type: ClcType.Decline, reason: 1, diagnosis: '\ud800' })).toThrow(/not well-formed/);
    expect(() => emitClc({ type: ClcType.Decline, reason: -1 })).toThrow(RangeError);
    expect(() => parseClc(raw(4, 0x10, Buffer.concat([u32(1), str(Buffer.of(0xc3, 0x28))])))).toThrow('diagnosis is not valid UTF-8');
    expect(() => parseClc(raw(4, 0x10, Buffer.concat([u32(1), str(Buffer.of(0xc0, 0x80))])))).toThrow('not valid UTF-8');
  });
});

describe('DeclineReason', () => {
  it('uses Linux values where Linux has the code', () => {
    expect(DeclineReason.NoMemory).toBe(0x01010000);
    expect(DeclineReason.PeerNoSmc).toBe(0x03010000);
    expect(DeclineReason.NoSmcDevice).toBe(0x03030000);
    expect(DeclineReason.ModeUnsupported).toBe(0x03040000);
    expect(DeclineReason.SyncError).toBe(0x04000000);
    expect(DeclineReason.PeerDeclined).toBe(0x05000000);
    expect(DeclineReason.InternalError).toBe(0x09990000);
    const codes = Object.values(DeclineReason);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('reads as text, unknown codes by their class', () => {
    expect(declineText(DeclineReason.SmcDisabled)).toBe('smc disabled');
    expect(declineText(DeclineReason.PeerNoSmc)).toBe('peer has no SMC');
    expect(declineText(DeclineReason.NoSmcDDevice)).toMatch(/not on the same CEC/);
    for (const code of Object.values(DeclineReason)) expect(declineText(code)).not.toMatch(/0x/);
    expect(declineText(0x03030009)).toBe('configuration error (0x03030009)');
    expect(declineText(0x42000000)).toBe('unknown decline reason 0x42000000');
  });
});

/** Messages then application bytes, as a stream carries them after a decline or fallback sync. */
function stream(messages: ClcMessage[], app: Buffer): Buffer {
  return Buffer.concat([...messages.map(emitClc), app]);
}

/** Pushes the chunks, taking `count` messages as they complete, then the rest. */
function readAll(chunks: Buffer[], count: number): { got: ClcMessage[]; rest: Buffer } {
  const r = new ClcReader();
  const got: ClcMessage[] = [];
  for (const c of chunks) {
    r.push(c);
    while (got.length < count) {
      const m = r.next();
      if (m === undefined) break;
      got.push(m);
    }
  }
  const rest = Buffer.concat(r.takeRest());
  expect(r.buffered).toBe(0);
  expect(r.takeRest()).toEqual([]);
  return { got, rest };
}

function randomSplit(r: () => number, buf: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = r() < 0.2 ? 0 : 1 + ((r() * 40) | 0);
    chunks.push(buf.subarray(i, i + n));
    i += n;
  }
  return chunks;
}

describe('ClcReader', () => {
  const exchange: ClcMessage[] = [SAMPLES[0], SAMPLES[4], SAMPLES[6], SAMPLES[8], SAMPLES[11]];
  const app = Buffer.from('GET / HTTP/1.1\r\nHost: web\r\n\r\n');

  it('takes messages fed byte by byte, then hands back the app bytes', () => {
    const s = stream(exchange, app);
    const { got, rest } = readAll([...s].map((b) => Buffer.of(b)), exchange.length);
    expect(got).toEqual(exchange);
    expect(rest.equals(app)).toBe(true);
  });

  it('takes messages in random splits, one per next()', () => {
    const r = prng(2002);
    for (let round = 0; round < 300; round++) {
      const msgs = Array.from({ length: 1 + ((r() * 6) | 0) }, () => SAMPLES[(r() * SAMPLES.length) | 0]);
      const tail = randomBytes(r, (r() * 50) | 0);
      const { got, rest } = readAll(randomSplit(r, stream(msgs, tail)), msgs.length);
      expect(got).toEqual(msgs);
      expect(rest.equals(tail)).toBe(true);
    }
  });

  it('returns one message per call when several are buffered', () => {
    const rd = new ClcReader();
    rd.push(stream([SAMPLES[3], SAMPLES[5], SAMPLES[7]], Buffer.from('xy')));
    expect(rd.next()).toEqual(SAMPLES[3]);
    expect(rd.next()).toEqual(SAMPLES[5]);
    expect(rd.next()).toEqual(SAMPLES[7]);
    expect(rd.buffered).toBe(2);
    expect(rd.takeRest().map((b) => b.toString())).toEqual(['xy']);
    expect(rd.next()).toBeUndefined();
  });

  it('refuses garbage as soon as the first bytes show it', () => {
    const early = (hex: string, at: number, message: RegExp) => {
      const bytes = Buffer.from(hex, 'hex');
      const rd = new ClcReader();
      for (let i = 0; i < bytes.length; i++) {
        rd.push(bytes.subarray(i, i + 1));
        if (i + 1 < at) expect(rd.next(), `after ${i + 1} bytes of ${hex}`).toBeUndefined();
        else expect(() => rd.next(), `after ${i + 1} bytes of ${hex}`).toThrow(message);
      }
      // Nothing was consumed: the bytes are all still there.
      expect(Buffer.concat(rd.takeRest()).equals(bytes)).toBe(true);
    };
    early('474554202f20', 1, /bad CLC eyecatcher 47/);
    early('e2d4c3d8000000', 4, /bad CLC eyecatcher e2d4c3d8/);
    early('e2d4c3d9070014', 5, /unknown CLC type 0x07/);
    early('e2d4c3d901ffff', 7, /proposal length 65535 outside/);
    early('e2d4c3d9040000', 7, /decline length 0 outside/);
    early('e2d4c3d9040010', 7, /decline length 16 outside/);
    // A prefix of a valid header proves nothing yet: the reader waits.
    early('e2d4c3d9010014', 8, /unreached/);
    early('e2d4c3d901001421', 8, /bad CLC version 2/);
  });

  it('refuses a whole message parseClc refuses, consuming nothing', () => {
    const bad = raw(1, 0x11, Buffer.concat([str('A'), str('b'), u32(4096)]));
    const rd = new ClcReader();
    rd.push(emitClc(SAMPLES[2]));
    rd.push(bad);
    expect(rd.next()).toEqual(SAMPLES[2]);
    expect(() => rd.next()).toThrow(/lpar "A" is not a node name/);
    expect(() => rd.next()).toThrow(/lpar "A"/);
    expect(Buffer.concat(rd.takeRest()).equals(bad)).toBe(true);
  });
});

describe('CLC fuzz', () => {
  /** Random bytes, random bytes behind a plausible header, or a valid message damaged. */
  function candidate(r: () => number): Buffer {
    const kind = r();
    if (kind < 0.3) return randomBytes(r, (r() * 160) | 0);
    if (kind < 0.6) {
      const types = [1, 2, 3, 4, 0x20];
      const b = randomBytes(r, 8 + ((r() * 120) | 0));
      b.writeUInt32BE(SMC_OPTION_MAGIC, 0);
      b[4] = types[(r() * types.length) | 0];
      b.writeUInt16BE(r() < 0.7 ? b.length : (r() * 200) | 0, 5);
      b[7] = 0x10 | ((r() * 4) | 0);
      if (r() < 0.7 && b.length >= 12) b.writeUInt32BE(SMC_OPTION_MAGIC, b.length - 4);
      return b;
    }
    const b = Buffer.from(emitClc(SAMPLES[(r() * SAMPLES.length) | 0]));
    const flips = 1 + ((r() * 3) | 0);
    for (let i = 0; i < flips; i++) b[(r() * b.length) | 0] ^= 1 << ((r() * 8) | 0);
    return r() < 0.2 ? b.subarray(0, (r() * b.length) | 0) : b;
  }

  it('parseClc throws only WireError, and what it accepts re-emits byte for byte', () => {
    const r = prng(4);
    let accepted = 0;
    for (let n = 0; n < 10_000; n++) {
      const b = candidate(r);
      let m: ClcMessage;
      try {
        m = parseClc(b);
      } catch (e) {
        expect(e, b.toString('hex')).toBeInstanceOf(WireError);
        continue;
      }
      accepted++;
      expect(emitClc(m).equals(b), b.toString('hex')).toBe(true);
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('ClcReader throws only WireError and loses no byte', () => {
    const r = prng(5);
    for (let n = 0; n < 10_000; n++) {
      const b = Buffer.concat(Array.from({ length: 1 + ((r() * 3) | 0) }, () => candidate(r)));
      const rd = new ClcReader();
      let consumed = 0;
      let pushed = 0;
      try {
        for (const c of randomSplit(r, b)) {
          rd.push(c);
          pushed += c.length;
          for (let m = rd.next(); m !== undefined; m = rd.next()) consumed += emitClc(m).length;
        }
      } catch (e) {
        expect(e, b.toString('hex')).toBeInstanceOf(WireError);
      }
      const rest = Buffer.concat(rd.takeRest());
      expect(rest.equals(b.subarray(consumed, pushed)), b.toString('hex')).toBe(true);
    }
  });
});
