import { describe, expect, it } from 'vitest';
import { CDC_BYTES, CdcFlag, CdcType, emitCdc, parseCdc, tryParseCdc } from '../../shared/wire/smc-cdc.ts';

/** SMC-R CDC messages (shared/wire/smc-cdc.ts): the Rkey type a move back to a link needs (issue 11 item 2). */
describe('SMC-R CDC messages', () => {
  it('round-trips a cursor, a move and an rkey', () => {
    const cursor = { type: CdcType.Cursor, flags: CdcFlag.DoneWriting | CdcFlag.WantSpace, link: 0, token: 7, prod: 123_456, key: 0 };
    const move = { type: CdcType.Move, flags: 0, link: 1, token: 8, prod: 99, key: 0 };
    const rkey = { type: CdcType.Rkey, flags: 0, link: 0, token: 9, prod: 42, key: 0xdeadbeef };
    for (const c of [cursor, move, rkey]) {
      const b = emitCdc(c);
      expect(b.length).toBe(CDC_BYTES);
      expect(parseCdc(b)).toEqual(c);
    }
  });

  it('refuses a key on a type that has none, an rkey naming region 0, and unknown types', () => {
    const withKey = emitCdc({ type: CdcType.Cursor, flags: 0, link: 0, token: 1, prod: 0, key: 5 });
    expect(() => parseCdc(withKey)).toThrow(/nonzero key/);
    expect(() => parseCdc(emitCdc({ type: CdcType.Rkey, flags: 0, link: 1, token: 1, prod: 0, key: 5 }))).toThrow(/region 0/);
    const unknown = emitCdc({ type: CdcType.Cursor, flags: 0, link: 0, token: 1, prod: 0, key: 0 });
    unknown[0] = 4;
    expect(tryParseCdc(unknown)).toBeUndefined();
  });
});
