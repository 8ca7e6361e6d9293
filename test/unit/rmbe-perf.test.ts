import { describe, expect, it } from 'vitest';
import { RMBE_CONS_OFFSET, RMBE_HEADER, RmbeView, emitRmbeCursor, rmbeRingOffset, validRmbeRingBytes } from '../../shared/smc/rmbe.ts';
import { PERF_HEADER, PerfMessage, PerfType, emitPerf } from '../../shared/wire/perf-message.ts';
import { WireError } from '../../shared/wire/wire-error.ts';

describe('RmbeView', () => {
  it('lays out a header word and a power-of-two ring after 64 bytes', () => {
    const v = RmbeView.create(4096);
    expect(v.buffer.length).toBe(RMBE_HEADER + 4096);
    expect(v.ringBytes).toBe(4096);
    expect(v.ring.byteOffset - v.buffer.byteOffset).toBe(64);
    expect(v.consumerCursor).toBe(0);
    expect(rmbeRingOffset(0)).toBe(64);
    expect(rmbeRingOffset(4095)).toBe(64 + 4095);
  });

  it('reads the consumer cursor the peer RDMA-writes, little-endian, as a full u32', () => {
    const v = RmbeView.create(4096);
    emitRmbeCursor(Buffer.alloc(4), 0xfedcba98).copy(v.buffer, RMBE_CONS_OFFSET);
    expect(v.buffer.subarray(0, 4)).toEqual(Buffer.from([0x98, 0xba, 0xdc, 0xfe]));
    expect(v.consumerCursor).toBe(0xfedcba98);
    expect(RmbeView.open(v.buffer).consumerCursor).toBe(0xfedcba98);
  });

  it('refuses rings that are not a power of two in bounds', () => {
    expect(validRmbeRingBytes(4096)).toBe(true);
    expect(validRmbeRingBytes(6000)).toBe(false);
    expect(validRmbeRingBytes(2048)).toBe(false);
    expect(() => RmbeView.create(3000)).toThrow(RangeError);
    expect(() => RmbeView.open(Buffer.alloc(64 + 5000))).toThrow(/power-of-two ring/);
    expect(() => emitRmbeCursor(Buffer.alloc(3), 1)).toThrow(RangeError);
  });
});

describe('PerfMessage', () => {
  it('emits a stream message whose filler is index & 0xff, and parses it back', () => {
    const b = Buffer.alloc(20, 0xee);
    expect(emitPerf(b, 0, { type: PerfType.Stream, run: 0xdeadbeef, index: 0x1234 })).toBe(20);
    expect(b.subarray(0, 9)).toEqual(Buffer.from([1, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0x12, 0x34]));
    expect([...b.subarray(9)].every((x) => x === 0x34)).toBe(true);
    const m = PerfMessage.parse(b);
    expect([m.type, m.run, m.index, m.length, m.fillerIntact]).toEqual([PerfType.Stream, 0xdeadbeef, 0x1234, 20, true]);
    b[19] = 0;
    expect(PerfMessage.parse(b).fillerIntact).toBe(false);
  });

  it('emits a ping with zero filler and turns it into a pong in place', () => {
    const b = Buffer.alloc(64, 0xff);
    emitPerf(b, 0, { type: PerfType.Ping, run: 0, index: 7 });
    expect([...b.subarray(PERF_HEADER)].every((x) => x === 0)).toBe(true);
    const m = PerfMessage.parse(b);
    m.setType(PerfType.Pong);
    expect(PerfMessage.parse(b).type).toBe(PerfType.Pong);
    expect(PerfMessage.parse(b).index).toBe(7);
  });

  it('refuses short messages and unknown types: tryParse gives undefined, parse a WireError', () => {
    expect(PerfMessage.tryParse(Buffer.alloc(8, 1))).toBeUndefined();
    expect(PerfMessage.tryParse(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
    expect(() => PerfMessage.parse(Buffer.alloc(3))).toThrow(WireError);
    expect(() => PerfMessage.parse(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/unknown perf message type 0/);
    expect(PerfMessage.tryParse(Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0]))?.type).toBe(PerfType.Pong);
  });

  it('checks what it emits', () => {
    expect(() => emitPerf(Buffer.alloc(8), 0, { type: PerfType.Stream, run: 1, index: 1 })).toThrow(RangeError);
    expect(() => emitPerf(Buffer.alloc(9), 0, { type: PerfType.Stream, run: -1, index: 1 })).toThrow(RangeError);
  });
});
