/**
 * Cursor arithmetic and copies for the circular buffers of SMC (seed 002,
 * Fig. 5: data between a consumer cursor and a producer cursor). A cursor is
 * one 32-bit word, wrap·R + count, R a power of two (see shared/smc/smb.ts):
 * the bytes between two cursors are their difference mod 2^32, the offset in
 * the ring is the cursor mod R. The same ring code serves SMC-D (rings and
 * cursors in shared memory) and SMC-R (rings in registered memory, cursors
 * carried by CDC messages and RDMA WRITE).
 */

/** Bytes from `cons` up to `prod`. */
export function cursorDistance(prod: number, cons: number): number {
  return (prod - cons) >>> 0;
}

/** `c` advanced by `n` bytes, mod 2^32. */
export function cursorAdd(c: number, n: number): number {
  return (c + n) >>> 0;
}

/** Whether cursor `a` is after `b` (within half the cursor space, as TCP compares sequence numbers). */
export function cursorAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/**
 * Copies `src` into `ring` at cursor `at`, wrapping at the end. The caller
 * has checked that `src.length` bytes are free.
 */
export function ringWrite(ring: Buffer, at: number, src: Buffer, srcStart = 0, srcEnd = src.length): void {
  const size = ring.length;
  const pos = at & (size - 1);
  const n = srcEnd - srcStart;
  const first = Math.min(n, size - pos);
  src.copy(ring, pos, srcStart, srcStart + first);
  if (first < n) src.copy(ring, 0, srcStart + first, srcEnd);
}

/**
 * The most a receiver hands the app in one piece, as Node's own sockets read
 * 64 KiB at a time. A piece is a fresh Buffer the app may keep; one above
 * glibc's mmap threshold (128 KiB) is mapped anew and pays a page fault per
 * 4 KiB on every delivery, where 64 KiB pieces reuse freed heap memory (see
 * MALLOC_TUNABLES in scripts/cli/process-plan.ts).
 */
export const DELIVERY_BYTES = 65536;

/** A copy of `n` bytes of `ring` from cursor `at` (the app keeps it: it cannot be a view of the ring). */
export function ringRead(ring: Buffer, at: number, n: number): Buffer {
  const size = ring.length;
  const pos = at & (size - 1);
  const out = Buffer.allocUnsafe(n);
  const first = Math.min(n, size - pos);
  ring.copy(out, 0, pos, pos + first);
  if (first < n) ring.copy(out, first, 0, n - first);
  return out;
}

/** The (at most two) views of `n` bytes of `ring` from cursor `at`, for sending without a copy. */
export function ringSpans(ring: Buffer, at: number, n: number): Buffer[] {
  const size = ring.length;
  const pos = at & (size - 1);
  const first = Math.min(n, size - pos);
  return first < n ? [ring.subarray(pos, size), ring.subarray(0, n - first)] : [ring.subarray(pos, pos + n)];
}
