/**
 * IPv4 fragment reassembly, the partition's IP layer's state (smoltcp keeps
 * it in iface/fragmentation, not in wire: wire views hold no state). The
 * views and fragmentPlan stay in shared/wire/ipv4.ts.
 */
import { MAX_DATAGRAM, type Ipv4Packet } from '../../../../shared/wire/ipv4.ts';

/** A piece of a datagram's payload held until the rest arrives. */
interface Piece {
  start: number;
  data: Buffer;
}

/** One datagram being reassembled: pieces sorted by start, never overlapping. */
interface Partial {
  pieces: Piece[];
  /** Payload bytes held (the sum of the pieces' lengths). */
  held: number;
  /** Payload length, known once the fragment without MF arrived; -1 before. */
  total: number;
  /** Arrival of the first fragment: RFC 791's reassembly timer is not restarted by later ones. */
  firstSeen: number;
}

/**
 * Reassembles fragmented datagrams (RFC 791 section 3.2; RFC 815 gives the
 * hole bookkeeping, done here as a sorted list of received pieces, where the
 * holes are the gaps between them).
 *
 * Where fragments overlap, the data that arrived first wins: later bytes for
 * an already-filled range are discarded, so a crafted overlap cannot rewrite a
 * header that was already accepted (the concern of RFC 1858).
 *
 * Bounds: at most `maxDatagrams` partial datagrams and `maxBytes` payload
 * bytes held. When a new fragment would exceed them, the oldest other partial
 * datagrams are dropped first (the most likely never to complete); a single
 * datagram that alone would exceed `maxBytes` is dropped itself.
 */
/**
 * Pieces one datagram may arrive in: at RFC 791's smallest MTU (68 bytes, 48 of data per
 * fragment) a 64 KiB datagram takes 1366; more than that is an attack, not a path.
 */
const MAX_PIECES = 1400;

export class Reassembler {
  readonly stats = { completed: 0, timedOut: 0, dropped: 0 };
  private readonly partials = new Map<string, Partial>();
  private heldBytes = 0;
  private readonly timeoutMs: number;
  private readonly maxDatagrams: number;
  private readonly maxBytes: number;

  constructor(opts: { timeoutMs: number; maxDatagrams: number; maxBytes: number }) {
    if (!(opts.timeoutMs > 0) || !(opts.maxDatagrams >= 1) || !(opts.maxBytes >= 1)) {
      throw new RangeError('Reassembler bounds must be positive');
    }
    this.timeoutMs = opts.timeoutMs;
    this.maxDatagrams = opts.maxDatagrams;
    this.maxBytes = opts.maxBytes;
  }

  /** Partial datagrams held. */
  get pending(): number {
    return this.partials.size;
  }
  /** Payload bytes held across all partial datagrams. */
  get bytes(): number {
    return this.heldBytes;
  }

  /**
   * Adds a packet. Returns the whole payload when this fragment completes its
   * datagram (a new buffer), or the packet's own payload view when it is not
   * a fragment; undefined while incomplete or when the datagram was dropped.
   */
  push(p: Ipv4Packet, now: number): Buffer | undefined {
    if (!p.isFragment) return p.payload;
    const key = `${p.src}/${p.dst}/${p.protocol}/${p.id}`;
    let d = this.partials.get(key);
    if (d !== undefined && now - d.firstSeen >= this.timeoutMs) {
      this.remove(key, d);
      this.stats.timedOut++;
      d = undefined;
    }
    const data = p.payload;
    const start = p.fragmentOffset;
    const end = start + data.length;
    if (p.headerLength + end > MAX_DATAGRAM) return this.drop(key, d);
    // RFC 791: every fragment but the last carries a multiple of 8 bytes. Refusing others (and
    // empty ones) keeps a sender from splitting a datagram into thousands of 1-byte pieces.
    if ((p.moreFragments && (data.length === 0 || data.length % 8 !== 0)) || (d !== undefined && d.pieces.length >= MAX_PIECES)) return this.drop(key, d);
    if (d === undefined) {
      while (this.partials.size >= this.maxDatagrams) this.evictOldest(undefined);
      d = { pieces: [], held: 0, total: -1, firstSeen: now };
      this.partials.set(key, d);
    }
    const pieces = d.pieces;
    const lastEnd = pieces.length === 0 ? 0 : pieces[pieces.length - 1].start + pieces[pieces.length - 1].data.length;
    if (!p.moreFragments) {
      // Two different ends, or data past the end, cannot be one datagram.
      if ((d.total >= 0 && d.total !== end) || lastEnd > end) return this.drop(key, d);
      d.total = end;
    } else if (d.total >= 0 && end > d.total) {
      return this.drop(key, d);
    }

    // Find the holes that this fragment fills: triples (insert index, from, to).
    const gaps: number[] = [];
    let added = 0;
    let cur = start;
    let i = 0;
    for (; i < pieces.length && cur < end; i++) {
      const ps = pieces[i].start;
      const pe = ps + pieces[i].data.length;
      if (pe <= cur) continue;
      if (ps >= end) break;
      if (ps > cur) {
        gaps.push(i, cur, ps);
        added += ps - cur;
      }
      cur = pe;
    }
    if (cur < end) {
      gaps.push(i, cur, end);
      added += end - cur;
    }

    if (added > 0) {
      if (d.held + added > this.maxBytes) return this.drop(key, d);
      while (this.heldBytes + added > this.maxBytes) this.evictOldest(d);
      // Copy: the packet's buffer belongs to the receive path and is reused.
      for (let g = gaps.length - 3; g >= 0; g -= 3) {
        const from = gaps[g + 1];
        const to = gaps[g + 2];
        pieces.splice(gaps[g], 0, { start: from, data: Buffer.from(data.subarray(from - start, to - start)) });
      }
      d.held += added;
      this.heldBytes += added;
    }

    if (d.total < 0 || d.held !== d.total) return undefined;
    // Pieces never overlap and all lie below total, so held === total means no hole is left.
    const whole = Buffer.allocUnsafe(d.total);
    for (const piece of pieces) piece.data.copy(whole, piece.start);
    this.remove(key, d);
    this.stats.completed++;
    return whole;
  }

  /** Drops partial datagrams whose first fragment is `timeoutMs` old; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const [key, d] of this.partials) {
      if (now - d.firstSeen >= this.timeoutMs) {
        this.remove(key, d);
        n++;
      }
    }
    this.stats.timedOut += n;
    return n;
  }

  private drop(key: string, d: Partial | undefined): undefined {
    if (d !== undefined) this.remove(key, d);
    this.stats.dropped++;
    return undefined;
  }

  private remove(key: string, d: Partial): void {
    this.partials.delete(key);
    this.heldBytes -= d.held;
  }

  /** Map order is insertion order, i.e. oldest first. */
  private evictOldest(keep: Partial | undefined): void {
    for (const [key, d] of this.partials) {
      if (d === keep) continue;
      this.drop(key, d);
      return;
    }
  }
}
