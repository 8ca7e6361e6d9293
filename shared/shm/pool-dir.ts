import fs from 'node:fs';
import path from 'node:path';
import { checkPrivateDir } from '../runtime/private-dir.ts';
import { writeStateFile } from '../runtime/state-file.ts';

/**
 * Where a CEC's shared-memory pool lives: /dev/shm/lparlab/<platform>/<cec>/
 * (ARCHITECTURE.md, "Shared memory"). tmpfs, so the SMB files are memory, not
 * disk; in compose the partitions of a CEC share the CEC's IPC namespace and
 * with it this directory.
 *
 * The directory belongs to one hypervisor at a time: it writes an owner file
 * (pid, run directory) into it, so a second platform with the same name on
 * the same machine is refused instead of wiping the first one's buffers, and
 * `lparlab down` can sweep what a SIGKILLed hypervisor left behind.
 */
export const SHM_ROOT = '/dev/shm/lparlab';
const OWNER_FILE = 'owner.json';

/**
 * SHM_ROOT, or $LPARLAB_SHM_ROOT where set: a test points the pools at a
 * small tmpfs of its own this way (issue 11 item 6), and every process of the
 * platform, `down`'s sweep included, inherits it.
 */
export function shmRoot(): string {
  return process.env.LPARLAB_SHM_ROOT || SHM_ROOT;
}

export interface PoolOwner {
  pid: number;
  runDir: string;
  name: string;
}

export function platformPoolDir(platform: string): string {
  return path.join(shmRoot(), platform);
}

export function poolDir(platform: string, cec: string): string {
  return path.join(platformPoolDir(platform), cec);
}

function readOwner(dir: string): PoolOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as PoolOwner;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process other than this one that is a hypervisor (a reused pid is not). */
function liveHypervisor(pid: number): boolean {
  if (!(pid > 0) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hypervisor');
  } catch {
    return true;
  }
}

/**
 * Makes `dir` this process's pool: refuses one a live hypervisor owns, empties
 * one a dead run left behind (seed 002, Fig. 3 step 303: the local shared
 * memory environment is initialised fresh), and records the new owner.
 */
export function claimPool(dir: string, owner: PoolOwner): { stale: string[] } {
  const current = readOwner(dir);
  if (current && liveHypervisor(current.pid)) {
    throw new Error(`${dir} belongs to ${current.name} (pid ${current.pid}, run directory ${current.runDir}): another platform with this name is running on this machine; give this one another name`);
  }
  // A sibling CEC's hypervisor may remove the (empty) platform directory between our mkdir's steps.
  for (let attempt = 0; ; attempt++) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
  // issue 11 item 9: a pool another user pre-created (or can write to) would hand them the partitions' memory.
  checkPrivateDir(dir, 'shared-memory pool');
  const stale = fs.readdirSync(dir).filter((f) => f !== OWNER_FILE);
  for (const f of stale) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  writeStateFile(path.join(dir, OWNER_FILE), owner);
  return { stale };
}

/**
 * Removes a pool directory, then its platform's directory and /dev/shm/lparlab
 * itself once each is empty: a machine with no platform running keeps nothing
 * in /dev/shm.
 */
export function removePool(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const parent of [path.dirname(dir), path.dirname(path.dirname(dir))]) {
    try {
      fs.rmdirSync(parent);
    } catch {
      // Another CEC or platform still has its pool (claimPool retries a mkdir this races with), or it is gone already.
      return;
    }
  }
}

/**
 * After a platform's processes are all gone: removes the pools of `cecs` that
 * its own hypervisors owned (same run directory) or whose owner is dead — what
 * a hypervisor killed with SIGKILL could not remove itself. Returns what it removed.
 */
export function sweepPools(platform: string, cecs: string[], runDir: string): string[] {
  const removed: string[] = [];
  for (const cec of cecs) {
    const dir = poolDir(platform, cec);
    if (!fs.existsSync(dir)) continue;
    const owner = readOwner(dir);
    if (owner && owner.runDir !== runDir && liveHypervisor(owner.pid)) continue;
    removePool(dir);
    removed.push(dir);
  }
  return removed;
}
