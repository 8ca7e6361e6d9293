import fs from 'node:fs';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { sweepPools } from '../../shared/shm/pool-dir.ts';

/**
 * What a stopped platform keeps in its run directory (README, "The lparlab
 * command"): the platform file it ran, the logs, and data/ — the control
 * nodes' NVRAM, meant to outlive a boot (seed 004: MACs from a persistent
 * counter) — and the supervisor's log.
 */
export const KEPT_AFTER_DOWN = ['platform.json', 'logs', 'data', 'supervisor.log'] as const;

/**
 * Removes what a stopped platform leaves: sockets, state, the fabric
 * manager's tables, the keys and credentials (made anew by every boot, so
 * keeping them only leaves a secret on disk; issue 11 item 14), the supervisor's pid file, and the shared-memory
 * pools of hypervisors that could not remove their own (killed with SIGKILL).
 * Called once every process of the platform is gone.
 */
export function cleanRunDir(runDir: RunDir): void {
  if (fs.existsSync(runDir.platformFile)) {
    const platform = runDir.readPlatform();
    sweepPools(platform.name, platform.cecs.map((c) => c.name), runDir.root);
  }
  for (const d of ['sock', 'state']) fs.rmSync(`${runDir.root}/${d}`, { recursive: true, force: true });
  runDir.removeKeys();
  runDir.removeBootData();
  fs.rmSync(runDir.supervisorPidFile, { force: true });
}
