import type { Logger } from 'pino';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { VlanSpec } from '../../shared/platform/platform.ts';
import { EthernetFrame, EtherType } from '../../shared/wire/ethernet.ts';
import { Ipv4Packet } from '../../shared/wire/ipv4.ts';
import { ipToString, parseIp } from '../../shared/wire/ipv4-address.ts';
import { isBroadcastMac, isMulticastMac, macToString, parseMac } from '../../shared/wire/mac.ts';
import { Tlv, TlvType } from '../../shared/wire/tlv.ts';
import { ArpServer } from './arp-server.ts';

export interface VlanMember {
  lpar: string;
  dev: number;
  ip: number;
  /** The MAC the member registered (it uses the first one a control node gave it). */
  mac?: Buffer;
  registered: boolean;
  /** Multicast group MACs joined, with use counts (several sockets may join one group). */
  groups: Map<string, number>;
  promiscuous: boolean;
}

/** What the virtual LAN server needs of its control node. */
export interface VlanFabric {
  /** Sends a TLV frame to an LPAR over this control node's virtual-LAN RVI to it. */
  sendFrame(lpar: string, frame: Buffer): boolean;
  sendMgmt(lpar: string, msg: ControlMessage): void;
  /** Id of the unicast RVI of this virtual LAN between two members, if it exists. */
  lanRvi(vlan: string, a: string, b: string): number | undefined;
}

/**
 * One virtual LAN server (seed 004, "Virtual LAN Server" 1-4): membership and
 * IP registration, the ARP server, broadcast and multicast reflection to
 * members only (never back to the sender), multicast use counts, promiscuous
 * listeners the configuration permits, and the relay of last resort. Both
 * control nodes run one for every virtual LAN, so either can serve alone.
 */
export class VlanServer {
  readonly name: string;
  readonly id: number;
  readonly members = new Map<string, VlanMember>();
  readonly stats = { broadcast: 0, multicast: 0, relayed: 0, notMember: 0, malformed: 0, noUplink: 0, refused: 0, promiscRefused: 0, spoofed: 0 };
  readonly arp: ArpServer;
  private readonly permittedPromisc: Set<string>;

  /** Members are added by the control node, which owns membership (file, then join/leave). */
  constructor(
    spec: VlanSpec,
    private readonly fabric: VlanFabric,
    private readonly log: Logger,
  ) {
    this.name = spec.name;
    this.id = spec.id;
    this.permittedPromisc = new Set(spec.promiscuous);
    this.arp = new ArpServer(this, log.child({ component: 'arp-server' }));
  }

  addMember(lpar: string, ip: number, dev: number): VlanMember {
    const m: VlanMember = { lpar, dev, ip, registered: false, groups: new Map(), promiscuous: false };
    this.members.set(lpar, m);
    return m;
  }

  removeMember(lpar: string): void {
    const m = this.members.get(lpar);
    if (!m) return;
    this.members.delete(lpar);
    if (m.promiscuous) this.announcePromiscuous();
  }

  registeredMembers(): VlanMember[] {
    return [...this.members.values()].filter((m) => m.registered);
  }

  memberByIp(ip: number): VlanMember | undefined {
    for (const m of this.members.values()) if (m.ip === ip && m.registered) return m;
    return undefined;
  }

  lanRvi(a: string, b: string): number | undefined {
    return this.fabric.lanRvi(this.name, a, b);
  }

  send(to: VlanMember, frame: Buffer): void {
    this.fabric.sendFrame(to.lpar, frame);
  }

  /**
   * Binds the member's IP to it (and so to the RVI it arrived on). A node
   * that is not a configured member, or claims another address or device, is
   * refused and logged (seed 004, "Virtual LAN Server" 1).
   */
  register(lpar: string, msg: ControlMessage): { ok: boolean; reason?: string } {
    const m = this.members.get(lpar);
    const refuse = (reason: string) => {
      this.stats.refused++;
      this.log.warn({ lpar, vlan: this.name, reason }, 'registration refused');
      return { ok: false, reason };
    };
    if (!m) return refuse(`${lpar} is not a member of virtual LAN ${this.name}`);
    let ip: number;
    let mac: Buffer;
    try {
      ip = parseIp(String(msg.ip));
      mac = parseMac(String(msg.mac));
    } catch (err) {
      return refuse(`bad registration: ${(err as Error).message}`);
    }
    if (ip !== m.ip) return refuse(`${ipToString(ip)} is not ${lpar}'s address on ${this.name} (${ipToString(m.ip)})`);
    if (Number(msg.dev) !== m.dev) return refuse(`device ${String(msg.dev)} is not ${lpar}'s interface on ${this.name} (${m.dev})`);
    if (isMulticastMac(mac)) return refuse(`MAC ${macToString(mac)} is not a unicast MAC`);
    m.mac = mac;
    m.registered = true;
    this.log.info({ lpar, vlan: this.name, ip: ipToString(ip), mac: macToString(mac) }, 'member registered');
    return { ok: true };
  }

  /** The member's process is gone or restarting: it registers again when it is back. */
  forget(lpar: string): void {
    const m = this.members.get(lpar);
    if (!m) return;
    m.registered = false;
    m.groups.clear();
    if (m.promiscuous) {
      m.promiscuous = false;
      this.announcePromiscuous();
    }
  }

  multicast(lpar: string, group: string, join: boolean): void {
    const m = this.members.get(lpar);
    if (!m?.registered) return;
    const count = (m.groups.get(group) ?? 0) + (join ? 1 : -1);
    if (count > 0) m.groups.set(group, count);
    else m.groups.delete(group);
  }

  /**
   * Promiscuous mode (seed 004, "Virtual LAN Server", promiscuous passages):
   * only members the configuration permits; a refused request is dropped and
   * logged. An accepted one is announced to every other member so their
   * drivers clone unicast traffic to the listener.
   */
  promiscuous(lpar: string, on: boolean): void {
    const m = this.members.get(lpar);
    if (!m?.registered) return;
    if (on && !this.permittedPromisc.has(lpar)) {
      this.stats.promiscRefused++;
      this.log.warn({ lpar, vlan: this.name }, 'promiscuous mode not permitted: request dropped');
      return;
    }
    if (m.promiscuous === on) return;
    m.promiscuous = on;
    this.announcePromiscuous();
  }

  listeners(): Array<{ node: string; dev: number }> {
    return [...this.members.values()].filter((m) => m.promiscuous && m.registered).map((m) => ({ node: m.lpar, dev: m.dev }));
  }

  announcePromiscuous(only?: string): void {
    const msg = { t: 'promisc-listeners', vlan: this.name, listeners: this.listeners() };
    for (const m of this.members.values()) if (m.registered && (!only || m.lpar === only)) this.fabric.sendMgmt(m.lpar, msg);
  }

  /** A TLV frame from a member (already checked to be one) on this virtual LAN. */
  handleFrame(from: VlanMember, tlv: Tlv, frame: Buffer): void {
    let eth: EthernetFrame;
    try {
      eth = EthernetFrame.parse(tlv.value);
    } catch {
      this.stats.malformed++;
      return;
    }
    if (!from.mac || !eth.src.equals(from.mac)) {
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
        this.reflect(from, frame, () => true);
        return;
      case TlvType.Multicast: {
        if (!isMulticastMac(eth.dst)) {
          this.stats.malformed++;
          return;
        }
        const group = macToString(eth.dst);
        this.stats.multicast++;
        this.reflect(from, frame, (m) => m.groups.has(group) || m.promiscuous);
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

  /** Clones to the chosen registered members, never back to the sender. */
  private reflect(from: VlanMember, frame: Buffer, want: (m: VlanMember) => boolean): void {
    for (const to of this.members.values()) {
      if (to === from || !to.registered || !want(to)) continue;
      const copy = Buffer.from(frame);
      Tlv.parse(copy).setDstDev(to.dev);
      this.send(to, copy);
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
      try {
        to = this.memberByIp(Ipv4Packet.parse(eth.payload).dst);
      } catch {
        this.stats.malformed++;
        return;
      }
    }
    if (!to) for (const m of this.members.values()) if (m.registered && m.mac && m.mac.equals(eth.dst)) to = m;
    if (!to || to === from) {
      this.stats.noUplink++;
      return;
    }
    const t = Tlv.parse(frame);
    t.setType(TlvType.Unicast);
    t.setDstDev(to.dev);
    this.stats.relayed++;
    this.send(to, frame);
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
        registered: m.registered,
        promiscuous: m.promiscuous,
        groups: Object.fromEntries(m.groups),
      })),
      stats: this.stats,
      arp: this.arp.stats,
    };
  }
}
