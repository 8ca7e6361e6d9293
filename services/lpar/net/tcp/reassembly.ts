/**
 * The out-of-order receive queue of one TCP connection.
 *
 * RFC 9293 section 3.10.7.4 (segment arrives, states SYN-RECEIVED onward):
 * segments are processed in sequence order, and "segments with higher
 * beginning sequence numbers may be held for later processing". This queue
 * holds them: it keeps only data at or beyond RCV.NXT, stores every byte at
 * most once (what is already held wins, the rest of an overlapping segment
 * fills the gaps around it), and gives back the run that starts at RCV.NXT
 * once the hole before it is filled.
 *
 * Nothing is copied: the queue keeps `subarray` views of the buffers passed
 * to `insert`, so the caller must not reuse those buffers while the data is
 * held.
 *
 * Sequence numbers are compared modulo 2^32 (RFC 9293 section 3.4); all held
 * data must lie within 2^31 of RCV.NXT, which the receive window guarantees.
 * Whether a segment is within the receive window at all (RFC 9293 section
 * 3.10.7.4, first check) is for the caller to decide.
 */
import { seqAdd, seqGt, seqSub } from '../../../../shared/wire/tcp.ts';

interface Held {
  seq: number;
  data: Buffer;
  /** Arrival order of the newest segment that landed on this data, for SACK. */
  stamp: number;
}

export class Reassembly {
  /** Disjoint, non-empty, in sequence order. */
  private readonly segs: Held[] = [];
  private held = 0;
  private clock = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new RangeError(`Reassembly: bad maxBytes ${maxBytes}`);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.held;
  }

  get isEmpty(): boolean {
    return this.segs.length === 0;
  }

  /**
   * Holds the part of the segment [seq, seq + data.length) that is at or
   * beyond `rcvNxt` and not held already.
   *
   * At most `maxBytes` are held. New data that does not fit is refused,
   * except that data nearer RCV.NXT displaces held data further out: the
   * receiver may discard data it has not acknowledged even after reporting
   * it in SACK (RFC 2018 section 8), and keeping the lower data means the
   * hole at RCV.NXT can always be filled, so a full queue cannot wedge the
   * connection.
   */
  insert(seq: number, data: Buffer, rcvNxt: number): void {
    const nxt = rcvNxt >>> 0;
    this.prune(nxt);
    let pos = seq >>> 0;
    let off = 0;
    // RFC 9293 section 3.10.7.4: data before RCV.NXT has been received
    // already; trim it off the front.
    const late = seqSub(nxt, pos);
    if (late > 0) {
      if (late >= data.length) return;
      off = late;
      pos = nxt;
    }
    if (off >= data.length) return;
    const stamp = ++this.clock;
    let i = this.firstEndingAfter(pos);
    while (off < data.length) {
      const h = this.segs[i];
      if (h !== undefined && !seqGt(h.seq, pos)) {
        // Held data covers pos: keep what is held, skip past it. It still
        // counts as the most recent arrival for SACK (RFC 2018 section 4).
        h.stamp = stamp;
        const skip = seqSub(seqAdd(h.seq, h.data.length), pos);
        off += skip;
        pos = seqAdd(pos, skip);
        i++;
        continue;
      }
      // A gap before the next held segment (or the end of the new data).
      const gap = h === undefined ? data.length - off : Math.min(data.length - off, seqSub(h.seq, pos));
      const placed = this.place(i, pos, data.subarray(off, off + gap), stamp);
      if (placed < gap) return;
      i++;
      off += gap;
      pos = seqAdd(pos, gap);
    }
  }

  /**
   * Removes and returns the data that starts exactly at `rcvNxt` and runs
   * without a gap, in sequence order; empty while the hole at `rcvNxt`
   * remains. Held data before `rcvNxt` (delivered some other way) is dropped.
   */
  take(rcvNxt: number): Buffer[] {
    const nxt = rcvNxt >>> 0;
    this.prune(nxt);
    let n = 0;
    let pos = nxt;
    while (n < this.segs.length && this.segs[n].seq === pos) {
      pos = seqAdd(pos, this.segs[n].data.length);
      n++;
    }
    if (n === 0) return [];
    const out = new Array<Buffer>(n);
    for (let k = 0; k < n; k++) {
      out[k] = this.segs[k].data;
      this.held -= out[k].length;
    }
    this.segs.splice(0, n);
    return out;
  }

  /**
   * SACK blocks (RFC 2018 section 3) for the held data: [left edge, right
   * edge), the right edge being the sequence number just past the block.
   * RFC 2018 section 4: the first block is the one holding the most recently
   * received segment, then the others by how recently they were added to,
   * up to `max` of them (3 fit beside timestamps, 4 without).
   */
  sackBlocks(max = 3): Array<[number, number]> {
    if (max <= 0 || this.segs.length === 0) return [];
    const blocks: Array<{ left: number; right: number; stamp: number }> = [];
    for (const h of this.segs) {
      const last = blocks[blocks.length - 1];
      const end = seqAdd(h.seq, h.data.length);
      if (last !== undefined && last.right === h.seq) {
        last.right = end;
        if (h.stamp > last.stamp) last.stamp = h.stamp;
      } else {
        blocks.push({ left: h.seq, right: end, stamp: h.stamp });
      }
    }
    blocks.sort((a, b) => b.stamp - a.stamp);
    const n = Math.min(max, blocks.length);
    const out = new Array<[number, number]>(n);
    for (let k = 0; k < n; k++) out[k] = [blocks[k].left, blocks[k].right];
    return out;
  }

  clear(): void {
    this.segs.length = 0;
    this.held = 0;
  }

  /** Drops or trims held data that lies before `rcvNxt`. */
  private prune(rcvNxt: number): void {
    let n = 0;
    while (n < this.segs.length) {
      const h = this.segs[n];
      const late = seqSub(rcvNxt, h.seq);
      if (late <= 0) break;
      if (late < h.data.length) {
        h.data = h.data.subarray(late);
        h.seq = rcvNxt;
        this.held -= late;
        break;
      }
      this.held -= h.data.length;
      n++;
    }
    if (n > 0) this.segs.splice(0, n);
  }

  /** Index of the first held segment that ends after `pos`. */
  private firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const h = this.segs[mid];
      if (seqGt(seqAdd(h.seq, h.data.length), pos)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * Stores `piece` (which starts at `pos`, in a gap) at index `i`, making
   * room from the top of the queue if needed; returns how many of its bytes
   * were kept.
   */
  private place(i: number, pos: number, piece: Buffer, stamp: number): number {
    let free = this.maxBytes - this.held;
    // Everything at index i and above lies beyond this piece: shed it from
    // the far end (RFC 2018 section 8 reneging) until the piece fits.
    while (free < piece.length && this.segs.length > i) {
      const top = this.segs[this.segs.length - 1];
      const cut = Math.min(top.data.length, piece.length - free);
      if (cut === top.data.length) this.segs.pop();
      else top.data = top.data.subarray(0, top.data.length - cut);
      this.held -= cut;
      free += cut;
    }
    const len = Math.min(free, piece.length);
    if (len === 0) return 0;
    this.segs.splice(i, 0, { seq: pos, data: len === piece.length ? piece : piece.subarray(0, len), stamp });
    this.held += len;
    return len;
  }
}
