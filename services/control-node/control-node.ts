import type { Logger } from 'pino';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import type { ControlNodeSpec, Platform } from '../../shared/platform/platform.ts';
import { decodeToControlNode, sendMgmt, type LanPeer, type MgmtInterface, type ToControlNode } from '../../shared/protocol/mgmt.ts';
import { purposeKind } from '../../shared/rclan/purpose.ts';
import type { Rvi } from '../../shared/rclan/rvi.ts';
import { ipToString, parseIp } from '../../shared/wire/ipv4-address.ts';
import { macToString } from '../../shared/wire/mac.ts';
import { BootConfig } from './boot/boot-config.ts';
import { applyLparEvent, LparBoot, newLparView, type LparView } from './boot/lpar-view.ts';
import { Membership } from './boot/membership.ts';
import { Nvram } from './boot/nvram.ts';
import { RviMesh } from './boot/rvi-mesh.ts';
import { RviRepair } from './boot/rvi-repair.ts';
import { Locations } from './location/locations.ts';
import { SmcrGrants } from './smc/smcr-grants.ts';
import { forLog, LogOnce } from './untrusted.ts';
import { FrameIntake } from './vlan/frame-intake.ts';
import { TapBridge } from './vlan/tap-bridge.ts';
import { VlanServer } from './vlan/vlan-server.ts';

/**
 * A control node: it creates, through the fabric manager, a management RVI
 * and a virtual-LAN RVI to every LPAR and the unicast RVIs between the
 * members of each virtual LAN (seed 004, "2. RVI Mapping And Management": the
 * control node, never a processing node, makes the paths); answers each
 * LPAR's boot request with its identity and interfaces (MACs from NVRAM);
 * runs a virtual LAN server for every virtual LAN; grants SMC-R links (seed
 * 002) and publishes where registered addresses live (seed 003).
 *
 * This class is the composition root: each concern is a piece of its own
 * (boot/, vlan/, smc/, location/, untrusted.ts) that sees only the ports it
 * is handed (the RVI mesh is the virtual LAN servers' VlanFabric); what is
 * left here is the dispatch of management messages between them and the
 * run-time membership changes that involve several of them.
 */
export class ControlNode {
  readonly lpars = new Map<string, LparView>();
  readonly vlans = new Map<string, VlanServer>();
  private readonly vlanById = new Map<number, VlanServer>();
  readonly stats = { malformedMgmt: 0 };
  private readonly warn: LogOnce;
  private readonly nvram: Nvram;
  private readonly membership: Membership;
  private readonly mesh: RviMesh;
  /** The LPARs with `forwarding: true`: routers whose datagrams carry other hosts' sources. */
  private readonly forwarders: ReadonlySet<string>;
  private readonly boot: BootConfig;
  private readonly grants: SmcrGrants;
  private readonly locations: Locations;
  private readonly intake: FrameIntake;
  private readonly taps: TapBridge;
  /** Re-makes the management and virtual-LAN RVIs when they vanish (issue 11 item 12). */
  readonly repair: RviRepair;

  constructor(
    readonly spec: ControlNodeSpec,
    private readonly platform: Platform,
    readonly fabric: NodeFabric,
    dataDir: string,
    membershipFile: string,
    private readonly log: Logger,
  ) {
    this.warn = new LogOnce(log);
    for (const l of platform.lpars) this.lpars.set(l.name, newLparView(l.name, l.cec));
    this.nvram = new Nvram(dataDir, spec.serial);
    this.membership = new Membership(platform, membershipFile);
    this.mesh = new RviMesh(spec.name, fabric, { find: (peer, purpose) => fabric.rclan.find(peer, purpose) });
    this.mesh.onLanRvi = (vlan, a, b, id) => this.announcePath(vlan, a, b, id);
    this.boot = new BootConfig(spec, platform, this.nvram, this.membership);
    this.grants = new SmcrGrants(platform, this.membership, fabric, this.warn, log);
    this.locations = new Locations(fabric, this.warn);
    this.intake = new FrameIntake((id) => this.vlanById.get(id), this.warn);
    this.taps = new TapBridge(log);
    const serials = platform.controlNodes.map((c) => c.serial);
    this.forwarders = new Set(platform.lpars.filter((l) => l.forwarding).map((l) => l.name));
    for (const v of platform.vlans) {
      const server = new VlanServer(v, serials, this.mesh, log.child({ component: 'vlan-server', vlan: v.name }), this.forwarders);
      for (const m of this.membership.members(v.name)) server.addMember(m.lpar, parseIp(m.ip), m.dev);
      this.vlans.set(v.name, server);
      this.vlanById.set(v.id, server);
    }
    fabric.onRviAdded = (rvi) => this.attach(rvi);
    this.repair = new RviRepair(spec.name, platform.lpars.map((l) => l.name), fabric, (peer, purpose) => fabric.rclan.find(peer, purpose) !== undefined, log.child({ component: 'rvi-repair' }));
    fabric.onRviRemoved = (rvi) => this.repair.removed(rvi.peer, rvi.purpose);
    // The fabric manager keeps the location table in memory: a restarted one learns it again from here.
    fabric.onFmState = (connected) => {
      if (connected) this.locations.publishAll(this.registeredAddresses());
      if (connected) this.repair.reconcile();
    };
  }

  async start(): Promise<void> {
    for (const rvi of this.fabric.rclan.rvis.values()) this.attach(rvi);
    // The unicast RVIs between members are made when an ARP first needs one (rvi-mesh.ts, issue 10 item 2).
    await this.mesh.connectLpars(this.platform.lpars.map((l) => l.name));
    this.repair.start();
  }

  private attach(rvi: Rvi): void {
    const view = this.lpars.get(rvi.peer);
    if (!view) return;
    const kind = purposeKind(rvi.purpose).kind;
    if (kind === 'mgmt') {
      rvi.onMessage = (payload) => this.onMgmt(view, rvi, payload);
      rvi.onPeerRestart = () => {
        applyLparEvent(view, { type: 'peer-restart' });
        for (const v of this.vlans.values()) v.forget(view.name);
      };
    } else if (kind === 'vlan') {
      rvi.onMessage = (payload) => this.intake.receive(view.name, payload, (frame) => rvi.send(frame));
    }
  }

  /** LPARs whose virtual-LAN heartbeats stopped for more than `ms` (frame-intake.ts). */
  silentMembers(now: number, ms: number): string[] {
    return this.intake.silent(now, ms);
  }

  private onMgmt(view: LparView, rvi: Rvi, payload: Buffer): void {
    const d = decodeToControlNode(payload);
    if (!d.ok) {
      // Whatever a partition sends, the control node stays up: counted, logged once per partition.
      this.stats.malformedMgmt++;
      this.warn.warn(`${view.name}/mgmt`, { lpar: view.name, reason: d.reason.slice(0, 200) }, 'management message rejected');
      return;
    }
    view.lastHeard = Date.now();
    try {
      this.handleMgmt(view, rvi, d.value);
    } catch (err) {
      this.stats.malformedMgmt++;
      this.warn.warn(`${view.name}/mgmt/${d.value.t}`, { lpar: view.name, t: d.value.t, err: (err as Error).message }, 'management message rejected');
    }
  }

  private handleMgmt(view: LparView, rvi: Rvi, msg: ToControlNode): void {
    switch (msg.t) {
      case 'boot':
        applyLparEvent(view, { type: 'boot' });
        sendMgmt(rvi, this.boot.config(view.name));
        this.log.info({ lpar: view.name }, 'LPAR booted');
        return;
      case 'health':
        view.health = msg.state;
        view.detail = msg.detail;
        return;
      case 'vlan-register': {
        const v = this.vlans.get(msg.vlan);
        const result = v ? v.register(view.name, msg) : { ok: false, reason: `no virtual LAN "${msg.vlan}"` };
        if (!v) this.warn.warn(`${view.name}/register/${msg.vlan}`, { lpar: view.name, vlan: msg.vlan }, 'registration refused: no such virtual LAN');
        // Sent before the reply, so the fabric manager normally knows the address by the time the partition learns it is registered.
        if (v && result.ok) this.locations.publish(msg.ip, view.name, msg.vlan);
        sendMgmt(rvi, { t: 'vlan-registered', vlan: msg.vlan, ...result });
        if (v && result.ok) {
          v.announcePromiscuous(view.name);
          this.announcePeersTo(v, view.name);
        }
        return;
      }
      case 'mcast':
        this.vlans.get(msg.vlan)?.multicast(view.name, msg.group, msg.join);
        return;
      case 'promisc':
        this.vlans.get(msg.vlan)?.promiscuous(view.name, msg.on);
        return;
      case 'smcr-links':
        this.grants.grant(view.name, msg.peer).then(
          (answer) => sendMgmt(rvi, answer),
          (err: Error) => this.warn.warn(`${view.name}/smcr/error`, { lpar: view.name, peer: forLog(msg.peer), err: err.message }, 'SMC-R link request failed'),
        );
        return;
    }
  }

  /** Every address a virtual LAN server accepted, with its LPAR. */
  private registeredAddresses(): Array<{ endpoint: string; lpar: string; vlan: string }> {
    return [...this.vlans.values()].flatMap((v) => v.registeredMembers().map((m) => ({ endpoint: ipToString(m.ip), lpar: m.lpar, vlan: v.name })));
  }

  /**
   * Tells a member which IP is behind each of its unicast RVIs of this LAN
   * that this control node knows, so its driver accepts on an RVI only packets
   * from that peer's address (the seed's IP-to-RVI binding, made at
   * registration). Bounded by the member's own RVIs, not the LAN's size
   * (issue 10 item 5); a path made later is announced when it is made.
   */
  private announcePeersTo(v: VlanServer, lpar: string): void {
    const peers = [];
    for (const [other, rvi] of this.mesh.lanPeersOf(v.name, lpar)) {
      const o = v.members.get(other);
      if (o) peers.push(this.lanPeer(rvi, o));
    }
    if (peers.length > 0) this.mesh.sendMgmt(lpar, { t: 'lan-peers', vlan: v.name, peers });
  }

  // forwarding: a router partition's datagrams carry other hosts' sources (the receiver's driver accepts them from it).
  private lanPeer(rvi: number, o: { lpar: string; ip: number; mac?: Buffer }): LanPeer {
    return { rvi, ip: ipToString(o.ip), mac: o.mac ? macToString(o.mac) : null, forwarding: this.forwarders.has(o.lpar) };
  }

  /** A unicast RVI made (or learnt) now: each end learns the other's address on it, before the ARP that needed it goes on. */
  private announcePath(vlan: string, a: string, b: string, rvi: number): void {
    const v = this.vlans.get(vlan);
    const ma = v?.members.get(a);
    const mb = v?.members.get(b);
    if (!ma || !mb) return;
    this.mesh.sendMgmt(a, { t: 'lan-peers', vlan, peers: [this.lanPeer(rvi, mb)] });
    this.mesh.sendMgmt(b, { t: 'lan-peers', vlan, peers: [this.lanPeer(rvi, ma)] });
  }

  /** Adds a member at run time: MAC, unicast RVIs to the other members, and the new interface pushed to the LPAR. */
  async join(vlanName: string, lpar: string, ipText: string): Promise<MgmtInterface> {
    const v = this.platform.vlans.find((x) => x.name === vlanName);
    const server = this.vlans.get(vlanName);
    if (!v || !server) throw new Error(`no virtual LAN "${vlanName}"`);
    if (!this.lpars.has(lpar)) throw new Error(`no LPAR "${lpar}"`);
    const entry = this.membership.admit(v, lpar, ipText);
    this.membership.add(vlanName, entry);
    server.addMember(lpar, parseIp(ipText), entry.dev);
    const ifc = this.boot.interfaceOf(v, entry);
    this.mesh.sendMgmt(lpar, { t: 'vlan-added', interface: ifc });
    this.log.info({ lpar, vlan: vlanName, ip: ipText, dev: entry.dev }, 'member joined');
    return ifc;
  }

  /** Removes a member at run time and tears down its unicast RVIs on that virtual LAN, and SMC-R links it no longer may have. */
  async leave(vlanName: string, lpar: string): Promise<void> {
    const server = this.vlans.get(vlanName);
    if (!server) throw new Error(`no virtual LAN "${vlanName}"`);
    this.membership.leave(vlanName, lpar);
    server.removeMember(lpar);
    this.mesh.sendMgmt(lpar, { t: 'vlan-removed', vlan: vlanName });
    await this.mesh.disconnectLan(vlanName, lpar);
    await this.grants.revoke(lpar);
    this.log.info({ lpar, vlan: vlanName }, 'member left');
  }

  /** Attaches the outside world to a virtual LAN (vlan/tap-bridge.ts); returns the port the TAP side sends to. */
  async attachTap(vlanName: string, outside: { address: string; port: number }): Promise<number> {
    const server = this.vlans.get(vlanName);
    if (!server) throw new Error(`no virtual LAN "${vlanName}"`);
    return this.taps.attach(server, outside);
  }

  detachTap(vlanName: string): void {
    const server = this.vlans.get(vlanName);
    if (server) this.taps.detach(server);
  }

  nvramSnapshot(): Record<string, unknown> {
    return { ...this.nvram.snapshot() };
  }

  status(): Record<string, unknown> {
    return {
      serial: this.spec.serial,
      planesAttached: this.fabric.nics.filter((n) => n.attached).map((n) => n.plane),
      lpars: [...this.lpars.values()].map((l) => {
        const rvi = this.mesh.mgmtRvi(l.name);
        return { ...l, booted: l.boot === LparBoot.Booted, rvi: rvi?.id ?? null, rviState: rvi?.state ?? 'none' };
      }),
      vlans: [...this.vlans.values()].map((v) => v.status()),
      stats: { ...this.stats, ...this.intake.stats, ...this.grants.stats, ...this.locations.stats },
    };
  }
}

