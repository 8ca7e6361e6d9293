/**
 * A ring of variable-length frames over shared memory, one producer and one
 * consumer (which may be two processes): what HiperSockets' (iQDIO) internal
 * queues and a QDIO adapter's SBAL queues carry — whole frames, in order,
 * with the producer held back while the consumer is behind. The memory is a
 * SharedArrayBuffer (two threads) or a Buffer over an mmap'd /dev/shm file
 * (two processes), as the SMB of shared/smc/smb.ts.
 *
 *   header (64 bytes), Int32 words:
 *     0 magic 'FRNG'   1 version   2 data bytes R (a power of two)
 *     3 producer cursor (written by the producer only)
 *     4 consumer cursor (written by the consumer only)
 *   data (R bytes): records, each 4-byte aligned
 *     u32 LE length, then the frame, padded to a multiple of 4
 *     a length of PAD_MARK: the rest up to the ring's end is unused (the
 *       next record starts at offset 0)
 *
 * Cursors are byte counts mod 2^32 (wrap·R + offset, as shared/ring/
 * byte-ring.ts): one Atomics store publishes a record, and the difference of
 * the two cursors is the bytes in use. A record never wraps — a frame that
 * does not fit before the end goes to the start behind a pad mark — so the
 * consumer sees every frame as one contiguous view (consume) and the
 * producer writes it with one copy. A frame is at most half the ring less
 * its length word: then it fits in an empty ring wherever the cursors stand.
 *
 * The producer writes the record, then stores its cursor; the consumer loads
 * the producer's cursor, then reads: Atomics order the plain accesses around
 * them (the memory model's synchronizes-with), in one process or two.
 *
 * What the consumer reads is the other side's writing, so it is checked: a
 * length beyond the frame limit or beyond what was published marks the ring
 * corrupt (counted, and nothing more is read from it), never a crash.
 */
import { cursorAdd, cursorDistance } from './byte-ring.ts';

export const FRAME_RING_MAGIC = 0x46524e47; // 'FRNG'
export const FRAME_RING_VERSION = 1;
export const FRAME_RING_HEADER = 64;
export const MIN_FRAME_RING_BYTES = 64;
export const MAX_FRAME_RING_BYTES = 1 << 30;
/** A record's length word. */
const LENGTH_BYTES = 4;
/** The length word of a pad record: skip to the ring's start. */
const PAD_MARK = 0xffffffff;

const Word = { Magic: 0, Version: 1, DataBytes: 2, Prod: 3, Cons: 4 } as const;

/** Bytes a ring of `dataBytes` takes in its buffer (header included). */
export function frameRingBytes(dataBytes: number): number {
  return FRAME_RING_HEADER + dataBytes;
}

function checkDataBytes(n: number): void {
  if (!Number.isInteger(n) || n < MIN_FRAME_RING_BYTES || n > MAX_FRAME_RING_BYTES || (n & (n - 1)) !== 0) {
    throw new RangeError(`frame ring data must be a power of two in ${MIN_FRAME_RING_BYTES}..${MAX_FRAME_RING_BYTES} bytes, got ${n}`);
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function bufferOf(mem: Buffer | SharedArrayBuffer): Buffer {
  return Buffer.isBuffer(mem) ? mem : Buffer.from(mem);
}

export class FrameRing {
  /** The largest frame the ring takes. */
  readonly maxFrame: number;
  readonly dataBytes: number;
  /** The consumer found a record it cannot trust: nothing more is read from this ring. */
  corrupt = false;
  private readonly words: Int32Array;
  private readonly data: Buffer;
  private readonly mask: number;

  private constructor(readonly buffer: Buffer, dataBytes: number) {
    this.words = new Int32Array(buffer.buffer, buffer.byteOffset, FRAME_RING_HEADER >>> 2);
    this.data = buffer.subarray(FRAME_RING_HEADER, FRAME_RING_HEADER + dataBytes);
    this.dataBytes = dataBytes;
    this.mask = dataBytes - 1;
    this.maxFrame = dataBytes / 2 - LENGTH_BYTES;
  }

  /** Lays out an empty ring of `dataBytes` at the start of `mem` (whoever creates the memory, once). */
  static format(mem: Buffer | SharedArrayBuffer, dataBytes: number): FrameRing {
    checkDataBytes(dataBytes);
    const buf = bufferOf(mem);
    if (buf.byteOffset % 4 !== 0) throw new RangeError('a frame ring must start 4-byte aligned');
    if (buf.length < frameRingBytes(dataBytes)) throw new RangeError(`frame ring of ${dataBytes} data bytes needs ${frameRingBytes(dataBytes)} bytes, the memory has ${buf.length}`);
    const r = new FrameRing(buf, dataBytes);
    const w = r.words;
    Atomics.store(w, Word.Version, FRAME_RING_VERSION);
    Atomics.store(w, Word.DataBytes, dataBytes);
    Atomics.store(w, Word.Prod, 0);
    Atomics.store(w, Word.Cons, 0);
    // The magic last: a ring that shows it is wholly laid out.
    Atomics.store(w, Word.Magic, FRAME_RING_MAGIC);
    return r;
  }

  /** A ring some other party laid out in `mem`, checked against the memory's size. */
  static open(mem: Buffer | SharedArrayBuffer): FrameRing {
    const buf = bufferOf(mem);
    if (buf.length < FRAME_RING_HEADER || buf.byteOffset % 4 !== 0) throw new RangeError('not a frame ring: too short or unaligned');
    const w = new Int32Array(buf.buffer, buf.byteOffset, FRAME_RING_HEADER >>> 2);
    if (Atomics.load(w, Word.Magic) !== FRAME_RING_MAGIC) throw new RangeError('not a frame ring: bad magic');
    if (Atomics.load(w, Word.Version) !== FRAME_RING_VERSION) throw new RangeError(`frame ring version ${Atomics.load(w, Word.Version)}, expected ${FRAME_RING_VERSION}`);
    const dataBytes = Atomics.load(w, Word.DataBytes);
    checkDataBytes(dataBytes);
    if (buf.length < frameRingBytes(dataBytes)) throw new RangeError(`frame ring says ${dataBytes} data bytes, the memory has only ${buf.length - FRAME_RING_HEADER}`);
    return new FrameRing(buf, dataBytes);
  }

  private get prod(): number {
    return Atomics.load(this.words, Word.Prod) >>> 0;
  }
  private get cons(): number {
    return Atomics.load(this.words, Word.Cons) >>> 0;
  }

  /** Bytes in use (records and pads not yet consumed). */
  get usedBytes(): number {
    return cursorDistance(this.prod, this.cons);
  }

  /** Bytes a push of `n` more frame bytes needs at most (a record, and a pad before it at the ring's end). */
  static recordBytes(n: number): number {
    return LENGTH_BYTES + align4(n);
  }

  get empty(): boolean {
    return this.prod === this.cons;
  }

  // ---- producer ----------------------------------------------------------

  /**
   * Appends `frame[start, end)` as one record: true once published, false
   * when the ring has no room for it now (the consumer is behind: try again
   * after it consumed). A frame over `maxFrame` can never fit: RangeError.
   */
  push(frame: Buffer, start = 0, end = frame.length): boolean {
    const n = end - start;
    if (!(n >= 0 && n <= this.maxFrame)) throw new RangeError(`frame of ${n} bytes; this ring takes at most ${this.maxFrame}`);
    const record = LENGTH_BYTES + align4(n);
    const prod = this.prod;
    const free = this.dataBytes - cursorDistance(prod, this.cons);
    const pos = prod & this.mask;
    // Only this side writes the producer cursor: unaligned, the memory was overwritten from outside.
    if (pos & 3) {
      this.corrupt = true;
      return false;
    }
    const tail = this.dataBytes - pos;
    // A record that would cross the end goes to the start, behind a pad over the tail.
    const pad = record > tail ? tail : 0;
    if (pad + record > free) return false;
    let at = pos;
    if (pad > 0) {
      this.data.writeUInt32LE(PAD_MARK, pos);
      at = 0;
    }
    this.data.writeUInt32LE(n, at);
    frame.copy(this.data, at + LENGTH_BYTES, start, end);
    Atomics.store(this.words, Word.Prod, cursorAdd(prod, pad + record) | 0);
    return true;
  }

  // ---- consumer ----------------------------------------------------------

  /**
   * Hands each published frame to `fn` in order, at most `max` of them, and
   * returns how many. `fn` gets a view into the ring that is valid only
   * during the call (its bytes are the producer's again once it returns):
   * keep a copy if you keep the frame.
   */
  consume(fn: (frame: Buffer) => void, max = Infinity): number {
    let done = 0;
    while (done < max && !this.corrupt) {
      const cons = this.cons;
      const avail = cursorDistance(this.prod, cons);
      if (avail === 0) break;
      let pos = cons & this.mask;
      if (pos & 3 || avail > this.dataBytes) {
        this.corrupt = true;
        break;
      }
      let skipped = 0;
      let n = this.data.readUInt32LE(pos);
      if (n === PAD_MARK) {
        skipped = this.dataBytes - pos;
        pos = 0;
        n = avail > skipped ? this.data.readUInt32LE(0) : PAD_MARK;
      }
      const record = LENGTH_BYTES + align4(n);
      if (n > this.maxFrame || skipped + record > avail || pos + record > this.dataBytes) {
        this.corrupt = true;
        break;
      }
      fn(this.data.subarray(pos + LENGTH_BYTES, pos + LENGTH_BYTES + n));
      Atomics.store(this.words, Word.Cons, cursorAdd(cons, skipped + record) | 0);
      done++;
    }
    return done;
  }

  /** The next frame as a Buffer of its own, or undefined when none is published (or the ring is corrupt). */
  pop(): Buffer | undefined {
    let out: Buffer | undefined;
    this.consume((f) => {
      out = Buffer.from(f);
    }, 1);
    return out;
  }
}
