import fs from 'node:fs';
import pidusage from 'pidusage';
import { hypervisorName } from '../../shared/platform/platform.ts';
import type { SmcStatusReply } from '../../shared/protocol/admin.ts';
import { adminAsk } from '../../shared/runtime/admin-client.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import { isAlive, observedHealth } from './health.ts';
import { processPlan } from './process-plan.ts';

/**
 * What `lparlab status` shows of a running platform, gathered from the run
 * directory (state files) and the processes' admin sockets: each process's
 * role, pid, health, CPU and memory; each plane's ports, VIs and faults; the
 * fabric manager's RVIs; each hypervisor's SMBs; each partition's SMC
 * counters. A process that does not answer shows as down, never as an error;
 * so does one whose reply does not decode as its verb's (shared/protocol/admin.ts).
 * Importable without running the CLI (tests, benches, a dashboard).
 */
export interface ProcessStatus {
  name: string;
  role: string;
  pid: number | null;
  /** starting, healthy, degraded (state file); dead (its pid is gone), stopped (SIGSTOP), not running (no state). */
  health: string;
  detail: string;
  /** % of one core over 250 ms; null when unknown. */
  cpu: number | null;
  /** Resident set (bytes): includes the pages of the node binary that every process shares. */
  memory: number | null;
  /**
   * Memory only this process holds (bytes: private pages, /proc/PID/smaps_rollup):
   * what one more process of its kind costs the box. Node's own ~40 MB of
   * binary and libraries count in every process's RSS once each, but exist once.
   */
  privateMemory: number | null;
}

export interface PlaneStatus {
  plane: string;
  up: boolean;
  portsUp?: number;
  ports?: number;
  vis?: unknown;
  stats?: unknown;
  faults?: unknown[];
}

export interface HypervisorStatus {
  cec: string;
  up: boolean;
  dir?: unknown;
  smbs?: number;
  elements?: number;
  stats?: unknown;
}

export interface SmcStatus {
  lpar: string;
  up: boolean;
  enabled?: boolean | null;
  stats?: SmcStatusReply['stats'] | null;
}

export interface PlatformStatus {
  platform: string;
  runDir: string;
  processes: ProcessStatus[];
  planes: PlaneStatus[];
  rvis: unknown[];
  hypervisors: HypervisorStatus[];
  smc: SmcStatus[];
}

/** Private_Clean + Private_Dirty of a process (smaps_rollup, Linux 4.14+); null when it cannot be read. */
function privateBytes(pid: number): number | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    let kB = 0;
    for (const m of text.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB$/gm)) kB += Number(m[1]);
    return kB * 1024;
  } catch {
    return null;
  }
}

export async function collectStatus(runDir: RunDir): Promise<PlatformStatus> {
  const platform = runDir.readPlatform();
  const plan = processPlan(platform, runDir);
  const states = plan.map((spec) => ({ spec, st: readState(runDir.stateFile(spec.name)) }));
  const pids = states.filter(({ st }) => st && isAlive(st.pid)).map(({ st }) => st!.pid);
  // pidusage measures CPU between two calls for the same pid: the first only sets the baseline.
  const usage: Record<number, { cpu: number; memory: number }> = {};
  if (pids.length) {
    try {
      await pidusage(pids);
      await new Promise((r) => setTimeout(r, 250));
      Object.assign(usage, await pidusage(pids));
    } catch {
      /* a process went away meanwhile: its figures stay unknown */
    }
    pidusage.clear();
  }
  const processes = states.map(({ spec, st }): ProcessStatus => {
    const alive = st !== undefined && isAlive(st.pid);
    const health = observedHealth(st);
    const u = alive ? usage[st!.pid] : undefined;
    return { name: spec.name, role: spec.role, pid: alive ? st!.pid : null, health, detail: st?.detail ?? '', cpu: u ? Math.round(u.cpu * 10) / 10 : null, memory: u?.memory ?? null, privateMemory: alive ? privateBytes(st!.pid) : null };
  });
  const planes = await Promise.all(
    platform.planes.map(async (p): Promise<PlaneStatus> => {
      try {
        const s = await adminAsk(runDir, `plane-${p}`, { t: 'switch-status' }, 2000);
        return { plane: p, up: true, portsUp: s.ports.filter((x) => x.up).length, ports: s.ports.length, vis: s.vis, stats: s.stats, faults: s.faults };
      } catch {
        return { plane: p, up: false };
      }
    }),
  );
  let rvis: unknown[] = [];
  try {
    rvis = (await adminAsk(runDir, 'fabric-manager', { t: 'fm-status' }, 2000)).rvis;
  } catch {
    /* fabric manager down: the table is unknown */
  }
  const hypervisors = await Promise.all(
    platform.cecs.map(async (c): Promise<HypervisorStatus> => {
      try {
        const s = await adminAsk(runDir, hypervisorName(c.name), { t: 'hv-status' }, 2000);
        return { cec: c.name, up: true, dir: s.dir, smbs: s.smbs.length, elements: s.elements.length, stats: s.stats };
      } catch {
        return { cec: c.name, up: false };
      }
    }),
  );
  // Per-LPAR SMC counters (smc-tools' smcss/smcd stats in spirit): connections by mode, fallbacks by reason, bytes, ring-full events.
  const smc = await Promise.all(
    platform.lpars.map(async (l): Promise<SmcStatus> => {
      try {
        const r = (await adminAsk(runDir, l.name, { t: 'smc-status' }, 2000)).smc;
        return { lpar: l.name, up: true, enabled: r?.enabled ?? null, stats: r?.stats ?? null };
      } catch {
        return { lpar: l.name, up: false };
      }
    }),
  );
  return { platform: platform.name, runDir: runDir.root, processes, planes, rvis, hypervisors, smc };
}
