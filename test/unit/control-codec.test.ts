import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ControlDecodeError, decodeControl, encodeControl, type ControlMessage } from '../../shared/control/codec.ts';

/** A plain msgpack packer, as any other tool would write. */
const plain = new Packr({ useRecords: false });

describe('control codec', () => {
  it('round-trips strings, numbers, nested objects and arrays', () => {
    const msg: ControlMessage = {
      t: 'rvi-create',
      id: 17,
      re: 0,
      err: 'nope',
      s: 'héllo, wörld ✓',
      empty: '',
      int: 42,
      neg: -7,
      big: 2 ** 40,
      u32: 0xffffffff,
      float: 1.5,
      t0: true,
      f0: false,
      nul: null,
      nested: { a: [1, 'two', { three: 3 }], b: { c: { d: [] } } },
      list: [0, -1, 'x', [2, [3]]],
    };
    const back = decodeControl(encodeControl(msg));
    expect(back).toEqual(msg);
  });

  it('gives Buffers (and Uint8Arrays) back as bytes', () => {
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    const big = Buffer.alloc(70_000, 0xab);
    const back = decodeControl(encodeControl({ t: 'blob', bytes, big, u8: new Uint8Array([9, 8]), inner: { b: Buffer.alloc(0) } }));
    expect(back.bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(back.bytes as Uint8Array).equals(bytes)).toBe(true);
    expect(Buffer.from(back.big as Uint8Array).equals(big)).toBe(true);
    expect([...(back.u8 as Uint8Array)]).toEqual([9, 8]);
    expect((back.inner as { b: Uint8Array }).b).toBeInstanceOf(Uint8Array);
    expect((back.inner as { b: Uint8Array }).b.length).toBe(0);
  });

  it('writes plain msgpack: another msgpack reader reads it, and its maps decode', () => {
    const msg = { t: 'hello', id: 3, data: { x: [1, 2] } };
    expect(plain.unpack(encodeControl(msg))).toEqual(msg);
    expect(decodeControl(plain.pack(msg))).toEqual(msg);
  });

  it('throws ControlDecodeError on garbage bytes', () => {
    const garbage = [
      Buffer.alloc(0),
      Buffer.from([0x82, 0xa1]), // map of 2, truncated string
      Buffer.from([0xd9]), // str8 without its length
      Buffer.from([0xff, 0xff]), // trailing bytes after a value
      Buffer.from('hello world'),
      Buffer.from([0xc1]), // the never-used msgpack byte
      Buffer.concat([encodeControl({ t: 'a' }), encodeControl({ t: 'b' })]), // two messages in one body
    ];
    for (const g of garbage) {
      expect(() => decodeControl(g), g.toString('hex')).toThrow(ControlDecodeError);
    }
  });

  it('throws ControlDecodeError on a msgpack number, string, nil, array or boolean', () => {
    for (const v of [42, -1, 1.25, 'hello', null, ['t', 'x'], true]) {
      expect(() => decodeControl(plain.pack(v)), JSON.stringify(v)).toThrow(ControlDecodeError);
    }
  });

  it('throws ControlDecodeError on a map without a string `t`', () => {
    for (const v of [{}, { type: 'x' }, { t: 5 }, { t: null }, { t: ['x'] }, { t: { t: 'x' } }, { T: 'x' }]) {
      expect(() => decodeControl(plain.pack(v)), JSON.stringify(v)).toThrow(ControlDecodeError);
    }
    // An empty string is still a string.
    expect(decodeControl(plain.pack({ t: '' })).t).toBe('');
  });

  it('reports the cause in the message', () => {
    expect(() => decodeControl(Buffer.from([0x82, 0xa1]))).toThrow(/undecodable control message/);
    expect(() => decodeControl(plain.pack(42))).toThrow(/string "t"/);
  });
});
