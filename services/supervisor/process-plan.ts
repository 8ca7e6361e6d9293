import { builtFile, REPO_ROOT } from '../../shared/runtime/build-paths.ts';
import { hypervisorName, platformNodes, type Platform } from '../../shared/platform/platform.ts';
import { fabricAddresses, hypervisorAddresses } from '../../shared/runtime/addresses.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import type { ServiceRole } from '../../shared/runtime/service-options.ts';

export { fabricAddresses, hypervisorAddresses, REPO_ROOT };
export type { ServiceRole };

/** One process of a platform and the exact command line that starts it. */
export interface ProcessSpec {
  name: string;
  role: ServiceRole;
  /** The compiled main file (build/services/ROLE/main.js; scripts/build.mjs makes it). */
  script: string;
  args: string[];
}

/** Every process of the platform, in start order: fabric manager, planes, hypervisors, control nodes, LPARs. */
export function processPlan(platform: Platform, runDir: RunDir): ProcessSpec[] {
  const addr = fabricAddresses(platform, runDir);
  const hv = hypervisorAddresses(platform, runDir);
  const script = (role: ServiceRole) => builtFile(`services/${role}/main.ts`);
  const base = (name: string) => ['--id', name, '--run-dir', runDir.root];
  const plan: ProcessSpec[] = [
    {
      name: 'fabric-manager',
      role: 'fabric-manager',
      script: script('fabric-manager'),
      args: [...base('fabric-manager'), '--listen', addr.fm, ...addr.planes.flatMap((p) => ['--plane', `${p.name}=${p.url}`])],
    },
  ];
  for (const p of addr.planes) {
    plan.push({ name: `plane-${p.name}`, role: 'fabric-switch', script: script('fabric-switch'), args: [...base(`plane-${p.name}`), '--plane', p.name, '--listen', p.url, '--fm', addr.fm] });
  }
  for (const c of platform.cecs) {
    const name = hypervisorName(c.name);
    plan.push({ name, role: 'hypervisor', script: script('hypervisor'), args: [...base(name), '--cec', c.name, '--listen', hv.get(c.name)!] });
  }
  for (const n of platformNodes(platform)) {
    // A partition finds its CEC's hypervisor (shared memory, SMC-D) with --hv.
    const own = n.role === 'lpar' ? ['--hv', hv.get(n.cec!)!] : [];
    plan.push({ name: n.name, role: n.role, script: script(n.role), args: [...base(n.name), '--fm', addr.fm, ...own] });
  }
  return plan;
}

/**
 * V8 sizes a small process's old generation to its live heap (a few MB), and
 * streaming large frames then promotes enough to force a full collection
 * every few megabytes: measured, ~150 full GCs for 1 GB through one LPAR and
 * half the RVI throughput. Starting the old space at 64 MB leaves it at 2.
 * Only the roles that frames stream through get it: partitions, planes and
 * control nodes (reflection, relay). The fabric manager and the hypervisors
 * carry control messages only (SMC-D data goes through shared memory). At
 * idle it costs nothing measurable (issue 10 item 3: the same RSS per role
 * within 1 MB after 20 s idle, with and without), since the old space's
 * pages are only reserved until used.
 */
export const V8_FLAGS = ['--initial-old-space-size=64'];
const STREAMING_ROLES: readonly ServiceRole[] = ['lpar', 'fabric-switch', 'control-node'];

/** V8 flags of a role (the sizing above where it pays). */
export function v8Flags(role: ServiceRole): string[] {
  return STREAMING_ROLES.includes(role) ? V8_FLAGS : [];
}

/**
 * glibc's allocator gives freed memory at the top of its heap back to the
 * kernel once more than 128 KiB is free there. A process that receives a
 * stream hands its app a fresh Buffer per 64 KiB (as Node's own sockets do);
 * V8 frees them in batches at each GC, glibc trims, and the next Buffers fault
 * their pages in again: measured, an SMC-D receiver spent three quarters of its
 * copy time in those page faults (4 GB: 11-16 Gbit/s, 35-53 Gbit/s with the trim
 * threshold at 128 MiB). Partitions run with this (they are the receivers of
 * SMC-D and TCP streams); the benchmarks' kernel baselines too, so both sides
 * of a ratio allocate alike. The other roles do not: it keeps what boot freed
 * resident, ~4-5 MB of every idle process (issue 10 item 3), and they hand no
 * app a stream. A caller's own GLIBC_TUNABLES wins.
 */
export const MALLOC_TUNABLES = 'glibc.malloc.trim_threshold=134217728';
const RECEIVING_ROLES: readonly ServiceRole[] = ['lpar'];

/** The environment a service of `role` runs with: the caller's, plus the allocator setting above where it pays. */
export function serviceEnv(role: ServiceRole, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (!RECEIVING_ROLES.includes(role) || base.GLIBC_TUNABLES !== undefined) return { ...base };
  return { ...base, GLIBC_TUNABLES: MALLOC_TUNABLES };
}

/**
 * Scheduling priority (nice) of a role. The fabric's planes, the control
 * nodes and the fabric manager serve every partition; on a box with far more
 * partitions than cores (256 on two), a plane or control node that waits
 * behind a couple of hundred runnable partitions for the CPU answers late for
 * all of them at once, and RCLAN's deadAfterMs and the driver's two heartbeat
 * intervals then judge it silent (issue 10: liveness flapping at 256).
 * Partitions run at nice 5 (a third of a default process's CPU weight under
 * CFS), so the shared boxes keep up; on an idle box nice changes nothing.
 * Raising one's nice needs no privilege.
 */
export const PARTITION_NICE = 5;

/** The nice value a service of `role` runs at (see PARTITION_NICE). */
export function niceness(role: ServiceRole): number {
  return role === 'lpar' ? PARTITION_NICE : 0;
}

/**
 * Whether a service of `role` starts a session of its own (setsid): every
 * role but the partitions, which stay in the supervisor's. Nice alone is not
 * enough at scale: CFS shares the CPU by the weights of what is runnable, and
 * 256 runnable partitions at nice 5 weigh 256 x 335 against a control node's
 * 1024, so a control node had about 1 % of the CPU in a heartbeat storm, its
 * socket queues grew to 150 KB, and every partition then judged it silent
 * (issue 10: a storm after boot that lasted six minutes, measured in
 * docs/BENCHMARKS.md). With the kernel's autogroup scheduling
 * (kernel.sched_autogroup_enabled, on by default in Debian and most
 * distributions) a session is one scheduling entity: the partitions compete
 * as one group against each shared box, as partitions share their CECs'
 * processors while control nodes and switches are hardware of their own
 * (seed 004). Where autogroup is off a session changes nothing and nice is
 * what remains. A service still exits with the supervisor (it watches its
 * launcher descriptor); it no longer hears a terminal's Ctrl-C itself, the
 * supervisor stops it in order.
 */
export function ownSession(role: ServiceRole): boolean {
  return role !== 'lpar';
}

/** Node's arguments for a service: its role's V8 flags, any debugger flags, then its compiled main file. */
export function nodeArgs(spec: ProcessSpec, extra: string[] = []): string[] {
  return [...v8Flags(spec.role), ...extra, spec.script, ...spec.args];
}
