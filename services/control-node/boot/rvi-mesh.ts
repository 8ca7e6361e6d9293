/**
 * The paths a control node makes (seed 004, "2. RVI Mapping And Management":
 * the control node, never a processing node, makes them through the fabric
 * manager): a management RVI and a virtual-LAN RVI to every LPAR, and the
 * unicast RVI between each two members of each virtual LAN.
 */
import { RviState, type Rvi } from '../../../shared/rclan/rvi.ts';
import { lan, Mgmt, Vlan, type Purpose } from '../../../shared/rclan/purpose.ts';
import { sendMgmt, type ToLpar } from '../../../shared/protocol/mgmt.ts';
import type { FmClient } from '../../../shared/protocol/fm.ts';
import type { VlanFabric } from '../vlan/members.ts';
import { pairKey } from './membership.ts';


/** This node's RVIs as RCLAN holds them. */
export interface RviDirectory {
  find(peer: string, purpose: Purpose): Rvi | undefined;
}

/** Also the virtual LAN servers' VlanFabric: how they reach members and find the unicast RVIs. */
export class RviMesh implements VlanFabric {
  /** Unicast RVI ids by pairKey(vlan, a, b). */
  private readonly lanRvis = new Map<string, number>();

  constructor(
    private readonly self: string,
    private readonly fm: FmClient,
    private readonly rvis: RviDirectory,
  ) {}

  /** The management and virtual-LAN RVIs to each LPAR (the fabric manager returns those made before). */
  async connectLpars(lpars: readonly string[]): Promise<void> {
    for (const l of lpars) {
      await this.fm.request({ t: 'rvi-create', a: this.self, b: l, purpose: Mgmt });
      await this.fm.request({ t: 'rvi-create', a: this.self, b: l, purpose: Vlan });
    }
  }

  async connectLan(vlan: string, a: string, b: string): Promise<void> {
    const r = await this.fm.request({ t: 'rvi-create', a, b, purpose: lan(vlan) });
    this.lanRvis.set(pairKey(vlan, a, b), r.rvi.id);
  }

  /** Tears down `lpar`'s unicast RVIs on `vlan` to each of `others`. */
  async disconnectLan(vlan: string, lpar: string, others: readonly string[]): Promise<void> {
    for (const other of others) {
      const key = pairKey(vlan, lpar, other);
      const id = this.lanRvis.get(key);
      this.lanRvis.delete(key);
      // The other control node may have torn it down already.
      if (id !== undefined) await this.fm.request({ t: 'rvi-destroy', id }).catch(() => undefined);
    }
  }

  lanRvi(vlan: string, a: string, b: string): number | undefined {
    return this.lanRvis.get(pairKey(vlan, a, b));
  }

  mgmtRvi(lpar: string): Rvi | undefined {
    return this.rvis.find(lpar, Mgmt);
  }

  /**
   * A TLV frame to an LPAR over this control node's virtual-LAN RVI to it.
   * False, taking nothing, when the RVI is full or down (no leg heard for
   * deadAfterMs): a member that does not drain gets nothing queued for it
   * (issue 11 item 1; the caller counts the drop).
   */
  sendFrame(lpar: string, frame: Buffer): boolean {
    const rvi = this.rvis.find(lpar, Vlan);
    if (!rvi || rvi.state === RviState.Down || rvi.state === RviState.Failed) return false;
    return rvi.send(frame);
  }

  sendMgmt(lpar: string, msg: ToLpar): void {
    const rvi = this.mgmtRvi(lpar);
    if (rvi) sendMgmt(rvi, msg);
  }
}
