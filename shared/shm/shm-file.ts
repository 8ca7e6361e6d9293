import fs from 'node:fs';
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
 * The descriptor is closed as soon as the mapping exists: the mapping keeps
 * the file's pages alive on its own, until the Buffer is garbage-collected,
 * and a process holding no descriptors for its SMBs cannot leak them. The
 * file can be unlinked while mapped; the pages go once the last mapping does.
 */

// The flag types list the combinations as literals; PROT_READ|PROT_WRITE is 3.
const PROT_RW = (mmap.PROT_READ | mmap.PROT_WRITE) as 3;

function mapFd(fd: number, bytes: number, path: string): Buffer {
  try {
    return mmap.map(bytes, PROT_RW, mmap.MAP_SHARED, fd, 0);
  } catch (err) {
    throw new Error(`cannot map ${bytes} bytes of ${path}: ${(err as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

function checkBytes(bytes: number, path: string): void {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`shared file ${path}: size ${bytes} is not a positive whole number of bytes`);
}

/**
 * Creates `path` (exclusively, mode 0600: only this user's processes may map
 * it), sizes it to `bytes` and maps it. tmpfs files are sparse, so the size
 * costs memory only for the pages someone touches.
 */
export function createShared(path: string, bytes: number): Buffer {
  checkBytes(bytes, path);
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fs.ftruncateSync(fd, bytes);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
    throw new Error(`cannot size ${path} to ${bytes} bytes: ${(err as Error).message}`);
  }
  return mapFd(fd, bytes, path);
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
