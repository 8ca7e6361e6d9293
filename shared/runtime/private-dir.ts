/**
 * Directories where a process keeps what others must not plant, read or
 * change: a platform's run directory (keys, credentials, sockets) and the
 * shared-memory pools (issue 11 item 9).
 */
import fs from 'node:fs';
import path from 'node:path';

/** A run directory, or a file in it, that another user could have put there or can change (issue 11 item 9). */
export class UnsafeRunDirError extends Error {
  constructor(
    readonly file: string,
    reason: string,
    what = 'run directory',
  ) {
    super(`unsafe ${what}: ${file} ${reason}; refusing to use it${what === 'run directory' ? ' (choose another with --run-dir or $LPARLAB_RUN_DIR)' : ''}`);
    this.name = 'UnsafeRunDirError';
  }
}

export function callerUid(): number {
  return process.getuid?.() ?? 0;
}

export function modeText(mode: number): string {
  return `mode ${(mode & 0o7777).toString(8).padStart(4, '0')}`;
}

/**
 * Throws unless `dir` is a directory only this user can change (issue 11 item
 * 9), `what` naming it in the error: a real directory (not a symlink) owned by
 * the caller and writable by no one else, under directories that only the
 * caller or root can change — one others may write to is allowed above it only
 * with the sticky bit (/tmp, /dev/shm), where they cannot rename what is not
 * theirs. A symlink on the way is followed only when root or the caller made it.
 */
export function checkPrivateDir(dir: string, what: string): void {
  const fail = (file: string, reason: string) => new UnsafeRunDirError(file, reason, what);
  const me = callerUid();
  const abs = path.resolve(dir);
  const parts = abs.split(path.sep).filter(Boolean);
  let cur: string = path.sep;
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) cur = path.join(cur, parts[i - 1]);
    const last = i === parts.length;
    const l = fs.lstatSync(cur);
    if (l.isSymbolicLink()) {
      if (last) throw fail(cur, 'is a symlink');
      if (l.uid !== 0 && l.uid !== me) throw fail(cur, `is a symlink owned by uid ${l.uid}`);
    }
    const st = last ? l : fs.statSync(cur);
    if (!st.isDirectory()) throw fail(cur, 'is not a directory');
    if (last) {
      if (st.uid !== me) throw fail(cur, `is owned by uid ${st.uid}, not by this user (uid ${me})`);
      if (st.mode & 0o022) throw fail(cur, `is group- or world-writable (${modeText(st.mode)})`);
    } else {
      if (st.uid !== 0 && st.uid !== me) throw fail(cur, `(above the ${what}) is owned by uid ${st.uid}, neither root nor this user (uid ${me})`);
      if (st.mode & 0o022 && !(st.mode & 0o1000)) throw fail(cur, `(above the ${what}) is group- or world-writable without the sticky bit (${modeText(st.mode)})`);
    }
  }
}
