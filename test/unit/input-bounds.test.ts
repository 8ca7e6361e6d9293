// issue 11 item 13: input bounds — the platform loader, vlan join, ICMP sequence numbers, fault values, VI numbers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { Membership } from '../../services/control-node/boot/membership.ts';
import { FabricManager } from '../../services/fabric-manager/fabric-manager.ts';
import { FabricSwitch, routeKey } from '../../services/fabric-switch/fabric-switch.ts';
import { Pinger } from '../../services/lpar/net/ip/ping.ts';
import { PlatformError, defaultPlatformFile, loadPlatformFile, parsePlatform } from '../../shared/platform/platform.ts';
import { switchRequests } from '../../shared/protocol/admin.ts';
import { VI_MAX, decodeSwitchNotice } from '../../shared/protocol/fm.ts';
import { IcmpPacket } from '../../shared/wire/icmpv4.ts';

const log = pino({ level: 'silent' });
const base = parse(fs.readFileSync(defaultPlatformFile(), 'utf8')) as Record<string, any>;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** The default platform changed by `edit`, loaded: the PlatformError's path and reason. */
function refusal(edit: (p: Record<string, any>) => void): { path: string; reason: string } {
  const doc = structuredClone(base);
  edit(doc);
  try {
    parsePlatform(JSON.stringify(doc), 'test.yaml');
  } catch (err) {
    if (err instanceof PlatformError) return { path: err.path, reason: err.reason };
    throw err;
  }
  throw new Error('loaded without a word');
}

describe('the platform loader refuses, naming the field', () => {
  it('member addresses that are no host\'s: network, broadcast, loopback, multicast', () => {
    expect(refusal((p) => (p.vlans[0].members[0].ip = '10.1.0.0'))).toEqual({ path: '/vlans/0/members/0/ip', reason: '10.1.0.0 is the network address of 10.1.0.0/24' });
    expect(refusal((p) => (p.vlans[0].members[1].ip = '10.1.0.255'))).toEqual({ path: '/vlans/0/members/1/ip', reason: '10.1.0.255 is the broadcast address of 10.1.0.0/24' });
    expect(refusal((p) => (p.vlans[0].members[0].ip = '127.0.0.1')).reason).toMatch(/loopback/);
    expect(refusal((p) => (p.vlans[0].members[0].ip = '224.0.0.5')).reason).toMatch(/multicast/);
    expect(refusal((p) => (p.vlans[0].subnets = ['127.0.0.0/8'])).path).toBe('/vlans/0/subnets/0');
    // /31 has neither (RFC 3021): both addresses are hosts.
    expect(() =>
      parsePlatform(JSON.stringify({ ...base, vlans: [{ name: 'p2p', subnets: ['10.9.0.0/31'], members: [{ lpar: 'lpar1', ip: '10.9.0.0' }, { lpar: 'lpar2', ip: '10.9.0.1' }] }] })),
    ).not.toThrow();
  });

  it('overlapping subnets on one virtual LAN, or on two of one LPAR', () => {
    expect(refusal((p) => (p.vlans[0].subnets = ['10.1.0.0/24', '10.1.0.128/25']))).toEqual({ path: '/vlans/0/subnets/1', reason: '"10.1.0.128/25" overlaps "10.1.0.0/24" (at /vlans/0/subnets/0)' });
    const r = refusal((p) => {
      p.vlans[1].subnets = ['10.1.0.0/16'];
      p.vlans[1].members = [{ lpar: 'lpar3', ip: '10.1.7.3' }, { lpar: 'lpar4', ip: '10.1.7.4' }];
    });
    expect(r).toEqual({ path: '/vlans/1/members/0/lpar', reason: 'lpar3 would be on "blue" (10.1.0.0/24) and "green" (10.1.0.0/16), whose subnets overlap' });
  });

  it('a ws.host that is no address or host name', () => {
    for (const host of ['127.0.0.1:80/x', 'a b', 'evil.com/?', '999.1.1.1', '']) expect(refusal((p) => (p.ws.host = host)).path, host).toBe('/ws/host');
    for (const host of ['0.0.0.0', 'localhost', 'plane-a.lab.example']) expect(() => parsePlatform(JSON.stringify({ ...base, ws: { host } }))).not.toThrow();
  });

  it('10,000 LPARs and a 32 GiB shared memory buffer', () => {
    const many = refusal((p) => (p.lpars = Array.from({ length: 10_000 }, (_, i) => ({ name: `l${i}`, cec: 'cec1' }))));
    expect(many.path).toBe('/lpars');
    expect(many.reason).toMatch(/256/);
    const smb = refusal((p) => (p.smc = { ringBytes: 16777216, elementsPerSmb: 1024 }));
    expect(smb.path).toBe('/smc/elementsPerSmb');
    expect(smb.reason).toMatch(/is 327\d\d\.\d MiB .* more than 1024 MiB/);
    expect(refusal((p) => (p.smc = { ringBytes: 16777216 })).path).toBe('/smc/ringBytes');
  });
});

describe('vlan join at a control node', () => {
  it('refuses the broadcast and network address, and a LAN that overlaps one the LPAR is on', () => {
    const platform = loadPlatformFile(defaultPlatformFile());
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-bounds-'));
    dirs.push(d);
    const m = new Membership(platform, path.join(d, 'members.json'));
    const green = platform.vlans[1];
    expect(() => m.admit(green, 'lpar1', '10.2.0.255')).toThrow('10.2.0.255 is the broadcast address of 10.2.0.0/24');
    expect(() => m.admit(green, 'lpar1', '10.2.0.0')).toThrow('network address');
    expect(() => m.admit(green, 'lpar1', '224.0.0.1')).toThrow('multicast');
    const wide = { ...green, name: 'wide', subnets: ['10.0.0.0/8'] };
    expect(() => m.admit(wide, 'lpar1', '10.200.0.1')).toThrow('lpar1 would be on "blue" (10.1.0.0/24) and "wide" (10.0.0.0/8), whose subnets overlap');
    expect(m.admit(green, 'lpar1', '10.2.0.254').ip).toBe('10.2.0.254');
  });
});

describe('ping', () => {
  it('wraps its 16-bit sequence number instead of dying at 65536', async () => {
    const seqs: number[] = [];
    const pinger = new Pinger((_dst, req, _opts, done) => {
      const icmp = IcmpPacket.parse(req);
      seqs.push(icmp.seq);
      pinger.reply(icmp.id, icmp.seq, performance.now());
      done();
    });
    const r = await pinger.ping(0x0a010002, { count: 70_000, size: 0, intervalMs: 0, timeoutMs: 1000 });
    expect([r.sent, r.received, r.errors]).toEqual([70_000, 70_000, []]);
    expect(seqs.slice(65_533, 65_538)).toEqual([65_534, 65_535, 0, 1, 2]);
  });
});

describe('fault values', () => {
  it('are refused by the switch\'s decoder whoever sends them', () => {
    expect(switchRequests.decodeOf('fault', { t: 'fault', action: 'drop', pct: null }).ok).toBe(false);
    expect(switchRequests.decodeOf('fault', { t: 'fault', action: 'drop', pct: 'abc' }).ok).toBe(false);
    expect(switchRequests.decodeOf('fault', { t: 'fault', action: 'drop', pct: 150 })).toMatchObject({ ok: false, reason: expect.stringMatching(/pct.*0\.\.100/) });
    expect(switchRequests.decodeOf('fault', { t: 'fault', action: 'delay', ms: -50 })).toMatchObject({ ok: false, reason: expect.stringMatching(/ms/) });
    expect(switchRequests.decodeOf('fault', { t: 'fault', action: 'drop', pct: 5 }).ok).toBe(true);
  });
});

describe('VI numbers', () => {
  it('beyond 20 bits do not alias the next port\'s VIs at the switch', () => {
    expect(routeKey(1, VI_MAX)).toBeLessThan(routeKey(2, 0));
    expect(routeKey(1, VI_MAX + 1 + 5)).toBe(-1);
    const sw = new FabricSwitch('a', Buffer.alloc(32), log);
    sw.loadTable([['lpar1', 1], ['lpar2', 2]], [[1, 1, 5, 2, 7]]);
    sw.addVi([2, 1, VI_MAX + 1 + 5, 2, 9]);
    expect(sw.status()).toMatchObject({ vis: 1, stats: { malformed: 1 } });
    expect(decodeSwitchNotice({ t: 'vi-add', entries: [[2, 1, VI_MAX + 1, 2, 9]] }).ok).toBe(false);
  });

  it('are allocated within 20 bits by the fabric manager, the lowest free one once the count passes the end', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-bounds-'));
    dirs.push(d);
    // Tables as a long-lived fabric manager leaves them: lpar1's count at the end of the VI space.
    fs.writeFileSync(path.join(d, 'fabric.json'), JSON.stringify({ nextRvi: 3, nextVi: { lpar1: VI_MAX, lpar2: 2, lpar3: 2 }, rvis: [{ id: 1, a: 'lpar1', b: 'lpar2', purpose: 'perf', viA: 1, viB: 1 }, { id: 2, a: 'lpar1', b: 'lpar3', purpose: 'perf', viA: 3, viB: 1 }] }));
    const fm = new FabricManager(loadPlatformFile(defaultPlatformFile()), Buffer.alloc(32), [{ name: 'a', url: 'x' }, { name: 'b', url: 'y' }], d, log);
    expect(fm.create('lpar1', 'lpar4', 'perf').viA).toBe(VI_MAX);
    expect(fm.create('lpar1', 'lpar4', 'data').viA).toBe(2);
    expect(fm.create('lpar1', 'lpar4', 'mgmt').viA).toBe(4);
  });
});
