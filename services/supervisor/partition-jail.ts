import fs from 'node:fs';
import path from 'node:path';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import type { ProcessSpec } from './process-plan.ts';

/**
 * How a partition's process is started so that the code it runs — tenant app
 * modules included — cannot read the platform's keys (issue 11 item 11: an
 * LPAR's app read keys/mgmt.cred and logged in to the fabric manager as
 * management). Files cannot keep a process out that runs as their owner, so
 * when the supervisor is root (CI, containers) a partition runs
 *
 *   - in a mount namespace of its own where the run directory's keys/ is an
 *     empty tmpfs (its own secrets come on an inherited descriptor instead:
 *     shared/control/process-secrets.ts), and the run directory is read-only
 *     but for state/ (its health) and sock/ (its admin socket), so it cannot
 *     rewrite platform.json, a control node's NVRAM or the fabric manager's
 *     tables for the next start, and
 *   - with no capabilities at all (bounding set empty, no-new-privs), so it
 *     cannot unmount that tmpfs, nor read another process's memory or
 *     /proc/<pid>/root (ptrace needs the target's capabilities).
 *
 * It keeps uid 0, so it still owns the run directory's sockets, its state file
 * and its CEC's shared memory, as before. Not covered, since every process
 * shares that uid: a partition's code can still signal the platform's
 * processes, write other processes' state files and unlink sockets in sock/,
 * open other SMB files under /dev/shm, and (without Yama) ptrace another
 * partition's process. Per-partition uids would close those.
 *
 * An unprivileged supervisor cannot do this (no mount namespace without
 * CAP_SYS_ADMIN); its partitions run as it does, with its authority, and the
 * supervisor says so in its log.
 */
export function partitionCommand(spec: ProcessSpec, runDir: RunDir, command: string, args: string[]): { command: string; args: string[]; jailed: boolean } {
  if (spec.role !== 'lpar' || !canJail()) return { command, args, jailed: false };
  const missing = JAIL_TOOLS.filter((t) => !onPath(t));
  // Fails closed: a root platform whose partitions could read every key is what issue 11 item 11 is about.
  if (missing.length) throw new Error(`cannot start partition ${spec.name} jailed away from keys/: ${missing.join(' and ')} not found (install util-linux)`);
  // state/ and sock/ stay writable as mounts of their own; the run directory's top mount goes read-only; keys/ is covered last.
  const script = [
    'R="$0"',
    'mount --bind "$R/state" "$R/state"',
    'mount --bind "$R/sock" "$R/sock"',
    'mount --rbind "$R" "$R"',
    'mount -o remount,bind,ro "$R"',
    'mount -t tmpfs -o size=16k,mode=0700 lparlab-no-keys "$R/keys"',
    'exec setpriv --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"',
  ].join(' && ');
  return { command: 'unshare', args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, runDir.root, command, ...args], jailed: true };
}

const JAIL_TOOLS = ['unshare', 'setpriv', 'mount'];

/** Whether this supervisor can jail its partitions (it needs a mount namespace: root). */
export function canJail(): boolean {
  return process.getuid?.() === 0;
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, tool)));
}
