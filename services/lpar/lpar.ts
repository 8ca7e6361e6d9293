import type { Logger } from 'pino';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import type { AppSpec } from '../../shared/platform/platform.ts';
import type { PartitionSmc } from '../../shared/platform/smc-settings.ts';
import { decodeToLpar, sendMgmt, type ConfigMessage, type ToControlNode, type ToLpar } from '../../shared/protocol/mgmt.ts';
import { Mgmt } from '../../shared/rclan/purpose.ts';
import { RviState, type Rvi } from '../../shared/rclan/rvi.ts';
import { ipToString } from '../../shared/wire/ipv4-address.ts';
import { macToString } from '../../shared/wire/mac.ts';
import { BootState, bootTransition, type BootEvent } from './boot-state.ts';
import { NetStack, type VethInterface } from './net/net-stack.ts';
import { SmcrLinkRequests } from './net/smc/link-requests.ts';
import { LocationClient, type Location } from './net/smc/location-client.ts';
import { partitionSmc } from './net/smc/smc-config.ts';

export type { Location };

export interface LparConfig {
  name: string;
  cec: string;
  platform: string;
  /** Workloads the platform file names for this partition. */
  apps: AppSpec[];
  smc: PartitionSmc;
}

/** How many refusals the partition remembers to show (`net-stats`). */
const REFUSALS_KEPT = 20;

/**
 * A partition's boot (seed 004, "Network Architecture"): its management RVIs
 * to the control nodes come from the fabric; as soon as one is up it asks that
 * control node for its configuration, brings up one virtual Ethernet
 * interface per virtual LAN, and registers each interface's IP address and MAC
 * with every control node's virtual LAN server (the IP is bound to the RVI the
 * registration arrives on). Either control node alone is enough to boot and
 * run; a control node that restarts is registered with again. The boot's
 * progress is `boot` (boot-state.ts); SMC-R link requests and the location
 * client are pieces of their own, handed the management RVIs and the fabric.
 */
export class Lpar {
  boot: BootState = BootState.WaitingForControlNode;
  config?: LparConfig;
  stack?: NetStack;
  readonly configuredBy = new Set<string>();
  /** Virtual LANs whose registration each control node accepted. */
  readonly registered = new Map<string, Set<string>>();
  readonly refusals: string[] = [];
  /** Management messages that did not decode (or named another partition): counted and dropped. */
  malformed = 0;
  onChange: () => void = () => {};
  onStack: (stack: NetStack) => void = () => {};
  /** Each time the boot becomes Ready: the network is up and every interface registered. */
  onNetworkReady: (stack: NetStack, config: LparConfig) => void = () => {};
  readonly linkRequests: SmcrLinkRequests;
  readonly locations: LocationClient;

  constructor(
    readonly name: string,
    private readonly fabric: NodeFabric,
    private readonly log: Logger,
  ) {
    this.linkRequests = new SmcrLinkRequests(
      { find: (peer, purpose) => fabric.rclan.find(peer, purpose), waitForRvi: (peer, purpose, ms) => fabric.waitForRvi(peer, purpose, ms) },
      () => this.preferredControlNodes(),
    );
    this.locations = new LocationClient(fabric);
  }

  /** Every boot state change goes through the transition function. */
  private step(e: BootEvent): void {
    const next = bootTransition(this.boot, e);
    if (next === this.boot) return;
    this.log.info({ from: this.boot, to: next }, 'boot state');
    this.boot = next;
    if (next === BootState.Ready && this.stack && this.config) this.onNetworkReady(this.stack, this.config);
    // The health is reported on change, not polled (services/lpar/main.ts): a boot step is one.
    this.onChange();
  }

  attachMgmt(rvi: Rvi): void {
    rvi.onMessage = (payload) => {
      const d = decodeToLpar(payload);
      if (!d.ok) {
        this.malformed++;
        return;
      }
      this.onMgmt(rvi, d.value);
    };
    const ask = () => sendMgmt(rvi, { t: 'boot', name: this.name });
    rvi.onStateChange = (state, prev) => {
      this.log.info({ rvi: rvi.id, peer: rvi.peer, state, prev }, 'management RVI state');
      // Back from Down: boot again only if the session with this control node is incomplete. While Down, RCLAN
      // holds what waits and delivers it exactly once when a leg returns (a restart of either side is
      // onPeerRestart), so a partition configured and registered there has nothing to ask. Asking anyway made
      // every flap of a loaded box cost a configuration, a registration per interface and the control node's peer
      // list (O(members)) on both sides, which at 256 partitions fed the load that made the RVIs flap (issue 10).
      // A new RVI (Connecting: first attach, or a control node back with new RVIs) always asks, and so does one
      // back from Failed: what waited then was given up as undeliverable, in either direction.
      const up = state === RviState.Up || state === RviState.Degraded;
      if (up && (prev === RviState.Connecting || prev === RviState.Failed || (prev === RviState.Down && !this.inSessionWith(rvi.peer)))) ask();
      this.onChange();
    };
    rvi.onPeerRestart = () => {
      this.configuredBy.delete(rvi.peer);
      this.registered.get(rvi.peer)?.clear();
      this.registrationsChanged();
      ask();
    };
    if (rvi.state === RviState.Up || rvi.state === RviState.Degraded) ask();
  }

  private onMgmt(rvi: Rvi, msg: ToLpar): void {
    switch (msg.t) {
      case 'config':
        this.configured(rvi, msg);
        return;
      case 'vlan-registered':
        if (msg.ok) {
          if (!this.registered.has(rvi.peer)) this.registered.set(rvi.peer, new Set());
          this.registered.get(rvi.peer)!.add(msg.vlan);
          this.registrationsChanged();
        } else {
          const why = `${rvi.peer} refused registration on ${msg.vlan}: ${msg.reason ?? 'no reason given'}`;
          if (this.refusals.length >= REFUSALS_KEPT) this.refusals.shift();
          this.refusals.push(why);
          this.log.warn(why);
        }
        this.onChange();
        return;
      case 'lan-peers':
        this.stack?.driver.setPeers(msg.peers);
        return;
      case 'promisc-listeners':
        this.stack?.driver.setListeners(msg.vlan, msg.listeners);
        return;
      case 'vlan-added': {
        // Each control node pushes the interface once it has the member itself: register with that one only.
        if (!this.stack) return;
        const ifc = this.stack.addInterface(msg.interface);
        this.register(rvi, ifc);
        this.registrationsChanged();
        this.onChange();
        return;
      }
      case 'vlan-removed':
        this.stack?.removeInterface(msg.vlan);
        for (const set of this.registered.values()) set.delete(msg.vlan);
        this.registrationsChanged();
        this.onChange();
        return;
      case 'smcr-links':
        this.linkRequests.answered(msg);
        return;
    }
  }

  private configured(rvi: Rvi, msg: ConfigMessage): void {
    if (msg.name !== this.name) {
      this.malformed++;
      return;
    }
    const first = !this.config;
    this.config = { name: this.name, cec: msg.cec, platform: msg.platform, apps: msg.apps, smc: partitionSmc(msg.smc) };
    if (!this.stack) {
      this.stack = new NetStack(msg.ethernet, this.log);
      this.stack.ip.onMembership = (ifc, group, join) => this.toControlNodes({ t: 'mcast', vlan: ifc.device.lan, group, join });
      this.onStack(this.stack);
    }
    // The first control node to answer names the MACs; another's configuration only adds what is missing.
    for (const c of msg.interfaces) this.stack.addInterface(c);
    // Routing from the platform file (`forwarding`, `routes`): after the interfaces, whose subnets the routes' next hops are on.
    for (const why of this.stack.configureRouting(msg.forwarding, msg.routes)) this.log.warn(`platform route refused: ${why}`);
    this.configuredBy.add(rvi.peer);
    if (first) this.log.info({ controlNode: rvi.peer, cec: this.config.cec, interfaces: this.stack.describe(), smc: this.config.smc }, 'configuration received');
    this.step({ type: 'configured' });
    this.registerAll(rvi);
    this.step({ type: 'registering' });
    this.reportHealth();
    this.registrationsChanged();
    this.onChange();
  }

  /** Registers every interface with one control node, and tells it again what this node had joined. */
  private registerAll(rvi: Rvi): void {
    if (!this.stack) return;
    for (const ifc of this.stack.interfaces()) this.register(rvi, ifc);
  }

  private register(rvi: Rvi, ifc: VethInterface): void {
    const port = ifc.device;
    sendMgmt(rvi, { t: 'vlan-register', vlan: port.vlan, dev: port.dev, ip: ipToString(ifc.ip), mac: macToString(port.mac) });
    for (const group of this.stack!.ip.groupMacs(ifc)) sendMgmt(rvi, { t: 'mcast', vlan: port.vlan, group, join: true });
    if (port.promiscuous) sendMgmt(rvi, { t: 'promisc', vlan: port.vlan, on: true });
  }

  private registrationsChanged(): void {
    this.step({ type: 'registrations', complete: this.allRegistered() });
  }

  /**
   * Whether `cn` configured this partition and acknowledged every interface's
   * registration (a request or answer RCLAN gave up on as undeliverable leaves
   * it incomplete, so the partition boots there again).
   */
  private inSessionWith(cn: string): boolean {
    if (!this.stack || !this.configuredBy.has(cn)) return false;
    const done = this.registered.get(cn);
    for (const ifc of this.stack.interfaces()) if (!done?.has(ifc.device.vlan)) return false;
    return true;
  }

  /** Whether every interface is registered with at least one control node. */
  private allRegistered(): boolean {
    if (!this.stack) return false;
    for (const ifc of this.stack.interfaces()) {
      if (![...this.registered.values()].some((s) => s.has(ifc.device.vlan))) return false;
    }
    return true;
  }

  /** Registration, multicast and promiscuous state go to every control node, so either can serve alone. */
  toControlNodes(msg: ToControlNode): void {
    for (const rvi of this.liveMgmtRvis()) sendMgmt(rvi, msg);
  }

  setPromiscuous(vlan: string, on: boolean): void {
    const ifc = this.stack?.driver.byVlan(vlan);
    if (!ifc) throw new Error(`no interface on virtual LAN "${vlan}"`);
    ifc.promiscuous = on;
    this.toControlNodes({ t: 'promisc', vlan, on });
  }

  mgmtRvis(): Rvi[] {
    return [...this.fabric.rclan.rvis.values()].filter((r) => r.purpose === Mgmt);
  }

  private liveMgmtRvis(): Rvi[] {
    return this.mgmtRvis().filter((r) => r.state === RviState.Up || r.state === RviState.Degraded);
  }

  /** Live management RVIs, those of control nodes that configured this partition first. */
  private preferredControlNodes(): Rvi[] {
    const live = this.liveMgmtRvis();
    return [...live.filter((r) => this.configuredBy.has(r.peer)), ...live.filter((r) => !this.configuredBy.has(r.peer))];
  }

  /** Control nodes reachable now. */
  reachable(): string[] {
    return this.liveMgmtRvis().map((r) => r.peer);
  }

  /** Where `ip` lives (seed 003): see LocationClient. */
  locate(ip: string, timeoutMs?: number): Promise<Location> {
    return this.locations.locate(ip, timeoutMs);
  }

  /** The SMC-R link group to `peer` (seed 002): see SmcrLinkRequests. */
  smcrLinks(peer: string, timeoutMs?: number): Promise<[Rvi, Rvi]> {
    return this.linkRequests.links(peer, timeoutMs);
  }

  reportHealth(): void {
    const state = this.boot === BootState.WaitingForControlNode ? 'starting' : 'healthy';
    this.toControlNodes({ t: 'health', state, detail: `control nodes ${this.reachable().join(',')}` });
  }
}
