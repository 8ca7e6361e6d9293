import fs from 'node:fs';
import type { Logger } from 'pino';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { decodeMgmt, sendMgmt } from '../../shared/fabric/mgmt-protocol.ts';
import { lparInterfaces, type ControlNodeSpec, type Platform, type VlanSpec } from '../../shared/platform/platform.ts';
import { SMCR_LINK_A, SMCR_LINK_B, linkPlane } from '../../shared/rclan/link-purpose.ts';
import type { Rvi } from '../../shared/rclan/rvi.ts';
import { inSubnet, ipToString, parseCidr, parseIp } from '../../shared/wire/ipv4-address.ts';
import { macToString } from '../../shared/wire/mac.ts';
import { TLV_HEADER, Tlv, TlvType, emitTlv } from '../../shared/wire/tlv.ts';
import { Nvram } from './nvram.ts';
import { VlanServer } from './vlan-server.ts';
import { VlanProxy } from './vlan-proxy.ts';

interface LparView {
  name: string;
  cec: string;
  booted: boolean;
  health: string;
  detail: string;
  lastHeard: number;
}

/** Who is on which virtual LAN, with which address and device: the platform file, then join/leave at run time. */
interface Membership {
  [vlan: string]: Array<{ lpar: string; ip: string; dev: number }>;
}

/** Purpose of the unicast RVIs of a virtual LAN between two of its members. */
export function lanPurpose(vlan: string): string {
  return `lan:${vlan}`;
}

/**
 * A control node: it creates, through the fabric manager, a management RVI
 * and a virtual-LAN RVI to every LPAR and the unicast RVIs between the
 * members of each virtual LAN (seed 004, "2. RVI Mapping And Management": the
 * control node, never a processing node, makes the paths); answers each
 * LPAR's boot request with its identity and interfaces (MACs from NVRAM); and
 * runs a virtual LAN server for every virtual LAN.
 */
export class ControlNode {
  readonly lpars = new Map<string, LparView>();
  readonly vlans = new Map<string, VlanServer>();
  private readonly vlanById = new Map<number, VlanServer>();
  private readonly lanRvis = new Map<string, number>();
  readonly stats = { malformedMgmt: 0, malformedFrames: 0, notMember: 0, heartbeats: 0, smcrGranted: 0, smcrRefused: 0, locationFailures: 0 };
  private membership: Membership;
  private readonly nvram: Nvram;

  constructor(
    readonly spec: ControlNodeSpec,
    private readonly platform: Platform,
    readonly fabric: NodeFabric,
    dataDir: string,
    private readonly membershipFile: string,
    private readonly log: Logger,
  ) {
    for (const l of platform.lpars) this.lpars.set(l.name, { name: l.name, cec: l.cec, booted: false, health: 'unknown', detail: '', lastHeard: 0 });
    this.nvram = new Nvram(dataDir, spec.serial);
    this.membership = this.loadMembership();
    for (const v of platform.vlans) {
      const server = new VlanServer(
        v,
        platform.controlNodes.map((c) => c.serial),
        { sendFrame: (lpar, frame) => this.sendFrame(lpar, frame), sendMgmt: (lpar, msg) => this.sendMgmt(lpar, msg), lanRvi: (vlan, a, b) => this.lanRvis.get(pairKey(vlan, a, b)), forwards: (lpar) => this.forwards(lpar) },
        log.child({ component: 'vlan-server', vlan: v.name }),
      );
      for (const m of this.membership[v.name] ?? []) server.addMember(m.lpar, parseIp(m.ip), m.dev);
      this.vlans.set(v.name, server);
      this.vlanById.set(v.id, server);
    }
    fabric.onRviAdded = (rvi) => this.attach(rvi);
    // The fabric manager keeps the location table in memory: a restarted one learns it again from here.
    fabric.onFmState = (connected) => {
      if (connected) this.publishLocations();
    };
  }

  /** Membership survives a restart of this control node within a run (kept with the run's state), not a new boot. */
  private loadMembership(): Membership {
    try {
      return JSON.parse(fs.readFileSync(this.membershipFile, 'utf8')) as Membership;
    } catch {
      const m: Membership = {};
      for (const v of this.platform.vlans) m[v.name] = [];
      for (const l of this.platform.lpars) for (const i of lparInterfaces(this.platform, l.name)) m[i.vlan.name].push({ lpar: l.name, ip: i.ip, dev: i.dev });
      return m;
    }
  }

  private saveMembership(): void {
    const tmp = `${this.membershipFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.membership));
    fs.renameSync(tmp, this.membershipFile);
  }

  async start(): Promise<void> {
    for (const rvi of this.fabric.rclan.rvis.values()) this.attach(rvi);
    for (const l of this.platform.lpars) {
      await this.fabric.request({ t: 'rvi-create', a: this.spec.name, b: l.name, purpose: 'mgmt' });
      await this.fabric.request({ t: 'rvi-create', a: this.spec.name, b: l.name, purpose: 'vlan' });
    }
    for (const [vlan, members] of Object.entries(this.membership)) {
      for (let i = 0; i < members.length; i++) for (let j = i + 1; j < members.length; j++) await this.createLan(vlan, members[i].lpar, members[j].lpar);
    }
    // Members that registered while the RVIs were being made learn their peers now.
    for (const v of this.vlans.values()) this.announcePeers(v);
  }

  private async createLan(vlan: string, a: string, b: string): Promise<void> {
    const r = await this.fabric.request({ t: 'rvi-create', a, b, purpose: lanPurpose(vlan) });
    this.lanRvis.set(pairKey(vlan, a, b), (r.rvi as { id: number }).id);
  }

  private rviTo(lpar: string, purpose: string): Rvi | undefined {
    return this.fabric.rclan.find(lpar, purpose);
  }

  private sendFrame(lpar: string, frame: Buffer): boolean {
    return this.rviTo(lpar, 'vlan')?.send(frame) ?? false;
  }

  private sendMgmt(lpar: string, msg: ControlMessage): void {
    const rvi = this.rviTo(lpar, 'mgmt');
    if (rvi) sendMgmt(rvi, msg);
  }

  private attach(rvi: Rvi): void {
    const view = this.lpars.get(rvi.peer);
    if (!view) return;
    if (rvi.purpose === 'mgmt') {
      rvi.onMessage = (payload) => this.onMgmt(view, rvi, payload);
      rvi.onPeerRestart = () => {
        view.booted = false;
        view.health = 'restarting';
        for (const v of this.vlans.values()) v.forget(view.name);
      };
    } else if (rvi.purpose === 'vlan') {
      rvi.onMessage = (payload) => this.onFrame(view.name, rvi, payload);
    }
  }

  private onMgmt(view: LparView, rvi: Rvi, payload: Buffer): void {
    const msg = decodeMgmt(payload);
    if (!msg) {
      this.stats.malformedMgmt++;
      return;
    }
    view.lastHeard = Date.now();
    try {
      this.handleMgmt(view, rvi, msg);
    } catch (err) {
      // Whatever a partition sends, the control node stays up: counted, logged once per cause.
      this.stats.malformedMgmt++;
      this.warnOnce(`${view.name}/mgmt/${msg.t}`, { lpar: view.name, t: clip(msg.t), err: (err as Error).message }, 'management message rejected');
    }
  }

  private handleMgmt(view: LparView, rvi: Rvi, msg: ControlMessage): void {
    switch (msg.t) {
      case 'boot':
        view.booted = true;
        sendMgmt(rvi, this.config(view));
        this.log.info({ lpar: view.name }, 'LPAR booted');
        return;
      case 'health':
        view.health = text(msg.state, 'state', 32);
        view.detail = text(msg.detail ?? '', 'detail', 256);
        return;
      case 'vlan-register': {
        const name = text(msg.vlan, 'vlan', 64);
        const v = this.vlans.get(name);
        const result = v ? v.register(view.name, msg) : { ok: false, reason: `no virtual LAN "${name}"` };
        if (!v) this.warnOnce(`${view.name}/register/${name}`, { lpar: view.name, vlan: name }, 'registration refused: no such virtual LAN');
        // Sent before the reply, so the fabric manager normally knows the address by the time the partition learns it is registered.
        if (v && result.ok) this.publishLocation(v, view.name);
        sendMgmt(rvi, { t: 'vlan-registered', vlan: name, ...result });
        if (v && result.ok) {
          v.announcePromiscuous(view.name);
          this.announcePeers(v);
        }
        return;
      }
      case 'mcast':
        this.vlans.get(text(msg.vlan, 'vlan', 64))?.multicast(view.name, text(msg.group, 'group', 17), msg.join === true);
        return;
      case 'promisc':
        this.vlans.get(text(msg.vlan, 'vlan', 64))?.promiscuous(view.name, msg.on === true);
        return;
      case 'smcr-links': {
        const peer = text(msg.peer, 'peer', 64);
        this.grantLinks(view, rvi, peer).catch((err: Error) => this.warnOnce(`${view.name}/smcr/error`, { lpar: view.name, err: err.message }, 'SMC-R link request failed'));
        return;
      }
      default:
        this.stats.malformedMgmt++;
    }
  }

  /**
   * An LPAR asks for an SMC-R link group to `peer` (seed 002, Fig. 4 steps
   * 407-409: the RDMA environment and the queue pairs the connection will
   * use). Only a control node may make paths, and only between partitions the
   * configuration lets talk at all: both LPARs of this platform, two of them,
   * on a common virtual LAN, with SMC on for both. The two links run on
   * different planes (smcr-a, smcr-b) so the group survives either plane
   * (Fig. 10 step 1015). The fabric manager returns the existing RVIs when
   * they were made before, so asking again is harmless.
   */
  private async grantLinks(view: LparView, rvi: Rvi, peer: string): Promise<void> {
    const refusal = this.linkRefusal(view.name, peer);
    if (refusal) {
      this.stats.smcrRefused++;
      this.warnOnce(`${view.name}/smcr/${refusal.cause}`, { lpar: view.name, peer: clip(peer), reason: refusal.reason }, 'SMC-R links refused');
      sendMgmt(rvi, { t: 'smcr-links', peer, ok: false, reason: refusal.reason });
      return;
    }
    try {
      const ids: number[] = [];
      for (const purpose of [SMCR_LINK_A, SMCR_LINK_B]) {
        const r = await this.fabric.request({ t: 'rvi-create', a: view.name, b: peer, purpose });
        ids.push((r.rvi as { id: number }).id);
      }
      this.stats.smcrGranted++;
      this.log.debug({ lpar: view.name, peer, rvis: ids }, 'SMC-R links granted');
      sendMgmt(rvi, { t: 'smcr-links', peer, ok: true, rvis: ids });
    } catch (err) {
      const reason = `the fabric manager could not make the links: ${(err as Error).message}`;
      this.stats.smcrRefused++;
      this.warnOnce(`${view.name}/smcr/fabric`, { lpar: view.name, peer, err: (err as Error).message }, 'SMC-R links failed');
      sendMgmt(rvi, { t: 'smcr-links', peer, ok: false, reason });
    }
  }

  /** Why `lpar` may not have SMC-R links to `peer` (cause: a short key to log once by), or undefined when it may. */
  private linkRefusal(lpar: string, peer: string): { cause: string; reason: string } | undefined {
    if (!this.lpars.has(peer)) return { cause: 'unknown-peer', reason: `"${clip(peer)}" is not an LPAR of this platform` };
    if (peer === lpar) return { cause: 'self', reason: 'an LPAR needs no SMC-R links to itself' };
    for (const name of [lpar, peer]) {
      if (this.platform.lpars.find((l) => l.name === name)?.smc.r === false) return { cause: `smc-off/${name}`, reason: `SMC-R is off for ${name} in the platform file` };
    }
    const shared = Object.values(this.membership).some((ms) => ms.some((m) => m.lpar === lpar) && ms.some((m) => m.lpar === peer));
    if (!shared) return { cause: `no-lan/${peer}`, reason: `${lpar} and ${peer} share no virtual LAN` };
    return undefined;
  }

  /**
   * Tells the fabric manager which LPAR a registered address lives on: the
   * location service a partition asks once per connection (seed 003: the
   * virtualization management mechanism names the destination's partition
   * and so its CEC). Only addresses a virtual LAN server accepted get here.
   */
  private publishLocation(v: VlanServer, lpar: string): void {
    const m = v.members.get(lpar);
    if (!m?.registered) return;
    const endpoint = ipToString(m.ip);
    this.fabric.request({ t: 'location-set', endpoint, node: lpar }).catch((err: Error) => {
      this.stats.locationFailures++;
      this.warnOnce(`location/${endpoint}`, { lpar, endpoint, err: err.message }, 'location not recorded');
    });
  }

  private publishLocations(): void {
    for (const v of this.vlans.values()) for (const m of v.registeredMembers()) this.publishLocation(v, m.lpar);
  }

  private readonly warned = new Set<string>();

  /** Logs the first occurrence of each cause; later ones only count, so no partition can flood the log. */
  private warnOnce(key: string, obj: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key) || this.warned.size > 10_000) return;
    this.warned.add(key);
    this.log.warn(obj, `${msg} (further ones counted, not logged)`);
  }

  /**
   * Tells each registered member which IP is behind each of its unicast RVIs
   * of this LAN, so its driver accepts on an RVI only packets from that peer's
   * address (the seed's IP-to-RVI binding, made at registration).
   */
  private announcePeers(v: VlanServer): void {
    const members = v.registeredMembers();
    for (const m of members) {
      const peers = [];
      for (const o of members) {
        if (o === m) continue;
        const rvi = this.lanRvis.get(pairKey(v.name, m.lpar, o.lpar));
        // forwarding: a router partition's datagrams carry other hosts' sources (the receiver's driver accepts them from it).
        if (rvi !== undefined) peers.push({ rvi, ip: ipToString(o.ip), mac: o.mac ? macToString(o.mac) : null, forwarding: this.forwards(o.lpar) });
      }
      this.sendMgmt(m.lpar, { t: 'lan-peers', vlan: v.name, peers });
    }
  }

  /** What an LPAR learns at boot: identity, and one interface per virtual LAN it is on. */
  private config(view: LparView): ControlMessage {
    const spec = this.platform.lpars.find((l) => l.name === view.name);
    const interfaces = [];
    for (const v of this.platform.vlans) {
      const m = (this.membership[v.name] ?? []).find((x) => x.lpar === view.name);
      if (m) interfaces.push(this.interfaceOf(v, m));
    }
    return {
      t: 'config',
      name: view.name,
      cec: view.cec,
      controlNode: this.spec.name,
      serial: this.spec.serial,
      platform: this.platform.name,
      ethernet: this.platform.ethernet,
      interfaces,
      // The workloads the platform file names for this LPAR (module paths already absolute).
      apps: spec?.apps ?? [],
      // IPv4 routing for this LPAR: whether it forwards, and its static routes (platform file, checked at load).
      forwarding: spec?.forwarding ?? false,
      routes: spec?.routes ?? [],
      // Shared Memory Communications for this LPAR (seed 002, Fig. 4 steps 403/415: SMC capable and enabled).
      smc: { enabled: spec ? spec.smc.d || spec.smc.r : true, d: spec?.smc.d ?? true, r: spec?.smc.r ?? true, ringBytes: this.platform.smc.ringBytes, pollUs: this.platform.smc.pollUs, clcTimeoutMs: this.platform.smc.clcTimeoutMs },
    };
  }

  /** Whether `lpar` routes for others (`forwarding: true`): its datagrams may carry any IPv4 source. */
  private forwards(lpar: string): boolean {
    return this.platform.lpars.find((l) => l.name === lpar)?.forwarding === true;
  }

  private interfaceOf(v: VlanSpec, m: { lpar: string; ip: string; dev: number }): Record<string, unknown> {
    const ip = parseIp(m.ip);
    const subnet = v.subnets.map(parseCidr).find((s) => inSubnet(ip, s.ip, s.prefix))!;
    return { vlan: v.name, vlanId: v.id, dev: m.dev, ip: m.ip, prefix: subnet.prefix, mac: this.nvram.macFor(m.lpar, v.name), mtu: v.mtu, promiscuousAllowed: v.promiscuous.includes(m.lpar) };
  }

  /** A TLV frame on an LPAR's virtual-LAN RVI. */
  private onFrame(lpar: string, rvi: Rvi, payload: Buffer): void {
    let tlv: Tlv;
    try {
      tlv = Tlv.parse(payload);
    } catch {
      this.stats.malformedFrames++;
      return;
    }
    if (tlv.type === TlvType.Heartbeat) {
      // The driver's end-to-end heartbeat (seed 004, "Virtual Ethernet Driver"): answered at once.
      this.stats.heartbeats++;
      const ack = Buffer.allocUnsafe(TLV_HEADER);
      emitTlv(ack, 0, { type: TlvType.HeartbeatAck, length: 0, vlan: 0, seq: tlv.seq });
      rvi.send(ack);
      return;
    }
    const server = this.vlanById.get(tlv.vlan);
    const member = server?.members.get(lpar);
    if (!server || !member?.registered) {
      this.stats.notMember++;
      this.warnOnce(`${lpar}/frame/${tlv.vlan}`, { lpar, vlan: tlv.vlan }, 'frame for a virtual LAN the sender is not a registered member of dropped');
      return;
    }
    try {
      server.handleFrame(member, tlv, payload);
    } catch (err) {
      this.stats.malformedFrames++;
      this.warnOnce(`${lpar}/frame-error`, { lpar, err: (err as Error).message }, 'frame rejected');
    }
  }

  /** Adds a member at run time: MAC, unicast RVIs to the other members, and the new interface pushed to the LPAR. */
  async join(vlanName: string, lpar: string, ipText: string): Promise<Record<string, unknown>> {
    const v = this.platform.vlans.find((x) => x.name === vlanName);
    const server = this.vlans.get(vlanName);
    if (!v || !server) throw new Error(`no virtual LAN "${vlanName}"`);
    if (!this.lpars.has(lpar)) throw new Error(`no LPAR "${lpar}"`);
    const ip = parseIp(ipText);
    if (!v.subnets.map(parseCidr).some((s) => inSubnet(ip, s.ip, s.prefix))) throw new Error(`${ipText} is in none of ${vlanName}'s subnets ${v.subnets.join(', ')}`);
    const members = this.membership[vlanName];
    if (members.some((m) => m.lpar === lpar)) throw new Error(`${lpar} is already a member of ${vlanName}`);
    if (members.some((m) => m.ip === ipText)) throw new Error(`${ipText} is already used on ${vlanName}`);
    const dev = Math.max(0, ...Object.values(this.membership).flatMap((ms) => ms.filter((m) => m.lpar === lpar).map((m) => m.dev))) + 1;
    const entry = { lpar, ip: ipText, dev };
    for (const other of members) await this.createLan(vlanName, lpar, other.lpar);
    members.push(entry);
    this.saveMembership();
    server.addMember(lpar, ip, dev);
    const ifc = this.interfaceOf(v, entry);
    this.sendMgmt(lpar, { t: 'vlan-added', interface: ifc });
    this.announcePeers(server);
    this.log.info({ lpar, vlan: vlanName, ip: ipText, dev }, 'member joined');
    return ifc;
  }

  /** Removes a member at run time and tears down its unicast RVIs on that virtual LAN. */
  async leave(vlanName: string, lpar: string): Promise<void> {
    const server = this.vlans.get(vlanName);
    const members = this.membership[vlanName];
    if (!server || !members) throw new Error(`no virtual LAN "${vlanName}"`);
    const i = members.findIndex((m) => m.lpar === lpar);
    if (i < 0) throw new Error(`${lpar} is not a member of ${vlanName}`);
    members.splice(i, 1);
    this.saveMembership();
    server.removeMember(lpar);
    this.sendMgmt(lpar, { t: 'vlan-removed', vlan: vlanName });
    for (const other of members) {
      const key = pairKey(vlanName, lpar, other.lpar);
      const id = this.lanRvis.get(key);
      this.lanRvis.delete(key);
      // The other control node may have torn it down already.
      if (id !== undefined) await this.fabric.request({ t: 'rvi-destroy', id }).catch(() => undefined);
    }
    await this.revokeLinks(lpar);
    this.log.info({ lpar, vlan: vlanName }, 'member left');
  }

  /**
   * SMC-R links join only partitions on a common virtual LAN: when a member
   * leaves one, its links to LPARs it now shares none with are torn down. The
   * SMC layer at both ends sees them go as a link failure (seed 002, Fig. 10
   * steps 1012-1020: another link, else back to TCP).
   */
  private async revokeLinks(lpar: string): Promise<void> {
    let list: Array<{ id: number; a: string; b: string; purpose: string }>;
    try {
      list = (await this.fabric.request({ t: 'rvi-list' })).rvis as typeof list;
    } catch (err) {
      this.log.warn({ lpar, err: (err as Error).message }, 'SMC-R links of a departed member not checked: fabric manager unreachable');
      return;
    }
    for (const r of list) {
      if (linkPlane(r.purpose) === undefined || (r.a !== lpar && r.b !== lpar)) continue;
      const other = r.a === lpar ? r.b : r.a;
      if (!this.linkRefusal(lpar, other)) continue;
      // The other control node may have torn it down already.
      await this.fabric.request({ t: 'rvi-destroy', id: r.id }).catch(() => undefined);
      this.log.info({ rvi: r.id, a: r.a, b: r.b, purpose: r.purpose }, 'SMC-R link revoked: no common virtual LAN any more');
    }
  }

  /**
   * Attaches the outside world to a virtual LAN through a VLAN proxy whose
   * UDP socket carries the frames of a TAP device (socat on the other end).
   * Returns the proxy's port; `outside` is where the TAP side listens.
   */
  async attachTap(vlanName: string, outside: { address: string; port: number }): Promise<number> {
    const server = this.vlans.get(vlanName);
    if (!server) throw new Error(`no virtual LAN "${vlanName}"`);
    server.proxy?.close();
    const proxy = new VlanProxy(server, outside, this.log.child({ component: 'vlan-proxy', vlan: vlanName }));
    const port = await proxy.open();
    server.proxy = proxy;
    this.log.info({ vlan: vlanName, port, outside }, 'virtual LAN bridged outside');
    return port;
  }

  detachTap(vlanName: string): void {
    const server = this.vlans.get(vlanName);
    server?.proxy?.close();
    if (server) server.proxy = undefined;
  }

  nvramSnapshot(): Record<string, unknown> {
    return this.nvram.snapshot() as unknown as Record<string, unknown>;
  }

  status(): Record<string, unknown> {
    return {
      serial: this.spec.serial,
      planesAttached: this.fabric.nics.filter((n) => n.attached).map((n) => n.plane),
      lpars: [...this.lpars.values()].map((l) => {
        const rvi = this.fabric.rclan.find(l.name, 'mgmt');
        return { ...l, rvi: rvi?.id ?? null, rviState: rvi?.state ?? 'none' };
      }),
      vlans: [...this.vlans.values()].map((v) => v.status()),
      stats: this.stats,
    };
  }
}

/** A string field of a management message, or an error naming it (never String() on attacker data). */
function text(v: unknown, field: string, max: number): string {
  if (typeof v !== 'string' || v.length > max) throw new Error(`field "${field}" must be a string of at most ${max} characters`);
  return v;
}

/** What of an untrusted value goes into a log line. */
function clip(v: unknown): string {
  return typeof v === 'string' ? v.slice(0, 64) : typeof v;
}

function pairKey(vlan: string, a: string, b: string): string {
  return a < b ? `${vlan}|${a}|${b}` : `${vlan}|${b}|${a}`;
}
