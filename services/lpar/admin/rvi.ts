import type { NodeFabric } from '../../../shared/fabric/node-fabric.ts';
import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import { rviStatus } from '../../../shared/fabric/rvi-status.ts';

/**
 * The partition's RVIs: `rvis` lists them; `rvi-send-raw` sends arbitrary
 * bytes on one (a partition can send anything on its paths, and the fault
 * tests use it to show the receivers cope).
 */
export function rviVerbs(fabric: NodeFabric): LparVerbTable<'rvis' | 'rvi-send-raw'> {
  return {
    rvis: () => ({ rvis: rviStatus(fabric) }),
    'rvi-send-raw': (m) => {
      const rvi = fabric.rclan.find(m.peer, m.purpose);
      if (!rvi) throw new Error(`no RVI to ${m.peer} (${m.purpose})`);
      return { accepted: rvi.send(m.data) };
    },
  };
}
