import { describe, expect, it } from 'vitest';
import { IcmpPacket, IcmpType } from '../../shared/wire/icmpv4.ts';
import { EthernetFrame, EtherType, ETHERNET_HEADER, emitEthernet } from '../../shared/wire/ethernet.ts';
import { IPV4_HEADER, IpProto, Ipv4Packet, emitIpv4Header } from '../../shared/wire/ipv4.ts';
import { parseIp } from '../../shared/wire/ipv4-address.ts';
import { emitIcmpEcho, emitIcmpError } from '../../shared/wire/icmpv4.ts';
import { ARP_LENGTH, ArpOp, emitArp } from '../../shared/wire/arp.ts';
import { FrameKind, type NetDevice } from '../../services/lpar/net/devices/net-device.ts';
import { PacketTaps } from '../../services/lpar/net/devices/packet-tap.ts';
import { IcmpRateLimit, forwardVerdict, mayAnswerWithError, quoteLength } from '../../services/lpar/net/ip/forwarding.ts';
import { ipInterface } from '../../services/lpar/net/ip/ip-interface.ts';
import { IpLayer } from '../../services/lpar/net/ip/ip-layer.ts';
import { PathMtuCache, plateauBelow } from '../../services/lpar/net/ip/path-mtu.ts';
import { addRoute, deleteRoute, routeVerb } from '../../services/lpar/net/ip/route-admin.ts';
import { RouteError, RoutingTable, makeRoute } from '../../services/lpar/net/ip/routes.ts';
import { waitFor } from '../helpers/wait.ts';

const ip = parseIp;
const route = (cidr: string, extra: { via?: string; dev?: string; source?: 'connected' | 'platform' | 'static' } = {}) => {
  const [net, len] = cidr.split('/');
  return makeRoute({ net: ip(net), prefix: Number(len), via: extra.via ? ip(extra.via) : undefined, dev: extra.dev ?? (extra.via ? undefined : 'lan'), source: extra.source ?? 'static' });
};

describe('routing table', () => {
  it('picks the longest prefix match, the default route last', () => {
    const t = new RoutingTable();
    t.add(route('0.0.0.0/0', { via: '10.0.0.1' }));
    t.add(route('10.2.0.0/16', { via: '10.0.0.2' }));
    t.add(route('10.2.3.0/24', { via: '10.0.0.3' }));
    t.add(route('10.2.3.128/25', { via: '10.0.0.4' }));
    expect(t.lookup(ip('10.2.3.200'))?.via).toBe(ip('10.0.0.4'));
    expect(t.lookup(ip('10.2.3.5'))?.via).toBe(ip('10.0.0.3'));
    expect(t.lookup(ip('10.2.99.5'))?.via).toBe(ip('10.0.0.2'));
    expect(t.lookup(ip('192.168.1.1'))?.via).toBe(ip('10.0.0.1'));
    expect(t.list().map((r) => r.prefix)).toEqual([25, 24, 16, 0]);
  });

  it('has no route without a default, and matches /32 and the top of the address space', () => {
    const t = new RoutingTable();
    t.add(route('10.1.0.0/24', { dev: 'blue', source: 'connected' }));
    t.add(route('10.9.9.9/32', { via: '10.1.0.7' }));
    t.add(route('224.0.0.0/3', { via: '10.1.0.8' }));
    expect(t.lookup(ip('10.2.0.1'))).toBeUndefined();
    expect(t.lookup(ip('10.9.9.9'))?.prefix).toBe(32);
    expect(t.lookup(ip('10.9.9.8'))).toBeUndefined();
    expect(t.lookup(ip('255.1.2.3'))?.prefix).toBe(3);
    expect(t.connectedFor(ip('10.1.0.7'))?.dev).toBe('blue');
    expect(t.connectedFor(ip('10.9.9.9'))).toBeUndefined();
  });

  it('deletes by prefix, or one next hop of it; connected routes only with their interface', () => {
    const t = new RoutingTable();
    t.add(route('10.1.0.0/24', { dev: 'blue', source: 'connected' }));
    t.add(route('0.0.0.0/0', { via: '10.1.0.1' }));
    t.add(route('0.0.0.0/0', { via: '10.1.0.2' }));
    expect(t.list()).toHaveLength(3);
    expect(t.remove(0, 0, { via: ip('10.1.0.2') })).toBe(1);
    expect(t.lookup(ip('8.8.8.8'))?.via).toBe(ip('10.1.0.1'));
    expect(t.remove(0, 0)).toBe(1);
    expect(t.lookup(ip('8.8.8.8'))).toBeUndefined();
    expect(t.remove(ip('10.1.0.0'), 24)).toBe(0);
    expect(t.remove(ip('10.1.0.0'), 24, { includeConnected: true })).toBe(1);
    expect(t.list()).toEqual([]);
  });

  it('replaces a route to the same prefix via the same hop, and keeps the earlier of equal prefixes first', () => {
    const t = new RoutingTable();
    t.add(route('10.1.0.0/24', { dev: 'blue', source: 'connected' }));
    t.add(route('10.1.0.0/24', { via: '10.2.0.9' }));
    t.add(route('10.1.0.0/24', { via: '10.2.0.9', source: 'platform' }));
    expect(t.list().map((r) => r.source)).toEqual(['connected', 'platform']);
    expect(t.lookup(ip('10.1.0.5'))?.source).toBe('connected');
  });

  it('refuses host bits and a route with neither next hop nor device', () => {
    expect(() => makeRoute({ net: ip('10.1.0.1'), prefix: 24, via: ip('10.0.0.1'), source: 'static' })).toThrow(RouteError);
    expect(() => makeRoute({ net: ip('10.1.0.0'), prefix: 24, source: 'static' })).toThrow(/needs a next hop/);
  });
});

describe('path MTU cache (RFC 1191)', () => {
  it('only lowers, never below 68, and forgets after the aging time', () => {
    const c = new PathMtuCache(1000);
    const dst = ip('10.3.0.1');
    expect(c.get(dst, 0)).toBeUndefined();
    expect(c.report(dst, 1500, 16896, 0)).toBe(1500);
    expect(c.get(dst, 10)).toBe(1500);
    expect(c.report(dst, 9000, 16896, 10)).toBeUndefined();
    expect(c.report(dst, 1500, 16896, 10)).toBeUndefined();
    expect(c.report(dst, 20, 16896, 10)).toBe(68);
    expect(c.get(dst, 500)).toBe(68);
    expect(c.get(dst, 1010)).toBeUndefined();
    expect(c.stats).toMatchObject({ lowered: 2, ignored: 2, expired: 1 });
  });

  it('ignores a report above the interface MTU, and steps plateaus when a router names no MTU', () => {
    const c = new PathMtuCache();
    expect(c.report(ip('10.3.0.2'), 9000, 1500, 0)).toBeUndefined();
    expect(plateauBelow(16916)).toBe(8166);
    expect(plateauBelow(1500)).toBe(1492);
    expect(plateauBelow(68)).toBe(68);
  });

  it('stays bounded under a flood of reports', () => {
    const c = new PathMtuCache();
    for (let i = 0; i < 10_000; i++) c.report(i + 1, 1000, 1500, 0);
    expect(c.list(0).length).toBeLessThanOrEqual(4096);
  });
});

describe('forwarding verdicts (RFC 1812)', () => {
  const h = (o: Partial<{ src: string; dst: string; ttl: number; dontFragment: boolean; totalLength: number }> = {}) => ({
    src: ip(o.src ?? '10.1.0.1'),
    dst: ip(o.dst ?? '10.2.0.4'),
    ttl: o.ttl ?? 64,
    dontFragment: o.dontFragment ?? false,
    totalLength: o.totalLength ?? 84,
  });

  it('forwards what fits, fragments what does not unless DF, which gets frag-needed with the next-hop MTU', () => {
    expect(forwardVerdict(h(), 1500)).toEqual({ action: 'forward', fragment: false });
    expect(forwardVerdict(h({ totalLength: 1500 }), 1500)).toEqual({ action: 'forward', fragment: false });
    expect(forwardVerdict(h({ totalLength: 1501 }), 1500)).toEqual({ action: 'forward', fragment: true });
    expect(forwardVerdict(h({ totalLength: 1501, dontFragment: true }), 1500)).toMatchObject({ action: 'icmp', type: 3, code: 4, nextHopMtu: 1500 });
  });

  it('answers TTL 1 (and 0) with time exceeded, no route with net unreachable', () => {
    expect(forwardVerdict(h({ ttl: 1 }), 1500)).toMatchObject({ action: 'icmp', type: 11, code: 0 });
    expect(forwardVerdict(h({ ttl: 0 }), 1500)).toMatchObject({ action: 'icmp', type: 11 });
    expect(forwardVerdict(h({ ttl: 2 }), 1500)).toEqual({ action: 'forward', fragment: false });
    expect(forwardVerdict(h(), undefined)).toMatchObject({ action: 'icmp', type: 3, code: 0 });
    // TTL is judged before the route: a dying datagram with no route still says "time exceeded".
    expect(forwardVerdict(h({ ttl: 1 }), undefined)).toMatchObject({ type: 11 });
  });

  it('drops martian sources and broadcast or multicast destinations silently', () => {
    for (const src of ['0.0.0.0', '255.255.255.255', '224.0.0.1', '127.0.0.1']) expect(forwardVerdict(h({ src }), 1500).action).toBe('drop');
    for (const dst of ['255.255.255.255', '239.1.1.1', '0.0.0.0']) expect(forwardVerdict(h({ dst }), 1500).action).toBe('drop');
  });

  it('never answers an ICMP error, a non-initial fragment, or a broadcast, with an error (RFC 1122 3.2.2)', () => {
    const d = { src: ip('10.1.0.1'), dst: ip('10.2.0.4'), protocol: IpProto.Udp, fragmentOffset: 0, firstPayloadByte: 0, linkBroadcast: false };
    const none = () => false;
    expect(mayAnswerWithError(d, none)).toBe(true);
    expect(mayAnswerWithError({ ...d, protocol: IpProto.Icmp, firstPayloadByte: IcmpType.EchoRequest }, none)).toBe(true);
    expect(mayAnswerWithError({ ...d, protocol: IpProto.Icmp, firstPayloadByte: IcmpType.TimeExceeded }, none)).toBe(false);
    expect(mayAnswerWithError({ ...d, protocol: IpProto.Icmp, firstPayloadByte: IcmpType.DestUnreachable }, none)).toBe(false);
    expect(mayAnswerWithError({ ...d, fragmentOffset: 1480 }, none)).toBe(false);
    expect(mayAnswerWithError({ ...d, linkBroadcast: true }, none)).toBe(false);
    expect(mayAnswerWithError({ ...d, dst: ip('10.2.0.255') }, (a) => a === ip('10.2.0.255'))).toBe(false);
    expect(mayAnswerWithError({ ...d, src: ip('224.0.0.5') }, none)).toBe(false);
  });

  it('quotes as much as fits in 576 bytes, at least the header and 8 bytes', () => {
    expect(quoteLength(84, 20)).toBe(84);
    expect(quoteLength(16896, 20)).toBe(548);
    expect(quoteLength(24, 24)).toBe(24);
  });

  it('rate-limits errors with a token bucket', () => {
    const l = new IcmpRateLimit(10, 3);
    expect([l.take(0), l.take(0), l.take(0), l.take(0)]).toEqual([true, true, true, false]);
    expect(l.take(50)).toBe(false);
    expect(l.take(150)).toBe(true);
  });
});

/** A device that records what it is handed and lets the test deliver frames; every neighbour wants checksums or none. */
class LoopDevice implements NetDevice {
  readonly headroom = 4;
  readonly taps = new PacketTaps();
  readonly sent: Array<{ frame: Buffer; kind: FrameKind }> = [];
  receiver: (eth: EthernetFrame) => void = () => {};
  neighboursLost: () => void = () => {};
  constructor(
    readonly name: string,
    readonly lan: string,
    readonly mac: Buffer,
    readonly mtu: number,
    private readonly checksums = false,
  ) {}
  needsChecksums(): boolean {
    return this.checksums;
  }
  transmit(frame: Buffer, kind: FrameKind): boolean {
    this.sent.push({ frame, kind });
    this.taps.offer(frame.subarray(this.headroom));
    return true;
  }
  /** The IPv4 datagrams sent, as views. */
  datagrams(): Ipv4Packet[] {
    return this.sent.filter((s) => s.kind !== FrameKind.ArpRequest && s.kind !== FrameKind.ArpReply).map((s) => Ipv4Packet.parse(EthernetFrame.parse(s.frame.subarray(this.headroom)).payload));
  }
}

const MAC_A = Buffer.from('020000000001', 'hex');
const MAC_B = Buffer.from('020000000002', 'hex');
const PEER_A = Buffer.from('020000000011', 'hex');
const PEER_B = Buffer.from('020000000022', 'hex');

/** A router with `a` (10.1.0.254/24, MTU 16896) and `b` (10.2.0.254/24, MTU `mtuB`), its neighbours already in ARP. */
function router(mtuB = 1500, checksumsB = false) {
  const layer = new IpLayer(60_000);
  const a = new LoopDevice('a0', 'a', MAC_A, 16896);
  const b = new LoopDevice('b0', 'b', MAC_B, mtuB, checksumsB);
  const ia = ipInterface(a, ip('10.1.0.254'), 24);
  const ib = ipInterface(b, ip('10.2.0.254'), 24);
  layer.addInterface(ia);
  layer.addInterface(ib);
  layer.forwarding = true;
  // Neighbours announce themselves (ARP requests for the router's addresses): the caches learn them.
  const arp = (dev: LoopDevice, sha: Buffer, spa: string, tpa: string) => {
    const f = Buffer.alloc(ETHERNET_HEADER + ARP_LENGTH);
    emitEthernet(f, 0, { dst: Buffer.alloc(6, 0xff), src: sha, etherType: EtherType.Arp });
    emitArp(f, ETHERNET_HEADER, { op: ArpOp.Request, sha, spa: ip(spa), tha: Buffer.alloc(6), tpa: ip(tpa) });
    dev.receiver(EthernetFrame.parse(f));
  };
  arp(a, PEER_A, '10.1.0.1', '10.1.0.254');
  arp(b, PEER_B, '10.2.0.4', '10.2.0.254');
  a.sent.length = 0;
  b.sent.length = 0;
  return { layer, a, b, ia, ib };
}

/** An echo request from `src` to `dst` arriving at `dev` from MAC `from`. */
function deliverEcho(dev: LoopDevice, from: Buffer, src: string, dst: string, o: { ttl?: number; size?: number; df?: boolean } = {}): void {
  const icmp = Buffer.alloc(8 + (o.size ?? 56));
  emitIcmpEcho(icmp, 0, { type: IcmpType.EchoRequest, id: 9, seq: 1, data: Buffer.alloc(o.size ?? 56, 7) });
  const f = Buffer.alloc(ETHERNET_HEADER + IPV4_HEADER + icmp.length);
  let off = emitEthernet(f, 0, { dst: dev.mac, src: from, etherType: EtherType.Ipv4 });
  off += emitIpv4Header(f, off, { src: ip(src), dst: ip(dst), protocol: IpProto.Icmp, payloadLength: icmp.length, id: 77, ttl: o.ttl ?? 64, dontFragment: o.df, checksum: false });
  icmp.copy(f, off);
  dev.receiver(EthernetFrame.parse(f));
}

describe('IP layer forwarding over NetDevices', () => {
  it('forwards with the TTL one less, to the neighbour the route names, framed behind the device headroom', () => {
    const { layer, a, b } = router();
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.4', { ttl: 9 });
    const [out] = b.datagrams();
    expect(out.ttl).toBe(8);
    expect(out.src).toBe(ip('10.1.0.1'));
    expect(EthernetFrame.parse(b.sent[0].frame.subarray(4)).dst.equals(PEER_B)).toBe(true);
    expect(b.sent[0].kind).toBe(FrameKind.Unicast);
    expect(out.checksum).toBe(0);
    expect(layer.stats.forwarded).toBe(1);
    layer.close();
  });

  it('fills the checksums of a platform datagram leaving through a device that needs them, and updates a real one', () => {
    const { layer, a, b } = router(1500, true);
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.4');
    const [out] = b.datagrams();
    expect(out.checksum).not.toBe(0);
    // Ipv4Packet.parse verified the header checksum; the TTL decrement kept it right.
    expect(() => Ipv4Packet.parse(out.bytes)).not.toThrow();
    layer.close();
  });

  it('answers TTL 1 with time exceeded from the ingress address, quoting the datagram as received', () => {
    const { layer, a, b } = router();
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.4', { ttl: 1 });
    expect(b.sent).toEqual([]);
    const [err] = a.datagrams();
    expect(err.src).toBe(ip('10.1.0.254'));
    expect(err.dst).toBe(ip('10.1.0.1'));
    const icmp = IcmpPacket.parse(err.payload);
    expect([icmp.type, icmp.code]).toEqual([11, 0]);
    const quoted = Ipv4Packet.tryParseQuoted(icmp.data)!;
    expect(quoted.ttl).toBe(1);
    expect(quoted.dst).toBe(ip('10.2.0.4'));
    layer.close();
  });

  it('sends frag-needed with the next-hop MTU for an oversize DF datagram, and fragments one without DF', () => {
    const { layer, a, b } = router(1500);
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.4', { size: 3000, df: true });
    expect(b.sent).toEqual([]);
    const icmp = IcmpPacket.parse(a.datagrams()[0].payload);
    expect([icmp.type, icmp.code, icmp.nextHopMtu]).toEqual([3, 4, 1500]);
    a.sent.length = 0;
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.4', { size: 3000 });
    const frags = b.datagrams();
    expect(frags.length).toBe(3);
    expect(frags.every((f) => f.totalLength <= 1500 && f.id === 77 && f.ttl === 63)).toBe(true);
    expect(frags.map((f) => [f.fragmentOffset, f.moreFragments])).toEqual([
      [0, true],
      [1480, true],
      [2960, false],
    ]);
    expect(frags.reduce((n, f) => n + f.payload.length, 0)).toBe(3008);
    layer.close();
  });

  it('answers a datagram with no route with net unreachable, and does not forward when forwarding is off', () => {
    const { layer, a, b } = router();
    deliverEcho(a, PEER_A, '10.1.0.1', '10.9.0.4');
    expect(IcmpPacket.parse(a.datagrams()[0].payload).type).toBe(3);
    a.sent.length = 0;
    // A directed broadcast of the other subnet is not forwarded (RFC 1812 5.3.5.2), and not answered.
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.255');
    expect(b.sent).toEqual([]);
    expect(a.sent).toEqual([]);
    layer.forwarding = false;
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.4');
    expect(b.sent).toEqual([]);
    expect(a.sent).toEqual([]);
    expect(layer.stats.notForUs).toBe(1);
    layer.close();
  });

  it('answers with host unreachable when the next hop does not answer ARP', async () => {
    const { layer, a, b } = router();
    deliverEcho(a, PEER_A, '10.1.0.1', '10.2.0.99');
    // The router asks (ARP on b), waits out its tries (arp-cache.ts: 2 s of them), then tells the sender.
    expect(b.sent.map((s) => s.kind)).toEqual([FrameKind.ArpRequest]);
    await waitFor('the ICMP error at the sender', () => a.datagrams().length > 0, 5000);
    const [err] = a.datagrams();
    const icmp = IcmpPacket.parse(err.payload);
    expect([icmp.type, icmp.code]).toEqual([3, 1]);
    expect(Ipv4Packet.tryParseQuoted(icmp.data)?.dst).toBe(ip('10.2.0.99'));
    layer.close();
  });

  it('lowers the path MTU on frag-needed about its own datagram and tells TCP; MSS follows interface and path', () => {
    const layer = new IpLayer(60_000);
    const a = new LoopDevice('a0', 'a', MAC_A, 9000);
    layer.addInterface(ipInterface(a, ip('10.1.0.1'), 24));
    addRoute(layer, { prefix: 'default', via: '10.1.0.254' }, 'platform');
    expect(layer.mssFor(ip('10.7.0.1'))).toBe(8960);
    const told: Array<[number, number]> = [];
    layer.onPathMtu = (dst, mtu) => told.push([dst, mtu]);
    // The router's error quotes our datagram to 10.7.0.1 (header + 8 bytes).
    const quoted = Buffer.alloc(28);
    emitIpv4Header(quoted, 0, { src: ip('10.1.0.1'), dst: ip('10.7.0.1'), protocol: IpProto.Tcp, payloadLength: 8980, id: 1, dontFragment: true, checksum: false });
    const err = Buffer.alloc(8 + 28);
    emitIcmpError(err, 0, { type: IcmpType.DestUnreachable, code: 4, original: quoted, nextHopMtu: 1400 });
    const f = Buffer.alloc(ETHERNET_HEADER + IPV4_HEADER + err.length);
    let off = emitEthernet(f, 0, { dst: MAC_A, src: PEER_A, etherType: EtherType.Ipv4 });
    off += emitIpv4Header(f, off, { src: ip('10.1.0.254'), dst: ip('10.1.0.1'), protocol: IpProto.Icmp, payloadLength: err.length, id: 2, checksum: false });
    err.copy(f, off);
    a.receiver(EthernetFrame.parse(f));
    expect(told).toEqual([[ip('10.7.0.1'), 1400]]);
    expect(layer.mssFor(ip('10.7.0.1'))).toBe(1360);
    expect(layer.mssFor(ip('10.7.0.2'))).toBe(8960);
    // The same message again changes nothing; one about a datagram that was not ours is ignored.
    a.receiver(EthernetFrame.parse(f));
    expect(told).toHaveLength(1);
    layer.close();
  });

  it('refuses a DF datagram over its own interface MTU with EMSGSIZE, and lowers the path MTU after the send returns', async () => {
    const layer = new IpLayer(60_000);
    layer.addInterface(ipInterface(new LoopDevice('a0', 'a', MAC_A, 1500), ip('10.1.0.1'), 24));
    const told: number[] = [];
    layer.onPathMtu = (_dst, mtu) => told.push(mtu);
    let err: Error | undefined;
    layer.send(ip('10.1.0.9'), IpProto.Udp, [Buffer.alloc(2000)], { df: true }, (e) => (err = e));
    expect(err?.message).toMatch(/EMSGSIZE|exceeds the MTU 1500/);
    expect(told).toEqual([]);
    await Promise.resolve();
    expect(told).toEqual([1500]);
    layer.close();
  });

  it('the route verb shows, adds and deletes, and refuses a next hop on no subnet naming the field', () => {
    const layer = new IpLayer(60_000);
    layer.addInterface(ipInterface(new LoopDevice('a0', 'blue', MAC_A, 16896), ip('10.1.0.1'), 24));
    expect(routeVerb(layer, { op: 'show' })).toEqual({ routes: [{ prefix: '10.1.0.0/24', dev: 'blue', source: 'connected', mtu: 16896 }] });
    expect(routeVerb(layer, { op: 'add', prefix: '10.2.0.0/24', via: '10.1.0.3' })).toEqual({ ok: true });
    expect(routeVerb(layer, { op: 'show' })).toEqual({
      routes: [
        { prefix: '10.1.0.0/24', dev: 'blue', source: 'connected', mtu: 16896 },
        { prefix: '10.2.0.0/24', via: '10.1.0.3', dev: 'blue', source: 'static', mtu: 16896 },
      ],
    });
    expect(layer.route(ip('10.2.0.9'))?.device.lan).toBe('blue');
    expect(() => routeVerb(layer, { op: 'add', prefix: '10.3.0.0/24', via: '10.9.0.1' })).toThrow(/via: 10\.9\.0\.1 is not on any subnet/);
    expect(() => routeVerb(layer, { op: 'add', prefix: '10.3.0.0/33', via: '10.1.0.3' })).toThrow(/prefix:/);
    expect(() => routeVerb(layer, { op: 'add', prefix: '10.3.0.0/24', via: '10.1.0.1' })).toThrow(/own address/);
    expect(deleteRoute(layer, { prefix: '10.2.0.0/24' })).toBe(1);
    expect(() => deleteRoute(layer, { prefix: '10.2.0.0/24' })).toThrow(/no route/);
    expect(layer.route(ip('10.2.0.9'))).toBeUndefined();
    layer.close();
  });
});
