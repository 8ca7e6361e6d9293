/**
 * Bulk transfer workload, shared by the partition's apps and admin verbs
 * (services/lpar) and the host-side benches (scripts/bench), which must not
 * import partition code: a deterministic byte pattern, and a source that
 * streams it with backpressure and reads back the sink's answer. It talks to
 * any Duplex `connect` returns (the partition's `net`, or node:net for the
 * kernel baseline), so both sides of a comparison do the same work.
 */
import crypto from 'node:crypto';
import type { Duplex } from 'node:stream';

/** Deterministic bytes (xorshift32): the same seed gives the same stream. */
export function fillPattern(seed: number, size: number): Buffer {
  // A fresh, unpooled buffer starts 4-aligned, so the words are written through a Uint32Array
  // (three times faster than writeUInt32LE); on little-endian hosts the bytes are the same.
  const b = Buffer.allocUnsafeSlow(size);
  const n = size >>> 2;
  const w = new Uint32Array(b.buffer, b.byteOffset, n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x;
  }
  for (let i = n * 4; i < size; i++) b[i] = i & 0xff;
  return b;
}

export interface BulkResult {
  bytes: number;
  sha256: string;
  answer: string;
  elapsedMs: number;
}

/**
 * Connects (through `connect`: the partition's `net`, or node:net for the
 * kernel baseline, so both do the same work), sends `bytes` of pattern data in
 * 64 KiB writes with backpressure, half-closes, and returns what the peer
 * answered (a bulk sink's digest). `repeat` sends one chunk over and over
 * instead of making fresh pattern data.
 */
export function bulkSource(connect: (o: { port: number; host: string }) => Duplex, host: string, port: number, bytes: number, seed: number, repeat = false, hashed = true): Promise<BulkResult> {
  const chunk = 64 * 1024;
  const same = repeat || !hashed ? fillPattern(seed, chunk) : undefined;
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    const t0 = performance.now();
    const s = connect({ port, host });
    let answer = '';
    let index = 0;
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(chunk, bytes - sent);
        const data = same ? (n === chunk ? same : same.subarray(0, n)) : fillPattern(seed + index++, n);
        if (hashed) hash.update(data);
        sent += n;
        if (!s.write(data)) return;
      }
      s.end();
    };
    s.on('connect', pump);
    s.on('drain', pump);
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.on('error', reject);
    // Unhashed (against a count-sink) the expected answer is the length.
    s.on('close', () => resolve({ bytes: sent, sha256: hashed ? hash.digest('hex') : String(sent), answer, elapsedMs: performance.now() - t0 }));
  });
}
