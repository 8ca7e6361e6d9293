import type { Logger } from 'pino';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import type { AppSpec } from '../../shared/platform/platform.ts';
import { decodeMgmt, sendMgmt } from '../../shared/fabric/mgmt-protocol.ts';
import { RviState, type Rvi } from '../../shared/rclan/rvi.ts';
import { macToString } from '../../shared/wire/mac.ts';
import { ipToString } from '../../shared/wire/ipv4-address.ts';
import { NetStack, type InterfaceConfig } from './net/net-stack.ts';
import type { Interface } from './net/virtual-ethernet.ts';

export interface LparConfig {
  name: string;
  cec: string;
  platform: string;
  /** Workloads the platform file names for this partition. */
  apps: AppSpec[];
}

/**
 * A partition's boot (seed 004, "Network Architecture"): its management RVIs
 * to the control nodes come from the fabric; as soon as one is up it asks that
 * control node for its configuration, brings up one virtual Ethernet
 * interface per virtual LAN, and registers each interface's IP address and MAC
 * with every control node's virtual LAN server (the IP is bound to the RVI the
 * registration arrives on). Either control node alone is enough to boot and
 * run; a control node that restarts is registered with again.
 */
export class Lpar {
  config?: LparConfig;
  stack?: NetStack;
  readonly configuredBy = new Set<string>();
  /** Virtual LANs whose registration each control node accepted. */
  readonly registered = new Map<string, Set<string>>();
  readonly refusals: string[] = [];
  malformed = 0;
  onChange: () => void = () => {};
  onStack: (stack: NetStack) => void = () => {};
  /** Once, when the first configuration is in and every interface is registered: time to start the workloads. */
  onNetworkReady: (stack: NetStack, config: LparConfig) => void = () => {};
  private announcedReady = false;

  constructor(
    readonly name: string,
    private readonly fabric: NodeFabric,
    private readonly log: Logger,
  ) {}

  attachMgmt(rvi: Rvi): void {
    rvi.onMessage = (payload) => {
      const msg = decodeMgmt(payload);
      if (!msg) {
        this.malformed++;
        return;
      }
      this.onMgmt(rvi, msg);
    };
    const ask = () => sendMgmt(rvi, { t: 'boot', name: this.name });
    rvi.onStateChange = (state, prev) => {
      this.log.info({ rvi: rvi.id, peer: rvi.peer, state, prev }, 'management RVI state');
      if ((state === RviState.Up || state === RviState.Degraded) && (prev === RviState.Connecting || prev === RviState.Down || prev === RviState.Failed)) ask();
      this.onChange();
    };
    rvi.onPeerRestart = () => {
      this.configuredBy.delete(rvi.peer);
      this.registered.get(rvi.peer)?.clear();
      ask();
    };
    if (rvi.state === RviState.Up || rvi.state === RviState.Degraded) ask();
  }

  private onMgmt(rvi: Rvi, msg: ControlMessage): void {
    switch (msg.t) {
      case 'config': {
        if (msg.name !== this.name) {
          this.malformed++;
          return;
        }
        const first = !this.config;
        this.config = { name: this.name, cec: String(msg.cec), platform: String(msg.platform), apps: Array.isArray(msg.apps) ? (msg.apps as AppSpec[]) : [] };
        if (!this.stack) {
          this.stack = new NetStack(msg.ethernet as { heartbeatMs: number; arpCacheSeconds: number }, this.log);
          this.stack.ip.onMembership = (ifc, group, join) => this.toControlNodes({ t: 'mcast', vlan: ifc.vlan, group, join });
          this.onStack(this.stack);
        }
        // The first control node to answer names the MACs; another's configuration only adds what is missing.
        for (const c of msg.interfaces as InterfaceConfig[]) this.stack.addInterface(c);
        this.configuredBy.add(rvi.peer);
        if (first) this.log.info({ controlNode: rvi.peer, cec: this.config.cec, interfaces: this.stack.describe() }, 'configuration received');
        this.registerAll(rvi);
        this.reportHealth();
        this.checkReady();
        this.onChange();
        return;
      }
      case 'vlan-registered': {
        const vlan = String(msg.vlan);
        if (msg.ok === true) {
          if (!this.registered.has(rvi.peer)) this.registered.set(rvi.peer, new Set());
          this.registered.get(rvi.peer)!.add(vlan);
          this.checkReady();
        } else {
          const why = `${rvi.peer} refused registration on ${vlan}: ${String(msg.reason)}`;
          if (this.refusals.length >= 20) this.refusals.shift();
          this.refusals.push(why);
          this.log.warn(why);
        }
        this.onChange();
        return;
      }
      case 'lan-peers':
        this.stack?.driver.setPeers(msg.peers as Array<{ rvi: number; ip: string }>);
        return;
      case 'promisc-listeners':
        this.stack?.driver.setListeners(String(msg.vlan), msg.listeners as Array<{ node: string; dev: number }>);
        return;
      case 'vlan-added': {
        // Each control node pushes the interface once it has the member itself: register with that one only.
        if (!this.stack) return;
        const ifc = this.stack.addInterface(msg.interface as InterfaceConfig);
        this.register(rvi, ifc);
        this.onChange();
        return;
      }
      case 'vlan-removed':
        this.stack?.driver.removeInterface(String(msg.vlan));
        for (const set of this.registered.values()) set.delete(String(msg.vlan));
        this.checkReady();
        this.onChange();
        return;
      default:
        this.malformed++;
    }
  }

  /** Registers every interface with one control node, and tells it again what this node had joined. */
  private registerAll(rvi: Rvi): void {
    if (!this.stack) return;
    for (const ifc of this.stack.driver.interfaces.values()) this.register(rvi, ifc);
  }

  private register(rvi: Rvi, ifc: Interface): void {
    sendMgmt(rvi, { t: 'vlan-register', vlan: ifc.vlan, dev: ifc.dev, ip: ipToString(ifc.ip), mac: macToString(ifc.mac) });
    for (const group of this.stack!.ip.groupMacs(ifc)) sendMgmt(rvi, { t: 'mcast', vlan: ifc.vlan, group, join: true });
    if (ifc.promiscuous) sendMgmt(rvi, { t: 'promisc', vlan: ifc.vlan, on: true });
  }

  /** Registration, multicast and promiscuous state go to every control node, so either can serve alone. */
  toControlNodes(msg: ControlMessage): void {
    for (const rvi of this.mgmtRvis()) if (rvi.state === RviState.Up || rvi.state === RviState.Degraded) sendMgmt(rvi, msg);
  }

  setPromiscuous(vlan: string, on: boolean): void {
    const ifc = this.stack?.driver.byVlan(vlan);
    if (!ifc) throw new Error(`no interface on virtual LAN "${vlan}"`);
    ifc.promiscuous = on;
    this.toControlNodes({ t: 'promisc', vlan, on });
  }

  mgmtRvis(): Rvi[] {
    return [...this.fabric.rclan.rvis.values()].filter((r) => r.purpose === 'mgmt');
  }

  /** Control nodes reachable now. */
  reachable(): string[] {
    return this.mgmtRvis()
      .filter((r) => r.state === RviState.Up || r.state === RviState.Degraded)
      .map((r) => r.peer);
  }

  private checkReady(): void {
    if (this.announcedReady || !this.config || !this.stack || !this.networkReady()) return;
    this.announcedReady = true;
    this.onNetworkReady(this.stack, this.config);
  }

  /** Healthy once configured and every interface is registered with at least one control node. */
  networkReady(): boolean {
    if (!this.stack) return false;
    for (const ifc of this.stack.driver.interfaces.values()) {
      if (![...this.registered.values()].some((s) => s.has(ifc.vlan))) return false;
    }
    return true;
  }

  reportHealth(): void {
    const state = this.config ? 'healthy' : 'starting';
    this.toControlNodes({ t: 'health', state, detail: `control nodes ${this.reachable().join(',')}` });
  }
}
