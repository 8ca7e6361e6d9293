import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { Workloads } from '../apps/workloads.ts';
import type { Smc } from '../net/smc/smc.ts';

/** What `lpar-status` reports of the partition's boot (services/lpar/lpar.ts). */
export interface BootFacts {
  /** The boot state machine's state (services/lpar/boot-state.ts). */
  readonly boot: string;
  /** The configuration a control node sent, once one has. */
  readonly config?: unknown;
  readonly configuredBy: Iterable<string>;
  reachable(): string[];
  readonly malformed: number;
}

/** `lpar-status`: the partition's configuration, who gave it, who is reachable, its apps and its SMC. */
export function statusVerbs(boot: BootFacts, workloads: Workloads, smc: () => Smc | undefined): LparVerbTable<'lpar-status'> {
  return {
    'lpar-status': () => ({ boot: boot.boot, config: boot.config ?? null, configuredBy: [...boot.configuredBy], reachable: boot.reachable(), malformed: boot.malformed, apps: workloads.list(), smc: smc()?.status() ?? null }),
  };
}
