/**
 * State files: the one way a process keeps something on disk that it reads
 * back later (issue 11 item 8): process health (state/<name>.json), the
 * fabric manager's tables, a control node's NVRAM and membership, a
 * hypervisor's SMB counter.
 *
 * A write never leaves half a file: the bytes go to a temporary file of the
 * same directory (created exclusively, never through a symlink), are fsynced,
 * renamed over the file, and the directory is fsynced so the rename itself
 * survives a crash. A read checks what it got with a decoder
 * (shared/protocol/check.ts); a file that does not parse or does not check is
 * refused with a StateFileError naming the file: it is never taken for a
 * first start (an absent file is one; a truncated one is not).
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Check, FieldError, bounded, int, name, oneOf, shape } from '../protocol/check.ts';

/** A state file that exists but does not hold what it should. */
export class StateFileError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`state file ${file} is corrupt (${reason}): refusing to start from it (restore it; removing it starts from nothing)`);
    this.name = 'StateFileError';
  }
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;
/** A temporary file is created, never opened: a symlink or a file planted under its name is refused. */
const CREATE_EXCLUSIVE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

export interface AtomicWriteOptions {
  mode?: number;
  /**
   * fsync the file and its directory (the default): what is read back after a
   * crash of the machine. A process's health file says what a live process is
   * doing, and no process outlives a crash of the machine, so it needs only
   * the all-or-nothing rename: two fsyncs per change held the event loop, and
   * with 256 partitions changing health at once each took up to hundreds of
   * milliseconds behind the others' journal commits, long enough for the
   * stalled process's peers to be judged dead and its health to change again
   * (issue 10: a 256-partition pingall that never settled).
   */
  durable?: boolean;
}

/**
 * Replaces `file` with `data`, all or nothing: temp + fsync + rename + fsync
 * of the directory (no fsyncs when not `durable`). The temporary file is
 * created with O_EXCL | O_NOFOLLOW, so a symlink or a file planted under its
 * name is refused, not written through; rename replaces a symlink at `file`
 * itself instead of following it.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, { mode = 0o600, durable = true }: AtomicWriteOptions = {}): void {
  const dir = path.dirname(file);
  const tmp = tmpName(file, '');
  const fd = openExclusive(tmp, mode);
  try {
    fs.writeFileSync(fd, data);
    if (durable) fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  if (durable) syncDir(dir);
}

/**
 * writeFileAtomic, not durable, off the event loop (the libuv thread pool
 * does the file work): for a file written often by a process that must keep
 * answering meanwhile (a process's health file). Each step on a directory that
 * 256 processes write into waits for that directory's lock, and a partition
 * stalled in them for seconds at a time (issue 10). Its temporary file has a
 * name of its own, so a synchronous write meanwhile does not collide with it.
 */
export async function replaceFileAsync(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = tmpName(file, '.async');
  // As openExclusive, off the event loop.
  const h = await fs.promises.open(tmp, CREATE_EXCLUSIVE, mode).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
    await fs.promises.unlink(tmp);
    return fs.promises.open(tmp, CREATE_EXCLUSIVE, mode);
  });
  try {
    await h.writeFile(data);
  } catch (err) {
    await h.close();
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  await h.close();
  await fs.promises.rename(tmp, file);
}

function tmpName(file: string, tag: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}${tag}.tmp`);
}

/**
 * Creates `tmp` exclusively; one left by a crashed process that had our pid
 * is ours to remove first (unlink never follows a symlink). Removing it only
 * when the create finds it, not before every write, spares each write a step
 * that takes the directory's lock.
 */
function openExclusive(tmp: string, mode: number): number {
  try {
    return fs.openSync(tmp, CREATE_EXCLUSIVE, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    fs.unlinkSync(tmp);
    return fs.openSync(tmp, CREATE_EXCLUSIVE, mode);
  }
}

/** fsync of a directory: makes a rename or a new entry in it durable. */
export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `value` as JSON to `file` atomically. */
export function writeStateFile(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value));
}

/**
 * The checked contents of a JSON state file, undefined when there is none
 * (a first start). Anything else that is wrong with it — unreadable, a
 * symlink, truncated, not JSON, not what `check` accepts — throws a
 * StateFileError naming the file.
 */
export function readStateFile<T>(file: string, check: Check<T>): T | undefined {
  let text: string;
  try {
    const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
    try {
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new StateFileError(file, code === 'ELOOP' ? 'it is a symlink' : (err as Error).message);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(file, text.length === 0 ? 'it is empty' : `not JSON: ${(err as Error).message}`);
  }
  try {
    return check(raw, '');
  } catch (err) {
    if (err instanceof FieldError) throw new StateFileError(file, err.message);
    throw err;
  }
}

/** A process's health as its state file carries it: one list, which the type and the check both come from. */
export const HEALTHS = ['starting', 'healthy', 'degraded', 'stopping'] as const;
export type Health = (typeof HEALTHS)[number];

export interface ProcessState {
  name: string;
  role: string;
  pid: number;
  health: Health;
  detail: string;
  since: string;
}

const processState: Check<ProcessState> = shape({
  name: name(),
  role: name(),
  pid: int(1, 0x7fffffff),
  health: oneOf(HEALTHS),
  detail: bounded(1 << 16),
  since: name(),
});

/** A process's health file (state/<name>.json), written whole; not durable (see AtomicWriteOptions). */
export function writeState(file: string, state: ProcessState): void {
  writeFileAtomic(file, JSON.stringify(state), { durable: false });
}

/** writeState off the event loop (replaceFileAsync): what a running process's health changes use. */
export function writeStateAsync(file: string, state: ProcessState): Promise<void> {
  return replaceFileAsync(file, JSON.stringify(state));
}

/** A process's health file; undefined when it has written none; a corrupt one throws naming it. */
export function readState(file: string): ProcessState | undefined {
  return readStateFile(file, processState);
}
