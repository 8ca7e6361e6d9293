import type { Logger } from 'pino';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import type { AppSpec } from '../../shared/platform/platform.ts';
import { DEFAULT_SMC } from '../../shared/platform/smc-settings.ts';
import { decodeMgmt, sendMgmt } from '../../shared/fabric/mgmt-protocol.ts';
import { SMCR_LINK_A, SMCR_LINK_B } from '../../shared/rclan/link-purpose.ts';
import { RviState, type Rvi } from '../../shared/rclan/rvi.ts';
import { macToString } from '../../shared/wire/mac.ts';
import { ipToString, parseIp } from '../../shared/wire/ipv4-address.ts';
import { NetStack, type InterfaceConfig, type VethInterface } from './net/net-stack.ts';

export interface LparConfig {
  name: string;
  cec: string;
  platform: string;
  /** Workloads the platform file names for this partition. */
  apps: AppSpec[];
  smc: LparSmcConfig;
}

/** What this partition's SMC layer runs with (the platform file's `smc` section, and the LPAR's own switch). */
export interface LparSmcConfig {
  /** Whether this partition offers and accepts SMC at all (seed 002, Fig. 4 steps 403/415: "capable and enabled"). */
  enabled: boolean;
  /** SMC-D capable (shared memory within the CEC). */
  d: boolean;
  /** SMC-R capable (RDMA over the fabric). */
  r: boolean;
  /** Why SMC is off (to be recorded with each plain-TCP connection), null when enabled. */
  offReason: string | null;
  /** Bytes of each direction's ring per connection (a power of two). */
  ringBytes: number;
  /** µs of busy-polling the shared cursors before sleeping and asking for a signal. */
  pollUs: number;
  /** ms the SMC handshake may take before the connection stays plain TCP. */
  clcTimeoutMs: number;
}

/** `LPARLAB_SMC=off` (or 0, false) in a partition's environment turns SMC off whatever the platform file says. */
export const SMC_ENV = 'LPARLAB_SMC';

/**
 * The `smc` part of a control node's config message. A value that is missing
 * or out of range (a control node of an older build) takes the platform
 * default; the environment can only turn SMC off, never on.
 */
export function parseSmcConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): LparSmcConfig {
  const o = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const int = (v: unknown, min: number, max: number, dflt: number) => (Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : dflt);
  const ringBytes = int(o.ringBytes, 4096, 16777216, DEFAULT_SMC.ringBytes);
  const smc: LparSmcConfig = {
    enabled: o.enabled !== false,
    d: o.d !== false,
    r: o.r !== false,
    offReason: o.enabled === false ? 'SMC is off for this partition in the platform file' : null,
    ringBytes: (ringBytes & (ringBytes - 1)) === 0 ? ringBytes : DEFAULT_SMC.ringBytes,
    pollUs: int(o.pollUs, 0, 100000, DEFAULT_SMC.pollUs),
    clcTimeoutMs: int(o.clcTimeoutMs, 100, 60000, DEFAULT_SMC.clcTimeoutMs),
  };
  const forced = env[SMC_ENV]?.trim().toLowerCase();
  if (forced === 'off' || forced === '0' || forced === 'false') {
    smc.enabled = false;
    smc.offReason = `SMC is off in this partition's environment (${SMC_ENV}=${env[SMC_ENV]})`;
  }
  return smc;
}

/** Where an address lives, as the fabric manager's location service says (null: not a registered address). */
export interface Location {
  node: string | null;
  cec: string | null;
}

interface LinkWaiter {
  resolve: (reply: ControlMessage) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
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
  /** SMC-R link requests awaiting their control node's answer, by peer: one message per peer at a time. */
  private readonly linkRequests = new Map<string, LinkWaiter[]>();

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
        this.config = { name: this.name, cec: String(msg.cec), platform: String(msg.platform), apps: Array.isArray(msg.apps) ? (msg.apps as AppSpec[]) : [], smc: parseSmcConfig(msg.smc) };
        if (!this.stack) {
          this.stack = new NetStack(msg.ethernet as { heartbeatMs: number; arpCacheSeconds: number }, this.log);
          this.stack.ip.onMembership = (ifc, group, join) => this.toControlNodes({ t: 'mcast', vlan: ifc.device.lan, group, join });
          this.onStack(this.stack);
        }
        // The first control node to answer names the MACs; another's configuration only adds what is missing.
        for (const c of msg.interfaces as InterfaceConfig[]) this.stack.addInterface(c);
        // Routing from the platform file (`forwarding`, `routes`): after the interfaces, whose subnets the routes' next hops are on.
        for (const why of this.stack.configureRouting(msg.forwarding, msg.routes)) this.log.warn(`platform route refused: ${why}`);
        this.configuredBy.add(rvi.peer);
        if (first) this.log.info({ controlNode: rvi.peer, cec: this.config.cec, interfaces: this.stack.describe(), smc: this.config.smc }, 'configuration received');
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
        this.stack?.driver.setPeers(msg.peers as Array<{ rvi: number; ip: string; forwarding?: boolean }>);
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
        this.stack?.removeInterface(String(msg.vlan));
        for (const set of this.registered.values()) set.delete(String(msg.vlan));
        this.checkReady();
        this.onChange();
        return;
      case 'smcr-links':
        this.linksAnswered(msg);
        return;
      default:
        this.malformed++;
    }
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

  /**
   * Where `ip` lives: the LPAR and CEC the fabric manager's location service
   * names (seed 003: ask the virtualization management mechanism, once per
   * connection). node and cec are null for an address no control node has
   * registered (outside the platform, or not up yet).
   */
  async locate(ip: string, timeoutMs = 2000): Promise<Location> {
    try {
      parseIp(ip);
    } catch {
      throw new Error(`locate: "${ip}" is not an IPv4 address`);
    }
    let r: ControlMessage;
    try {
      r = await this.fabric.request({ t: 'locate', endpoint: ip }, timeoutMs);
    } catch (err) {
      throw new Error(`locate ${ip}: the fabric manager did not answer: ${(err as Error).message}`);
    }
    const name = (v: unknown) => (typeof v === 'string' ? v : null);
    return { node: name(r.node), cec: name(r.cec) };
  }

  /**
   * The SMC-R link group to `peer`: two RVIs, smcr-a on the first plane and
   * smcr-b on the second, in that order (seed 002, Fig. 4 steps 407-409; two
   * links so a connection can move to the other when one fails, Fig. 10 step
   * 1015). Only a control node may make them: this asks one that is reachable
   * over its management RVI, which refuses peers the configuration keeps this
   * partition from. Links made before are returned at once. Rejects with the
   * control node's reason, or on timeout.
   */
  async smcrLinks(peer: string, timeoutMs = 5000): Promise<[Rvi, Rvi]> {
    const have = this.localLinks(peer);
    if (have) return have;
    const deadline = performance.now() + timeoutMs;
    const reply = await this.askLinks(peer, timeoutMs);
    if (reply.ok !== true) throw new Error(`SMC-R links to ${peer} refused: ${typeof reply.reason === 'string' ? reply.reason : 'no reason given'}`);
    const left = () => Math.max(1, deadline - performance.now());
    return Promise.all([this.fabric.waitForRvi(peer, SMCR_LINK_A, left()), this.fabric.waitForRvi(peer, SMCR_LINK_B, left())]);
  }

  private localLinks(peer: string): [Rvi, Rvi] | undefined {
    const a = this.fabric.rclan.find(peer, SMCR_LINK_A);
    const b = this.fabric.rclan.find(peer, SMCR_LINK_B);
    return a && b ? [a, b] : undefined;
  }

  /** Sends `smcr-links` to a reachable control node (the one that configured us first) unless a request for `peer` is out already. */
  private askLinks(peer: string, timeoutMs: number): Promise<ControlMessage> {
    return new Promise((resolve, reject) => {
      let waiters = this.linkRequests.get(peer);
      let asked = '';
      if (!waiters) {
        const live = this.mgmtRvis().filter((r) => r.state === RviState.Up || r.state === RviState.Degraded);
        const rvi = live.find((r) => this.configuredBy.has(r.peer)) ?? live[0];
        if (!rvi) {
          reject(new Error(`SMC-R links to ${peer}: no control node reachable`));
          return;
        }
        if (!sendMgmt(rvi, { t: 'smcr-links', peer })) {
          reject(new Error(`SMC-R links to ${peer}: the management RVI to ${rvi.peer} is full`));
          return;
        }
        asked = ` from ${rvi.peer}`;
        waiters = [];
        this.linkRequests.set(peer, waiters);
      }
      const list = waiters;
      const waiter: LinkWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          list.splice(list.indexOf(waiter), 1);
          if (list.length === 0 && this.linkRequests.get(peer) === list) this.linkRequests.delete(peer);
          reject(new Error(`SMC-R links to ${peer}: no answer${asked} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      list.push(waiter);
    });
  }

  private linksAnswered(msg: ControlMessage): void {
    if (typeof msg.peer !== 'string') {
      this.malformed++;
      return;
    }
    const waiters = this.linkRequests.get(msg.peer);
    // An answer nobody waits for any more (every caller timed out) is simply late.
    if (!waiters) return;
    this.linkRequests.delete(msg.peer);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(msg);
    }
  }

  private checkReady(): void {
    if (this.announcedReady || !this.config || !this.stack || !this.networkReady()) return;
    this.announcedReady = true;
    this.onNetworkReady(this.stack, this.config);
  }

  /** Healthy once configured and every interface is registered with at least one control node. */
  networkReady(): boolean {
    if (!this.stack) return false;
    for (const ifc of this.stack.interfaces()) {
      if (![...this.registered.values()].some((s) => s.has(ifc.device.vlan))) return false;
    }
    return true;
  }

  reportHealth(): void {
    const state = this.config ? 'healthy' : 'starting';
    this.toControlNodes({ t: 'health', state, detail: `control nodes ${this.reachable().join(',')}` });
  }
}
