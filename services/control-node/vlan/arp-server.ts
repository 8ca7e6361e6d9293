import type { Logger } from 'pino';
import { TokenBucket } from '../../../shared/runtime/token-bucket.ts';
import { ArpOp, ArpPacket } from '../../../shared/wire/arp.ts';
import { EthernetFrame } from '../../../shared/wire/ethernet.ts';
import { emitInternalMac } from '../../../shared/wire/mac.ts';
import { TLV_HEADER, Tlv, TlvFlag } from '../../../shared/wire/tlv.ts';
import type { VlanMember, VlanMembers } from './members.ts';

/**
 * Per-member ARP budget (issue 10 item 5): a member may resolve every other
 * member of a 256-member LAN at once (`pingall`), and no member's ARP waits
 * behind another's flood, which has a budget of its own (vlan-server.ts).
 */
export const ARP_PER_SECOND = 1000;
export const ARP_BURST = 512;
/** ARP messages of one member waiting for their unicast RVI to be made; more are dropped (ARP retries). */
export const ARP_HELD_PER_MEMBER = 512;
/**
 * How often a member's ARP request is also passed to the members that already
 * have a path to it (Fig. 4C step 450, the refresh of their entry for it): at
 * most once per this interval per requester. The entry they hold names the
 * pair's RVI, which does not change while both are members, so one refresh per
 * interval says all that the next ones would; passing every request on made a
 * pingall cost n³ frames at the control nodes (issue 10 item 2: 64 members,
 * ~7 tries per pair, each to ~30 peers, ~850,000 copies, and the first
 * pingall lost 3,910 of 4,032 pairs behind them).
 */
export const ARP_REFRESH_MS = 5000;

/**
 * The ARP server of one virtual LAN (seed 004, "3. ARP processing and IP
 * mapping to RVIs", Fig. 4B/4C steps 435-475). A request is annotated with the
 * RVI by which each receiver reaches the requester; the target's driver turns
 * that annotation into the requester's internal MAC. A reply's sender MAC is
 * replaced by the internal MAC naming the RVI from the requester to the
 * replier, so unicast then goes direct.
 *
 * The unicast RVI is made when an ARP first needs it (issue 10 item 2,
 * rvi-mesh.ts): a request for a registered member, or a reply to one, waits
 * here until the fabric manager has made the pair's RVI (a round trip to it;
 * at most ARP_HELD_PER_MEMBER of one member's wait, the rest are dropped and
 * counted, and ARP asks again). So the cost of an ARP is bounded by who it is
 * about, not by the size of the LAN: a request for a member goes to that
 * member and to those who already have a path to the requester (to refresh
 * their entry, Fig. 4C step 450: not the target, passed up unchanged); only a
 * request for an address no member holds (outside, or gratuitous) goes to
 * every member, as a broadcast must.
 */
export class ArpServer {
  readonly stats = { requests: 0, replies: 0, spoofed: 0, unanswerable: 0, malformed: 0, dropped: 0, limited: 0, held: 0, heldDropped: 0, heldAgain: 0, refreshes: 0, noPath: 0 };
  private readonly buckets = new Map<VlanMember, TokenBucket>();
  private readonly holding = new Map<VlanMember, number>();
  /** Requests held now, by requester and target: a retry of one of them is not held (nor passed on) a second time. */
  private readonly heldRequests = new Map<VlanMember, Set<VlanMember>>();
  /** When each requester's ARP was last passed to the members with a path to it (ARP_REFRESH_MS). */
  private readonly refreshedAt = new Map<VlanMember, number>();

  constructor(
    private readonly vlan: VlanMembers,
    private readonly log: Logger,
  ) {}

  /** `frame` is the TLV and the Ethernet frame it carries, as received from `from`. */
  handle(from: VlanMember, tlv: Tlv, frame: Buffer): void {
    const eth = EthernetFrame.tryParse(tlv.value);
    const arp = eth && ArpPacket.tryParse(eth.payload);
    if (!eth || !arp) {
      this.stats.malformed++;
      return;
    }
    // A member speaks only for its own address and MAC: no ARP spoofing across partitions.
    if (arp.spa !== from.ip || !from.mac || !arp.sha.equals(from.mac)) {
      if (this.stats.spoofed++ === 0) this.log.warn({ lpar: from.lpar, vlan: this.vlan.name }, 'ARP with a sender address not registered to it dropped (further ones counted)');
      return;
    }
    if (!this.bucket(from).take(performance.now())) {
      this.stats.limited++;
      return;
    }
    if (arp.op === ArpOp.Request) this.request(from, arp, frame);
    else this.reply(from, arp, frame);
  }

  private bucket(m: VlanMember): TokenBucket {
    let b = this.buckets.get(m);
    if (!b) this.buckets.set(m, (b = new TokenBucket(ARP_PER_SECOND, ARP_BURST)));
    return b;
  }

  /** A member that left: its budget and holds go with it. */
  forget(m: VlanMember): void {
    this.buckets.delete(m);
    this.holding.delete(m);
    this.heldRequests.delete(m);
    this.refreshedAt.delete(m);
  }

  /**
   * Runs `then` once the unicast RVI between `from` and `to` exists (at once
   * when it is known). The frame waits meanwhile; it is dropped, and counted,
   * when `from` already has ARP_HELD_PER_MEMBER waiting or the RVI cannot be
   * made (then `then` runs without it, so the ARP still reaches its target).
   */
  private withPath(from: VlanMember, to: VlanMember, then: (rvi: number | undefined) => void): void {
    const known = this.vlan.lanRvi(from.lpar, to.lpar);
    if (known !== undefined) return then(known);
    const held = this.holding.get(from) ?? 0;
    if (held >= ARP_HELD_PER_MEMBER) {
      this.stats.heldDropped++;
      return;
    }
    this.holding.set(from, held + 1);
    this.stats.held++;
    const release = () => {
      const n = (this.holding.get(from) ?? 1) - 1;
      if (n > 0) this.holding.set(from, n);
      else this.holding.delete(from);
    };
    this.vlan.ensureLan(from.lpar, to.lpar).then(
      (rvi) => {
        release();
        then(rvi);
      },
      (err: Error) => {
        release();
        if (this.stats.noPath++ === 0) this.log.warn({ a: from.lpar, b: to.lpar, vlan: this.vlan.name, err: err.message }, 'unicast RVI could not be made (further failures counted)');
        then(undefined);
      },
    );
  }

  private request(from: VlanMember, arp: ArpPacket, frame: Buffer): void {
    this.stats.requests++;
    // Outside the platform the request goes as it is: the members' real MACs are visible there (unfiltered mode).
    this.vlan.uplink?.send(Buffer.from(frame.subarray(TLV_HEADER)));
    const target = this.vlan.memberByIp(arp.tpa);
    if (!target || target === from) {
      // No member holds the address (or it is gratuitous): every member hears it, annotated where a path exists.
      for (const to of this.vlan.registered) if (to !== from) this.forward(from, to, this.vlan.lanRvi(to.lpar, from.lpar), frame);
      return;
    }
    // A retry (ARP asks again every 250 ms) of a request held for its RVI: the held one is forwarded when the
    // RVI exists and its answer satisfies the retry too, so this one is counted and dropped (issue 10 item 2:
    // each retry held and forwarded made the target answer each, and each answer crossed the control node).
    const waiting = this.heldRequests.get(from);
    if (waiting?.has(target)) {
      this.stats.heldAgain++;
      return;
    }
    // Marked only when withPath will hold it (not when the member's holds are full and it drops it).
    const holds = this.vlan.lanRvi(from.lpar, target.lpar) === undefined && (this.holding.get(from) ?? 0) < ARP_HELD_PER_MEMBER;
    if (holds) {
      const set = waiting ?? new Set<VlanMember>();
      set.add(target);
      this.heldRequests.set(from, set);
    }
    // Copied now: the frame's buffer is the receive path's and may be reused while the RVI is made.
    const held = Buffer.from(frame);
    this.withPath(from, target, (rvi) => {
      if (holds) {
        const set = this.heldRequests.get(from);
        set?.delete(target);
        if (set?.size === 0) this.heldRequests.delete(from);
      }
      if (!this.vlan.registered.has(target) || !this.vlan.registered.has(from)) return;
      this.forward(from, target, rvi, held);
      const now = performance.now();
      const last = this.refreshedAt.get(from);
      if (last !== undefined && now - last < ARP_REFRESH_MS) return;
      this.refreshedAt.set(from, now);
      this.stats.refreshes++;
      for (const [peer, id] of this.vlan.lanPeersOf(from.lpar)) {
        const to = this.vlan.registeredMember(peer);
        if (to && to !== target) this.forward(from, to, id, held);
      }
    });
  }

  /** One copy of the request to `to`, annotated with the RVI by which `to` reaches the requester (none: unchanged). */
  private forward(from: VlanMember, to: VlanMember, rvi: number | undefined, frame: Buffer): void {
    const copy = Buffer.from(frame);
    const t = Tlv.parse(copy);
    if (rvi !== undefined) {
      t.setFlags(t.flags | TlvFlag.Annotated);
      t.setSrcRvi(rvi);
    }
    t.setSrcDev(from.dev);
    t.setDstDev(to.dev);
    // A member whose RVI is full misses the request, counted: the asker tries again (arp-cache.ts).
    if (!this.vlan.send(to, copy)) this.stats.dropped++;
  }

  private reply(from: VlanMember, arp: ArpPacket, frame: Buffer): void {
    this.stats.replies++;
    const to = this.vlan.memberByIp(arp.tpa);
    const uplink = this.vlan.uplink;
    if (!to && uplink) {
      // The answer to a host outside: it learns the member's real MAC.
      uplink.send(Buffer.from(frame.subarray(TLV_HEADER)));
      return;
    }
    if (!to || !to.mac || to === from) {
      this.stats.unanswerable++;
      return;
    }
    const held = Buffer.from(frame);
    this.withPath(to, from, (rvi) => {
      if (rvi === undefined || !to.mac || !this.vlan.registered.has(to)) {
        this.stats.unanswerable++;
        return;
      }
      const t = Tlv.parse(held);
      const e = EthernetFrame.parse(t.value);
      const a = ArpPacket.parse(e.payload);
      const mac = Buffer.allocUnsafe(6);
      emitInternalMac(mac, 0, { rvi, dev: from.dev, vlan: this.vlan.id });
      a.setSha(mac);
      a.setTha(to.mac);
      // The requester sees the reply as coming from the internal MAC: its stack learns the RVI.
      e.setDst(to.mac).setSrc(mac);
      t.setFlags(t.flags | TlvFlag.LocalReply);
      t.setDstDev(to.dev);
      t.setSrcDev(from.dev);
      // A member whose RVI is full misses the reply, counted: the asker tries again (arp-cache.ts).
      if (!this.vlan.send(to, held)) this.stats.dropped++;
    });
  }
}
