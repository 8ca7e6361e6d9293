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
 *     shared/control/process-secrets.ts), and
 *   - with no capabilities at all (bounding set empty, no-new-privs), so it
 *     cannot unmount that tmpfs, nor read another process's memory or
 *     /proc/<pid>/root (ptrace needs the target's capabilities).
 *
 * It keeps uid 0, so it still owns the run directory's sockets, its state file
 * and its CEC's shared memory, as before. Not covered: two partitions share
 * that uid, so without Yama one partition's code could ptrace another
 * partition's process; per-partition uids would close that.
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
  const keys = path.dirname(runDir.keyFile);
  const script = 'mount -t tmpfs -o size=16k,mode=0700 lparlab-no-keys "$0" && exec setpriv --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"';
  return { command: 'unshare', args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, keys, command, ...args], jailed: true };
}

const JAIL_TOOLS = ['unshare', 'setpriv', 'mount'];

/** Whether this supervisor can jail its partitions (it needs a mount namespace: root). */
export function canJail(): boolean {
  return process.getuid?.() === 0;
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, tool)));
}
