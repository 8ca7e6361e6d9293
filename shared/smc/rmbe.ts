/**
 * The remote memory buffer element (RMBE) of one SMC-R connection (seed 002,
 * Figs. 8A, 8B, 9): the memory a side registers on both links of its link
 * group, into which the peer RDMA-WRITEs the data it sends — and, into the
 * header, "the sender's copy of the consumer cursor" (Fig. 8B step 863) of the
 * data this side sent the other way.
 *
 *   0   u32 LE consumer cursor of this side's sent data, written by the peer
 *   4   reserved (zero) up to RMBE_HEADER
 *   64  ring of `ringBytes` (a power of two): the peer's data for this side
 *
 * Cursors are as in shared/smc/smb.ts (wrap·R + count, one 32-bit word):
 * ring byte `pos` of the peer's RMBE is at offset RMBE_HEADER + pos of its
 * region, which is where an RDMA WRITE of data puts it. The header word is
 * little-endian, as the host order of the platform's machines, so a 4-byte
 * RDMA WRITE of emitRmbeCursor's bytes lands as the peer reads it.
 */
import { MAX_RING_BYTES, MIN_RING_BYTES } from './smb.ts';

export const RMBE_HEADER = 64;
/** The offset of the consumer cursor word in an RMBE. */
export const RMBE_CONS_OFFSET = 0;
/** An RMBE cursor word's length: the payload of the RDMA WRITE that moves it. */
export const RMBE_CURSOR_BYTES = 4;
/** The ring bounds are SMC-D's (and the CLC's): one `ringBytes` setting serves both paths. */
export const MIN_RMBE_RING_BYTES = MIN_RING_BYTES;

/** Whether `n` can be an RMBE's ring size: a power of two within the platform's bounds. */
export function validRmbeRingBytes(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_RMBE_RING_BYTES && n <= MAX_RING_BYTES && (n & (n - 1)) === 0;
}

/** Where ring byte `pos` (0 ≤ pos < ringBytes) of an RMBE is, from the region's start: an RDMA WRITE's offset. */
export function rmbeRingOffset(pos: number): number {
  return RMBE_HEADER + pos;
}

/** The bytes of an RDMA WRITE that sets a peer's consumer cursor word to `cursor` (Fig. 8B step 863, Fig. 9 step 975). */
export function emitRmbeCursor(target: Buffer, cursor: number): Buffer {
  if (target.length < RMBE_CURSOR_BYTES) throw new RangeError('an RMBE cursor is 4 bytes');
  target.writeUInt32LE(cursor >>> 0, 0);
  return target;
}

/** A view of this side's RMBE: the header word the peer writes, and the ring it writes into. */
export class RmbeView {
  /** The ring: the peer's data for this side. */
  readonly ring: Buffer;

  private constructor(readonly buffer: Buffer) {
    this.ring = buffer.subarray(RMBE_HEADER);
  }

  /** A fresh RMBE (zeroed: cursor 0) with a ring of `ringBytes`. */
  static create(ringBytes: number): RmbeView {
    if (!validRmbeRingBytes(ringBytes)) throw new RangeError(`RMBE ring must be a power of two in ${MIN_RMBE_RING_BYTES}..${MAX_RING_BYTES}, got ${ringBytes}`);
    return new RmbeView(Buffer.alloc(RMBE_HEADER + ringBytes));
  }

  /** A view of an RMBE's bytes (its header and a power-of-two ring). */
  static open(buf: Buffer): RmbeView {
    if (!validRmbeRingBytes(buf.length - RMBE_HEADER)) throw new RangeError(`an RMBE is ${RMBE_HEADER} bytes of header and a power-of-two ring, not ${buf.length} bytes`);
    return new RmbeView(buf);
  }

  get ringBytes(): number {
    return this.ring.length;
  }

  /** How far the peer has consumed what this side sent (its RDMA-written copy). */
  get consumerCursor(): number {
    return this.buffer.readUInt32LE(RMBE_CONS_OFFSET);
  }
}
