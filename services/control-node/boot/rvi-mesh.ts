/**
 * The paths a control node makes (seed 004, "2. RVI Mapping And Management":
 * the control node, never a processing node, makes them through the fabric
 * manager): a management RVI and a virtual-LAN RVI to every LPAR at boot, and
 * the unicast RVI between two members of a virtual LAN when it is first
 * needed.
 *
 * When first needed (issue 10 item 2): the seed's control node makes every
 * unicast path at boot, n² of them for n members, most of which a real
 * platform never uses; here the ARP server asks for the one path an ARP
 * resolution is about (seed 004, "3. ARP processing and IP mapping to RVIs":
 * "the RVIs are also associated with IP addresses during the virtual LAN
 * server's handling of ARP traffic") and holds that request until the fabric
 * manager has made it (vlan/arp-server.ts). A pair that never talks never
 * gets one. The fabric manager returns the existing RVI when asked again, so
 * the other control node, which does not see this one's requests, learns the
 * same path by asking for it the same way.
 */
import { RviState, type Rvi } from '../../../shared/rclan/rvi.ts';
import { lan, Mgmt, Vlan, type Purpose } from '../../../shared/rclan/purpose.ts';
import { sendMgmt, type ToLpar } from '../../../shared/protocol/mgmt.ts';
import type { FmClient } from '../../../shared/protocol/fm.ts';
import type { VlanFabric } from '../vlan/members.ts';
import { pairKey } from './membership.ts';
import { eachAtMost } from '../../../shared/runtime/at-most.ts';

/** This node's RVIs as RCLAN holds them. */
export interface RviDirectory {
  find(peer: string, purpose: Purpose): Rvi | undefined;
}

interface LanPath {
  vlan: string;
  a: string;
  b: string;
  id: number;
}

/** Also the virtual LAN servers' VlanFabric: how they reach members and find or make the unicast RVIs. */
export class RviMesh implements VlanFabric {
  /** Unicast RVIs by pairKey(vlan, a, b). */
  private readonly lanRvis = new Map<string, LanPath>();
  /** Each member's unicast RVIs on each virtual LAN: `${vlan}|${lpar}` → other member → RVI id. */
  private readonly byMember = new Map<string, Map<string, number>>();
  /** RVI id → its path, for the relay of a forwarding member (which member is at the other end). */
  private readonly byId = new Map<number, LanPath>();
  /** Requests under way, so a burst of ARP for one pair asks the fabric manager once. */
  private readonly pending = new Map<string, Promise<number>>();
  readonly stats = { lanRvisMade: 0, lanRviFailures: 0 };
  /** A unicast RVI became known here (made or learnt from the fabric manager): its two ends learn its peer address. */
  onLanRvi: (vlan: string, a: string, b: string, id: number) => void = () => {};

  constructor(
    private readonly self: string,
    private readonly fm: FmClient,
    private readonly rvis: RviDirectory,
  ) {}

  /**
   * The management and virtual-LAN RVIs to each LPAR (the fabric manager
   * returns those made before): CONNECT_AT_ONCE requests in flight, not one
   * (a round trip each, two per LPAR) nor all 512 of 256 LPARs (a loaded
   * fabric manager would time the last ones out); one that times out is
   * asked again.
   */
  async connectLpars(lpars: readonly string[]): Promise<void> {
    const jobs = lpars.flatMap((l) => [Mgmt, Vlan].map((purpose) => ({ b: l, purpose })));
    await eachAtMost(jobs, CONNECT_AT_ONCE, async (j) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.fm.request({ t: 'rvi-create', a: this.self, b: j.b, purpose: j.purpose }, 15_000);
          break;
        } catch (err) {
          if (attempt >= 4 || !/no reply/.test((err as Error).message)) throw err;
        }
      }
    });
  }

  /** The unicast RVI of `vlan` between `a` and `b`: known, or made (or learnt) through the fabric manager now. */
  ensureLan(vlan: string, first: string, second: string): Promise<number> {
    // Made in name order (lpar2 before lpar10), whoever asked first: `rvi list` reads the same on every boot.
    const [a, b] = first.localeCompare(second, 'en', { numeric: true }) <= 0 ? [first, second] : [second, first];
    const key = pairKey(vlan, a, b);
    const known = this.lanRvis.get(key);
    if (known) return Promise.resolve(known.id);
    let p = this.pending.get(key);
    if (p) return p;
    p = this.fm.request({ t: 'rvi-create', a, b, purpose: lan(vlan) }).then(
      (r) => {
        this.pending.delete(key);
        this.record({ vlan, a, b, id: r.rvi.id });
        this.stats.lanRvisMade++;
        this.onLanRvi(vlan, a, b, r.rvi.id);
        return r.rvi.id;
      },
      (err: Error) => {
        this.pending.delete(key);
        this.stats.lanRviFailures++;
        throw err;
      },
    );
    this.pending.set(key, p);
    return p;
  }

  private record(path: LanPath): void {
    this.lanRvis.set(pairKey(path.vlan, path.a, path.b), path);
    this.byId.set(path.id, path);
    for (const [x, y] of [
      [path.a, path.b],
      [path.b, path.a],
    ]) {
      const k = `${path.vlan}|${x}`;
      let m = this.byMember.get(k);
      if (!m) this.byMember.set(k, (m = new Map()));
      m.set(y, path.id);
    }
  }

  private forget(path: LanPath): void {
    this.lanRvis.delete(pairKey(path.vlan, path.a, path.b));
    this.byId.delete(path.id);
    this.byMember.get(`${path.vlan}|${path.a}`)?.delete(path.b);
    this.byMember.get(`${path.vlan}|${path.b}`)?.delete(path.a);
  }

  /** Tears down `lpar`'s unicast RVIs on `vlan` that this control node knows of. */
  async disconnectLan(vlan: string, lpar: string): Promise<void> {
    const mine = this.byMember.get(`${vlan}|${lpar}`);
    if (!mine) return;
    for (const id of [...mine.values()]) {
      const path = this.byId.get(id);
      if (path) this.forget(path);
      // The other control node may have torn it down already.
      await this.fm.request({ t: 'rvi-destroy', id }).catch(() => undefined);
    }
    this.byMember.delete(`${vlan}|${lpar}`);
  }

  lanRvi(vlan: string, a: string, b: string): number | undefined {
    return this.lanRvis.get(pairKey(vlan, a, b))?.id;
  }

  /** The members `lpar` has a unicast RVI to on `vlan` (as far as this control node knows), with its id. */
  lanPeersOf(vlan: string, lpar: string): ReadonlyMap<string, number> {
    return this.byMember.get(`${vlan}|${lpar}`) ?? EMPTY;
  }

  /** The member at the other end of `lpar`'s unicast RVI `rvi` on `vlan`, if it is one of its. */
  lanPeer(vlan: string, lpar: string, rvi: number): string | undefined {
    const p = this.byId.get(rvi);
    if (!p || p.vlan !== vlan) return undefined;
    return p.a === lpar ? p.b : p.b === lpar ? p.a : undefined;
  }

  mgmtRvi(lpar: string): Rvi | undefined {
    return this.rvis.find(lpar, Mgmt);
  }

  /**
   * A TLV frame to an LPAR over this control node's virtual-LAN RVI to it.
   * False, taking nothing, when the RVI's window is full or it failed (no leg
   * for undeliverableAfterMs): a member that does not drain holds at most one
   * window of frames here, never more, and never blocks the others (issue 11
   * item 1; the caller counts the drop). A Down RVI still takes frames, as
   * RCLAN's Down state is defined (what is sent waits for a leg): Down is no
   * leg heard for deadAfterMs, and on a loaded box a partition that only waited
   * for the CPU that long is back within the next heartbeat. Dropping then lost
   * relays and ARP replies to partitions that were alive (256 partitions on two
   * cores: 8,129 Down moves at one control node and 16 pairs of a pingall lost,
   * every one a relay dropped here; issue 10).
   */
  sendFrame(lpar: string, frame: Buffer): boolean {
    const rvi = this.rvis.find(lpar, Vlan);
    if (!rvi || rvi.state === RviState.Failed) return false;
    return rvi.send(frame);
  }

  sendMgmt(lpar: string, msg: ToLpar): void {
    const rvi = this.mgmtRvi(lpar);
    if (rvi) sendMgmt(rvi, msg);
  }
}

const EMPTY: ReadonlyMap<string, number> = new Map();
/** Boot-time RVI requests in flight at once (connectLpars). */
const CONNECT_AT_ONCE = 16;
