import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FRAME_RING_HEADER, FrameRing, frameRingBytes } from '../../shared/ring/frame-ring.ts';
import { createShared } from '../../shared/shm/shm-file.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

const frame = (n: number, v = n & 0xff) => Buffer.alloc(n, v);
const ringOf = (dataBytes: number) => FrameRing.format(new SharedArrayBuffer(frameRingBytes(dataBytes)), dataBytes);
const drain = (r: FrameRing) => {
  const out: Buffer[] = [];
  r.consume((f) => out.push(Buffer.from(f)));
  return out;
};

describe('frame ring', () => {
  it('is empty when laid out, and gives frames back in order, whole', () => {
    const r = ringOf(256);
    expect(r.empty).toBe(true);
    expect(r.pop()).toBeUndefined();
    expect(r.push(Buffer.from('hello'))).toBe(true);
    expect(r.push(Buffer.alloc(0))).toBe(true);
    expect(r.push(Buffer.from('xxworldxx'), 2, 7)).toBe(true);
    expect(r.empty).toBe(false);
    expect(drain(r).map((f) => f.toString())).toEqual(['hello', '', 'world']);
    expect(r.empty).toBe(true);
    expect(r.usedBytes).toBe(0);
  });

  it('refuses a push when full, and takes it once the consumer made room', () => {
    const r = ringOf(256);
    // 60-byte frames are 64-byte records: four fill the 256 bytes.
    for (let i = 0; i < 4; i++) expect(r.push(frame(60, i))).toBe(true);
    expect(r.usedBytes).toBe(256);
    expect(r.push(frame(1))).toBe(false);
    expect(r.pop()).toEqual(frame(60, 0));
    expect(r.push(frame(60, 4))).toBe(true);
    expect(drain(r).map((f) => f[0])).toEqual([1, 2, 3, 4]);
  });

  it('wraps: a record that does not fit before the end goes to the start, contiguous', () => {
    const r = ringOf(256);
    const seen: number[] = [];
    let sent = 0;
    // Sizes that leave odd tails, many times round the ring.
    for (let round = 0; round < 200; round++) {
      const n = [1, 37, 90, 13, 100, 3][round % 6];
      while (!r.push(frame(n, sent & 0xff))) r.consume((f) => seen.push(f.length));
      sent++;
    }
    r.consume((f) => seen.push(f.length));
    expect(seen.length).toBe(200);
    expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => [1, 37, 90, 13, 100, 3][i % 6]));
    expect(r.corrupt).toBe(false);
  });

  it('hands the consumer views into the ring, with a bound on how many', () => {
    const r = ringOf(1024);
    for (let i = 0; i < 5; i++) r.push(frame(10, i));
    const views: Buffer[] = [];
    expect(r.consume((f) => views.push(f), 2)).toBe(2);
    expect(views[0].buffer).toBe(r.buffer.buffer);
    expect(r.consume(() => {})).toBe(3);
  });

  it('refuses a frame larger than half the ring (it could never fit wherever the cursors stand)', () => {
    const r = ringOf(256);
    expect(r.maxFrame).toBe(124);
    expect(r.push(frame(124))).toBe(true);
    expect(() => r.push(frame(125))).toThrow(RangeError);
    expect(() => r.push(frame(10_000))).toThrow(/at most 124/);
  });

  it('marks itself corrupt, never throws, when the other side wrote a bad length', () => {
    const r = ringOf(256);
    r.push(frame(8));
    r.buffer.writeUInt32LE(200, FRAME_RING_HEADER);
    expect(r.pop()).toBeUndefined();
    expect(r.corrupt).toBe(true);
    const s = ringOf(256);
    s.push(frame(8));
    s.buffer.writeUInt32LE(100, FRAME_RING_HEADER);
    expect(drain(s)).toEqual([]);
    expect(s.corrupt).toBe(true);
  });

  it('opens what another party laid out, and refuses memory that is not a ring', () => {
    const mem = new SharedArrayBuffer(frameRingBytes(128));
    const a = FrameRing.format(mem, 128);
    const b = FrameRing.open(mem);
    a.push(Buffer.from('across'));
    expect(b.pop()?.toString()).toBe('across');
    expect(() => FrameRing.open(new SharedArrayBuffer(256))).toThrow(/bad magic/);
    expect(() => FrameRing.format(new SharedArrayBuffer(100), 128)).toThrow(RangeError);
    expect(() => FrameRing.format(new SharedArrayBuffer(1024), 100)).toThrow(/power of two/);
  });

  describe('across processes, through a /dev/shm file', () => {
    const file = path.join('/dev/shm', `lparlab-frame-ring-test-${process.pid}`);
    afterAll(() => fs.rmSync(file, { force: true }));

    it('carries 5000 frames of 0..2999 bytes to a child in order, with backpressure', async () => {
      const dataBytes = 64 * 1024;
      const bytes = frameRingBytes(dataBytes);
      const ring = FrameRing.format(createShared(file, bytes), dataBytes);
      const COUNT = 5000;
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'helpers', 'frame-ring-child.ts'), file, String(bytes), String(COUNT)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      let sum = 0;
      let full = 0;
      for (let i = 0; i < COUNT; i++) {
        const f = frame(i % 3000, i & 0xff);
        while (!ring.push(f)) {
          full++;
          await new Promise((r) => setImmediate(r));
        }
        sum += f.length;
      }
      expect(await exited).toBe(0);
      expect(err).toBe('');
      expect(JSON.parse(out)).toEqual({ got: COUNT, bad: 0, sum, corrupt: false });
      // 7.5 MB through 64 KiB: the producer must have waited for the child.
      expect(full).toBeGreaterThan(0);
    }, 30_000);
  });
});
