/**
 * The shared memory buffer (SMB) of seed 002, Fig. 5, as laid out in one
 * mmap'd file per pair of partitions on a CEC:
 *
 *   header (4 KiB)
 *     magic, version, element count, ring bytes, element bytes
 *     connection status bit array (CSBA) of side 0, then of side 1: bit i set
 *       = element i has work pending for that side (data produced for it, or
 *       space freed in what it produced) — seed 002 Fig. 6 step 607, Fig. 7
 *       steps 753-755
 *     "asleep" word per side: set by a side that stopped polling and wants a
 *       signal (the SIGB of step 608) on the next change
 *   elements (SMBEs), each:
 *     element header (256 bytes): token, per direction the producer and
 *     consumer cursors, per side the close flags
 *     ring of direction 0 (written by side 0, read by side 1), then ring of
 *     direction 1
 *
 * Side 0 is the partition whose name sorts first. A cursor is one 32-bit
 * word, wrap·R + count with R (ring bytes) a power of two: one Atomics store
 * publishes the wrap count and the offset together, and the difference of two
 * cursors mod 2^32 is the number of bytes between them.
 *
 * All words are read and written with Atomics on an Int32Array over the
 * mapping: sequentially consistent, across processes.
 */

export const SMB_MAGIC = 0x534d4244; // 'SMBD'
export const SMB_VERSION = 1;
export const SMB_HEADER_BYTES = 4096;
export const ELEMENT_HEADER_BYTES = 256;
export const MAX_ELEMENTS = 1024;
export const MIN_RING_BYTES = 4096;
export const MAX_RING_BYTES = 16 * 1024 * 1024;

/** Word indexes (Int32) in the SMB header. */
export const SmbWord = {
  Magic: 0,
  Version: 1,
  Elements: 2,
  RingBytes: 3,
  ElementBytes: 4,
  /** CSBA of side 0 starts here: MAX_ELEMENTS / 32 words. */
  Csba0: 16,
  /** CSBA of side 1. */
  Csba1: 16 + MAX_ELEMENTS / 32,
  /** Side 0 / side 1 asleep (1) or polling (0). */
  Asleep0: 16 + (2 * MAX_ELEMENTS) / 32,
  Asleep1: 17 + (2 * MAX_ELEMENTS) / 32,
} as const;

/** Word indexes relative to an element's start. */
export const ElementWord = {
  /** The hypervisor's token for this element's current connection; 0 while free. */
  Token: 0,
  /** Producer cursor of direction 0 (data side 0 writes for side 1). */
  Prod0: 1,
  /** Consumer cursor of direction 0 (how far side 1 has read). */
  Cons0: 2,
  Prod1: 3,
  Cons1: 4,
  /** Close flags set by side 0 / side 1 (CloseFlag bits). */
  Flags0: 5,
  Flags1: 6,
  /** Side 0's / side 1's writer is blocked on a full ring: the reader marks and signals it on consuming. */
  WantSpace0: 7,
  WantSpace1: 8,
} as const;

/** Close flags a side sets in its own flags word (seed 002 Fig. 10 steps 1003-1004). */
export const CloseFlag = {
  /** This side will write no more (its app ended its writable side). */
  DoneWriting: 1,
  /** This side closed the connection. */
  Closed: 2,
  /** This side (or the hypervisor for a partition that died) aborted: the peer resets. */
  Abort: 4,
} as const;

export interface SmbGeometry {
  elements: number;
  ringBytes: number;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Bytes of one element: header plus two rings, rounded up to a page. */
export function elementBytes(ringBytes: number): number {
  return Math.ceil((ELEMENT_HEADER_BYTES + 2 * ringBytes) / 4096) * 4096;
}

/** Bytes of a whole SMB file. */
export function smbBytes(g: SmbGeometry): number {
  return SMB_HEADER_BYTES + g.elements * elementBytes(g.ringBytes);
}

export function checkGeometry(g: SmbGeometry): void {
  if (!Number.isInteger(g.elements) || g.elements < 1 || g.elements > MAX_ELEMENTS) throw new RangeError(`SMB element count ${g.elements} is outside 1..${MAX_ELEMENTS}`);
  if (!isPowerOfTwo(g.ringBytes) || g.ringBytes < MIN_RING_BYTES || g.ringBytes > MAX_RING_BYTES) {
    throw new RangeError(`SMB ring size ${g.ringBytes} must be a power of two in ${MIN_RING_BYTES}..${MAX_RING_BYTES}`);
  }
}

/**
 * A typed view over a mapped SMB. The hypervisor formats it; the two
 * partitions read and write it. Every access is bounds-checked against the
 * geometry in the header, which `open` validates against the mapping's size.
 */
export class SmbView {
  readonly words: Int32Array;
  readonly elements: number;
  readonly ringBytes: number;
  readonly elementBytes: number;

  private constructor(
    readonly buf: Buffer,
    g: SmbGeometry,
  ) {
    this.words = new Int32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
    this.elements = g.elements;
    this.ringBytes = g.ringBytes;
    this.elementBytes = elementBytes(g.ringBytes);
  }

  /** Writes a fresh header into `buf` (the hypervisor, on creating the file). */
  static format(buf: Buffer, g: SmbGeometry): SmbView {
    checkGeometry(g);
    if (buf.length < smbBytes(g)) throw new RangeError(`SMB mapping of ${buf.length} bytes is smaller than the ${smbBytes(g)} its geometry needs`);
    const v = new SmbView(buf, g);
    const w = v.words;
    Atomics.store(w, SmbWord.Version, SMB_VERSION);
    Atomics.store(w, SmbWord.Elements, g.elements);
    Atomics.store(w, SmbWord.RingBytes, g.ringBytes);
    Atomics.store(w, SmbWord.ElementBytes, v.elementBytes);
    Atomics.store(w, SmbWord.Magic, SMB_MAGIC);
    return v;
  }

  /** Validates a mapped SMB's header (a partition, on attaching). */
  static open(buf: Buffer): SmbView {
    if (buf.length < SMB_HEADER_BYTES) throw new RangeError(`SMB mapping of ${buf.length} bytes has no room for its header`);
    const w = new Int32Array(buf.buffer, buf.byteOffset, SMB_HEADER_BYTES >>> 2);
    if (Atomics.load(w, SmbWord.Magic) !== SMB_MAGIC) throw new RangeError('SMB header has a bad magic');
    if (Atomics.load(w, SmbWord.Version) !== SMB_VERSION) throw new RangeError(`SMB version ${Atomics.load(w, SmbWord.Version)} is not ${SMB_VERSION}`);
    const g = { elements: Atomics.load(w, SmbWord.Elements), ringBytes: Atomics.load(w, SmbWord.RingBytes) };
    checkGeometry(g);
    if (Atomics.load(w, SmbWord.ElementBytes) !== elementBytes(g.ringBytes)) throw new RangeError('SMB element size does not match its ring size');
    if (buf.length < smbBytes(g)) throw new RangeError(`SMB mapping of ${buf.length} bytes is smaller than the ${smbBytes(g)} its header claims`);
    return new SmbView(buf, g);
  }

  private checkElement(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.elements) throw new RangeError(`SMB element ${i} is outside 0..${this.elements - 1}`);
  }

  /** Byte offset of element i in the mapping. */
  elementOffset(i: number): number {
    this.checkElement(i);
    return SMB_HEADER_BYTES + i * this.elementBytes;
  }

  /** Int32 index of word `w` (an ElementWord) of element i. */
  elementWord(i: number, w: number): number {
    return (this.elementOffset(i) >>> 2) + w;
  }

  /** The ring of direction `dir` (written by side `dir`) of element i. */
  ring(i: number, dir: 0 | 1): Buffer {
    const start = this.elementOffset(i) + ELEMENT_HEADER_BYTES + dir * this.ringBytes;
    return this.buf.subarray(start, start + this.ringBytes);
  }

  /** Zeroes element i's header and stamps its token (the hypervisor, on allocating it). */
  resetElement(i: number, token: number): void {
    const base = this.elementWord(i, 0);
    for (let w = 1; w < ELEMENT_HEADER_BYTES >>> 2; w++) Atomics.store(this.words, base + w, 0);
    this.clearPending(0, i);
    this.clearPending(1, i);
    Atomics.store(this.words, base + ElementWord.Token, token | 0);
  }

  token(i: number): number {
    return Atomics.load(this.words, this.elementWord(i, ElementWord.Token)) >>> 0;
  }

  /** Sets bit i of `side`'s CSBA: element i has work for that side. */
  markPending(side: 0 | 1, i: number): void {
    this.checkElement(i);
    Atomics.or(this.words, (side === 0 ? SmbWord.Csba0 : SmbWord.Csba1) + (i >>> 5), 1 << (i & 31));
  }

  clearPending(side: 0 | 1, i: number): void {
    this.checkElement(i);
    Atomics.and(this.words, (side === 0 ? SmbWord.Csba0 : SmbWord.Csba1) + (i >>> 5), ~(1 << (i & 31)));
  }

  /** Takes (reads and clears) word `word` of `side`'s CSBA: the elements 32·word .. 32·word+31 with work. */
  takePending(side: 0 | 1, word: number): number {
    return Atomics.exchange(this.words, (side === 0 ? SmbWord.Csba0 : SmbWord.Csba1) + word, 0);
  }

  /** Words of a CSBA in use for this SMB's element count. */
  get csbaWords(): number {
    return (this.elements + 31) >>> 5;
  }

  setAsleep(side: 0 | 1, asleep: boolean): void {
    Atomics.store(this.words, side === 0 ? SmbWord.Asleep0 : SmbWord.Asleep1, asleep ? 1 : 0);
  }

  /** Whether `side` is asleep, clearing it: the caller then owes that side one signal. */
  takeAsleep(side: 0 | 1): boolean {
    const w = side === 0 ? SmbWord.Asleep0 : SmbWord.Asleep1;
    return Atomics.load(this.words, w) !== 0 && Atomics.exchange(this.words, w, 0) !== 0;
  }

  /** Sets close flags in `side`'s flags word of element i. */
  setFlags(i: number, side: 0 | 1, flags: number): void {
    Atomics.or(this.words, this.elementWord(i, side === 0 ? ElementWord.Flags0 : ElementWord.Flags1), flags);
  }

  flags(i: number, side: 0 | 1): number {
    return Atomics.load(this.words, this.elementWord(i, side === 0 ? ElementWord.Flags0 : ElementWord.Flags1));
  }
}

/** The SMB file of a pair, named so either partition's name order finds the same one. */
export function smbFileName(a: string, b: string): string {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return `smb-${lo}-${hi}`;
}

/** Side 0 is the partition whose name sorts first. */
export function sideOf(self: string, peer: string): 0 | 1 {
  return self < peer ? 0 : 1;
}

/**
 * The file of one SMB instance: the pair's name, then the hypervisor's smbId
 * after a '.', which no partition name contains. The id keeps two pairs whose
 * names join to the same string ("a-b" with "c", "a" with "b-c") apart, and a
 * new file for a pair apart from an unlinked one a partition still maps.
 */
export function smbInstanceFileName(a: string, b: string, smbId: number): string {
  return `${smbFileName(a, b)}.${smbId}`;
}
