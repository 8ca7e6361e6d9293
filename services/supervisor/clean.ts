import fs from 'node:fs';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { sweepPools } from '../../shared/shm/pool-dir.ts';

/**
 * Removes what a stopped platform leaves: sockets, state, the supervisor's pid
 * file, and the shared-memory pools of hypervisors that could not remove their
 * own (killed with SIGKILL). Called once every process of the platform is gone.
 */
export function cleanRunDir(runDir: RunDir): void {
  for (const d of ['sock', 'state']) fs.rmSync(`${runDir.root}/${d}`, { recursive: true, force: true });
  fs.rmSync(runDir.supervisorPidFile, { force: true });
  if (fs.existsSync(runDir.platformFile)) {
    const platform = runDir.readPlatform();
    sweepPools(platform.name, platform.cecs.map((c) => c.name), runDir.root);
  }
}
