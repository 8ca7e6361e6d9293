import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LparBoot, lparBootTransition } from '../../services/control-node/boot/lpar-view.ts';
import { Membership, pairKey } from '../../services/control-node/boot/membership.ts';
import { linkRefusal } from '../../services/control-node/smc/smcr-grants.ts';
import { MemberState, memberTransition } from '../../services/control-node/vlan/members.ts';
import type { Platform } from '../../shared/platform/platform.ts';
import { isLan, lan, lanOf, pinned, pinnedPlane, purposeKind } from '../../shared/rclan/purpose.ts';
import { SMCR_LINK_A, SMCR_LINK_B, smcrLinkPlane } from '../../shared/smc/link-purpose.ts';

describe('RVI purposes', () => {
  it('name a virtual LAN\'s unicast RVIs', () => {
    expect(lan('blue')).toBe('lan:blue');
    expect(isLan('lan:blue')).toBe(true);
    expect(isLan('lan:')).toBe(false);
    expect(lanOf('lan:blue-a')).toBe('blue-a');
    expect(lanOf('mgmt')).toBeUndefined();
  });

  it('pin an RVI to a plane by its -a/-b suffix, generically, and leave every other to both planes', () => {
    expect(pinned('smcr', 0)).toBe('smcr-a');
    expect([pinnedPlane('smcr-a'), pinnedPlane('smcr-b'), pinnedPlane('store-b')]).toEqual([0, 1, 1]);
    for (const p of ['mgmt', 'vlan', 'perf', 'data', 'lan:x-a', '-a', 'smcr', 'by-cn']) expect(pinnedPlane(p)).toBeUndefined();
  });

  it('say which kind a purpose is', () => {
    expect(purposeKind('mgmt')).toEqual({ kind: 'mgmt' });
    expect(purposeKind('vlan')).toEqual({ kind: 'vlan' });
    expect(purposeKind('perf')).toEqual({ kind: 'perf' });
    expect(purposeKind('lan:green')).toEqual({ kind: 'lan', vlan: 'green' });
    expect(purposeKind('smcr-b')).toEqual({ kind: 'pinned', family: 'smcr', plane: 1 });
    expect(purposeKind('sneaky')).toEqual({ kind: 'other' });
  });

  it('keep the SMC-R link names with SMC', () => {
    expect([SMCR_LINK_A, SMCR_LINK_B]).toEqual(['smcr-a', 'smcr-b']);
    expect(smcrLinkPlane('store-a')).toBeUndefined();
    expect(smcrLinkPlane(SMCR_LINK_B)).toBe(1);
  });
});

describe('a virtual LAN member\'s state machine', () => {
  it('registers, turns promiscuous only when registered, and is forgotten whole', () => {
    let s: MemberState = MemberState.Configured;
    expect(memberTransition(s, { type: 'promisc', on: true })).toBe(MemberState.Configured);
    s = memberTransition(s, { type: 'register' });
    expect(s).toBe(MemberState.Registered);
    s = memberTransition(s, { type: 'promisc', on: true });
    expect(s).toBe(MemberState.Promiscuous);
    // Registering again (after a reconnection) keeps the mode.
    expect(memberTransition(s, { type: 'register' })).toBe(MemberState.Promiscuous);
    expect(memberTransition(s, { type: 'promisc', on: false })).toBe(MemberState.Registered);
    expect(memberTransition(s, { type: 'forget' })).toBe(MemberState.Configured);
  });
});

describe('what a control node knows of an LPAR\'s boot', () => {
  it('is booted by a boot request and restarting after its process restarts', () => {
    expect(lparBootTransition(LparBoot.Unknown, { type: 'boot' })).toBe(LparBoot.Booted);
    expect(lparBootTransition(LparBoot.Booted, { type: 'peer-restart' })).toBe(LparBoot.Restarting);
    expect(lparBootTransition(LparBoot.Restarting, { type: 'boot' })).toBe(LparBoot.Booted);
  });
});

const platform = {
  name: 't',
  lpars: [
    { name: 'lpar1', cec: 'c1', smc: { d: true, r: true }, apps: [] },
    { name: 'lpar2', cec: 'c1', smc: { d: true, r: true }, apps: [] },
    { name: 'lpar3', cec: 'c2', smc: { d: true, r: false }, apps: [] },
  ],
  vlans: [{ name: 'blue', id: 1, subnets: ['10.1.0.0/24'], mtu: 16896, members: [{ lpar: 'lpar1', ip: '10.1.0.2' }, { lpar: 'lpar2', ip: '10.1.0.3' }], promiscuous: [] }],
} as unknown as Platform;

describe('SMC-R link policy', () => {
  const shares = (a: string, b: string) => [a, b].every((n) => n === 'lpar1' || n === 'lpar2');
  it('grants two LPARs on a common virtual LAN with SMC-R on', () => {
    expect(linkRefusal(platform, shares, 'lpar1', 'lpar2')).toBeUndefined();
  });
  it('refuses, with a cause to log once by, everything else', () => {
    expect(linkRefusal(platform, shares, 'lpar1', 'cn1')).toMatchObject({ cause: 'unknown-peer', reason: '"cn1" is not an LPAR of this platform' });
    expect(linkRefusal(platform, shares, 'lpar1', 'lpar1')?.cause).toBe('self');
    expect(linkRefusal(platform, shares, 'lpar1', 'lpar3')).toMatchObject({ cause: 'smc-off/lpar3' });
    expect(linkRefusal(platform, () => false, 'lpar1', 'lpar2')).toMatchObject({ cause: 'no-lan/lpar2', reason: 'lpar1 and lpar2 share no virtual LAN' });
  });
});

describe('membership', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const fresh = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctl-membership-'));
    dirs.push(dir);
    return path.join(dir, 'membership.json');
  };
  const full = { ...platform, vlans: [...platform.vlans, { name: 'green', id: 2, subnets: ['10.2.0.0/24'], mtu: 1500, members: [], promiscuous: [] }] } as unknown as Platform;

  it('admits a member on its next device number and persists it once added', () => {
    const file = fresh();
    const m = new Membership(full, file);
    expect(m.sharesLan('lpar1', 'lpar2')).toBe(true);
    expect(m.sharesLan('lpar1', 'lpar3')).toBe(false);
    const green = full.vlans[1];
    const entry = m.admit(green, 'lpar1', '10.2.0.9');
    expect(entry).toEqual({ lpar: 'lpar1', ip: '10.2.0.9', dev: 2 });
    // Admitting changes nothing.
    expect(m.members('green')).toEqual([]);
    m.add('green', entry);
    expect(new Membership(full, file).entry('green', 'lpar1')).toEqual(entry);
    expect(() => m.admit(green, 'lpar1', '10.2.0.10')).toThrow(/already a member/);
    expect(() => m.admit(green, 'lpar2', '10.2.0.9')).toThrow(/already used/);
    expect(() => m.admit(green, 'lpar2', '10.9.0.1')).toThrow(/none of green's subnets/);
    expect(m.leave('green', 'lpar1')).toEqual([]);
    expect(() => m.leave('green', 'lpar1')).toThrow(/not a member/);
  });

  it('keys a pair the same whichever way round', () => {
    expect(pairKey('blue', 'lpar2', 'lpar1')).toBe(pairKey('blue', 'lpar1', 'lpar2'));
  });
});
