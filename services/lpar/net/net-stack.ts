import type { Logger } from 'pino';
import { parseIp, ipToString } from '../../../shared/wire/ipv4-address.ts';
import { macToString, parseMac } from '../../../shared/wire/mac.ts';
import { IpLayer } from './ip-layer.ts';
import { Net } from './tcp/net-api.ts';
import { Tcp } from './tcp/tcp.ts';
import { Udp } from './udp.ts';
import { VirtualEthernet, type Interface } from './virtual-ethernet.ts';

/** An interface as a control node describes it in the boot configuration. */
export interface InterfaceConfig {
  vlan: string;
  vlanId: number;
  dev: number;
  ip: string;
  prefix: number;
  mac: string;
  mtu: number;
  promiscuousAllowed: boolean;
}

/**
 * The partition's network stack, bottom up: virtual Ethernet driver, IPv4
 * (with ARP and ICMP), UDP.
 */
export class NetStack {
  readonly driver: VirtualEthernet;
  readonly ip: IpLayer;
  readonly udp: Udp;
  readonly tcp: Tcp;
  /** The partition's `net` module (node:net's shape) for its workloads. */
  readonly net: Net;

  constructor(settings: { heartbeatMs: number; arpCacheSeconds: number }, log: Logger) {
    this.driver = new VirtualEthernet(settings.heartbeatMs, log.child({ component: 'virtual-ethernet' }));
    this.ip = new IpLayer(this.driver, settings.arpCacheSeconds * 1000);
    this.udp = new Udp(this.ip);
    this.udp.ifaces = () => [...this.driver.interfaces.values()];
    // MSS from the platform's internal MTU (16896 less IPv4 and TCP headers). TIME-WAIT is
    // short in a lab (2 s, not 2 MSL of minutes) so tests can open thousands of connections.
    this.tcp = new Tcp(this.ip, { mss: 16896 - 40, rcvBuf: 4 << 20, sndBuf: 4 << 20, maxRetransmits: 8, delayedAckMs: 40, timeWaitMs: 2000, minRtoMs: 200 });
    this.net = new Net(this.tcp, this.ip);
  }

  addInterface(c: InterfaceConfig): Interface {
    const existing = this.driver.byVlan(c.vlan);
    if (existing) return existing;
    const ifc: Interface = {
      dev: c.dev,
      vlan: c.vlan,
      vlanId: c.vlanId,
      mac: parseMac(c.mac),
      ip: parseIp(c.ip),
      prefix: c.prefix,
      mtu: c.mtu,
      promiscuousAllowed: c.promiscuousAllowed,
      promiscuous: false,
    };
    this.driver.addInterface(ifc);
    return ifc;
  }

  describe(): Array<Record<string, unknown>> {
    return [...this.driver.interfaces.values()].map((i) => ({
      dev: i.dev,
      name: `veth${i.dev}`,
      vlan: i.vlan,
      vlanId: i.vlanId,
      mac: macToString(i.mac),
      ip: `${ipToString(i.ip)}/${i.prefix}`,
      mtu: i.mtu,
      promiscuous: i.promiscuous,
    }));
  }

  close(): void {
    this.driver.close();
    this.ip.close();
  }
}
