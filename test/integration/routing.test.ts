import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETHERNET_HEADER, EtherType, emitEthernet } from '../../shared/wire/ethernet.ts';
import { IcmpType, emitIcmpEcho } from '../../shared/wire/icmpv4.ts';
import { IPV4_HEADER, IpProto, emitIpv4Header } from '../../shared/wire/ipv4.ts';
import { parseIp } from '../../shared/wire/ipv4-address.ts';
import { emitInternalMac } from '../../shared/wire/mac.ts';
import { TLV_HEADER, TlvType, emitTlv } from '../../shared/wire/tlv.ts';
import { TestPlatform, waitFor } from '../helpers/platform.ts';
import { missingForTap } from '../helpers/tap-needs.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Rec = Record<string, any>;

/**
 * IPv4 routing between virtual LANs (issue 9, item 6): lpar1 on `left`, lpar4
 * on `right`, and between them two router partitions (`forwarding: true`)
 * joined by `mid`, whose MTU is 1500 while the others keep 16896: the small
 * hop between two big ones that path-MTU discovery is about. SMC is off so
 * TCP's bytes really cross the routers.
 */
const PLATFORM = `
name: routing
rclan: { heartbeatMs: 50, deadAfterMs: 250, undeliverableAfterMs: 1000, window: 256 }
planes: [a, b]
controlNodes: [{ name: cn1, serial: 21 }, { name: cn2, serial: 22 }]
cecs: [{ name: cec1 }, { name: cec2 }]
lpars:
  - name: lpar1
    cec: cec1
    smc: false
    routes: [{ prefix: default, via: 10.91.0.254 }]
  - name: r1
    cec: cec1
    smc: false
    forwarding: true
    routes: [{ prefix: 10.93.0.0/24, via: 10.92.0.2 }]
  - name: r2
    cec: cec2
    smc: false
    forwarding: true
    routes: [{ prefix: 10.91.0.0/24, via: 10.92.0.1, dev: mid }]
  - name: lpar4
    cec: cec2
    smc: false
    routes: [{ prefix: default, via: 10.93.0.254 }]
    apps: [{ name: echo, port: 7 }, { name: http, port: 80 }]
vlans:
  - name: left
    subnets: [10.91.0.0/24]
    members: [{ lpar: lpar1, ip: 10.91.0.1 }, { lpar: r1, ip: 10.91.0.254 }]
  - name: mid
    subnets: [10.92.0.0/24]
    mtu: 1500
    members: [{ lpar: r1, ip: 10.92.0.1 }, { lpar: r2, ip: 10.92.0.2 }]
  - name: right
    subnets: [10.93.0.0/24]
    members: [{ lpar: r2, ip: 10.93.0.254 }, { lpar: lpar4, ip: 10.93.0.4 }]
`;

describe('IPv4 routing across forwarding partitions', () => {
  let p: TestPlatform;
  const ping = async (from: string, dst: string, extra: Rec = {}) => (await p.admin(from, { t: 'ping', dst, count: 1, timeoutMs: 1500, ...extra }, 60_000)) as Rec;
  const stats = async (lpar: string) => (await p.admin(lpar, { t: 'net-stats' })) as Rec;
  const routes = async (lpar: string) => ((await p.admin(lpar, { t: 'route', op: 'show' })) as Rec).routes as Rec[];

  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
    // The apps start once lpar4's network is up; the echo port answers when it is.
    await waitFor('lpar4 apps', async () => ((await p.admin('lpar4', { t: 'apps' })) as Rec).apps.length === 2, 20_000);
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('shows connected and platform routes with their LAN and MTU', async () => {
    const r1 = await routes('r1');
    expect(r1).toContainEqual({ prefix: '10.91.0.0/24', dev: 'left', source: 'connected', mtu: 16896 });
    expect(r1).toContainEqual({ prefix: '10.92.0.0/24', dev: 'mid', source: 'connected', mtu: 1500 });
    expect(r1).toContainEqual({ prefix: '10.93.0.0/24', via: '10.92.0.2', dev: 'mid', source: 'platform', mtu: 1500 });
    expect(await routes('lpar1')).toContainEqual({ prefix: '0.0.0.0/0', via: '10.91.0.254', dev: 'left', source: 'platform', mtu: 16896 });
    // Longest prefix first: the default route comes last.
    expect((await routes('lpar1')).at(-1)?.prefix).toBe('0.0.0.0/0');
  });

  it('pings and speaks TCP across two routers', async () => {
    const there = await ping('lpar1', '10.93.0.4', { count: 3, intervalMs: 50 });
    expect(there.received).toBe(3);
    expect((await ping('lpar4', '10.91.0.1')).received).toBe(1);
    // A router answers for its address on the far LAN too.
    expect((await ping('lpar1', '10.92.0.2')).received).toBe(1);
    const http = (await p.admin('lpar1', { t: 'http-get', host: '10.93.0.4', port: 80, path: '/hello', count: 3 }, 60_000)) as Rec;
    expect(http.ok).toBe(3);
    const rr = (await p.admin('lpar1', { t: 'tcp-rr', dst: '10.93.0.4', port: 7, count: 200, size: 64 }, 60_000)) as Rec;
    expect(rr.count).toBe(200);
    expect((await stats('r1')).ip.forwarded).toBeGreaterThan(0);
    expect((await stats('r2')).ip.forwarded).toBeGreaterThan(0);
  });

  it('answers TTL 1 with time exceeded from the router that would have forwarded it', async () => {
    const one = await ping('lpar1', '10.93.0.4', { ttl: 1 });
    expect(one.received).toBe(0);
    expect(one.icmpErrors).toEqual([expect.objectContaining({ from: '10.91.0.254', seq: 1, type: 11, code: 0 })]);
    expect(one.errors.join()).toMatch(/From 10\.91\.0\.254 icmp_seq=1 Time to live exceeded/);
    const two = await ping('lpar1', '10.93.0.4', { ttl: 2 });
    expect(two.icmpErrors).toEqual([expect.objectContaining({ from: '10.92.0.2', type: 11 })]);
    expect((await ping('lpar1', '10.93.0.4', { ttl: 3 })).received).toBe(1);
  });

  it('an oversize DF segment gets fragmentation-needed with the next hop MTU, and the sender TCP lowers its MSS', async () => {
    const held = (await p.admin('lpar1', { t: 'tcp-hold', dst: '10.93.0.4', port: 7 })) as Rec;
    expect(held.connected).toBe(true);
    const conn = async () => ((await p.admin('lpar1', { t: 'ss' })) as Rec).connections.find((c: Rec) => c.local === held.local) as Rec;
    // Both ends are on 16896-byte LANs: each offers an MSS of 16856.
    expect((await conn()).mss).toBe(16856);
    const before = (await stats('r1')).ip;
    const data = crypto.randomBytes(200_000);
    await p.admin('lpar1', { t: 'tcp-held-write', id: held.id, data });
    await waitFor('echo of 200 kB', async () => ((await p.admin('lpar1', { t: 'tcp-held', id: held.id })) as Rec).received === data.length, 30_000);
    // r1 could not put a 16896-byte DF datagram on the 1500-byte mid LAN: it said so, and lpar1's TCP listened.
    expect((await conn()).mss).toBe(1460);
    const after = (await stats('r1')).ip;
    expect(after.icmpErrorsSent).toBeGreaterThan(before.icmpErrorsSent);
    expect((await stats('lpar1')).ip.icmpErrorsReceived).toBeGreaterThan(0);
    // A new connection to the same destination starts at the path MTU.
    const again = (await p.admin('lpar1', { t: 'tcp-hold', dst: '10.93.0.4', port: 7 })) as Rec;
    expect(((await p.admin('lpar1', { t: 'ss' })) as Rec).connections.find((c: Rec) => c.local === again.local).mss).toBe(1460);
  });

  it('a DF ping over the next hop MTU gets frag-needed naming 1500; without DF it is fragmented and answered', async () => {
    const df = await ping('lpar1', '10.93.0.4', { size: 4000, df: true });
    expect(df.received).toBe(0);
    expect(df.icmpErrors).toEqual([expect.objectContaining({ from: '10.91.0.254', type: 3, code: 4, nextHopMtu: 1500 })]);
    // lpar1 now knows the path MTU: it fragments to 1500 itself, so r1 has nothing to split.
    const before = (await stats('r1')).ip.fragmentsForwarded;
    const sentBefore = (await stats('lpar1')).ip.fragmentsSent;
    expect((await ping('lpar1', '10.93.0.4', { size: 4000 })).received).toBe(1);
    expect((await stats('lpar1')).ip.fragmentsSent).toBeGreaterThan(sentBefore);
    expect((await stats('r1')).ip.fragmentsForwarded).toBe(before);
    // lpar4 has never heard about a path to r1's left address: its 4 kB request leaves whole and r2 splits it.
    const r2Before = (await stats('r2')).ip.fragmentsForwarded;
    expect((await ping('lpar4', '10.91.0.254', { size: 4000 })).received).toBe(1);
    expect((await stats('r2')).ip.fragmentsForwarded).toBeGreaterThan(r2Before);
  });

  it('a route deleted at run time stops the traffic (net unreachable), and added again restores it', async () => {
    await p.admin('r1', { t: 'route', op: 'del', prefix: '10.93.0.0/24', via: '10.92.0.2' });
    expect((await routes('r1')).find((r) => r.prefix === '10.93.0.0/24')).toBeUndefined();
    const gone = await ping('lpar1', '10.93.0.4');
    expect(gone.received).toBe(0);
    expect(gone.icmpErrors).toEqual([expect.objectContaining({ from: '10.91.0.254', type: 3, code: 0 })]);
    await p.admin('r1', { t: 'route', op: 'add', prefix: '10.93.0.0/24', via: '10.92.0.2' });
    expect(await routes('r1')).toContainEqual({ prefix: '10.93.0.0/24', via: '10.92.0.2', dev: 'mid', source: 'static', mtu: 1500 });
    expect((await ping('lpar1', '10.93.0.4')).received).toBe(1);
  });

  it('refuses bad route requests with a reason naming the field', async () => {
    await expect(p.admin('r1', { t: 'route', op: 'add', prefix: '10.50.0.0/24', via: '10.77.0.1' })).rejects.toThrow(/via: 10\.77\.0\.1 is not on any subnet/);
    await expect(p.admin('r1', { t: 'route', op: 'add', prefix: '10.50.0.1/24', via: '10.92.0.2' })).rejects.toThrow(/host bits/);
    await expect(p.admin('r1', { t: 'route', op: 'add', prefix: '10.50.0.0/24', dev: 'nowhere' })).rejects.toThrow(/dev: .*"nowhere"/);
    await expect(p.admin('r1', { t: 'route', op: 'del', prefix: '10.92.0.0/24' })).rejects.toThrow(/connected route/);
    await expect(p.admin('r1', { t: 'route', op: 'del', prefix: '10.55.0.0/16' })).rejects.toThrow(/no route 10\.55\.0\.0\/16/);
    await expect(p.admin('r1', { t: 'route', op: 'flip' })).rejects.toThrow(/field "op".*"flip"/);
  });

  it('a host without a route gets ENETUNREACH; a router without one answers destination net unreachable', async () => {
    await p.admin('lpar1', { t: 'route', op: 'del', prefix: 'default' });
    try {
      const r = await ping('lpar1', '10.93.0.4');
      expect(r.errors.join()).toMatch(/no interface for 10\.93\.0\.4/);
    } finally {
      await p.admin('lpar1', { t: 'route', op: 'add', prefix: 'default', via: '10.91.0.254' });
    }
    const nowhere = await ping('lpar1', '10.99.0.1');
    expect(nowhere.icmpErrors).toEqual([expect.objectContaining({ from: '10.91.0.254', type: 3, code: 0 })]);
    // On the right LAN but nobody there: r2's ARP goes unanswered, and it says host unreachable.
    const absent = await ping('lpar1', '10.93.0.99', { timeoutMs: 4000 });
    expect(absent.icmpErrors).toEqual([expect.objectContaining({ from: '10.92.0.2', type: 3, code: 1, text: 'Destination Host Unreachable' })]);
  });

  it('a non-forwarding partition still cannot send others\u2019 addresses; a forwarding one can', async () => {
    // lpar4 forges a datagram from 10.91.0.1 on its direct RVI to r2, and through a control node.
    const rvis = ((await p.fm({ t: 'rvi-list' })) as Rec).rvis as Rec[];
    const lan = rvis.find((r) => r.purpose === 'lan:right' && [r.a, r.b].includes('lpar4') && [r.a, r.b].includes('r2'));
    expect(lan).toBeDefined();
    const ip = (await p.admin('r2', { t: 'ip' })) as Rec;
    const right = ip.interfaces.find((i: Rec) => i.vlan === 'right') as Rec;
    const frame = forgedEcho(right.vlanId, right.dev, 1, parseIp('10.91.0.1'), parseIp('10.93.0.254'));
    const mac = Buffer.alloc(6);
    emitInternalMac(mac, 0, { rvi: lan!.id, dev: right.dev, vlan: right.vlanId });
    mac.copy(frame, TLV_HEADER);
    const before = (await stats('r2')).driver.foreign;
    await p.admin('lpar4', { t: 'rvi-send-raw', peer: 'r2', purpose: 'lan:right', data: frame });
    await waitFor('forged frame refused', async () => (await stats('r2')).driver.foreign > before);
    const relayed = Buffer.from(frame);
    relayed[0] = TlvType.Relayed;
    const spoofed = async () => ((await p.admin('cn1', { t: 'cn-status' })) as Rec).vlans.find((v: Rec) => v.name === 'right').stats.spoofed as number;
    const was = await spoofed();
    await p.admin('lpar4', { t: 'rvi-send-raw', peer: 'cn1', purpose: 'vlan', data: relayed });
    await waitFor('relay of a forged source refused', async () => (await spoofed()) > was);
    // What r2 forwards from lpar1 (source 10.91.0.1) still reaches lpar4: the ping test above; once more here.
    expect((await ping('lpar1', '10.93.0.4')).received).toBe(1);
  });
});

/** A TLV-framed echo request from `src` to `dst`, for device `dstDev` of virtual LAN `vlan` (Ethernet src left zero). */
function forgedEcho(vlan: number, dstDev: number, srcDev: number, src: number, dst: number): Buffer {
  const icmp = Buffer.alloc(8 + 16);
  emitIcmpEcho(icmp, 0, { type: IcmpType.EchoRequest, id: 7, seq: 1, data: Buffer.alloc(16) });
  const length = ETHERNET_HEADER + IPV4_HEADER + icmp.length;
  const buf = Buffer.alloc(TLV_HEADER + length);
  emitTlv(buf, 0, { type: TlvType.Unicast, length, srcDev, dstDev, vlan });
  let o = TLV_HEADER + emitEthernet(buf, TLV_HEADER, { dst: Buffer.alloc(6), src: Buffer.alloc(6), etherType: EtherType.Ipv4 });
  o += emitIpv4Header(buf, o, { src, dst, protocol: IpProto.Icmp, payloadLength: icmp.length, id: 1, checksum: false });
  icmp.copy(buf, o);
  return buf;
}

/**
 * A Linux host on a TAP uses a router partition as its gateway (README,
 * "Linux as a peer" and "Routing"): the host's kernel pings and fetches over
 * HTTP from an LPAR on a virtual LAN it is not on. Needs root, /dev/net/tun,
 * socat, curl and ip (iproute2).
 */
const third = 100 + Math.floor(Math.random() * 150);
const OUTER = `10.67.${third}`;
const INNER = `10.68.${third}`;
const DEV = `lplgw${crypto.randomBytes(2).toString('hex')}`;
const GATEWAY_PLATFORM = `
name: gateway
planes: [a, b]
controlNodes: [{ name: cn1, serial: 31 }, { name: cn2, serial: 32 }]
cecs: [{ name: cec1 }]
lpars:
  - { name: gw, cec: cec1, smc: false, forwarding: true }
  - name: lpar2
    cec: cec1
    smc: false
    routes: [{ prefix: default, via: ${INNER}.1 }]
    apps: [{ name: http, port: 80 }]
vlans:
  - name: outer
    subnets: [${OUTER}.0/24]
    members: [{ lpar: gw, ip: ${OUTER}.1 }]
  - name: inner
    subnets: [${INNER}.0/24]
    members: [{ lpar: gw, ip: ${INNER}.1 }, { lpar: lpar2, ip: ${INNER}.2 }]
`;


describe('a Linux host on a TAP routes through a router partition', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    const lacking = missingForTap(['socat', 'curl', 'ip']);
    if (lacking.length) throw new Error(`this test needs ${lacking.join(', ')}`);
    p = await TestPlatform.boot(GATEWAY_PLATFORM);
    const r = await p.cli(['tap', 'attach', 'outer', '--dev', DEV, '--ip', `${OUTER}.100/24`]);
    if (r.code !== 0) throw new Error(`tap attach failed: ${r.stderr}`);
    execFileSync('ip', ['route', 'replace', `${INNER}.0/24`, 'via', `${OUTER}.1`, 'dev', DEV]);
    await waitFor('lpar2 http', async () => ((await p.admin('lpar2', { t: 'apps' })) as Rec).apps.length === 1, 20_000);
  });
  afterAll(async () => {
    if (!p) return;
    expect(await p.down()).toEqual([]);
    expect(fs.existsSync(`/sys/class/net/${DEV}`)).toBe(false);
  });

  it('the LPAR behind the router pings the host', async () => {
    const back = (await p.admin('lpar2', { t: 'ping', dst: `${OUTER}.100`, count: 2, timeoutMs: 2000 })) as Rec;
    expect(back.received).toBe(2);
  });

  it('curl on the host fetches 2 MB from the LPAR through the router, byte-exact (the router fills the checksums)', async () => {
    const body = path.join(p.root, 'body');
    const headers = execFileSync('curl', ['-s', '-m', '60', '-D', '-', '-o', body, `http://${INNER}.2/bytes/2000000`]).toString();
    const want = /x-sha256: ([0-9a-f]{64})/i.exec(headers)?.[1];
    expect(want).toBeDefined();
    expect(crypto.createHash('sha256').update(fs.readFileSync(body)).digest('hex')).toBe(want);
    fs.rmSync(body);
    expect(((await p.admin('gw', { t: 'net-stats' })) as Rec).ip.forwarded).toBeGreaterThan(100);
  });
});
