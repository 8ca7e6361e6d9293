/**
 * What a control node's health says (issue 11 item 12: control nodes said
 * healthy with every RVI down). Healthy means it can do its job: both planes
 * attached, the fabric manager reachable, and every management and
 * virtual-LAN RVI it owns there and up, so every LPAR can boot, register and
 * ARP through it. Anything less is degraded, naming what is missing, so
 * `lparlab status` points at it; `starting` until a plane is attached.
 */
import type { Health } from '../../shared/runtime/state-file.ts';
import { Vlan } from '../../shared/rclan/purpose.ts';
import { RviState } from '../../shared/rclan/rvi.ts';

export interface ControlNodeFacts {
  planes: string[];
  fmConnected: boolean;
  /** Owned RVIs not held now (RviRepair.missing). */
  missing: string[];
  /** The owned RVIs held now: peer, purpose and RCLAN state. */
  owned: Array<{ peer: string; purpose: string; state: string }>;
  /** LPARs whose virtual-LAN heartbeats stopped (their RVI may look up: liveness is per peer, not per RVI). */
  silent: string[];
}

export function controlNodeHealth(f: ControlNodeFacts): { health: Health; detail: string } {
  if (f.planes.length === 0) return { health: 'starting', detail: 'no plane attached' };
  const problems: string[] = [];
  if (f.planes.length === 1) problems.push(`only plane ${f.planes[0]}`);
  if (!f.fmConnected) problems.push('fabric manager unreachable');
  if (f.missing.length) problems.push(`RVIs missing (re-creating): ${f.missing.join(', ')}`);
  const unreachable = [...new Set([...f.owned.filter((r) => r.state !== RviState.Up && r.state !== RviState.Degraded).map((r) => r.peer), ...f.silent.filter((l) => f.owned.some((r) => r.peer === l && r.purpose === Vlan))])].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (unreachable.length) problems.push(`unreachable: ${unreachable.join(', ')}`);
  if (problems.length) return { health: 'degraded', detail: problems.join('; ') };
  return { health: 'healthy', detail: `planes ${f.planes.join('+')}; ${new Set(f.owned.map((r) => r.peer)).size} LPARs reachable` };
}
