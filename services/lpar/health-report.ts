/**
 * What a partition's health says once it has booted (issue 11 item 12: an
 * LPAR whose virtual-LAN RVIs were destroyed said healthy without ARP, for
 * good). Its network works through a control node only when it has both RVIs
 * to it live: management (boot, registration) and virtual LAN (ARP,
 * broadcast, relayed frames, seed 004 "Virtual LAN Server"). Healthy when one
 * control node at least is reachable on both and every control node it has a
 * management path to also has a virtual-LAN path; degraded otherwise, naming
 * what is missing.
 */
import type { Health } from '../../shared/runtime/state-file.ts';

export interface LparFacts {
  /** Control nodes whose management RVI is live. */
  mgmt: string[];
  /** Control nodes whose virtual-LAN RVI is live. */
  vlan: string[];
  /** Whether the partition has interfaces on virtual LANs (without, it needs no virtual-LAN RVI). */
  hasInterfaces: boolean;
  cec?: string;
  /** The apps' summary for the detail, '' when none. */
  apps: string;
}

export function lparHealth(f: LparFacts): { health: Health; detail: string } {
  const apps = f.apps ? `; ${f.apps}` : '';
  if (f.mgmt.length === 0) return { health: 'degraded', detail: `no control node reachable${apps}` };
  if (!f.hasInterfaces) return { health: 'healthy', detail: `cec ${f.cec}; control nodes ${f.mgmt.join(',')}${apps}` };
  const usable = f.mgmt.filter((c) => f.vlan.includes(c));
  const noLan = f.mgmt.filter((c) => !f.vlan.includes(c));
  if (usable.length === 0) return { health: 'degraded', detail: `no virtual-LAN path to any control node (${f.mgmt.join(',')}): ARP and broadcast cannot work${apps}` };
  if (noLan.length) return { health: 'degraded', detail: `control nodes ${usable.join(',')}; no virtual-LAN path to ${noLan.join(',')}${apps}` };
  return { health: 'healthy', detail: `cec ${f.cec}; control nodes ${usable.join(',')}${apps}` };
}
