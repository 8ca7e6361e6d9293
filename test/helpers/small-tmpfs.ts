import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A tmpfs of `bytes` mounted on a fresh directory, for tests of what a full
 * shared-memory filesystem does (issue 11 item 6: Docker's /dev/shm is 64 MiB).
 * Mounting needs root (CAP_SYS_ADMIN): without it this throws naming it, so the
 * test fails rather than skips. `unmount` removes the mount and the directory.
 */
export function mountSmallTmpfs(bytes: number): { dir: string; unmount: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmdirSync(dir);
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
    throw new Error(`mounting a ${bytes}-byte tmpfs needs root (CAP_SYS_ADMIN) and mount(8): ${why}`);
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      fs.rmdirSync(dir);
    },
  };
}

/** Bytes in use on the filesystem holding `dir`. */
export function tmpfsUsed(dir: string): number {
  const s = fs.statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}
