import type { Logger } from 'pino';
import type { VlanSpec } from '../../../shared/platform/platform.ts';
import type { ToLpar } from '../../../shared/protocol/mgmt.ts';
import { EthernetFrame, EtherType } from '../../../shared/wire/ethernet.ts';
import { Ipv4Packet } from '../../../shared/wire/ipv4.ts';
import { ipToString, parseIp } from '../../../shared/wire/ipv4-address.ts';
import { isBroadcastMac, isInternalMac, isMulticastMac, macSerial, macToString, parseInternalMac, parseMac } from '../../../shared/wire/mac.ts';
import { Tlv, TlvType } from '../../../shared/wire/tlv.ts';
import { TokenBucket } from '../../../shared/runtime/token-bucket.ts';
import { ArpServer } from './arp-server.ts';
import { isPromiscuous, isRegistered, memberTransition, MemberState, type MemberEvent, type Uplink, type VlanFabric, type VlanMember, type VlanMembers } from './members.ts';

const MAX_GROUPS = 256;

/**
 * Per-member limits (issue 10 item 5: a broadcast storm from one LPAR cannot
 * starve the others' ARP). Flooding is counted in copies made (a broadcast to
 * 255 members costs 255), so a member's budget is the control node's work, not
 * its frame count: 20,000 copies a second, 5,000 at once. ARP has its own
 * bucket per member in the ARP server, so a flood spends nothing of it.
 * Beyond the budget a frame is dropped and counted (`floodLimited`), as a
 * switch's storm control does.
 */
export const FLOOD_COPIES_PER_SECOND = 20_000;
export const FLOOD_COPIES_BURST = 5_000;

/** A MAC as a number: the key of the look-up by MAC, with no string made per frame. */
function macKey(mac: Buffer): number {
  return mac.readUIntBE(0, 6);
}

export type { VlanFabric, VlanMember };

/** A registration as the member sent it (shared/protocol/mgmt.ts has checked the types and formats). */
export interface Registration {
  dev: number;
  ip: string;
  mac: string;
}

/**
 * One virtual LAN server (seed 004, "Virtual LAN Server" 1-4): membership and
 * IP registration, the ARP server, broadcast and multicast reflection to
 * members only (never back to the sender), multicast use counts, promiscuous
 * listeners the configuration permits, and the relay of last resort. Both
 * control nodes run one for every virtual LAN, so either can serve alone.
 */
export class VlanServer implements VlanMembers {
  readonly name: string;
  readonly id: number;
  readonly members = new Map<string, VlanMember>();
  /** The registered members, and by registered IP and MAC: every look-up on the frame path is a map (issue 10 item 5). */
  readonly registered = new Set<VlanMember>();
  private readonly byIp = new Map<number, VlanMember>();
  private readonly byMac = new Map<number, VlanMember>();
  /** Who holds each MAC, registered or not (a MAC is never given to two members). */
  private readonly macOwner = new Map<number, VlanMember>();
  private readonly flood = new Map<VlanMember, TokenBucket>();
  readonly stats = { broadcast: 0, multicast: 0, relayed: 0, notMember: 0, malformed: 0, noUplink: 0, refused: 0, promiscRefused: 0, spoofed: 0, floodLimited: 0, reflectDropped: 0, relayDropped: 0 };
  readonly arp: ArpServer;
  private readonly permittedPromisc: Set<string>;
  private readonly refusedLogged = new Set<string>();
  /** Serials of the platform's control nodes: the only MAC prefixes members may register. */
  private readonly serials: Set<number>;

  /** Members are added by the control node, which owns membership (file, then join/leave). */
  constructor(
    spec: VlanSpec,
    serials: number[],
    private readonly fabric: VlanFabric,
    private readonly log: Logger,
    /** The LPARs that route for others (`forwarding: true` in the platform file): their datagrams may carry any IPv4 source. */
    private readonly forwarders: ReadonlySet<string> = new Set(),
  ) {
    this.serials = new Set(serials);
    this.name = spec.name;
    this.id = spec.id;
    this.permittedPromisc = new Set(spec.promiscuous);
    this.arp = new ArpServer(this, log.child({ component: 'arp-server' }));
  }

  addMember(lpar: string, ip: number, dev: number): VlanMember {
    const m: VlanMember = { lpar, dev, ip, state: MemberState.Configured, groups: new Set() };
    this.members.set(lpar, m);
    return m;
  }

  removeMember(lpar: string): void {
    const m = this.members.get(lpar);
    if (!m) return;
    const wasPromiscuous = isPromiscuous(m);
    this.change(m, { type: 'forget' });
    this.members.delete(lpar);
    if (m.mac && this.macOwner.get(macKey(m.mac)) === m) this.macOwner.delete(macKey(m.mac));
    this.flood.delete(m);
    this.arp.forget(m);
    if (wasPromiscuous) this.announcePromiscuous();
  }

  /** Every member state change goes through the transition function; the look-up maps follow it. */
  private change(m: VlanMember, e: MemberEvent): boolean {
    const next = memberTransition(m.state, e);
    if (next === m.state) return false;
    const was = isRegistered(m);
    m.state = next;
    const is = isRegistered(m);
    if (was && !is) {
      this.registered.delete(m);
      if (this.byIp.get(m.ip) === m) this.byIp.delete(m.ip);
      if (m.mac && this.byMac.get(macKey(m.mac)) === m) this.byMac.delete(macKey(m.mac));
    } else if (!was && is) {
      this.registered.add(m);
      this.byIp.set(m.ip, m);
      if (m.mac) this.byMac.set(macKey(m.mac), m);
    }
    return true;
  }

  registeredMembers(): VlanMember[] {
    return [...this.registered];
  }

  registeredMember(lpar: string): VlanMember | undefined {
    const m = this.members.get(lpar);
    return m && isRegistered(m) ? m : undefined;
  }

  memberByMac(mac: Buffer): VlanMember | undefined {
    return mac.length === 6 ? this.byMac.get(macKey(mac)) : undefined;
  }

  /** The link to the world outside the platform, when a TAP is attached to this LAN. */
  uplink: Uplink | undefined = undefined;

  /** The registered member at the other end of `from`'s unicast RVI `rvi` of this LAN. */
  private memberOnRvi(from: VlanMember, rvi: number): VlanMember | undefined {
    const peer = this.fabric.lanPeer(this.name, from.lpar, rvi);
    const m = peer === undefined ? undefined : this.registeredMember(peer);
    return m === from ? undefined : m;
  }

  memberByIp(ip: number): VlanMember | undefined {
    return this.byIp.get(ip);
  }

  lanRvi(a: string, b: string): number | undefined {
    return this.fabric.lanRvi(this.name, a, b);
  }

  ensureLan(a: string, b: string): Promise<number> {
    return this.fabric.ensureLan(this.name, a, b);
  }

  lanPeersOf(lpar: string): ReadonlyMap<string, number> {
    return this.fabric.lanPeersOf(this.name, lpar);
  }

  /** Whether `from` may have `copies` frames flooded now (per-member storm control, FLOOD_COPIES_*). */
  private mayFlood(from: VlanMember, copies: number): boolean {
    let b = this.flood.get(from);
    if (!b) this.flood.set(from, (b = new TokenBucket(FLOOD_COPIES_PER_SECOND, FLOOD_COPIES_BURST)));
    if (b.take(performance.now(), Math.min(copies, FLOOD_COPIES_BURST))) return true;
    this.stats.floodLimited++;
    return false;
  }

  /** False when the member's RVI took nothing (its window is full: the member does not drain). */
  send(to: VlanMember, frame: Buffer): boolean {
    return this.fabric.sendFrame(to.lpar, frame);
  }

  /**
   * Binds the member's IP to it (and so to the RVI it arrived on). A node
   * that is not a configured member, or claims another address or device, is
   * refused and logged (seed 004, "Virtual LAN Server" 1).
   */
  register(lpar: string, reg: Registration): { ok: boolean; reason?: string } {
    const m = this.members.get(lpar);
    const refuse = (reason: string) => {
      this.stats.refused++;
      // Logged once per partition; a partition repeating itself only moves the counter.
      if (!this.refusedLogged.has(lpar)) {
        this.refusedLogged.add(lpar);
        this.log.warn({ lpar, vlan: this.name, reason: reason.slice(0, 200) }, 'registration refused (further ones from it counted, not logged)');
      }
      return { ok: false, reason };
    };
    if (!m) return refuse(`${lpar} is not a member of virtual LAN ${this.name}`);
    const ip = parseIp(reg.ip);
    const mac = parseMac(reg.mac);
    if (ip !== m.ip) return refuse(`${ipToString(ip)} is not ${lpar}'s address on ${this.name} (${ipToString(m.ip)})`);
    if (reg.dev !== m.dev) return refuse(`device is not ${lpar}'s interface on ${this.name} (${m.dev})`);
    // Only a MAC a control node of this platform assigned (locally administered, its serial), and nobody else's.
    const serial = macSerial(mac);
    if (serial === undefined || !this.serials.has(serial)) return refuse(`MAC ${macToString(mac)} was not assigned by a control node of this platform`);
    const owner = this.macOwner.get(macKey(mac));
    if (owner && owner !== m) return refuse(`MAC ${macToString(mac)} belongs to ${owner.lpar}`);
    if (m.mac && !m.mac.equals(mac)) {
      if (this.macOwner.get(macKey(m.mac)) === m) this.macOwner.delete(macKey(m.mac));
      if (this.byMac.get(macKey(m.mac)) === m) this.byMac.delete(macKey(m.mac));
    }
    m.mac = mac;
    this.macOwner.set(macKey(mac), m);
    if (isRegistered(m)) this.byMac.set(macKey(mac), m);
    this.change(m, { type: 'register' });
    this.log.info({ lpar, vlan: this.name, ip: ipToString(ip), mac: macToString(mac) }, 'member registered');
    return { ok: true };
  }

  /** The member's process is gone or restarting: it registers again when it is back. */
  forget(lpar: string): void {
    const m = this.members.get(lpar);
    if (!m) return;
    const wasPromiscuous = isPromiscuous(m);
    this.change(m, { type: 'forget' });
    m.groups.clear();
    if (wasPromiscuous) this.announcePromiscuous();
  }

  /**
   * Seed 004, "4. Broadcast And Multicast Services": the member's driver keeps
   * the use counts of its sockets and reports first join and last leave; here
   * a group is a set entry, so a join said again (after a reconnection) is
   * harmless. At most MAX_GROUPS per member.
   */
  multicast(lpar: string, group: string, join: boolean): void {
    const m = this.members.get(lpar);
    if (!m || !isRegistered(m)) return;
    const mac = parseMac(group);
    if (!isMulticastMac(mac) || isBroadcastMac(mac)) {
      this.stats.malformed++;
      return;
    }
    const key = macToString(mac);
    if (!join) m.groups.delete(key);
    else if (m.groups.size < MAX_GROUPS) m.groups.add(key);
  }

  /**
   * Promiscuous mode (seed 004, "Virtual LAN Server", promiscuous passages):
   * only members the configuration permits; a refused request is dropped and
   * logged. An accepted one is announced to every other member so their
   * drivers clone unicast traffic to the listener.
   */
  promiscuous(lpar: string, on: boolean): void {
    const m = this.members.get(lpar);
    if (!m || !isRegistered(m)) return;
    if (on && !this.permittedPromisc.has(lpar)) {
      if (this.stats.promiscRefused++ === 0) this.log.warn({ lpar, vlan: this.name }, 'promiscuous mode not permitted: request dropped (further ones counted)');
      return;
    }
    if (this.change(m, { type: 'promisc', on })) this.announcePromiscuous();
  }

  listeners(): Array<{ node: string; dev: number }> {
    return [...this.registered].filter(isPromiscuous).map((m) => ({ node: m.lpar, dev: m.dev }));
  }

  announcePromiscuous(only?: string): void {
    const msg: ToLpar = { t: 'promisc-listeners', vlan: this.name, listeners: this.listeners() };
    if (only !== undefined) {
      if (this.registeredMember(only)) this.fabric.sendMgmt(only, msg);
      return;
    }
    for (const m of this.registered) this.fabric.sendMgmt(m.lpar, msg);
  }

  /** A TLV frame from a member (already checked to be one) on this virtual LAN. */
  handleFrame(from: VlanMember, tlv: Tlv, frame: Buffer): void {
    const eth = EthernetFrame.tryParse(tlv.value);
    if (!eth) {
      this.stats.malformed++;
      return;
    }
    if (!from.mac || !eth.src.equals(from.mac)) {
      this.stats.spoofed++;
      return;
    }
    // ARP travels only as ARP TLVs, through the ARP server's checks; anywhere else it could poison caches.
    if (eth.etherType === EtherType.Arp && tlv.type !== TlvType.Arp) {
      this.stats.spoofed++;
      return;
    }
    switch (tlv.type) {
      case TlvType.Arp:
        if (eth.etherType !== EtherType.Arp) this.stats.malformed++;
        else this.arp.handle(from, tlv, frame);
        return;
      case TlvType.Broadcast:
        if (!isBroadcastMac(eth.dst)) {
          this.stats.malformed++;
          return;
        }
        this.stats.broadcast++;
        if (!this.mayFlood(from, this.registered.size - 1)) return;
        this.reflect(from, frame, () => true);
        this.uplink?.send(tlv.value);
        return;
      case TlvType.Multicast: {
        if (!isMulticastMac(eth.dst)) {
          this.stats.malformed++;
          return;
        }
        const group = macToString(eth.dst);
        this.stats.multicast++;
        if (!this.mayFlood(from, this.registered.size - 1)) return;
        this.reflect(from, frame, (m) => m.groups.has(group) || isPromiscuous(m));
        this.uplink?.send(tlv.value);
        return;
      }
      case TlvType.Relayed:
      case TlvType.Unicast:
        this.relay(from, eth, frame);
        return;
      default:
        this.stats.malformed++;
    }
  }

  /**
   * Clones to the chosen registered members, never back to the sender. A copy
   * to a member whose RVI is full (it stopped reading) is dropped and counted
   * (`reflectDropped`): the reflection never waits for one member (issue 11
   * item 1), and a broadcast is best effort as on a LAN.
   */
  private reflect(from: VlanMember, frame: Buffer, want: (m: VlanMember) => boolean): void {
    for (const to of this.members.values()) {
      if (to === from || !isRegistered(to) || !want(to)) continue;
      const copy = Buffer.from(frame);
      Tlv.parse(copy).setDstDev(to.dev);
      if (!this.send(to, copy)) this.stats.reflectDropped++;
    }
  }

  /**
   * Relay of last resort (seed 004, "2. RVI Mapping And Management"): the
   * sender could not use its direct RVI; the destination is found by its IP
   * address, or by a registered MAC, among this LAN's members only.
   */
  private relay(from: VlanMember, eth: EthernetFrame, frame: Buffer): void {
    let to: VlanMember | undefined;
    if (eth.etherType === EtherType.Ipv4) {
      const ip = Ipv4Packet.tryParse(eth.payload);
      if (!ip) {
        this.stats.malformed++;
        return;
      }
      // The IP bound to the sender at registration is the only source it may use (seed 004, "Virtual LAN Server" 1).
      if (ip.src !== from.ip && !this.forwarders.has(from.lpar)) {
        this.stats.spoofed++;
        return;
      }
      to = this.memberByIp(ip.dst);
    }
    // A forwarding member's datagram is for its next hop, not for the IP destination: the internal MAC it
    // was sent to names the RVI between the two, so the next hop is the member at the other end of it.
    if ((!to || to === from) && this.forwarders.has(from.lpar) && isInternalMac(eth.dst)) to = this.memberOnRvi(from, parseInternalMac(eth.dst).rvi);
    to ??= this.memberByMac(eth.dst);
    if (!to && this.uplink && !isMulticastMac(eth.dst)) {
      this.uplink.send(Buffer.from(Tlv.parse(frame).value));
      return;
    }
    if (!to || to === from) {
      this.stats.noUplink++;
      return;
    }
    const t = Tlv.parse(frame);
    t.setType(TlvType.Unicast);
    t.setDstDev(to.dev);
    this.stats.relayed++;
    // A member that does not drain loses the frame, counted: its sender's transport repairs it (issue 11 item 1).
    if (!this.send(to, frame)) this.stats.relayDropped++;
  }

  status(): Record<string, unknown> {
    return {
      name: this.name,
      id: this.id,
      members: [...this.members.values()].map((m) => ({
        lpar: m.lpar,
        dev: m.dev,
        ip: ipToString(m.ip),
        mac: m.mac ? macToString(m.mac) : null,
        state: m.state,
        registered: isRegistered(m),
        promiscuous: isPromiscuous(m),
        groups: [...m.groups],
      })),
      stats: this.stats,
      arp: this.arp.stats,
    };
  }
}
