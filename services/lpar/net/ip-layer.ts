import crypto from 'node:crypto';
import { ARP_LENGTH, ArpOp, ArpPacket, emitArp } from '../../../shared/wire/arp.ts';
import { ETHERNET_HEADER, EthernetFrame, EtherType, emitEthernet } from '../../../shared/wire/ethernet.ts';
import { IcmpPacket, IcmpType, emitIcmpEcho } from '../../../shared/wire/icmpv4.ts';
import { IPV4_HEADER, IpProto, Ipv4Packet, Reassembler, emitIpv4Header, fragmentPlan } from '../../../shared/wire/ipv4.ts';
import { LIMITED_BROADCAST, directedBroadcast, inSubnet, ipToString, isIpv4Multicast } from '../../../shared/wire/ipv4-address.ts';
import { BROADCAST_MAC, ipv4MulticastMac, isInternalMac, macToString } from '../../../shared/wire/mac.ts';
import { fillTcpChecksum } from '../../../shared/wire/tcp.ts';
import { fillUdpChecksum } from '../../../shared/wire/udp.ts';
import { TLV_HEADER } from '../../../shared/wire/tlv.ts';
import { ArpCache } from './arp-cache.ts';
import type { Interface, VirtualEthernet } from './virtual-ethernet.ts';

export class NetError extends Error {
  constructor(
    readonly code: 'ENETUNREACH' | 'EHOSTUNREACH' | 'EMSGSIZE' | 'ENOBUFS' | 'EACCES',
    message: string,
  ) {
    super(message);
  }
}

const ZERO_MAC = Buffer.alloc(6);

export interface PingResult {
  dst: string;
  sent: number;
  received: number;
  rttsMs: number[];
  errors: string[];
}

/**
 * The partition's IPv4 layer over its virtual Ethernet interfaces: routing by
 * interface subnet (no router between virtual LANs), ARP through each
 * interface's cache, fragmentation to the interface MTU (16896 inside the
 * platform) and reassembly, ICMP echo both ways. Inside the platform the IPv4
 * and UDP checksums are left zero (seed 004, "IP Stack": every hop of the
 * platform detects errors and guarantees delivery); ICMP's is always set.
 */
export class IpLayer {
  readonly stats = { rx: 0, tx: 0, notForUs: 0, malformed: 0, noRoute: 0, unresolved: 0, unknownProtocol: 0, echoReplies: 0, fragmentsSent: 0 };
  /** UDP datagrams for the UDP layer: payload is the whole UDP datagram. */
  onUdp: (ifc: Interface, src: number, dst: number, datagram: Buffer) => void = () => {};
  /** TCP segments for the TCP layer (the whole segment). */
  onTcp: (ifc: Interface, src: number, dst: number, segment: Buffer) => void = () => {};
  /** A multicast group's first join or last leave on an interface (the virtual LAN server is told). */
  onMembership: (ifc: Interface, groupMac: string, join: boolean) => void = () => {};

  private readonly arp = new Map<number, ArpCache>();
  private readonly groups = new Map<string, number>();
  private readonly reassembler = new Reassembler({ timeoutMs: 5000, maxDatagrams: 64, maxBytes: 8 * 1024 * 1024 });
  private nextId = crypto.randomInt(0xffff);
  private readonly pings = new Map<number, (t: number) => void>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly driver: VirtualEthernet,
    private readonly arpTtlMs: number,
  ) {
    driver.onReceive = (ifc, frame) => this.receive(ifc, frame);
    driver.onControlNodeDown = () => {
      const now = performance.now();
      for (const c of this.arp.values()) c.retryNow(now);
    };
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const c of this.arp.values()) c.tick(now);
      this.reassembler.expire(now);
    }, 50);
    this.timer.unref();
  }

  private cache(ifc: Interface): ArpCache {
    let c = this.arp.get(ifc.dev);
    if (!c) {
      c = new ArpCache(this.arpTtlMs, (ip) => this.sendArp(ifc, ArpOp.Request, BROADCAST_MAC, ZERO_MAC, ip));
      this.arp.set(ifc.dev, c);
    }
    return c;
  }

  /** Whether `ip` is one of this partition's own addresses. */
  isLocal(ip: number): boolean {
    for (const ifc of this.driver.interfaces.values()) if (ifc.ip === ip) return true;
    return false;
  }

  firstAddress(): number | undefined {
    return this.driver.interfaces.values().next().value?.ip;
  }

  /** The interface whose subnet holds `dst`. */
  route(dst: number): Interface | undefined {
    for (const ifc of this.driver.interfaces.values()) if (inSubnet(dst, ifc.ip, ifc.prefix)) return ifc;
    return undefined;
  }

  private isBroadcastFor(ifc: Interface, dst: number): boolean {
    return dst === LIMITED_BROADCAST || dst === directedBroadcast(ifc.ip, ifc.prefix);
  }

  /**
   * Sends an IPv4 datagram whose payload is `parts` joined. `ifc` is needed for
   * the limited broadcast and multicast (any interface otherwise routes). `done`
   * reports when the frames are handed to the driver, or why they were not.
   */
  send(dst: number, protocol: number, parts: Buffer[], opts: { ifc?: Interface; ttl?: number } = {}, done: (err?: NetError) => void = () => {}): void {
    const ifc = opts.ifc ?? this.route(dst) ?? (dst === LIMITED_BROADCAST || isIpv4Multicast(dst) ? this.driver.interfaces.values().next().value : undefined);
    if (!ifc) {
      this.stats.noRoute++;
      done(new NetError('ENETUNREACH', `no interface for ${ipToString(dst)}`));
      return;
    }
    let length = 0;
    for (const p of parts) length += p.length;
    if (length + IPV4_HEADER > 65535) {
      done(new NetError('EMSGSIZE', `datagram of ${length} bytes is too long`));
      return;
    }
    if (dst === ifc.ip) {
      // To ourselves: looped back inside the stack, as a host's loopback does; never on the wire.
      const data = Buffer.concat(parts, length);
      setImmediate(() => this.deliverLocal(ifc, dst, protocol, data));
      done();
      return;
    }
    const emit = (mac: Buffer) => this.emit(ifc, mac, dst, protocol, parts, length, opts.ttl ?? 64, done);
    if (this.isBroadcastFor(ifc, dst)) return emit(BROADCAST_MAC);
    if (isIpv4Multicast(dst)) return emit(ipv4MulticastMac(dst));
    const now = performance.now();
    const cache = this.cache(ifc);
    const mac = cache.lookup(dst, now);
    if (mac) return emit(mac);
    cache.resolve(dst, now, emit, () => {
      this.stats.unresolved++;
      done(new NetError('EHOSTUNREACH', `no ARP answer for ${ipToString(dst)} on ${ifc.vlan}`));
    });
  }

  /**
   * One frame per fragment, each built in place behind the TLV headroom the
   * driver needs. `done` runs when the last fragment is in the driver's hands,
   * or at once with ENOBUFS when one was dropped.
   */
  private emit(ifc: Interface, mac: Buffer, dst: number, protocol: number, parts: Buffer[], length: number, ttl: number, done: (err?: NetError) => void): void {
    const id = (this.nextId = (this.nextId + 1) & 0xffff);
    // Anything not addressed to an internal MAC may leave the platform (a bridged LAN): it gets real checksums.
    const external = !isInternalMac(mac);
    if (external && (protocol === IpProto.Tcp || protocol === IpProto.Udp)) {
      const datagram = Buffer.concat(parts, length);
      if (protocol === IpProto.Tcp) fillTcpChecksum(datagram, ifc.ip, dst);
      else fillUdpChecksum(datagram, ifc.ip, dst);
      parts = [datagram];
    }
    const plan = fragmentPlan(length, ifc.mtu);
    let waiting = plan.length;
    let failed = false;
    const sent = () => {
      if (--waiting === 0 && !failed) done();
    };
    for (const frag of plan) {
      const buf = Buffer.allocUnsafe(TLV_HEADER + ETHERNET_HEADER + IPV4_HEADER + frag.length);
      let o = TLV_HEADER;
      o += emitEthernet(buf, o, { dst: mac, src: ifc.mac, etherType: EtherType.Ipv4 });
      o += emitIpv4Header(buf, o, {
        src: ifc.ip,
        dst,
        protocol,
        payloadLength: frag.length,
        id,
        ttl,
        moreFragments: frag.more,
        fragmentOffset: frag.offset,
        checksum: external,
      });
      copyRange(parts, frag.offset, frag.length, buf, o);
      if (plan.length > 1) this.stats.fragmentsSent++;
      this.stats.tx++;
      if (!this.driver.transmit(ifc, buf, sent) && !failed) {
        failed = true;
        done(new NetError('ENOBUFS', `no path or queue space towards ${ipToString(dst)} on ${ifc.vlan}`));
      }
    }
  }

  private sendArp(ifc: Interface, op: number, ethDst: Buffer, tha: Buffer, tpa: number): void {
    const buf = Buffer.allocUnsafe(TLV_HEADER + ETHERNET_HEADER + ARP_LENGTH);
    const o = TLV_HEADER + emitEthernet(buf, TLV_HEADER, { dst: ethDst, src: ifc.mac, etherType: EtherType.Arp });
    emitArp(buf, o, { op, sha: ifc.mac, spa: ifc.ip, tha, tpa });
    this.driver.transmit(ifc, buf);
  }

  private receive(ifc: Interface, frame: Buffer): void {
    let eth: EthernetFrame;
    try {
      eth = EthernetFrame.parse(frame);
    } catch {
      this.stats.malformed++;
      return;
    }
    if (eth.etherType === EtherType.Arp) this.receiveArp(ifc, eth.payload);
    else if (eth.etherType === EtherType.Ipv4) this.receiveIpv4(ifc, eth.payload);
    else this.stats.unknownProtocol++;
  }

  /** RFC 826 "packet reception": merge the sender if known or if we are the target; answer requests for us. */
  private receiveArp(ifc: Interface, payload: Buffer): void {
    let arp: ArpPacket;
    try {
      arp = ArpPacket.parse(payload);
    } catch {
      this.stats.malformed++;
      return;
    }
    // Only neighbours on this interface's subnet go into its cache.
    if (!inSubnet(arp.spa, ifc.ip, ifc.prefix) || arp.spa === ifc.ip || this.isBroadcastFor(ifc, arp.spa)) {
      this.stats.notForUs++;
      return;
    }
    const now = performance.now();
    const cache = this.cache(ifc);
    const forUs = arp.tpa === ifc.ip;
    if (forUs || cache.lookup(arp.spa, now) || cache.wanted(arp.spa)) cache.learn(arp.spa, arp.sha, now);
    if (forUs && arp.op === ArpOp.Request) this.sendArp(ifc, ArpOp.Reply, arp.sha, arp.sha, arp.spa);
  }

  private receiveIpv4(ifc: Interface, payload: Buffer): void {
    let ip: Ipv4Packet;
    try {
      ip = Ipv4Packet.parse(payload);
    } catch {
      this.stats.malformed++;
      return;
    }
    const dst = ip.dst;
    const broadcast = this.isBroadcastFor(ifc, dst);
    if (dst !== ifc.ip && !broadcast && !(isIpv4Multicast(dst) && this.groups.has(`${ifc.dev}/${macToString(ipv4MulticastMac(dst))}/${dst}`))) {
      this.stats.notForUs++;
      return;
    }
    this.stats.rx++;
    let data = ip.payload;
    if (ip.isFragment) {
      const whole = this.reassembler.push(ip, performance.now());
      if (!whole) return;
      data = whole;
    }
    switch (ip.protocol) {
      case IpProto.Udp:
        this.onUdp(ifc, ip.src, dst, data);
        return;
      case IpProto.Tcp:
        if (!broadcast && !isIpv4Multicast(dst)) this.onTcp(ifc, ip.src, dst, data);
        return;
      case IpProto.Icmp:
        this.receiveIcmp(ifc, ip.src, broadcast || isIpv4Multicast(dst), data);
        return;
      default:
        this.stats.unknownProtocol++;
    }
  }

  private deliverLocal(ifc: Interface, self: number, protocol: number, data: Buffer): void {
    if (protocol === IpProto.Udp) this.onUdp(ifc, self, self, data);
    else if (protocol === IpProto.Tcp) this.onTcp(ifc, self, self, data);
    else if (protocol === IpProto.Icmp) this.receiveIcmp(ifc, self, false, data);
  }

  private receiveIcmp(ifc: Interface, src: number, toGroup: boolean, data: Buffer): void {
    let icmp: IcmpPacket;
    try {
      icmp = IcmpPacket.parse(data);
    } catch {
      this.stats.malformed++;
      return;
    }
    // RFC 1122 3.2.1.3 / 3.2.2.6: no echo to a broadcast or off-link source (no amplification, no ARP storms).
    const onLink = inSubnet(src, ifc.ip, ifc.prefix) && !this.isBroadcastFor(ifc, src) && !isIpv4Multicast(src);
    if (icmp.type === IcmpType.EchoRequest && !toGroup && (onLink || src === ifc.ip)) {
      const reply = Buffer.allocUnsafe(8 + icmp.data.length);
      emitIcmpEcho(reply, 0, { type: IcmpType.EchoReply, id: icmp.id, seq: icmp.seq, data: icmp.data });
      this.stats.echoReplies++;
      this.send(src, IpProto.Icmp, [reply], { ifc });
    } else if (icmp.type === IcmpType.EchoReply) {
      this.pings.get((icmp.id << 16) | icmp.seq)?.(performance.now());
    }
  }

  /** Joins a multicast group on an interface; the first join is announced to the virtual LAN servers. */
  joinGroup(ifc: Interface, group: number): void {
    const mac = macToString(ipv4MulticastMac(group));
    const key = `${ifc.dev}/${mac}/${group}`;
    const n = (this.groups.get(key) ?? 0) + 1;
    this.groups.set(key, n);
    if (n === 1) this.onMembership(ifc, mac, true);
  }

  leaveGroup(ifc: Interface, group: number): void {
    const mac = macToString(ipv4MulticastMac(group));
    const key = `${ifc.dev}/${mac}/${group}`;
    const n = (this.groups.get(key) ?? 0) - 1;
    if (n > 0) this.groups.set(key, n);
    else if (this.groups.delete(key)) this.onMembership(ifc, mac, false);
  }

  /** Multicast groups joined on `ifc`, as MAC strings (to join again with a restarted control node). */
  groupMacs(ifc: Interface): string[] {
    return [...new Set([...this.groups.keys()].filter((k) => k.startsWith(`${ifc.dev}/`)).map((k) => k.split('/')[1]))];
  }

  /**
   * ICMP echo, as ping(8): `count` requests `intervalMs` apart, each waiting up
   * to `timeoutMs`. With intervalMs 0 it is ping -f: the next request leaves as
   * soon as the reply to the last one is back.
   */
  async ping(dst: number, opts: { count: number; size: number; intervalMs: number; timeoutMs: number }): Promise<PingResult> {
    const id = crypto.randomInt(1, 0xffff);
    const result: PingResult = { dst: ipToString(dst), sent: 0, received: 0, rttsMs: [], errors: [] };
    const data = Buffer.alloc(Math.max(0, opts.size));
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    const waits: Promise<void>[] = [];
    for (let seq = 1; seq <= opts.count; seq++) {
      const key = (id << 16) | seq;
      const t0 = performance.now();
      waits.push(
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.pings.delete(key);
            resolve();
          }, opts.timeoutMs);
          this.pings.set(key, (t) => {
            clearTimeout(timer);
            this.pings.delete(key);
            result.received++;
            result.rttsMs.push(t - t0);
            resolve();
          });
        }),
      );
      const req = Buffer.allocUnsafe(8 + data.length);
      emitIcmpEcho(req, 0, { type: IcmpType.EchoRequest, id, seq, data });
      result.sent++;
      this.send(dst, IpProto.Icmp, [req], {}, (err) => {
        if (err && !result.errors.includes(err.message)) result.errors.push(err.message);
      });
      if (seq < opts.count) await (opts.intervalMs > 0 ? new Promise((r) => setTimeout(r, opts.intervalMs)) : waits[waits.length - 1]);
    }
    await Promise.all(waits);
    return result;
  }

  arpTable(): Array<{ vlan: string; ip: string; mac: string; expiresInMs: number }> {
    const now = performance.now();
    const out = [];
    for (const ifc of this.driver.interfaces.values()) {
      for (const e of this.cache(ifc).list(now)) out.push({ vlan: ifc.vlan, ip: ipToString(e.ip), mac: macToString(e.mac), expiresInMs: e.expiresInMs });
    }
    return out;
  }

  flushArp(): void {
    for (const c of this.arp.values()) c.flush();
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** Copies `length` bytes starting at `offset` of the concatenation of `parts` into `target` at `at`. */
function copyRange(parts: Buffer[], offset: number, length: number, target: Buffer, at: number): void {
  for (const p of parts) {
    if (length === 0) return;
    if (offset >= p.length) {
      offset -= p.length;
      continue;
    }
    const n = Math.min(p.length - offset, length);
    p.copy(target, at, offset, offset + n);
    at += n;
    length -= n;
    offset = 0;
  }
}
