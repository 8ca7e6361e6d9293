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

/**
 * Replaces `file` with `data`, all or nothing: temp + fsync + rename + fsync
 * of the directory. The temporary file is created with O_EXCL | O_NOFOLLOW,
 * so a symlink or a file planted under its name is refused, not written
 * through; rename replaces a symlink at `file` itself instead of following it.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  // Left by a crashed process that had our pid: ours to remove (unlink never follows a symlink).
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  syncDir(dir);
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

/** A process's health file (state/<name>.json), written whole. */
export function writeState(file: string, state: ProcessState): void {
  writeStateFile(file, state);
}

/** A process's health file; undefined when it has written none; a corrupt one throws naming it. */
export function readState(file: string): ProcessState | undefined {
  return readStateFile(file, processState);
}
