import type { NodeFabric } from './node-fabric.ts';

/** What `lparlab status` and the admin `rvis` verb show of a node's RVIs. */
export function rviStatus(fabric: NodeFabric): Array<Record<string, unknown>> {
  return [...fabric.rclan.rvis.values()].map((r) => ({
    id: r.id,
    vi: r.vi,
    peer: r.peer,
    purpose: r.purpose,
    state: r.state,
    legs: r.legs,
    inFlight: r.inFlight,
    rttMs: Math.round(r.rttMs * 1000) / 1000,
    stats: r.stats,
  }));
}
