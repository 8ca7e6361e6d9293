import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CONTROL_HEADER,
  FrameDecoder,
  FrameError,
  FrameType,
  LENGTH_PREFIX,
  MAX_FRAME,
  VI_HEADER,
  ViFrame,
  controlBody,
  emitControlFrame,
  frameType,
} from '../../shared/link/frame.ts';
import { prng } from '../helpers/rvi-pair.ts';

/** A whole frame (prefix included) around `body` (whose first byte plays the type). */
function frame(body: Buffer): Buffer {
  const f = Buffer.alloc(LENGTH_PREFIX + body.length);
  f.writeUInt32BE(body.length, 0);
  body.copy(f, LENGTH_PREFIX);
  return f;
}

function randomBody(size: number, rand: () => number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/** A chunk with an ArrayBuffer of its own (not from Node's shared pool), so identity checks mean something. */
function ownChunk(stream: Buffer, start: number, end: number): Buffer {
  const c = Buffer.from(new ArrayBuffer(end - start));
  stream.copy(c, 0, start, end);
  return c;
}

interface Run {
  frames: Buffer[];
  chunks: Buffer[];
}

/** Pushes `stream` cut at `cuts` (sorted, inside the stream) and collects what comes out. */
function decode(stream: Buffer, cuts: number[]): Run {
  const frames: Buffer[] = [];
  const chunks: Buffer[] = [];
  const dec = new FrameDecoder((f) => frames.push(f));
  let start = 0;
  for (const end of [...cuts, stream.length]) {
    const c = ownChunk(stream, start, end);
    chunks.push(c);
    dec.push(c);
    start = end;
  }
  return { frames, chunks };
}

function expectSameFrames(got: Buffer[], want: Buffer[], what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} frames out, ${want.length} pushed`);
  for (let i = 0; i < want.length; i++) {
    if (!got[i].equals(want[i])) throw new Error(`${what}: frame ${i} differs (${got[i].length} vs ${want[i].length} bytes)`);
  }
}

/**
 * Frames that lie entirely inside a chunk which starts on a frame boundary
 * (nothing pending when it is pushed) must be views of that chunk.
 */
function expectViewsOfCleanChunks(stream: Buffer, cuts: number[], run: Run, frameStarts: number[]): void {
  const boundaries = new Set([...frameStarts, stream.length]);
  const edges = [0, ...cuts, stream.length];
  let fi = 0;
  for (let ci = 0; ci < run.chunks.length; ci++) {
    const [cs, ce] = [edges[ci], edges[ci + 1]];
    while (fi < frameStarts.length && frameStarts[fi] < cs) fi++;
    if (!boundaries.has(cs)) continue;
    for (let k = fi; k < frameStarts.length; k++) {
      const fs = frameStarts[k];
      const fe = k + 1 < frameStarts.length ? frameStarts[k + 1] : stream.length;
      if (fe > ce) break;
      const f = run.frames[k];
      if (f.buffer !== run.chunks[ci].buffer || f.byteOffset - run.chunks[ci].byteOffset !== fs - cs) {
        throw new Error(`frame ${k} should be a view of chunk ${ci} at ${fs - cs} (cuts ${cuts.slice(0, 8)}...)`);
      }
    }
  }
}

function buildStream(bodies: Buffer[]): { stream: Buffer; frames: Buffer[]; starts: number[] } {
  const frames = bodies.map(frame);
  const starts: number[] = [];
  let o = 0;
  for (const f of frames) {
    starts.push(o);
    o += f.length;
  }
  return { stream: Buffer.concat(frames), frames, starts };
}

describe('FrameDecoder', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('yields exactly the frames pushed for every possible way of cutting a small stream', () => {
    // 3 frames, 16 bytes: every subset of the 15 inner positions is a cut set (32768 splits).
    const rand = prng(1);
    const { stream, frames } = buildStream([randomBody(1, rand), randomBody(2, rand), randomBody(1, rand)]);
    expect(stream.length).toBe(16);
    const inner = stream.length - 1;
    for (let mask = 0; mask < 1 << inner; mask++) {
      const cuts: number[] = [];
      for (let i = 0; i < inner; i++) if (mask & (1 << i)) cuts.push(i + 1);
      expectSameFrames(decode(stream, cuts).frames, frames, `cuts ${cuts}`);
    }
  });

  it('yields exactly the frames pushed for every single and double cut of a mixed stream', () => {
    const rand = prng(2);
    const { stream, frames, starts } = buildStream([1, 7, 1, 30, 4, 2, 64, 3].map((n) => randomBody(n, rand)));
    for (let i = 1; i < stream.length; i++) {
      const run = decode(stream, [i]);
      expectSameFrames(run.frames, frames, `cut ${i}`);
      expectViewsOfCleanChunks(stream, [i], run, starts);
      for (let j = i + 1; j < stream.length; j++) {
        const run2 = decode(stream, [i, j]);
        expectSameFrames(run2.frames, frames, `cuts ${i},${j}`);
        expectViewsOfCleanChunks(stream, [i, j], run2, starts);
      }
    }
    // And one byte at a time.
    const bytes = Array.from({ length: stream.length - 1 }, (_, k) => k + 1);
    expectSameFrames(decode(stream, bytes).frames, frames, 'byte by byte');
  });

  it('yields exactly the frames pushed for random cuts of large mixed streams (1 byte .. 200 KiB bodies)', () => {
    const rand = prng(3);
    const sizes = [1, 200 * 1024, 2, 3, 4, 5, 65536, 1, 4095, 200 * 1024 - 1, 17, 1000, 1];
    for (let i = 0; i < 40; i++) sizes.push(1 + Math.floor(rand() ** 3 * 200 * 1024));
    const { stream, frames, starts } = buildStream(sizes.map((n) => randomBody(n, rand)));
    for (let round = 0; round < 25; round++) {
      // Chunk sizes of every scale, including 1..3 bytes that cut a length prefix.
      const scale = [3, 1024, 4096, 65536, 300_000][round % 5];
      const cuts: number[] = [];
      let o = 0;
      for (;;) {
        // Tiny chunks for a stretch, then bigger ones (keeps the run short).
        o += 1 + Math.floor(rand() * (cuts.length < 2000 ? scale : 65536));
        if (o >= stream.length) break;
        cuts.push(o);
      }
      const run = decode(stream, cuts);
      expectSameFrames(run.frames, frames, `round ${round}`);
      expectViewsOfCleanChunks(stream, cuts, run, starts);
    }
  });

  it('hands out frames contained in one chunk as views of it (no copy)', () => {
    const rand = prng(4);
    const { stream, frames } = buildStream([5, 1, 300, 2].map((n) => randomBody(n, rand)));
    // Whole stream in one chunk.
    const one = decode(stream, []);
    expectSameFrames(one.frames, frames, 'one chunk');
    let expectOffset = 0;
    for (const f of one.frames) {
      expect(f.buffer).toBe(one.chunks[0].buffer);
      expect(f.byteOffset).toBe(one.chunks[0].byteOffset + expectOffset);
      expectOffset += f.length;
    }
    // A chunk ending in a partial frame: the whole ones before it are still views.
    const cut = frames[0].length + frames[1].length + 10;
    const part = decode(stream, [cut]);
    expectSameFrames(part.frames, frames, 'partial tail');
    expect(part.frames[0].buffer).toBe(part.chunks[0].buffer);
    expect(part.frames[1].buffer).toBe(part.chunks[0].buffer);
    // The spanning frame is assembled into memory of its own.
    expect(part.frames[2].buffer).not.toBe(part.chunks[0].buffer);
  });

  it('with a cut-through sink, passes spanning VI frames on in pieces that join to the frame, in stream order with the whole ones', () => {
    const rand = prng(9);
    // VI frames (type byte Vi, room for the header) and control frames, small and large.
    const sizes = [8, 3, 70_000, 9, 8, 200_000, 1, 20, 65_536, 5, 100, 8];
    const bodies = sizes.map((n, i) => {
      const b = randomBody(n, rand);
      b[0] = i % 3 === 1 ? FrameType.Control : FrameType.Vi;
      return b;
    });
    const { stream, frames } = buildStream(bodies);
    for (const [round, scale] of [3, 17, 1000, 4096, 65_536, 100_000].entries()) {
      for (const declineEvery of [0, 2]) {
        const out: Buffer[] = [];
        let parts: Buffer[] | undefined;
        let offers = 0;
        let streamed = 0;
        const dec = new FrameDecoder((f) => {
          expect(parts, 'a whole frame while one is streaming').toBeUndefined();
          out.push(Buffer.from(f));
        });
        dec.sink = {
          begin: (head, length) => {
            expect(head[LENGTH_PREFIX]).toBe(FrameType.Vi);
            expect(head.length).toBeGreaterThanOrEqual(VI_HEADER);
            expect(head.readUInt32BE(0) + LENGTH_PREFIX).toBe(length);
            if (declineEvery > 0 && ++offers % declineEvery === 0) return false;
            parts = [Buffer.from(head)];
            return true;
          },
          part: (bytes, last) => {
            parts!.push(Buffer.from(bytes));
            if (!last) return;
            out.push(Buffer.concat(parts!));
            parts = undefined;
            streamed++;
          },
        };
        const r = prng(100 + round);
        for (let o = 0; o < stream.length; ) {
          const end = Math.min(stream.length, o + 1 + Math.floor(r() * scale));
          dec.push(ownChunk(stream, o, end));
          o = end;
        }
        expectSameFrames(out, frames, `scale ${scale}, decline every ${declineEvery}`);
        if (scale < 70_000) expect(streamed, `scale ${scale}`).toBeGreaterThan(0);
      }
    }
  });

  // Completing a pending frame copies only its own bytes; the frames after it
  // in the same chunk are still views of that chunk.
  it('frames after a spanning frame, inside the chunk that completes it, are views of that chunk', () => {
    const rand = prng(5);
    const { stream, frames, starts } = buildStream([20, 8, 9].map((n) => randomBody(n, rand)));
    const run = decode(stream, [10]);
    expectSameFrames(run.frames, frames, 'split');
    const chunk = run.chunks[1];
    for (const k of [1, 2]) {
      expect(run.frames[k].buffer, `frame ${k}`).toBe(chunk.buffer);
      expect(run.frames[k].byteOffset).toBe(chunk.byteOffset + starts[k] - 10);
    }
  });

  // A frame whose length prefix straddles chunks is still assembled once
  // (the length is read once), not re-joined on every push.
  it('assembles a frame spanning many chunks once, even when its length prefix is cut', () => {
    const rand = prng(6);
    const f = frame(randomBody(256 * 1024, rand));
    let copied = 0;
    const real = Buffer.concat.bind(Buffer);
    const spy = vi.spyOn(Buffer, 'concat').mockImplementation((list: readonly Uint8Array[], total?: number) => {
      const out = real(list, total);
      copied += out.length;
      return out;
    });
    const got: Buffer[] = [];
    const dec = new FrameDecoder((x) => got.push(x));
    dec.push(ownChunk(f, 0, 2)); // half of the length prefix
    for (let o = 2; o < f.length; o += 1024) dec.push(ownChunk(f, o, Math.min(f.length, o + 1024)));
    spy.mockRestore();
    expect(got.length).toBe(1);
    expect(got[0].equals(f)).toBe(true);
    // Assembling once copies the frame once (plus at most a few prefix bytes).
    expect(copied).toBeLessThanOrEqual(f.length + 64);
  });

  it('throws FrameError on a zero length or one above MAX_FRAME, and accepts MAX_FRAME itself', () => {
    const zero = Buffer.alloc(8);
    expect(() => new FrameDecoder(() => {}).push(zero)).toThrow(FrameError);

    const big = Buffer.alloc(8);
    big.writeUInt32BE(MAX_FRAME + 1, 0);
    expect(() => new FrameDecoder(() => {}).push(big)).toThrow(FrameError);

    // The bad length found only once the prefix is complete across chunks.
    const dec = new FrameDecoder(() => {});
    dec.push(big.subarray(0, 2));
    expect(() => dec.push(big.subarray(2))).toThrow(FrameError);

    // A bad frame after good ones: the good ones come out first.
    const good = frame(Buffer.from([1, 2, 3]));
    const out: Buffer[] = [];
    expect(() => new FrameDecoder((x) => out.push(x)).push(Buffer.concat([good, zero]))).toThrow(FrameError);
    expect(out.length).toBe(1);

    // Exactly MAX_FRAME is fine (only its prefix is pushed: it waits for the rest).
    const max = Buffer.alloc(8);
    max.writeUInt32BE(MAX_FRAME, 0);
    const waiting: Buffer[] = [];
    expect(() => new FrameDecoder((x) => waiting.push(x)).push(max)).not.toThrow();
    expect(waiting.length).toBe(0);
  });
});

describe('ViFrame', () => {
  it('round-trips emitHeader + parse: vi and payload', () => {
    const payload = Buffer.from('an RCLAN packet, opaque to the switch');
    const buf = Buffer.alloc(VI_HEADER + payload.length);
    ViFrame.emitHeader(buf, 0xdeadbeef, payload.length);
    payload.copy(buf, VI_HEADER);
    expect(buf.readUInt32BE(0)).toBe(buf.length - LENGTH_PREFIX);
    expect(frameType(buf)).toBe(FrameType.Vi);
    const v = ViFrame.parse(buf);
    expect(v.vi).toBe(0xdeadbeef);
    expect(v.payload.equals(payload)).toBe(true);
    expect(v.payload.buffer).toBe(buf.buffer);
    // The switch rewrites vi in place.
    v.vi = 42;
    expect(ViFrame.parse(buf).vi).toBe(42);
    expect(buf.readUInt32BE(8)).toBe(42);
    // Empty payload.
    const empty = Buffer.alloc(VI_HEADER);
    ViFrame.emitHeader(empty, 1, 0);
    expect(ViFrame.parse(empty).payload.length).toBe(0);
  });

  it('rejects a too-short frame, a wrong type and a mismatched length prefix', () => {
    for (let n = 0; n < VI_HEADER; n++) {
      expect(() => ViFrame.parse(Buffer.alloc(n)), `${n} bytes`).toThrow(FrameError);
    }
    const good = Buffer.alloc(VI_HEADER + 4);
    ViFrame.emitHeader(good, 3, 4);
    expect(() => ViFrame.parse(good)).not.toThrow();

    const wrongType = Buffer.from(good);
    wrongType[LENGTH_PREFIX] = FrameType.Control;
    expect(() => ViFrame.parse(wrongType)).toThrow(/not a VI frame/);
    wrongType[LENGTH_PREFIX] = 0;
    expect(() => ViFrame.parse(wrongType)).toThrow(FrameError);

    for (const len of [0, good.length - LENGTH_PREFIX - 1, good.length - LENGTH_PREFIX + 1, good.length]) {
      const bad = Buffer.from(good);
      bad.writeUInt32BE(len, 0);
      expect(() => ViFrame.parse(bad), `prefix ${len}`).toThrow(/length prefix/);
    }
  });
});

describe('ViFrame statics (the switch hot path)', () => {
  it('viOf reads and setVi rewrites the VI in place, as the view does', () => {
    const buf = Buffer.alloc(VI_HEADER + 5);
    ViFrame.emitHeader(buf, 0xfffffffe, 5);
    expect(ViFrame.viOf(buf)).toBe(0xfffffffe);
    ViFrame.setVi(buf, 7);
    expect(ViFrame.viOf(buf)).toBe(7);
    expect(ViFrame.parse(buf).vi).toBe(7);
    expect(buf.readUInt32BE(8)).toBe(7);
    // Nothing else moved: prefix, type and payload are as emitted.
    expect(buf.readUInt32BE(0)).toBe(buf.length - LENGTH_PREFIX);
    expect(frameType(buf)).toBe(FrameType.Vi);
    // The view's setter is the same write.
    ViFrame.parse(buf).vi = 0;
    expect(ViFrame.viOf(buf)).toBe(0);
  });

  it('viOf is -1 for a frame too short to hold a VI header', () => {
    for (let n = 0; n < VI_HEADER; n++) expect(ViFrame.viOf(Buffer.alloc(n, 0xff)), `${n} bytes`).toBe(-1);
    expect(ViFrame.viOf(Buffer.alloc(VI_HEADER, 0xff))).toBe(0xffffffff);
  });

  it('works on a frame that is a subarray of a larger chunk (as FrameDecoder hands them out)', () => {
    const chunk = Buffer.alloc(3 + VI_HEADER + 2 + 9, 0xaa);
    const f = chunk.subarray(3, 3 + VI_HEADER + 2);
    ViFrame.emitHeader(f, 1234, 2);
    expect(ViFrame.viOf(f)).toBe(1234);
    ViFrame.setVi(f, 99);
    expect(chunk.readUInt32BE(3 + 8)).toBe(99);
    expect(chunk.subarray(3 + VI_HEADER + 2).every((b) => b === 0xaa)).toBe(true);
  });
});

describe('control frames', () => {
  it('emitControlFrame + controlBody round-trip, and controlBody refuses other frames', () => {
    const body = Buffer.from([9, 8, 7]);
    const f = emitControlFrame(body);
    expect(f.length).toBe(CONTROL_HEADER + body.length);
    expect(f.readUInt32BE(0)).toBe(f.length - LENGTH_PREFIX);
    expect(frameType(f)).toBe(FrameType.Control);
    expect(controlBody(f).equals(body)).toBe(true);
    // It decodes as a frame too.
    const out: Buffer[] = [];
    new FrameDecoder((x) => out.push(x)).push(f);
    expect(out.length).toBe(1);
    expect(out[0].equals(f)).toBe(true);

    const vi = Buffer.alloc(VI_HEADER);
    ViFrame.emitHeader(vi, 1, 0);
    expect(() => controlBody(vi)).toThrow(FrameError);
    expect(() => controlBody(Buffer.alloc(3))).toThrow(FrameError);
    expect(frameType(Buffer.alloc(LENGTH_PREFIX))).toBe(-1);
  });
});
