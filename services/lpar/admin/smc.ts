import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { Rvi } from '../../../shared/rclan/rvi.ts';
import type { Smc } from '../net/smc/smc.ts';

/** What the SMC verbs ask of the partition: its SMC component (once configured), its hypervisor session, and seeds 002/003's lookups. */
export interface SmcFacts {
  smc(): Smc | undefined;
  hypervisor: { url: string; readonly connected: boolean } | undefined;
  /** Seed 003: where an address lives. */
  locate(ip: string, timeoutMs?: number): Promise<{ node: string | null; cec: string | null }>;
  /** Seed 002: the SMC-R link group to a peer, from a control node. */
  smcrLinks(peer: string, timeoutMs?: number): Promise<[Rvi, Rvi]>;
}

/**
 * `smc-status` (the partition's SMC component, as smc-tools' smcd stats),
 * `locate` (ask the location service where an address lives) and
 * `smcr-links` (ask a control node for the link group to a peer, as the SMC
 * layer would).
 */
export function smcVerbs(facts: SmcFacts): LparVerbTable<'smc-status' | 'locate' | 'smcr-links'> {
  return {
    'smc-status': () => {
      const hv = facts.hypervisor;
      return { smc: facts.smc()?.status() ?? null, hypervisor: hv ? { url: hv.url, connected: hv.connected } : null };
    },
    locate: async (m) => ({ ip: m.ip, ...(await facts.locate(m.ip, m.timeoutMs)) }),
    'smcr-links': async (m) => {
      const links = await facts.smcrLinks(m.peer, m.timeoutMs);
      return { peer: m.peer, links: links.map((r) => ({ id: r.id, purpose: r.purpose, plane: r.plane ?? null, state: r.state, legs: r.legs })) };
    },
  };
}
