/**
 * Location publishing (seed 003: the virtualization management mechanism
 * names the destination's partition, and so its CEC): tells the fabric
 * manager which LPAR a registered address lives on, the answer a partition
 * asks for once per connection. Only addresses a virtual LAN server accepted
 * get here. The fabric manager keeps the table in memory: a restarted one
 * learns it again from `publishAll`.
 */
import type { FmClient } from '../../../shared/protocol/fm.ts';
import type { LogOnce } from '../untrusted.ts';

export class Locations {
  readonly stats = { locationFailures: 0 };

  constructor(
    private readonly fm: FmClient,
    private readonly warn: LogOnce,
  ) {}

  /** `vlan` scopes who may ask for the address (the fabric manager answers only members of it: issue 11 item 11). */
  publish(endpoint: string, lpar: string, vlan: string): void {
    this.fm.request({ t: 'location-set', endpoint, node: lpar, vlan }).catch((err: Error) => {
      this.stats.locationFailures++;
      this.warn.warn(`location/${endpoint}`, { lpar, endpoint, err: err.message }, 'location not recorded');
    });
  }

  publishAll(entries: Iterable<{ endpoint: string; lpar: string; vlan: string }>): void {
    for (const e of entries) this.publish(e.endpoint, e.lpar, e.vlan);
  }
}
