import fs from 'node:fs';
import nodePath from 'node:path';
import mmapModule from '@riaskov/mmap-io';

// The package is CommonJS whose module.exports is the binding itself, while its
// types declare an ES default export; under NodeNext the default import is
// module.exports, so the binding is the import itself at run time.
type MmapIo = typeof mmapModule.default;
const mmap = ((mmapModule as unknown as { default?: MmapIo }).default ?? (mmapModule as unknown as MmapIo));

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
 * A shared file its creator keeps open: the mapping plus the descriptor it
 * reserves the file's pages with. A tmpfs file sized with ftruncate is
 * sparse; a page first touched through the mapping when the tmpfs is full (or
 * at its size= limit: Docker's /dev/shm is 64 MiB) cannot be allocated, and
 * the kernel answers the touch with SIGBUS, killing whichever process touched
 * it (issue 11 item 6). A page allocated by write(2) instead is the file's for
 * good, and write answers a full tmpfs with ENOSPC, an error the creator can
 * refuse cleanly. Node has no fallocate(2), and @riaskov/mmap-io none either;
 * writing zeros gives the same reservation on tmpfs (every page written is
 * allocated and charged to the mount's size), at a memory-bandwidth cost paid
 * once per page for the life of the file.
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
    try {
      fs.ftruncateSync(fd, bytes);
      reserveFd(fd, path, 0, Math.min(reserveBytes, bytes));
      return new SharedFile(path, mmapFd(fd, bytes, path), fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(path, { force: true });
      throw err;
    }
  }

  /** Makes `[offset, offset+length)` real pages of the file; throws ENOSPC (code kept) when the tmpfs has no room. */
  reserve(offset: number, length: number): void {
    if (this.fd === undefined) throw new Error(`shared file ${this.path} is closed`);
    reserveFd(this.fd, this.path, offset, length);
  }

  /** Closes the descriptor; the mapping stays until the Buffer is collected. */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

function reserveFd(fd: number, path: string, offset: number, length: number): void {
  // Refused before writing when the filesystem plainly has no room: zeros written before an ENOSPC stay the
  // file's (Node cannot punch them out again), so a refusal would otherwise leave the tmpfs fuller still.
  const fsStat = fs.statfsSync(nodePath.dirname(path));
  if (fsStat.bavail * fsStat.bsize < length) {
    throw Object.assign(new Error(`cannot reserve ${length} bytes at ${offset} of ${path}: ENOSPC, ${fsStat.bavail * fsStat.bsize} bytes free`), { code: 'ENOSPC' });
  }
  let at = offset;
  const end = offset + length;
  try {
    while (at < end) at += fs.writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, end - at), at);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw Object.assign(new Error(`cannot reserve ${length} bytes at ${offset} of ${path}: ${e.message}`), { code: e.code });
  }
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
