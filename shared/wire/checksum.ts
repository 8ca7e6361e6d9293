/**
 * The Internet checksum (RFC 1071): the 16-bit one's complement of the one's
 * complement sum of the data taken as big-endian 16-bit words, an odd last
 * byte padded with a zero byte on the right.
 *
 * The sum is kept in a plain JS number and folded once at the end: each word
 * adds at most 0xffff, so even a 4 GiB buffer stays far below 2^53 and the
 * deferred end-around carry of RFC 1071 section 2(B) gives the same result.
 */

/**
 * Checksum of `buf[start, end)` plus a partial sum `initial` (e.g. from
 * `pseudoHeaderSum`). Returns the value to put in the header, i.e. already
 * complemented; over a range that contains a correct checksum it returns 0.
 */
export function internetChecksum(buf: Buffer, start = 0, end = buf.length, initial = 0): number {
  let sum = initial;
  let i = start;
  const evenEnd = end - ((end - start) & 1);
  for (; i < evenEnd; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  // `>>> 16` would truncate above 2^32, so divide while folding.
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/**
 * Partial sum of the IPv4 pseudo-header that UDP (RFC 768) and TCP checksums
 * cover: source, destination, zero + protocol, and the transport length.
 * Not folded nor complemented: pass it as `initial` to `internetChecksum`.
 */
export function pseudoHeaderSum(src: number, dst: number, proto: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + length;
}
