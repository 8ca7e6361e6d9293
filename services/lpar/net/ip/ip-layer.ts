import crypto from 'node:crypto';
import { ARP_LENGTH, ArpOp, ArpPacket, emitArp } from '../../../../shared/wire/arp.ts';
import { ETHERNET_HEADER, EtherType, emitEthernet, type EthernetFrame } from '../../../../shared/wire/ethernet.ts';
import { IcmpPacket, IcmpType, emitIcmpEcho, emitIcmpError } from '../../../../shared/wire/icmpv4.ts';
import { IPV4_HEADER, IpProto, Ipv4Packet, emitIpv4Header, fragmentPlan } from '../../../../shared/wire/ipv4.ts';
import { LIMITED_BROADCAST, directedBroadcast, inSubnet, ipToString, isIpv4Multicast, prefixMask } from '../../../../shared/wire/ipv4-address.ts';
import { BROADCAST_MAC, ipv4MulticastMac, isBroadcastMac, isMulticastMac, macToString } from '../../../../shared/wire/mac.ts';
import { fillTcpChecksum } from '../../../../shared/wire/tcp.ts';
import { UdpDatagram, fillUdpChecksum } from '../../../../shared/wire/udp.ts';
import { FrameKind } from '../devices/net-device.ts';
import { ArpCache } from './arp-cache.ts';
import { IcmpRateLimit, UnreachableCode, forwardVerdict, mayAnswerWithError, quoteLength } from './forwarding.ts';
import { Reassembler } from './fragments.ts';
import type { IpInterface } from './ip-interface.ts';
import { PathMtuCache, plateauBelow } from './path-mtu.ts';
import { Pinger, type PingOptions, type PingResult } from './ping.ts';

export type { PingResult };
import { RoutingTable, makeRoute, type Route } from './routes.ts';

export class NetError extends Error {
  constructor(
    readonly code: 'ENETUNREACH' | 'EHOSTUNREACH' | 'EMSGSIZE' | 'ENOBUFS' | 'EACCES',
    message: string,
  ) {
    super(message);
  }
}

const ZERO_MAC = Buffer.alloc(6);

/** Where a datagram for a destination leaves: the interface, the neighbour to resolve, the route that said so. */
export interface NextHop {
  ifc: IpInterface;
  /** The destination itself when on-link, else the route's gateway. */
  via: number;
  route: Route;
}

/**
 * The partition's IPv4 layer over its IP interfaces (any NetDevice below):
 * a routing table (connected, platform and static routes; longest prefix
 * match), ARP through each interface's cache, fragmentation to the
 * interface MTU and reassembly, ICMP echo both ways, ICMP errors, a path-MTU
 * cache TCP follows, and — in a partition with `forwarding: true` —
 * forwarding between its interfaces (RFC 1812). Whether a frame carries
 * checksums is the device's say (`needsChecksums`): inside the platform the
 * IPv4, TCP and UDP checksums stay zero (seed 004, "IP Stack": every hop of
 * the platform detects errors and guarantees delivery); ICMP's is always set.
 */
export class IpLayer {
  readonly stats = {
    rx: 0,
    tx: 0,
    notForUs: 0,
    malformed: 0,
    noRoute: 0,
    unresolved: 0,
    unknownProtocol: 0,
    echoReplies: 0,
    fragmentsSent: 0,
    forwarded: 0,
    forwardDropped: 0,
    fragmentsForwarded: 0,
    icmpErrorsSent: 0,
    icmpErrorsReceived: 0,
    icmpRateLimited: 0,
    tooBig: 0,
  };
  /** UDP datagrams for the UDP layer: payload is the whole UDP datagram. */
  onUdp: (ifc: IpInterface, src: number, dst: number, datagram: Buffer) => void = () => {};
  /** TCP segments for the TCP layer (the whole segment). */
  onTcp: (ifc: IpInterface, src: number, dst: number, segment: Buffer) => void = () => {};
  /** A multicast group's first join or last leave on an interface (the virtual LAN server is told). */
  onMembership: (ifc: IpInterface, groupMac: string, join: boolean) => void = () => {};
  /** The path MTU towards `dst` went down (RFC 1191): TCP lowers the MSS of its connections there. */
  onPathMtu: (dst: number, mtu: number) => void = () => {};

  /** Whether datagrams for others are routed between interfaces (the platform file's `forwarding`). */
  forwarding = false;
  readonly routes = new RoutingTable();
  readonly pmtu: PathMtuCache;

  private ifcs: IpInterface[] = [];
  private readonly arp = new Map<IpInterface, ArpCache>();
  private readonly groups = new Map<string, number>();
  private readonly reassembler = new Reassembler({ timeoutMs: 5000, maxDatagrams: 64, maxBytes: 8 * 1024 * 1024 });
  private readonly icmpLimit = new IcmpRateLimit();
  private nextId = crypto.randomInt(0xffff);
  private readonly pinger = new Pinger((dst, req, opts, done) => this.send(dst, IpProto.Icmp, [req], opts, done));
  /** Runs only while an ARP request is outstanding or a datagram is part-reassembled: an idle partition wakes for nothing (issue 10 item 2). */
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly arpTtlMs: number,
    opts: { pmtuAgingMs?: number } = {},
  ) {
    this.pmtu = new PathMtuCache(opts.pmtuAgingMs);
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const now = performance.now();
      let waiting = this.reassembler.pending > 0;
      for (const c of this.arp.values()) {
        c.tick(now);
        if (c.waiting > 0) waiting = true;
      }
      this.reassembler.expire(now);
      if (!waiting) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, 50);
    this.timer.unref();
  }

  // ---- interfaces ------------------------------------------------------

  /** Brings an interface up: its device delivers here, and its subnet becomes a connected route. */
  addInterface(ifc: IpInterface): void {
    this.ifcs = [...this.ifcs, ifc];
    ifc.device.receiver = (eth) => this.receive(ifc, eth);
    ifc.device.neighboursLost = () => this.arp.get(ifc)?.retryNow(performance.now());
    const net = (ifc.ip & prefixMask(ifc.prefix)) >>> 0;
    this.routes.add(makeRoute({ net, prefix: ifc.prefix, dev: ifc.device.lan, source: 'connected' }));
  }

  removeInterface(ifc: IpInterface): void {
    this.ifcs = this.ifcs.filter((i) => i !== ifc);
    ifc.device.receiver = () => {};
    ifc.device.neighboursLost = () => {};
    this.arp.delete(ifc);
    const net = (ifc.ip & prefixMask(ifc.prefix)) >>> 0;
    this.routes.remove(net, ifc.prefix, { dev: ifc.device.lan, includeConnected: true });
  }

  interfaces(): readonly IpInterface[] {
    return this.ifcs;
  }

  byLan(lan: string): IpInterface | undefined {
    for (const i of this.ifcs) if (i.device.lan === lan) return i;
    return undefined;
  }

  private cache(ifc: IpInterface): ArpCache {
    let c = this.arp.get(ifc);
    if (!c) {
      c = new ArpCache(this.arpTtlMs, (ip) => {
        this.sendArp(ifc, ArpOp.Request, BROADCAST_MAC, ZERO_MAC, ip);
        this.armTimer();
      });
      this.arp.set(ifc, c);
    }
    return c;
  }

  /** Whether `ip` is one of this partition's own addresses. */
  isLocal(ip: number): boolean {
    for (const ifc of this.ifcs) if (ifc.ip === ip) return true;
    return false;
  }

  firstAddress(): number | undefined {
    return this.ifcs[0]?.ip;
  }

  // ---- routing ---------------------------------------------------------

  /**
   * Where a datagram for `dst` goes: the longest-prefix route whose egress
   * resolves (a route via a gateway on no connected subnet, or naming a LAN
   * this partition is not on, is passed over for the next match).
   */
  nextHop(dst: number): NextHop | undefined {
    // A plain scan of the sorted list: this runs for every datagram sent, so no iterator is allocated.
    const routes = this.routes.list();
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i];
      if (((dst ^ route.net) & route.mask) !== 0) continue;
      let ifc: IpInterface | undefined;
      if (route.dev !== undefined) ifc = this.byLan(route.dev);
      else if (route.via !== undefined) {
        const on = this.routes.connectedFor(route.via);
        if (on?.dev !== undefined) ifc = this.byLan(on.dev);
      }
      if (ifc) return { ifc, via: route.via ?? dst, route };
    }
    return undefined;
  }

  /** The interface a datagram for `dst` leaves on (its address is the source a socket binds to). */
  route(dst: number): IpInterface | undefined {
    return this.nextHop(dst)?.ifc;
  }

  /** The MTU towards `dst`: the egress interface's, or lower when the path said so (RFC 1191). */
  pathMtu(dst: number): number | undefined {
    const ifc = this.route(dst);
    if (!ifc) return undefined;
    const cached = this.pmtu.get(dst, performance.now());
    return cached === undefined ? ifc.mtu : Math.min(cached, ifc.mtu);
  }

  /** TCP's MSS towards `dst` (RFC 9293 3.7.1, RFC 6691: MTU less the fixed IPv4 and TCP headers). */
  mssFor(dst: number): number | undefined {
    const mtu = this.pathMtu(dst);
    return mtu === undefined ? undefined : mtu - 40;
  }

  private isBroadcastFor(ifc: IpInterface, dst: number): boolean {
    return dst === LIMITED_BROADCAST || dst === directedBroadcast(ifc.ip, ifc.prefix);
  }

  private isBroadcastAnywhere(ip: number): boolean {
    for (const i of this.ifcs) if (this.isBroadcastFor(i, ip)) return true;
    return false;
  }

  // ---- output ----------------------------------------------------------

  /**
   * Sends an IPv4 datagram whose payload is `parts` joined. `ifc` is needed for
   * the limited broadcast and multicast (any interface otherwise routes). `df`
   * sets Don't Fragment (TCP's path-MTU discovery, `ping -M do`): a datagram
   * over the interface MTU is then refused with EMSGSIZE instead of
   * fragmented. `done` reports when the frames are handed to the device, or
   * why they were not.
   */
  send(dst: number, protocol: number, parts: Buffer[], opts: { ifc?: IpInterface; ttl?: number; df?: boolean; src?: number } = {}, done: (err?: NetError) => void = () => {}): void {
    let ifc = opts.ifc;
    let via = dst;
    if (!ifc) {
      if (dst === LIMITED_BROADCAST || isIpv4Multicast(dst)) ifc = this.ifcs[0];
      else {
        const hop = this.nextHop(dst);
        if (hop) {
          ifc = hop.ifc;
          via = hop.via;
        }
      }
    }
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
      const self = ifc;
      setImmediate(() => this.deliverLocal(self, dst, protocol, data));
      done();
      return;
    }
    const df = opts.df === true;
    if (df && length + IPV4_HEADER > ifc.mtu) {
      this.stats.tooBig++;
      // Our own interface is the small hop (a route now leads over a smaller LAN): the path MTU says
      // so, as Linux's does on a local EMSGSIZE, and TCP resends in the smaller size.
      const lowered = this.pmtu.report(dst, ifc.mtu, length + IPV4_HEADER, performance.now());
      // Told after this send returns: the sender (TCP) is in the middle of its output loop now.
      if (lowered !== undefined) queueMicrotask(() => this.onPathMtu(dst, lowered));
      done(new NetError('EMSGSIZE', `datagram of ${length + IPV4_HEADER} bytes with DF set exceeds the MTU ${ifc.mtu} of ${ifc.device.lan}`));
      return;
    }
    const out = ifc;
    const ttl = opts.ttl ?? 64;
    const src = opts.src ?? out.ip;
    if (this.isBroadcastFor(out, dst)) return this.emit(out, BROADCAST_MAC, FrameKind.Broadcast, src, dst, protocol, parts, length, ttl, df, done);
    if (isIpv4Multicast(dst)) return this.emit(out, ipv4MulticastMac(dst), FrameKind.Multicast, src, dst, protocol, parts, length, ttl, df, done);
    const now = performance.now();
    const cache = this.cache(out);
    const mac = cache.lookup(via, now);
    if (mac) return this.emit(out, mac, FrameKind.Unicast, src, dst, protocol, parts, length, ttl, df, done);
    cache.resolve(
      via,
      now,
      (m) => this.emit(out, m, FrameKind.Unicast, src, dst, protocol, parts, length, ttl, df, done),
      () => {
        this.stats.unresolved++;
        done(new NetError('EHOSTUNREACH', `no ARP answer for ${ipToString(via)} on ${out.device.lan}`));
      },
    );
  }

  /**
   * One frame per fragment, each built in place behind the device's
   * headroom. A datagram without DF is fragmented to the path MTU (the
   * interface's, or lower when a router said so). `done` runs when the last
   * fragment is in the device's hands, or at once with ENOBUFS when one was
   * dropped.
   */
  private emit(ifc: IpInterface, mac: Buffer, kind: FrameKind, src: number, dst: number, protocol: number, parts: Buffer[], length: number, ttl: number, df: boolean, done: (err?: NetError) => void): void {
    const id = (this.nextId = (this.nextId + 1) & 0xffff);
    const device = ifc.device;
    const checksums = device.needsChecksums(mac);
    if (checksums && (protocol === IpProto.Tcp || protocol === IpProto.Udp)) {
      const datagram = Buffer.concat(parts, length);
      if (protocol === IpProto.Tcp) fillTcpChecksum(datagram, src, dst);
      else fillUdpChecksum(datagram, src, dst);
      parts = [datagram];
    }
    let mtu = ifc.mtu;
    if (!df && kind === FrameKind.Unicast) {
      const cached = this.pmtu.get(dst, performance.now());
      if (cached !== undefined && cached < mtu) mtu = cached;
    }
    const plan = fragmentPlan(length, mtu);
    let waiting = plan.length;
    let failed = false;
    const sent = () => {
      if (--waiting === 0 && !failed) done();
    };
    const headroom = device.headroom;
    for (const frag of plan) {
      const buf = Buffer.allocUnsafe(headroom + ETHERNET_HEADER + IPV4_HEADER + frag.length);
      let o = headroom;
      o += emitEthernet(buf, o, { dst: mac, src: device.mac, etherType: EtherType.Ipv4 });
      o += emitIpv4Header(buf, o, {
        src,
        dst,
        protocol,
        payloadLength: frag.length,
        id,
        ttl,
        dontFragment: df,
        moreFragments: frag.more,
        fragmentOffset: frag.offset,
        checksum: checksums,
      });
      copyRange(parts, frag.offset, frag.length, buf, o);
      if (plan.length > 1) this.stats.fragmentsSent++;
      this.stats.tx++;
      if (!device.transmit(buf, kind, sent) && !failed) {
        failed = true;
        done(new NetError('ENOBUFS', `no path or queue space towards ${ipToString(dst)} on ${device.lan}`));
      }
    }
  }

  private sendArp(ifc: IpInterface, op: number, ethDst: Buffer, tha: Buffer, tpa: number): void {
    const device = ifc.device;
    const buf = Buffer.allocUnsafe(device.headroom + ETHERNET_HEADER + ARP_LENGTH);
    const o = device.headroom + emitEthernet(buf, device.headroom, { dst: ethDst, src: device.mac, etherType: EtherType.Arp });
    emitArp(buf, o, { op, sha: device.mac, spa: ifc.ip, tha, tpa });
    device.transmit(buf, op === ArpOp.Reply ? FrameKind.ArpReply : FrameKind.ArpRequest);
  }

  // ---- input -----------------------------------------------------------

  private receive(ifc: IpInterface, eth: EthernetFrame): void {
    if (eth.etherType === EtherType.Arp) this.receiveArp(ifc, eth.payload);
    else if (eth.etherType === EtherType.Ipv4) this.receiveIpv4(ifc, eth);
    else this.stats.unknownProtocol++;
  }

  /** RFC 826 "packet reception": merge the sender if known or if we are the target; answer requests for us. */
  private receiveArp(ifc: IpInterface, payload: Buffer): void {
    const arp = ArpPacket.tryParse(payload);
    if (!arp) return void this.stats.malformed++;
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

  private receiveIpv4(ifc: IpInterface, eth: EthernetFrame): void {
    const ip = Ipv4Packet.tryParse(eth.payload);
    if (!ip) return void this.stats.malformed++;
    const dst = ip.dst;
    const broadcast = this.isBroadcastFor(ifc, dst);
    // A router takes any of its addresses on any interface (RFC 1122 3.3.4.2's weak host model, as
    // Linux does); a host only the address of the interface it arrived on.
    const forUs = dst === ifc.ip || (this.forwarding && this.isLocal(dst));
    if (!forUs && !broadcast && !(isIpv4Multicast(dst) && this.groups.has(`${ifc.device.name}/${macToString(ipv4MulticastMac(dst))}/${dst}`))) {
      if (this.forwarding && !isIpv4Multicast(dst)) this.forward(ifc, ip, isBroadcastMac(eth.dst) || isMulticastMac(eth.dst));
      else this.stats.notForUs++;
      return;
    }
    this.stats.rx++;
    let data = ip.payload;
    if (ip.isFragment) {
      const whole = this.reassembler.push(ip, performance.now());
      if (!whole) {
        this.armTimer();
        return;
      }
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
        this.receiveIcmp(ifc, ip.src, dst, broadcast || isIpv4Multicast(dst), data);
        return;
      default:
        this.stats.unknownProtocol++;
    }
  }

  private deliverLocal(ifc: IpInterface, self: number, protocol: number, data: Buffer): void {
    if (protocol === IpProto.Udp) this.onUdp(ifc, self, self, data);
    else if (protocol === IpProto.Tcp) this.onTcp(ifc, self, self, data);
    else if (protocol === IpProto.Icmp) this.receiveIcmp(ifc, self, self, false, data);
  }

  private receiveIcmp(ifc: IpInterface, src: number, dst: number, toGroup: boolean, data: Buffer): void {
    const icmp = IcmpPacket.tryParse(data);
    if (!icmp) return void this.stats.malformed++;
    switch (icmp.type) {
      case IcmpType.EchoRequest: {
        // RFC 1122 3.2.1.3 / 3.2.2.6: no echo to a broadcast, multicast or unroutable source (no amplification, no ARP storms).
        if (toGroup || this.isBroadcastFor(ifc, src) || isIpv4Multicast(src) || src === 0) return;
        if (src !== ifc.ip && !inSubnet(src, ifc.ip, ifc.prefix) && !this.nextHop(src)) return;
        const reply = Buffer.allocUnsafe(8 + icmp.data.length);
        emitIcmpEcho(reply, 0, { type: IcmpType.EchoReply, id: icmp.id, seq: icmp.seq, data: icmp.data });
        this.stats.echoReplies++;
        // From the address asked (RFC 1122 3.2.2.6); on-link back on the interface it came in on, off-link as the routes say.
        const onLink = inSubnet(src, ifc.ip, ifc.prefix) || src === ifc.ip;
        this.send(src, IpProto.Icmp, [reply], onLink ? { ifc, src: dst } : { src: dst });
        return;
      }
      case IcmpType.EchoReply:
        this.pinger.reply(icmp.id, icmp.seq, performance.now());
        return;
      case IcmpType.DestUnreachable:
      case IcmpType.TimeExceeded:
        this.receiveIcmpError(src, icmp);
        return;
      default:
        return;
    }
  }

  /**
   * An ICMP error about a datagram this partition sent (the quoted source is
   * ours, or it is ignored: RFC 5927's first defence against forged errors).
   * "Fragmentation needed" lowers the path MTU (RFC 1191 4; with no next-hop
   * MTU in it, the next plateau below the rejected length, RFC 1191 5), and
   * TCP is told. Errors for a ping go to that ping's result.
   */
  private receiveIcmpError(from: number, icmp: IcmpPacket): void {
    const q = Ipv4Packet.tryParseQuoted(icmp.data);
    if (!q) return void this.stats.malformed++;
    if (!this.isLocal(q.src)) return void this.stats.notForUs++;
    this.stats.icmpErrorsReceived++;
    if (icmp.type === IcmpType.DestUnreachable && icmp.code === UnreachableCode.FragmentationNeeded) {
      const current = this.pathMtu(q.dst);
      if (current !== undefined) {
        const mtu = icmp.nextHopMtu === 0 ? plateauBelow(q.declaredLength) : icmp.nextHopMtu;
        const lowered = this.pmtu.report(q.dst, mtu, current, performance.now());
        if (lowered !== undefined) this.onPathMtu(q.dst, lowered);
      }
    }
    const echo = q.protocol === IpProto.Icmp ? IcmpPacket.tryParseQuoted(q.payload) : undefined;
    if (echo?.type === IcmpType.EchoRequest) {
      this.pinger.error(echo.id, echo.seq, from, icmp);
    }
  }

  // ---- forwarding (RFC 1812) --------------------------------------------

  /** A datagram for another host arrived on `inIfc`: forward it, answer with an ICMP error, or drop it. */
  private forward(inIfc: IpInterface, ip: Ipv4Packet, linkBroadcast: boolean): void {
    // RFC 1812 5.3.4: a datagram that arrived as link-layer broadcast is for this segment, not for forwarding.
    // RFC 1812 5.3.5.2: forwarding directed broadcasts is off by default (a smurf amplifier otherwise).
    if (linkBroadcast || this.isBroadcastAnywhere(ip.dst)) return void this.stats.forwardDropped++;
    const hop = this.nextHop(ip.dst);
    const verdict = forwardVerdict({ src: ip.src, dst: ip.dst, ttl: ip.ttl, dontFragment: ip.dontFragment, totalLength: ip.totalLength }, hop?.ifc.mtu);
    if (verdict.action === 'drop') return void this.stats.forwardDropped++;
    if (verdict.action === 'icmp' || !hop) {
      this.stats.forwardDropped++;
      if (verdict.action === 'icmp') this.icmpError(inIfc, ip, verdict.type, verdict.code, verdict.nextHopMtu);
      else this.icmpError(inIfc, ip, IcmpType.DestUnreachable, UnreachableCode.Net);
      return;
    }
    const out = hop.ifc;
    const now = performance.now();
    const cache = this.cache(out);
    const mac = cache.lookup(hop.via, now);
    if (mac) return this.transmitForwarded(out, mac, ip, verdict.fragment);
    // The receive buffer is not ours to hold while ARP is asked: keep a copy.
    const held = Ipv4Packet.tryParseQuoted(Buffer.from(ip.bytes))!;
    cache.resolve(
      hop.via,
      now,
      (m) => this.transmitForwarded(out, m, held, verdict.fragment),
      () => {
        this.stats.unresolved++;
        this.stats.forwardDropped++;
        this.icmpError(inIfc, held, IcmpType.DestUnreachable, UnreachableCode.Host);
      },
    );
  }

  /**
   * The datagram goes on with its TTL one less (RFC 1812 5.3.1). Leaving the
   * platform (the device wants checksums) a datagram made inside it (header
   * checksum zero) gets its header, TCP and UDP checksums computed; it keeps
   * its bytes otherwise. Too big without DF: fragments to the egress MTU
   * (RFC 791 3.2, keeping the original's offset and MF; options are not copied).
   */
  private transmitForwarded(out: IpInterface, mac: Buffer, ip: Ipv4Packet, fragment: boolean): void {
    const device = out.device;
    const checksums = device.needsChecksums(mac);
    if (checksums && ip.checksum === 0 && !ip.isFragment && !fillTransportChecksum(ip)) return void this.stats.malformed++;
    const headroom = device.headroom;
    this.stats.forwarded++;
    if (!fragment) {
      ip.decrementTtl();
      if (checksums && ip.checksum === 0) ip.fillChecksum();
      const bytes = ip.bytes;
      const buf = Buffer.allocUnsafe(headroom + ETHERNET_HEADER + bytes.length);
      emitEthernet(buf, headroom, { dst: mac, src: device.mac, etherType: EtherType.Ipv4 });
      bytes.copy(buf, headroom + ETHERNET_HEADER);
      if (!device.transmit(buf, FrameKind.Unicast)) this.stats.forwardDropped++;
      return;
    }
    const payload = ip.payload;
    const plan = fragmentPlan(payload.length, out.mtu);
    for (const frag of plan) {
      const buf = Buffer.allocUnsafe(headroom + ETHERNET_HEADER + IPV4_HEADER + frag.length);
      let o = headroom + emitEthernet(buf, headroom, { dst: mac, src: device.mac, etherType: EtherType.Ipv4 });
      o += emitIpv4Header(buf, o, {
        src: ip.src,
        dst: ip.dst,
        protocol: ip.protocol,
        payloadLength: frag.length,
        id: ip.id,
        ttl: ip.ttl - 1,
        tos: ip.tos,
        moreFragments: frag.more || ip.moreFragments,
        fragmentOffset: ip.fragmentOffset + frag.offset,
        checksum: checksums || ip.checksum !== 0,
      });
      payload.copy(buf, o, frag.offset, frag.offset + frag.length);
      this.stats.fragmentsForwarded++;
      if (!device.transmit(buf, FrameKind.Unicast)) this.stats.forwardDropped++;
    }
  }

  /**
   * Sends an ICMP error about `ip` (which arrived on `inIfc`) back to its
   * source, unless RFC 1122 3.2.2 forbids answering it or the rate limit
   * (RFC 1812 4.3.2.8) is spent. Its source is the address of the interface
   * the offending datagram arrived on, which the sender can reach.
   */
  icmpError(inIfc: IpInterface, ip: Ipv4Packet, type: number, code: number, nextHopMtu?: number): void {
    const payload = ip.payload;
    const offending = { src: ip.src, dst: ip.dst, protocol: ip.protocol, fragmentOffset: ip.fragmentOffset, firstPayloadByte: payload.length > 0 ? payload[0] : undefined, linkBroadcast: false };
    if (!mayAnswerWithError(offending, (a) => this.isBroadcastAnywhere(a))) return;
    if (!this.icmpLimit.take(performance.now())) return void this.stats.icmpRateLimited++;
    const quoted = ip.buffer.subarray(0, quoteLength(ip.totalLength, ip.headerLength));
    const msg = Buffer.allocUnsafe(8 + quoted.length);
    emitIcmpError(msg, 0, { type, code, original: quoted, nextHopMtu });
    this.stats.icmpErrorsSent++;
    this.sendFrom(inIfc, ip.src, msg);
  }

  /** An ICMP error leaves with the source address of `from` (RFC 1812 4.3.2.4), routed like anything else. */
  private sendFrom(from: IpInterface, dst: number, icmp: Buffer): void {
    const hop = this.nextHop(dst);
    if (!hop) return void this.stats.noRoute++;
    const out = hop.ifc;
    const emit = (mac: Buffer) => {
      const device = out.device;
      const buf = Buffer.allocUnsafe(device.headroom + ETHERNET_HEADER + IPV4_HEADER + icmp.length);
      let o = device.headroom + emitEthernet(buf, device.headroom, { dst: mac, src: device.mac, etherType: EtherType.Ipv4 });
      o += emitIpv4Header(buf, o, { src: from.ip, dst, protocol: IpProto.Icmp, payloadLength: icmp.length, id: (this.nextId = (this.nextId + 1) & 0xffff), checksum: device.needsChecksums(mac) });
      icmp.copy(buf, o);
      this.stats.tx++;
      device.transmit(buf, FrameKind.Unicast);
    };
    const now = performance.now();
    const cache = this.cache(out);
    const mac = cache.lookup(hop.via, now);
    if (mac) emit(mac);
    else cache.resolve(hop.via, now, emit, () => this.stats.unresolved++);
  }

  // ---- route administration (`lparlab route`) -------------------------

  /** The table as `route show` reports it: each route's egress LAN and MTU resolved now. */
  routeEntries(): Array<{ prefix: string; via?: string; dev: string; source: string; mtu: number }> {
    return this.routes.list().map((r) => {
      let ifc = r.dev !== undefined ? this.byLan(r.dev) : undefined;
      if (!ifc && r.via !== undefined) {
        const on = this.routes.connectedFor(r.via);
        if (on?.dev !== undefined) ifc = this.byLan(on.dev);
      }
      return { prefix: `${ipToString(r.net)}/${r.prefix}`, ...(r.via !== undefined ? { via: ipToString(r.via) } : {}), dev: ifc?.device.lan ?? r.dev ?? '', source: r.source, mtu: ifc?.mtu ?? 0 };
    });
  }

  // ---- multicast -------------------------------------------------------

  /** Joins a multicast group on an interface; the first join is announced to the virtual LAN servers. */
  joinGroup(ifc: IpInterface, group: number): void {
    const mac = macToString(ipv4MulticastMac(group));
    const key = `${ifc.device.name}/${mac}/${group}`;
    const n = (this.groups.get(key) ?? 0) + 1;
    this.groups.set(key, n);
    if (n === 1) this.onMembership(ifc, mac, true);
  }

  leaveGroup(ifc: IpInterface, group: number): void {
    const mac = macToString(ipv4MulticastMac(group));
    const key = `${ifc.device.name}/${mac}/${group}`;
    const n = (this.groups.get(key) ?? 0) - 1;
    if (n > 0) this.groups.set(key, n);
    else if (this.groups.delete(key)) this.onMembership(ifc, mac, false);
  }

  /** Multicast groups joined on `ifc`, as MAC strings (to join again with a restarted control node). */
  groupMacs(ifc: IpInterface): string[] {
    const prefix = `${ifc.device.name}/`;
    return [...new Set([...this.groups.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.split('/')[1]))];
  }

  // ---- ping ------------------------------------------------------------

  /** ICMP echo, as ping(8) (net/ip/ping.ts). */
  ping(dst: number, opts: PingOptions): Promise<PingResult> {
    return this.pinger.ping(dst, opts);
  }

  arpTable(): Array<{ vlan: string; ip: string; mac: string; expiresInMs: number; stale: boolean }> {
    const now = performance.now();
    const out = [];
    for (const ifc of this.ifcs) {
      for (const e of this.cache(ifc).list(now)) out.push({ vlan: ifc.device.lan, ip: ipToString(e.ip), mac: macToString(e.mac), expiresInMs: e.expiresInMs, stale: e.stale });
    }
    return out;
  }

  flushArp(): void {
    for (const c of this.arp.values()) c.flush();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Fills the TCP or UDP checksum of a whole datagram in place (a datagram made
 * inside the platform leaving it). False when the transport header is
 * malformed: the datagram is then not forwarded.
 */
function fillTransportChecksum(ip: Ipv4Packet): boolean {
  const seg = ip.payload;
  try {
    if (ip.protocol === IpProto.Tcp) fillTcpChecksum(seg, ip.src, ip.dst);
    else if (ip.protocol === IpProto.Udp && UdpDatagram.tryParse(seg)?.checksum === 0) fillUdpChecksum(seg, ip.src, ip.dst);
    return true;
  } catch (err) {
    // The fill functions refuse a segment whose header does not describe it (RangeError): untrusted bytes.
    if (err instanceof RangeError) return false;
    throw err;
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
