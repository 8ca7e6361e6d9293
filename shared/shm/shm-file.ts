import fs from 'node:fs';
import nodePath from 'node:path';
import { loadMmapBinding } from './mmap-binding.ts';

const mmap = loadMmapBinding();

/**
 * Shared-memory files: a file on tmpfs (/dev/shm) mapped MAP_SHARED into
 * every process that opens it, so a store in one partition is a load in the
 * other (seed 002: the SMB is memory "jointly held by the LPAR 1 and LPAR 2").
 *
 * A process that maps a file closes the descriptor as soon as the mapping
 * exists: the mapping keeps the file's pages alive on its own, until the
 * Buffer is garbage-collected, and a process holding no descriptors for its
 * SMBs cannot leak them (only the creator's SharedFile keeps one, to reserve
 * pages with). The file can be unlinked while mapped; the pages go once the
 * last mapping does.
 */

// The flag types list the combinations as literals; PROT_READ|PROT_WRITE is 3.
const PROT_RW = (mmap.PROT_READ | mmap.PROT_WRITE) as 3;
/** Linux madvise(2) MADV_REMOVE (asm-generic/mman-common.h), which the binding passes through but does not name. */
const MADV_REMOVE = 9;
/** MADV_POPULATE_WRITE (Linux 5.14), likewise. */
const MADV_POPULATE_WRITE = 23;
const EINVAL = 22;

function mmapFd(fd: number, bytes: number, path: string): Buffer {
  try {
    return mmap.map(bytes, PROT_RW, mmap.MAP_SHARED, fd, 0);
  } catch (err) {
    throw new Error(`cannot map ${bytes} bytes of ${path}: ${(err as Error).message}`);
  }
}

function mapFd(fd: number, bytes: number, path: string): Buffer {
  try {
    return mmapFd(fd, bytes, path);
  } finally {
    fs.closeSync(fd);
  }
}

function checkBytes(bytes: number, path: string): void {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`shared file ${path}: size ${bytes} is not a positive whole number of bytes`);
}

/** What reservations write: one page-aligned block of zeros, reused. */
const ZEROS = Buffer.alloc(1 << 20);

/**
 * A shared file as its creator holds it: the mapping, through which it
 * reserves the file's pages later. A tmpfs file sized with ftruncate is
 * sparse; a page first touched through the mapping when the tmpfs is full (or
 * at its size= limit: Docker's /dev/shm is 64 MiB) cannot be allocated, and
 * the kernel answers the touch with SIGBUS, killing whichever process touched
 * it (issue 11 item 6). Node has no fallocate(2), and @riaskov/mmap-io none
 * either, so pages are made real the two ways that report a full tmpfs as an
 * error instead: write(2) of zeros at creation (ENOSPC), and later
 * madvise(MADV_POPULATE_WRITE) over the mapping (Linux 5.14: it faults the
 * pages in as a write would, and fails with EFAULT where a write would
 * SIGBUS). The latter needs no descriptor, so the creator keeps none: once
 * the file has lost its name (SmbPool.mapped), no process can truncate it.
 * On an older kernel the descriptor is kept and zeros are written through it.
 */
export class SharedFile {
  private constructor(
    readonly path: string,
    readonly buffer: Buffer,
    private fd: number | undefined,
  ) {}

  /**
   * Creates `path` (exclusively, mode 0600: only this user's processes may
   * map it), sizes it to `bytes`, reserves its first `reserveBytes` (ENOSPC:
   * the file is removed and the error thrown) and maps it.
   */
  static create(path: string, bytes: number, reserveBytes = bytes): SharedFile {
    checkBytes(bytes, path);
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    let buffer: Buffer;
    try {
      fs.ftruncateSync(fd, bytes);
      const head = Math.min(reserveBytes, bytes);
      checkRoom(path, 0, head);
      try {
        writeZeros(fd, 0, head);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw Object.assign(new Error(`cannot reserve ${head} bytes of ${path}: ${e.message}`), { code: e.code });
      }
      buffer = mmapFd(fd, bytes, path);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(path, { force: true });
      throw err;
    }
    if (populateWorks(buffer)) {
      fs.closeSync(fd);
      return new SharedFile(path, buffer, undefined);
    }
    return new SharedFile(path, buffer, fd);
  }

  /**
   * Makes `[offset, offset+length)` (page-aligned) real pages of the file;
   * throws ENOSPC (code kept) when the tmpfs has no room, giving back what
   * it had taken of the range.
   */
  reserve(offset: number, length: number): void {
    checkRoom(this.path, offset, length);
    try {
      if (this.fd !== undefined) writeZeros(this.fd, offset, length);
      else populate(this.buffer.subarray(offset, offset + length));
    } catch (err) {
      this.discard(offset, length);
      const e = err as NodeJS.ErrnoException;
      throw Object.assign(new Error(`cannot reserve ${length} bytes at ${offset} of ${this.path}: ${e.message}`), { code: e.code ?? 'ENOSPC' });
    }
  }

  /**
   * Gives the pages of `[offset, offset+length)` (page-aligned; default: the
   * whole file) back to the tmpfs now (madvise MADV_REMOVE: a hole punched
   * through every mapping). Without it a removed file's pages stay taken
   * until the last process that mapped it has its Buffer garbage-collected,
   * which on a small /dev/shm refuses elements that would fit. Only for pages
   * no process touches any more: one touched later faults in a fresh zero page.
   */
  discard(offset = 0, length = this.buffer.length): void {
    mmap.advise(this.buffer.subarray(offset, offset + length), MADV_REMOVE as 0);
  }

  /** Closes the descriptor, if one was kept; the mapping stays until the Buffer is collected. */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** MADV_POPULATE_WRITE over `buf` (page-aligned): its pages real, or an error (EFAULT: no room), never a SIGBUS. */
function populate(buf: Buffer): void {
  try {
    mmap.advise(buf, MADV_POPULATE_WRITE as 0);
  } catch (err) {
    // The binding reports "madvise() failed, <errno>".
    const errno = Number(/(\d+)\s*$/.exec((err as Error).message)?.[1]);
    throw Object.assign(new Error(errno === EINVAL ? 'madvise(MADV_POPULATE_WRITE) is not supported (Linux 5.14)' : `ENOSPC: madvise(MADV_POPULATE_WRITE) failed, errno ${errno}`), {
      code: errno === EINVAL ? 'EINVAL' : 'ENOSPC',
    });
  }
}

let populateSupported: boolean | undefined;

/** Whether this kernel has MADV_POPULATE_WRITE: tried once, on the first page of a fresh file (reserved already). */
function populateWorks(buffer: Buffer): boolean {
  if (populateSupported === undefined) {
    try {
      populate(buffer.subarray(0, Math.min(buffer.length, mmap.PAGESIZE)));
      populateSupported = true;
    } catch {
      populateSupported = false;
    }
  }
  return populateSupported;
}

/** Refused before taking a page when the filesystem plainly has no room (a partial reservation is given back, but why take it). */
function checkRoom(path: string, offset: number, length: number): void {
  const fsStat = fs.statfsSync(nodePath.dirname(path));
  if (fsStat.bavail * fsStat.bsize < length) {
    throw Object.assign(new Error(`cannot reserve ${length} bytes at ${offset} of ${path}: ENOSPC, ${fsStat.bavail * fsStat.bsize} bytes free`), { code: 'ENOSPC' });
  }
}

/** write(2)s zeros over `[offset, offset+length)`: tmpfs allocates every page written, or fails ENOSPC. */
function writeZeros(fd: number, offset: number, length: number): void {
  const end = offset + length;
  for (let at = offset; at < end; ) at += fs.writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, end - at), at);
}

/**
 * Creates `path` (exclusively, mode 0600), sizes it to `bytes`, reserves
 * every page of it (SharedFile: no SIGBUS on a full tmpfs) and maps it.
 */
export function createShared(path: string, bytes: number): Buffer {
  const f = SharedFile.create(path, bytes);
  f.close();
  return f.buffer;
}

/**
 * Maps the first `bytes` of an existing shared file. A file shorter than
 * that is refused: touching a mapped page beyond the end of a file is SIGBUS,
 * which would take the whole process down instead of this one call.
 */
export function mapShared(path: string, bytes: number): Buffer {
  checkBytes(bytes, path);
  const fd = fs.openSync(path, fs.constants.O_RDWR);
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  if (size < bytes) {
    fs.closeSync(fd);
    throw new RangeError(`shared file ${path} has ${size} bytes, fewer than the ${bytes} to map`);
  }
  return mapFd(fd, bytes, path);
}
