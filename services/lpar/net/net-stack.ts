import type { Logger } from 'pino';
import { DEFAULT_VLAN_MTU } from '../../../shared/platform/mtu.ts';
import { idleHeartbeatMs, type EthernetSettings } from '../../../shared/platform/platform.ts';
import { parseIp, ipToString } from '../../../shared/wire/ipv4-address.ts';
import { macToString, parseMac } from '../../../shared/wire/mac.ts';
import type { PacketListener } from './devices/packet-tap.ts';
import { VirtualEthernet, type VethPort } from './devices/virtual-ethernet.ts';
import { ipInterface, type IpInterface } from './ip/ip-interface.ts';
import { IpLayer } from './ip/ip-layer.ts';
import { applyRouting } from './ip/route-admin.ts';
import type { MgmtInterface } from '../../../shared/protocol/mgmt.ts';
import { Net } from './socket/net-api.ts';
import { Tcp } from './tcp/tcp.ts';
import { Udp } from './udp.ts';

/** An interface as a control node describes it in the boot configuration: the mgmt protocol's one type. */
export type InterfaceConfig = MgmtInterface;

/** An IP interface on a virtual Ethernet port: what the partition's boot registers with the control nodes. */
export type VethInterface = IpInterface<VethPort>;

/**
 * The partition's network stack, bottom up: devices (the virtual Ethernet
 * driver's ports), IPv4 (routing, forwarding, ARP, ICMP), UDP and TCP, and
 * the socket API above them.
 */
export class NetStack {
  readonly driver: VirtualEthernet;
  readonly ip: IpLayer;
  readonly udp: Udp;
  readonly tcp: Tcp;
  /** The partition's `net` module (node:net's shape) for its workloads. */
  readonly net: Net;
  private readonly veths = new Map<string, VethInterface>();
  /** Capture subscriptions by virtual LAN, kept here so one taken before the interface exists (or across a leave and join) holds. */
  private readonly captures = new Map<string, Map<PacketListener, () => void>>();

  constructor(settings: EthernetSettings, log: Logger) {
    this.driver = new VirtualEthernet(settings.heartbeatMs, idleHeartbeatMs(settings), log.child({ component: 'virtual-ethernet' }));
    this.ip = new IpLayer(settings.arpCacheSeconds * 1000);
    this.udp = new Udp(this.ip);
    // The MSS ceiling is the platform's default MTU less IPv4 and TCP headers; each connection takes its
    // interface's (and path's) MTU less 40 below that. TIME-WAIT is short in a lab (2 s, not 2 MSL of
    // minutes) so tests can open thousands of connections.
    this.tcp = new Tcp(this.ip, { mss: DEFAULT_VLAN_MTU - 40, rcvBuf: 4 << 20, sndBuf: 4 << 20, maxRetransmits: 8, delayedAckMs: 40, timeWaitMs: 2000, minRtoMs: 200 });
    this.net = new Net(this.tcp, this.ip);
  }

  addInterface(c: InterfaceConfig): VethInterface {
    const existing = this.veths.get(c.vlan);
    if (existing) return existing;
    const port = this.driver.addPort({ dev: c.dev, vlan: c.vlan, vlanId: c.vlanId, mac: parseMac(c.mac), mtu: c.mtu, promiscuousAllowed: c.promiscuousAllowed });
    const ifc = ipInterface(port, parseIp(c.ip), c.prefix);
    this.veths.set(c.vlan, ifc);
    this.ip.addInterface(ifc);
    const waiting = this.captures.get(c.vlan);
    if (waiting) for (const l of waiting.keys()) waiting.set(l, port.taps.subscribe(l));
    return ifc;
  }

  removeInterface(vlan: string): void {
    const ifc = this.veths.get(vlan);
    if (!ifc) return;
    this.veths.delete(vlan);
    this.ip.removeInterface(ifc);
    this.driver.removePort(vlan);
  }

  interfaces(): VethInterface[] {
    return [...this.veths.values()];
  }

  byVlan(vlan: string): VethInterface | undefined {
    return this.veths.get(vlan);
  }

  /**
   * The boot configuration's routing part: `forwarding` and the platform
   * file's `routes` for this LPAR. Returns the routes refused (the loader
   * checked them, so only a control node of another build sends any).
   */
  configureRouting(forwarding: unknown, routes: unknown): string[] {
    return applyRouting(this.ip, forwarding, routes);
  }

  /** Capture of what this partition transmits on a virtual LAN; returns what ends it. */
  tap(vlan: string, listener: PacketListener): () => void {
    let subs = this.captures.get(vlan);
    if (!subs) this.captures.set(vlan, (subs = new Map()));
    const set = subs;
    set.set(listener, this.veths.get(vlan)?.device.taps.subscribe(listener) ?? (() => {}));
    return () => {
      set.get(listener)?.();
      set.delete(listener);
      if (set.size === 0 && this.captures.get(vlan) === set) this.captures.delete(vlan);
    };
  }

  describe(): Array<Record<string, unknown>> {
    return this.interfaces().map((i) => ({
      dev: i.device.dev,
      name: i.device.name,
      vlan: i.device.vlan,
      vlanId: i.device.vlanId,
      mac: macToString(i.device.mac),
      ip: `${ipToString(i.ip)}/${i.prefix}`,
      mtu: i.mtu,
      promiscuous: i.device.promiscuous,
    }));
  }

  close(): void {
    this.driver.close();
    this.ip.close();
  }
}
