import fs from 'node:fs';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { readState, type ProcessState } from '../../shared/runtime/state-file.ts';

/**
 * A process's health as seen from outside (issue 11 item 12): what it last
 * reported, unless it cannot be true any more. A state file outlives a
 * SIGKILL, and a SIGSTOPped process cannot change its report: `dead` when
 * its pid is gone, `stopped` when it is stopped, `not running` without a
 * state file.
 */
export function observedHealth(st: ProcessState | undefined): string {
  if (!st) return 'not running';
  if (!isAlive(st.pid)) return 'dead';
  if (procState(st.pid) === 'T') return 'stopped';
  return st.health;
}

/**
 * Waits for every named process to report healthy. With processes left out on
 * purpose (`--except`), the others cannot all be whole — a node missing a
 * plane is degraded — so degraded counts as up.
 */
export async function waitHealthy(runDir: RunDir, names: string[], timeoutMs: number, gone: (name: string) => boolean, degradedIsUp = false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const up = (h: string | undefined) => h === 'healthy' || (degradedIsUp && h === 'degraded');
  for (;;) {
    const pending = names.filter((n) => !up(observedHealth(readState(runDir.stateFile(n)))));
    if (pending.length === 0) return;
    const dead = pending.find(gone);
    if (dead) throw new HealthError(dead, `${dead} exited before it was healthy`);
    if (Date.now() > deadline) throw new HealthError(pending[0], `${pending.join(', ')} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class HealthError extends Error {
  constructor(
    readonly processName: string,
    message: string,
  ) {
    super(message);
  }
}

export function logTail(runDir: RunDir, name: string, lines = 20): string {
  try {
    return fs.readFileSync(runDir.logFile(name), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Linux process state letter from /proc (T: stopped by a signal). */
export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}
