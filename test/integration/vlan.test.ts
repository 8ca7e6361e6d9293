import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeControl } from '../../shared/control/codec.ts';
import { TLV_HEADER, TlvType, emitTlv } from '../../shared/wire/tlv.ts';
import { ARP_LENGTH, ArpOp, emitArp } from '../../shared/wire/arp.ts';
import { ETHERNET_HEADER, EtherType, emitEthernet } from '../../shared/wire/ethernet.ts';
import { IPV4_HEADER, IpProto, emitIpv4Header } from '../../shared/wire/ipv4.ts';
import { UDP_HEADER, emitUdpHeader } from '../../shared/wire/udp.ts';
import { parseIp } from '../../shared/wire/ipv4-address.ts';
import { emitInternalMac, parseMac } from '../../shared/wire/mac.ts';
import { capture, pingall } from '../../scripts/cli/net-commands.ts';
import { TestPlatform } from '../helpers/platform.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

/**
 * Issue "Virtual Ethernet over RVIs and virtual LAN servers", on real
 * processes: two control nodes, four LPARs, two virtual LANs.
 */
const HEARTBEAT_MS = 50;
const PLATFORM = platformYaml({
  name: 'vlantest',
  rclan: FAST_RCLAN,
  ethernet: { heartbeatMs: HEARTBEAT_MS },
  controlNodes: [
    { name: 'cn1', serial: 11 },
    { name: 'cn2', serial: 12 },
  ],
  lpars: [{ cec: 1 }, { cec: 1 }, { cec: 2 }, { cec: 2 }],
  vlans: [
    { name: 'blue', subnet: '10.1.0.0/24', members: ['lpar1', 'lpar2', 'lpar3'], promiscuous: ['lpar3'] },
    { name: 'green', subnet: '10.2.0.0/24', members: ['lpar3', 'lpar4'] },
  ],
});

type Rec = Record<string, any>;

function emitMacString(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

describe('virtual LANs', () => {
  let p: TestPlatform;
  const ping = async (from: string, dst: string, extra: Rec = {}) => (await p.admin(from, { t: 'ping', dst, count: 1, timeoutMs: 1000, ...extra }, 120_000)) as Rec;
  const stats = async (lpar: string) => (await p.admin(lpar, { t: 'net-stats' })) as Rec;
  const cn = async (name: string) => (await p.admin(name, { t: 'cn-status' })) as Rec;
  const vlanStats = async (name: string, vlan: string) => (await cn(name)).vlans.find((v: Rec) => v.name === vlan) as Rec;
  const udpOpen = async (lpar: string, port: number, broadcast = false) => Number((await p.admin(lpar, { t: 'udp-open', port, broadcast })).socket);
  const udpRecv = async (lpar: string, socket: number) => ((await p.admin(lpar, { t: 'udp-recv', socket })).messages as Rec[]).map((m) => Buffer.from(m.data).toString());
  const rawSend = (lpar: string, peer: string, purpose: string, data: Buffer) => p.admin(lpar, { t: 'rvi-send-raw', peer, purpose, data });

  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('pingall reaches every address within each virtual LAN', async () => {
    const pairs = await pingall(p.runDir, p.runDir.readPlatform());
    expect(pairs).toHaveLength(8);
    expect(pairs.filter((x) => !x.ok)).toEqual([]);
    const cli = await p.cli(['pingall']);
    expect(cli.stdout).toMatch(/Results: 0% dropped \(8\/8 received\)/);
    const arp = await p.cli(['arp', 'lpar1']);
    // Internal MACs (a3:...) name the unicast RVI: the stack's ARP entries say where to send direct.
    expect(arp.stdout).toMatch(/10\.1\.0\.2\s+a3:/);
    expect((await p.cli(['ip', 'lpar3'])).stdout).toMatch(/veth2: vlan green \(2\) link\/ether 02:00:0[bc]:[0-9a-f:]+ inet 10\.2\.0\.3\/24 mtu 16896/);
  });

  it('reaches nothing across virtual LANs, and no RVI joins non-members', async () => {
    const cross = await ping('lpar1', '10.2.0.4');
    expect(cross.received).toBe(0);
    expect(cross.errors.join()).toMatch(/no interface for 10\.2\.0\.4/);
    expect((await ping('lpar4', '10.1.0.1')).received).toBe(0);
    const rvis = (await p.fm({ t: 'rvi-list' })).rvis as Rec[];
    const members: Record<string, string[]> = { blue: ['lpar1', 'lpar2', 'lpar3'], green: ['lpar3', 'lpar4'] };
    for (const r of rvis.filter((x) => x.purpose.startsWith('lan:'))) {
      const vlan = r.purpose.slice(4);
      expect(members[vlan]).toContain(r.a);
      expect(members[vlan]).toContain(r.b);
    }
    const between = (a: string, b: string) => rvis.filter((r) => (r.a === a && r.b === b) || (r.a === b && r.b === a));
    expect(between('lpar1', 'lpar4')).toEqual([]);
    expect(between('lpar2', 'lpar4')).toEqual([]);
  });

  it('refuses a registration forged for a virtual LAN the LPAR is not in, and its frames there', async () => {
    const before = await vlanStats('cn1', 'blue');
    await rawSend('lpar4', 'cn1', 'mgmt', encodeControl({ t: 'vlan-register', vlan: 'blue', dev: 1, ip: '10.1.0.9', mac: '02:00:0b:00:00:99' }));
    await rawSend('lpar4', 'cn1', 'mgmt', encodeControl({ t: 'vlan-register', vlan: 'green', dev: 1, ip: '10.2.0.3', mac: '02:00:0b:00:00:99' }));
    const bcast = Buffer.alloc(TLV_HEADER + 60);
    emitTlv(bcast, 0, { type: TlvType.Broadcast, length: 60, vlan: 1, srcDev: 1 });
    bcast.fill(0xff, TLV_HEADER, TLV_HEADER + 6);
    await rawSend('lpar4', 'cn1', 'vlan', bcast);
    await waitFor('refusals', async () => (await vlanStats('cn1', 'blue')).stats.refused > before.stats.refused && (await vlanStats('cn1', 'green')).stats.refused > 0);
    const after = await vlanStats('cn1', 'blue');
    expect(after.members.map((m: Rec) => m.lpar)).not.toContain('lpar4');
    expect((await cn('cn1')).stats.notMember).toBeGreaterThan(0);
    // pino writes asynchronously: the line lands shortly after the count.
    await waitFor('refusal logged', async () => /registration refused/.test(fs.readFileSync(p.runDir.logFile('cn1'), 'utf8')));
    // The rightful owner of 10.2.0.3 is still reachable at its own MAC.
    expect((await ping('lpar4', '10.2.0.3')).received).toBe(1);
  });

  it('delivers a UDP broadcast to every other member exactly once, never to the sender or another LAN', async () => {
    const socks: Record<string, number> = {};
    for (const l of ['lpar1', 'lpar2', 'lpar3', 'lpar4']) socks[l] = await udpOpen(l, 5000, true);
    await p.admin('lpar1', { t: 'udp-send', socket: socks.lpar1, dst: '10.1.0.255', port: 5000, data: Buffer.from('directed') });
    await p.admin('lpar1', { t: 'udp-send', socket: socks.lpar1, dst: '255.255.255.255', port: 5000, data: Buffer.from('limited') });
    await sleep(300);
    expect((await udpRecv('lpar2', socks.lpar2)).sort()).toEqual(['directed', 'limited']);
    expect((await udpRecv('lpar3', socks.lpar3)).sort()).toEqual(['directed', 'limited']);
    expect(await udpRecv('lpar1', socks.lpar1)).toEqual([]);
    expect(await udpRecv('lpar4', socks.lpar4)).toEqual([]);
    for (const l of Object.keys(socks)) await p.admin(l, { t: 'udp-close', socket: socks[l] });
  });

  it('heartbeats the control nodes ten times slower while it sends nothing through them, and every heartbeatMs again once it does', async () => {
    const heartbeats = async () => (await stats('lpar4')).driver.heartbeats as number;
    // lpar4 (alone with lpar3 on green) has sent nothing through a control node for an idle interval by now.
    await sleep(10 * HEARTBEAT_MS + 200);
    const a = await heartbeats();
    await sleep(2000);
    const idle = (await heartbeats()) - a;
    // Two control nodes, one every 500 ms each (a tick later at most): 6 to 8.
    expect(idle).toBeGreaterThanOrEqual(4);
    expect(idle).toBeLessThanOrEqual(10);
    const s = await udpOpen('lpar4', 0, true);
    const b = await heartbeats();
    const t0 = Date.now();
    while (Date.now() - t0 < 1000) {
      await p.admin('lpar4', { t: 'udp-send', socket: s, dst: '10.2.0.255', port: 7002, data: Buffer.from('busy') });
      await sleep(25);
    }
    // Every 50 ms (a 10 ms tick later at most) to each: about 35 in the second.
    expect((await heartbeats()) - b).toBeGreaterThanOrEqual(20);
    await p.admin('lpar4', { t: 'udp-close', socket: s });
  });

  it('delivers multicast to joined members only, and stops after they leave', async () => {
    const s2 = await udpOpen('lpar2', 6000);
    const s3 = await udpOpen('lpar3', 6000);
    const s1 = await udpOpen('lpar1', 0);
    await p.admin('lpar2', { t: 'udp-join', socket: s2, group: '239.1.2.3' });
    await waitFor('join registered', async () => (await vlanStats('cn1', 'blue')).members.find((m: Rec) => m.lpar === 'lpar2').groups.includes('01:00:5e:01:02:03'));
    for (let i = 0; i < 3; i++) await p.admin('lpar1', { t: 'udp-send', socket: s1, dst: '239.1.2.3', port: 6000, data: Buffer.from(`m${i}`) });
    await sleep(300);
    expect(await udpRecv('lpar2', s2)).toEqual(['m0', 'm1', 'm2']);
    expect(await udpRecv('lpar3', s3)).toEqual([]);
    await p.admin('lpar2', { t: 'udp-leave', socket: s2, group: '239.1.2.3' });
    await waitFor('leave registered', async () => (await vlanStats('cn2', 'blue')).members.find((m: Rec) => m.lpar === 'lpar2').groups.includes('01:00:5e:01:02:03') === false);
    await p.admin('lpar1', { t: 'udp-send', socket: s1, dst: '239.1.2.3', port: 6000, data: Buffer.from('late') });
    await sleep(300);
    expect(await udpRecv('lpar2', s2)).toEqual([]);
  });

  it('gives a permitted promiscuous listener copies of others’ unicast, and a node without permission nothing', async () => {
    await p.admin('lpar3', { t: 'promisc', vlan: 'blue', on: true });
    await p.admin('lpar1', { t: 'promisc', vlan: 'blue', on: true });
    await waitFor('listener announced', async () => (await vlanStats('cn1', 'blue')).members.find((m: Rec) => m.lpar === 'lpar3').promiscuous === true);
    await sleep(100);
    const r = await ping('lpar1', '10.1.0.2', { count: 5 });
    expect(r.received).toBe(5);
    await waitFor('copies at lpar3', async () => Number((await p.admin('lpar3', { t: 'promisc-frames', vlan: 'blue' })).count) >= 10);
    expect((await vlanStats('cn1', 'blue')).stats.promiscRefused).toBeGreaterThan(0);
    await ping('lpar2', '10.1.0.3', { count: 3 });
    expect((await p.admin('lpar1', { t: 'promisc-frames', vlan: 'blue' })).count).toBe(0);
    await p.admin('lpar3', { t: 'promisc', vlan: 'blue', on: false });
    await p.admin('lpar1', { t: 'promisc', vlan: 'blue', on: false });
  });

  it('relays through a control node when the direct RVI is cut on both planes', async () => {
    const rvi = ((await p.fm({ t: 'rvi-list' })).rvis as Rec[]).find((r) => r.purpose === 'lan:blue' && [r.a, r.b].sort().join() === 'lpar1,lpar2')!;
    const relayedBefore = (await stats('lpar1')).driver.txRelayed;
    await p.cli(['fault', 'a', 'cut', '--rvi', String(rvi.id)]);
    await p.cli(['fault', 'b', 'cut', '--rvi', String(rvi.id)]);
    try {
      // Liveness is per peer and plane (issue 10 item 2): the two LPARs still hear each other, so only the RVI's own
      // unacknowledged data shows its VI is lost. Traffic both ways (the echo goes back on lpar2's direct RVI) finds it at each end.
      await ping('lpar1', '10.1.0.2', { count: 5, intervalMs: 50, timeoutMs: 3000 });
      // Down, or Failed once what waited on it was reported undeliverable (and relayed).
      for (const side of ['lpar1', 'lpar2']) await waitFor(`direct RVI down at ${side}`, async () => ['down', 'failed'].includes(((await p.admin(side, { t: 'rvis' })).rvis as Rec[]).find((r) => r.id === rvi.id)?.state));
      const r = await ping('lpar1', '10.1.0.2', { count: 10, intervalMs: 10 });
      expect(r.received).toBe(10);
      expect((await stats('lpar1')).driver.txRelayed).toBeGreaterThanOrEqual(relayedBefore + 10);
      const relayed = (await vlanStats('cn1', 'blue')).stats.relayed + (await vlanStats('cn2', 'blue')).stats.relayed;
      expect(relayed).toBeGreaterThanOrEqual(20);
    } finally {
      await p.cli(['fault', 'a', 'clear']);
      await p.cli(['fault', 'b', 'clear']);
    }
  });

  for (const signal of ['KILL', 'STOP'] as const) {
    it(`keeps unicast lossless and moves ARP and broadcast to the other control node when one gets SIG${signal}`, async () => {
      const flood = ping('lpar1', '10.1.0.2', { count: 200, intervalMs: 10, timeoutMs: 2000 });
      // lpar1 sends through the control nodes meanwhile (broadcasts nobody listens to), so its driver
      // heartbeats them every heartbeatMs: an idle one heartbeats ten times slower and finds a dead control
      // node within two heartbeat intervals of its first send instead (services/lpar/net/devices/virtual-ethernet.ts).
      const s1 = await udpOpen('lpar1', 0, true);
      let chatting = true;
      const chatter = (async () => {
        while (chatting) {
          await p.admin('lpar1', { t: 'udp-send', socket: s1, dst: '10.1.0.255', port: 7001, data: Buffer.from('chatter') });
          await sleep(50);
        }
      })();
      await sleep(500);
      // How long lpar1 lets a heartbeat to cn1 wait now: heartbeatMs on a quiet box, more when its answers have been
      // slow (a box shared with a parallel run; services/lpar/net/devices/heartbeat-liveness.ts).
      const within = ((await stats('lpar1')).driver.controlNodes as Rec[]).find((c) => c.name === 'cn1')!.answerWithinMs as number;
      expect(within).toBeGreaterThanOrEqual(HEARTBEAT_MS);
      expect(within).toBeLessThanOrEqual(10 * HEARTBEAT_MS);
      // Signalled directly: the failover clock starts at the signal, not at a CLI's start-up.
      const t0 = Date.now();
      process.kill(p.pid('cn1'), `SIG${signal}`);
      try {
        // ARP served by cn2: a fresh resolution right after the failure.
        await p.admin('lpar2', { t: 'arp-flush' });
        const arp = await ping('lpar2', '10.1.0.3', { timeoutMs: 2000 });
        const served = Date.now() - t0;
        expect(arp.received).toBe(1);
        // Two heartbeat intervals to notice, plus slack for a box shared with the SMC suites' 500 MB streams
        // (their spinning readers delayed this by 561 ms once, against a 500 ms bound).
        expect(served).toBeLessThan(2 * HEARTBEAT_MS + 1000);
        const s2 = await udpOpen('lpar2', 7000, true);
        // A broadcast sent before the heartbeat after the failure has waited `within` may go to the dead one (on a
        // quiet box two heartbeat intervals after it); after that it must not.
        await sleep(Math.max(0, t0 + HEARTBEAT_MS + within + 20 - Date.now()));
        await p.admin('lpar1', { t: 'udp-send', socket: s1, dst: '10.1.0.255', port: 7000, data: Buffer.from('after-failover') });
        await sleep(200);
        expect(await udpRecv('lpar2', s2)).toEqual(['after-failover']);
        const result = await flood;
        expect(result.received).toBe(200);
        expect(((await p.admin('lpar1', { t: 'ip' })).controlNodes as string[])).toEqual(['cn2']);
      } finally {
        chatting = false;
        await chatter;
        if (signal === 'STOP') await p.kill('cn1', 'CONT');
        else await p.start('cn1');
      }
      await waitFor('cn1 answering again', async () => ((await p.admin('lpar1', { t: 'ip' })).controlNodes as string[]).includes('cn1'));
      await waitFor('lpar1 registered with cn1 again', async () => (await vlanStats('cn1', 'blue')).members.find((m: Rec) => m.lpar === 'lpar1').registered);
      // Balanced again: broadcasts go through both control nodes.
      const b1 = (await vlanStats('cn1', 'blue')).stats.broadcast;
      const b2 = (await vlanStats('cn2', 'blue')).stats.broadcast;
      const s = await udpOpen('lpar1', 0, true);
      // With 50 ms heartbeats a stall of 100 ms on this shared box counts a control node out for a moment,
      // and broadcasts sent then all go to the other: keep sending until both carried some.
      await waitFor('broadcasts through both control nodes', async () => {
        for (let i = 0; i < 5; i++) await p.admin('lpar1', { t: 'udp-send', socket: s, dst: '10.1.0.255', port: 7001, size: 200 });
        await sleep(50);
        return (await vlanStats('cn1', 'blue')).stats.broadcast > b1 && (await vlanStats('cn2', 'blue')).stats.broadcast > b2;
      });
    });
  }

  it('never hands out a MAC twice, across a control node restart and a runtime join', async () => {
    const before = (await p.admin('cn1', { t: 'nvram' })) as Rec;
    await p.kill('cn1', 'KILL');
    await p.start('cn1');
    const after = (await p.admin('cn1', { t: 'nvram' })) as Rec;
    expect(after).toEqual(before);
    const join = await p.cli(['vlan', 'join', 'green', 'lpar1', '10.2.0.1']);
    expect(join.code).toBe(0);
    const grown = (await p.admin('cn1', { t: 'nvram' })) as Rec;
    expect(grown.counter).toBe(before.counter + 1);
    const other = (await p.admin('cn2', { t: 'nvram' })) as Rec;
    const all = [...Object.values(grown.macs), ...Object.values(other.macs)];
    expect(new Set(all).size).toBe(all.length);
    await waitFor('lpar1 on green', async () => (((await p.admin('lpar1', { t: 'ip' })).registered as Rec).cn1 ?? []).includes('green'));
    expect((await ping('lpar1', '10.2.0.4', { count: 2 })).received).toBe(2);
    // Leaving tears its unicast RVIs of that LAN down.
    expect((await p.cli(['vlan', 'leave', 'green', 'lpar1'])).code).toBe(0);
    const lanGreen = ((await p.fm({ t: 'rvi-list' })).rvis as Rec[]).filter((r) => r.purpose === 'lan:green');
    expect(lanGreen.filter((r) => r.a === 'lpar1' || r.b === 'lpar1')).toEqual([]);
    expect((await ping('lpar1', '10.2.0.4')).received).toBe(0);
  });

  it('counts and drops malformed frames and TLVs sent into an LPAR and into a virtual LAN server, and keeps serving', async () => {
    const lparBefore = (await stats('lpar1')).driver;
    const cnBefore = (await cn('cn1')).stats;
    const garbage = [Buffer.from([1, 2, 3]), Buffer.alloc(TLV_HEADER + 10, 0xee), (() => {
      const b = Buffer.alloc(TLV_HEADER + 5);
      emitTlv(b, 0, { type: TlvType.Unicast, length: 5, vlan: 1, dstDev: 1 });
      return b;
    })()];
    for (const g of garbage) {
      await rawSend('lpar2', 'lpar1', 'lan:blue', g);
      await rawSend('lpar1', 'cn1', 'vlan', g);
      await rawSend('lpar1', 'cn1', 'mgmt', g);
    }
    await waitFor('counted', async () => {
      const d = (await stats('lpar1')).driver;
      const c = (await cn('cn1')).stats;
      return d.malformed + d.foreign >= lparBefore.malformed + lparBefore.foreign + 3 && c.malformedFrames >= cnBefore.malformedFrames + 2 && c.malformedMgmt >= cnBefore.malformedMgmt + 3;
    });
    const pairs = await pingall(p.runDir, p.runDir.readPlatform());
    expect(pairs.filter((x) => !x.ok)).toEqual([]);
  });

  it('resists a partition that lies: malformed management, ARP poisoning, spoofed sources, hijacked MACs', async () => {
    const ip = async (l: string) => ((await p.admin(l, { t: 'ip' })).interfaces as Rec[]).find((i) => i.vlan === 'blue')!;
    const mac2 = parseMac((await ip('lpar2')).mac);
    const mac3 = parseMac((await ip('lpar3')).mac);
    const cnBefore = (await cn('cn1')).stats.malformedMgmt;
    // Fields of the wrong type (String() on them would throw): counted, the control node stays up and attached.
    await rawSend('lpar4', 'cn1', 'mgmt', encodeControl({ t: 'health', state: { toString: 0 } }));
    await rawSend('lpar4', 'cn1', 'mgmt', encodeControl({ t: 'vlan-register', vlan: 'green', dev: { valueOf: 0 }, ip: '10.2.0.4', mac: '02:00:0b:00:00:03' }));
    await rawSend('lpar4', 'cn1', 'mgmt', encodeControl({ t: 'mcast', vlan: 'green', group: 'x'.repeat(100_000), join: true }));
    await waitFor('counted', async () => (await cn('cn1')).stats.malformedMgmt >= cnBefore + 2);
    expect((await p.admin('cn1', { t: 'status' })).health).toBe('healthy');
    // lpar3 registering lpar2's MAC is refused.
    const refusedBefore = (await vlanStats('cn1', 'blue')).stats.refused;
    await rawSend('lpar3', 'cn1', 'mgmt', encodeControl({ t: 'vlan-register', vlan: 'blue', dev: 1, ip: '10.1.0.3', mac: (await ip('lpar2')).mac }));
    await waitFor('MAC hijack refused', async () => (await vlanStats('cn1', 'blue')).stats.refused > refusedBefore);

    // ARP reply sent by lpar1 straight to lpar3 over their unicast RVI, claiming 10.1.0.2 is at lpar1: dropped.
    const rvi13 = ((await p.fm({ t: 'rvi-list' })).rvis as Rec[]).find((r) => r.purpose === 'lan:blue' && [r.a, r.b].sort().join() === 'lpar1,lpar3')!;
    const poison = Buffer.alloc(TLV_HEADER + ETHERNET_HEADER + ARP_LENGTH);
    emitTlv(poison, 0, { type: TlvType.Unicast, length: ETHERNET_HEADER + ARP_LENGTH, vlan: 1, dstDev: 1 });
    const fake = Buffer.alloc(6);
    emitInternalMac(fake, 0, { rvi: rvi13.id, dev: 1, vlan: 1 });
    emitEthernet(poison, TLV_HEADER, { dst: mac3, src: fake, etherType: EtherType.Arp });
    emitArp(poison, TLV_HEADER + ETHERNET_HEADER, { op: ArpOp.Reply, sha: fake, spa: parseIp('10.1.0.2'), tha: mac3, tpa: parseIp('10.1.0.3') });
    await p.admin('lpar3', { t: 'ping', dst: '10.1.0.2', count: 1 });
    await rawSend('lpar1', 'lpar3', 'lan:blue', poison);
    await sleep(100);
    const entry = ((await p.admin('lpar3', { t: 'arp' })).entries as Rec[]).find((e) => e.ip === '10.1.0.2');
    expect(entry?.mac).not.toBe(emitMacString(fake));
    expect((await ping('lpar3', '10.1.0.2', { count: 2 })).received).toBe(2);

    // UDP "from 10.1.0.2" sent by lpar1, direct and through the relay: neither is delivered.
    const sock = await udpOpen('lpar3', 5555);
    const spoof = (dstMac: Buffer, type: number) => {
      const b = Buffer.alloc(TLV_HEADER + ETHERNET_HEADER + IPV4_HEADER + UDP_HEADER + 4);
      emitTlv(b, 0, { type, length: b.length - TLV_HEADER, vlan: 1, dstDev: 1 });
      let o = TLV_HEADER + emitEthernet(b, TLV_HEADER, { dst: dstMac, src: mac2, etherType: EtherType.Ipv4 });
      o += emitIpv4Header(b, o, { src: parseIp('10.1.0.2'), dst: parseIp('10.1.0.3'), protocol: IpProto.Udp, payloadLength: UDP_HEADER + 4, id: 1, checksum: false });
      emitUdpHeader(b, o, { srcPort: 53, dstPort: 5555, payloadLength: 4 });
      b.write('evil', o + UDP_HEADER);
      return b;
    };
    await rawSend('lpar1', 'lpar3', 'lan:blue', spoof(mac3, TlvType.Unicast));
    await rawSend('lpar1', 'cn1', 'vlan', spoof(mac3, TlvType.Relayed));
    await sleep(200);
    expect(await udpRecv('lpar3', sock)).toEqual([]);
    expect((await vlanStats('cn1', 'blue')).stats.spoofed).toBeGreaterThan(0);
  });

  it('captures a virtual LAN to a pcap that tshark decodes with no malformed packet', async () => {
    let tshark: string;
    try {
      tshark = execFileSync('which', ['tshark']).toString().trim();
    } catch {
      throw new Error('tshark is not installed: apt-get install tshark (.ci/run installs it)');
    }
    const file = path.join(p.root, 'blue.pcap');
    const stop = sleep(1500);
    const recording = capture(p.runDir, p.runDir.readPlatform(), 'blue', file, { stop });
    await sleep(200);
    await p.admin('lpar1', { t: 'arp-flush' });
    await ping('lpar1', '10.1.0.3', { count: 3 });
    const s = await udpOpen('lpar2', 0, true);
    await p.admin('lpar2', { t: 'udp-send', socket: s, dst: '10.1.0.255', port: 9, size: 300 });
    await p.admin('lpar2', { t: 'udp-send', socket: s, dst: '10.1.0.1', port: 9, size: 20_000 });
    const r = await recording;
    expect(r.frames).toBeGreaterThanOrEqual(8);
    const protocols = execFileSync(tshark, ['-r', file, '-T', 'fields', '-e', 'frame.protocols']).toString();
    expect(protocols).toMatch(/eth:ethertype:arp/);
    expect(protocols).toMatch(/eth:ethertype:ip:icmp:data/);
    expect(protocols).toMatch(/eth:ethertype:ip:udp/);
    const bad = execFileSync(tshark, ['-r', file, '-Y', '_ws.malformed || _ws.expert.severity >= error']).toString().trim();
    expect(bad).toBe('');
  });
});
