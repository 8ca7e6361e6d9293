import { describe, expect, it } from 'vitest';
import { Reassembly } from '../../services/lpar/net/tcp/reassembly.ts';
import { seqAdd, seqSub } from '../../shared/wire/tcp.ts';
import { prng, randomBytes, shuffle } from '../helpers/prng.ts';

interface Piece {
  off: number;
  len: number;
}

/** A random segmentation covering [0, n), plus random overlapping pieces and exact duplicates. */
function pieces(r: () => number, n: number, maxSeg: number): Piece[] {
  const out: Piece[] = [];
  for (let off = 0; off < n; ) {
    const len = Math.min(n - off, 1 + ((r() * maxSeg) | 0));
    out.push({ off, len });
    off += len;
  }
  const extra = (r() * out.length) | 0;
  for (let k = 0; k < extra; k++) {
    if (r() < 0.5) {
      out.push({ ...out[(r() * out.length) | 0] });
    } else {
      const off = (r() * n) | 0;
      out.push({ off, len: Math.min(n - off, 1 + ((r() * 2 * maxSeg) | 0)) });
    }
  }
  return out;
}

/** Each piece in a buffer of its own, as it would arrive off the wire. */
function segment(payload: Buffer, p: Piece): Buffer {
  return Buffer.from(payload.subarray(p.off, p.off + p.len));
}

/** The queue's bookkeeping, or what is wrong with it: blocks disjoint, beyond rcvNxt, summing to `bytes`. */
function invariantError(q: Reassembly, rcvNxt: number): string | undefined {
  const blocks = q.sackBlocks(Number.MAX_SAFE_INTEGER).sort((a, b) => seqSub(a[0], b[0]));
  let total = 0;
  let prevRight: number | undefined;
  for (const [left, right] of blocks) {
    const len = seqSub(right, left);
    if (len <= 0) return `empty block [${left}, ${right})`;
    if (seqSub(left, rcvNxt) < 0) return `block [${left}, ${right}) before rcvNxt ${rcvNxt}`;
    if (prevRight !== undefined && seqSub(left, prevRight) <= 0) return `block [${left}, ${right}) not apart from the previous one`;
    prevRight = right;
    total += len;
  }
  if (total !== q.bytes) return `blocks hold ${total} bytes, bytes says ${q.bytes}`;
  if (q.isEmpty !== (q.bytes === 0)) return `isEmpty ${q.isEmpty} with ${q.bytes} bytes`;
  if (q.bytes > q.maxBytes) return `${q.bytes} bytes held, over maxBytes ${q.maxBytes}`;
  return undefined;
}

function checkInvariants(q: Reassembly, rcvNxt: number): void {
  const err = invariantError(q, rcvNxt);
  if (err !== undefined) expect.fail(err);
}

/**
 * A receiver: every arriving segment is inserted at the current RCV.NXT and
 * whatever became contiguous is taken. Returns the delivered stream.
 */
function receive(q: Reassembly, isn: number, payload: Buffer, order: Piece[]): { stream: Buffer; rcvNxt: number } {
  const delivered: Buffer[] = [];
  let rcvNxt = isn;
  for (const p of order) {
    q.insert(seqAdd(isn, p.off), segment(payload, p), rcvNxt);
    for (const b of q.take(rcvNxt)) {
      delivered.push(b);
      rcvNxt = seqAdd(rcvNxt, b.length);
    }
    checkInvariants(q, rcvNxt);
  }
  return { stream: Buffer.concat(delivered), rcvNxt };
}

describe('Reassembly', () => {
  it('passes in-order data straight through', () => {
    const q = new Reassembly(1 << 16);
    const payload = Buffer.from('the quick brown fox jumps over the lazy dog');
    const order = [0, 4, 10, 16, 20, 26, 31, 35].map((off, i, a) => ({ off, len: (a[i + 1] ?? payload.length) - off }));
    const { stream, rcvNxt } = receive(q, 1000, payload, order);
    expect(stream).toEqual(payload);
    expect(rcvNxt).toBe(1000 + payload.length);
    expect(q.isEmpty).toBe(true);
  });

  it('holds reversed segments until the first arrives', () => {
    const q = new Reassembly(1 << 16);
    const payload = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    const rcvNxt = 7;
    for (let off = 30; off >= 6; off -= 6) {
      q.insert(rcvNxt + off, payload.subarray(off, off + 6), rcvNxt);
      expect(q.take(rcvNxt)).toEqual([]);
    }
    expect(q.bytes).toBe(30);
    q.insert(rcvNxt, payload.subarray(0, 6), rcvNxt);
    const out = q.take(rcvNxt);
    expect(out.length).toBe(6);
    expect(Buffer.concat(out)).toEqual(payload);
    expect(q.isEmpty).toBe(true);
    expect(q.bytes).toBe(0);
  });

  it('keeps views of the inserted buffers rather than copies', () => {
    const q = new Reassembly(1 << 16);
    const frame = Buffer.from('HEADERpayload-bytes');
    const data = frame.subarray(6);
    q.insert(500, data, 490);
    q.insert(490, Buffer.from('0123456789'), 490);
    const out = q.take(490);
    expect(out.length).toBe(2);
    expect(out[1].buffer).toBe(frame.buffer);
    expect(out[1].byteOffset).toBe(frame.byteOffset + 6);
  });

  it('trims data before rcvNxt and data already held', () => {
    const q = new Reassembly(1 << 16);
    q.insert(90, Buffer.from('xxxxxxxxxxAB'), 100); // 10 bytes are old
    expect(q.bytes).toBe(2);
    q.insert(80, Buffer.from('old'), 100);
    expect(q.bytes).toBe(2);
    q.insert(110, Buffer.from('CDEF'), 100);
    // Overlaps both held runs: only the gap between them is new, and held bytes win.
    q.insert(100, Buffer.from('abcdefghijklmnopqrstuvwxyz'), 100);
    expect(Buffer.concat(q.take(100)).toString()).toBe('ABcdefghijCDEFopqrstuvwxyz');
  });

  it('take returns nothing across a hole and drops data delivered some other way', () => {
    const q = new Reassembly(1 << 16);
    q.insert(200, Buffer.from('0123456789'), 100);
    q.insert(300, Buffer.from('abc'), 100);
    expect(q.take(100)).toEqual([]);
    expect(q.take(199)).toEqual([]);
    // The caller delivered [100, 205) directly; the held run resumes at 205.
    expect(Buffer.concat(q.take(205)).toString()).toBe('56789');
    expect(q.bytes).toBe(3);
    q.insert(210, Buffer.from('X'), 250);
    expect(q.bytes).toBe(3);
    q.clear();
    expect(q.isEmpty).toBe(true);
    expect(q.bytes).toBe(0);
    expect(q.sackBlocks()).toEqual([]);
  });

  it('reassembles shuffled random segmentations with overlaps and duplicates byte-exact', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = prng(seed);
      const n = 1 + ((r() * 6000) | 0);
      const payload = randomBytes(r, n);
      // Every fourth run starts just below the wrap of the sequence space.
      const isn = seed % 4 === 0 ? (0xffffffff - ((r() * n) | 0)) >>> 0 : (r() * 2 ** 32) >>> 0;
      const order = shuffle(r, pieces(r, n, 1 + ((r() * 1500) | 0)));
      const q = new Reassembly(1 << 20);
      const { stream, rcvNxt } = receive(q, isn, payload, order);
      expect(stream.length, `seed ${seed}`).toBe(n);
      expect(stream.equals(payload), `seed ${seed}`).toBe(true);
      expect(rcvNxt).toBe(seqAdd(isn, n));
      expect(q.isEmpty).toBe(true);
    }
  });

  it('reassembles across the wrap of the sequence space', () => {
    const q = new Reassembly(1 << 16);
    const payload = randomBytes(prng(7), 512);
    const isn = 0xffffff00;
    q.insert(seqAdd(isn, 384), payload.subarray(384), isn);
    q.insert(seqAdd(isn, 200), payload.subarray(200, 300), isn); // straddles zero
    q.insert(seqAdd(isn, 250), payload.subarray(250, 400), isn);
    expect(q.sackBlocks()).toEqual([[0xffffffc8, 0x100]]);
    expect(q.bytes).toBe(312);
    expect(q.take(isn)).toEqual([]);
    q.insert(isn, payload.subarray(0, 256), isn);
    expect(q.bytes).toBe(512);
    const out = q.take(isn);
    expect(out.map((b) => b.length)).toEqual([200, 100, 84, 128]);
    expect(Buffer.concat(out)).toEqual(payload);
    expect(q.isEmpty).toBe(true);
  });

  it('bounds what it holds by maxBytes, preferring data nearer rcvNxt', () => {
    const q = new Reassembly(1000);
    q.insert(2000, Buffer.alloc(800, 1), 0);
    q.insert(5000, Buffer.alloc(400, 2), 0);
    expect(q.bytes).toBe(1000);
    expect(q.sackBlocks(4)).toEqual([
      [5000, 5200],
      [2000, 2800],
    ]);
    // Data beyond everything held does not fit: refused.
    q.insert(6000, Buffer.alloc(100, 3), 0);
    expect(q.bytes).toBe(1000);
    expect(q.sackBlocks(4)).toEqual([
      [5000, 5200],
      [2000, 2800],
    ]);
    // The segment at rcvNxt displaces held data from the far end.
    q.insert(0, Buffer.alloc(600, 4), 0);
    expect(q.bytes).toBe(1000);
    expect(q.sackBlocks(4)).toEqual([
      [0, 600],
      [2000, 2400],
    ]);
    expect(Buffer.concat(q.take(0))).toEqual(Buffer.alloc(600, 4));
    expect(q.bytes).toBe(400);
    // A segment larger than the whole queue keeps what fits, lowest first.
    q.insert(600, Buffer.alloc(3000, 5), 600);
    expect(q.bytes).toBe(1000);
    expect(Buffer.concat(q.take(600))).toEqual(Buffer.alloc(1000, 5));
    expect(new Reassembly(0).bytes).toBe(0);
  });

  it('delivers the exact stream under a tight maxBytes with retransmission rounds', () => {
    for (let seed = 100; seed < 120; seed++) {
      const r = prng(seed);
      const n = 2000 + ((r() * 8000) | 0);
      const payload = randomBytes(r, n);
      const isn = (0xffffffff - ((r() * n) | 0)) >>> 0;
      const q = new Reassembly(200 + ((r() * 2000) | 0));
      const all = pieces(r, n, 1 + ((r() * 700) | 0));
      const delivered: Buffer[] = [];
      let rcvNxt = isn;
      for (let round = 0; seqSub(rcvNxt, isn) < n; round++) {
        expect(round, `seed ${seed}`).toBeLessThan(1000);
        for (const p of shuffle(r, all.slice())) {
          q.insert(seqAdd(isn, p.off), segment(payload, p), rcvNxt);
          checkInvariants(q, rcvNxt);
          for (const b of q.take(rcvNxt)) {
            delivered.push(b);
            rcvNxt = seqAdd(rcvNxt, b.length);
          }
        }
      }
      expect(Buffer.concat(delivered).equals(payload), `seed ${seed}`).toBe(true);
    }
  });

  it('reports SACK blocks, most recently changed first (RFC 2018)', () => {
    const q = new Reassembly(1 << 16);
    q.insert(100, Buffer.alloc(100), 0);
    q.insert(300, Buffer.alloc(100), 0);
    q.insert(500, Buffer.alloc(100), 0);
    expect(q.sackBlocks()).toEqual([
      [500, 600],
      [300, 400],
      [100, 200],
    ]);
    q.insert(200, Buffer.alloc(50), 0); // extends the first block
    expect(q.sackBlocks()).toEqual([
      [100, 250],
      [500, 600],
      [300, 400],
    ]);
    q.insert(310, Buffer.alloc(10), 0); // a duplicate still counts as the latest arrival
    expect(q.sackBlocks(2)).toEqual([
      [300, 400],
      [100, 250],
    ]);
    q.insert(700, Buffer.alloc(1), 0);
    q.insert(800, Buffer.alloc(1), 0);
    expect(q.sackBlocks()).toEqual([
      [800, 801],
      [700, 701],
      [300, 400],
    ]);
    expect(q.sackBlocks(4).length).toBe(4);
    expect(q.sackBlocks(0)).toEqual([]);
    q.take(100);
    expect(q.sackBlocks(5)).toEqual([
      [800, 801],
      [700, 701],
      [300, 400],
      [500, 600],
    ]);
  });

  it('reports SACK edges modulo 2^32', () => {
    const q = new Reassembly(1 << 16);
    q.insert(0xfffffff0, Buffer.alloc(0x20), 0xffffff00);
    expect(q.sackBlocks()).toEqual([[0xfffffff0, 0x10]]);
  });
});
