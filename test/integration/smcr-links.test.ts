import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeControl } from '../../shared/control/codec.ts';
import { parseSmcConfig } from '../../services/lpar/net/smc/smc-config.ts';
import { TestPlatform } from '../helpers/platform.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

/**
 * The platform plumbing SMC stands on, with real processes: SMC-R link groups
 * granted by a control node (seed 002, Fig. 4 steps 407-409), each link an
 * RVI on one plane so that losing it is SMC's to handle (Fig. 10 steps
 * 1012-1016), the location service (seed 003), and the SMC settings each
 * partition boots with.
 */
const PLATFORM = platformYaml({
  name: 'smcrlinks',
  rclan: FAST_RCLAN,
  smc: { ringBytes: 65536, pollUs: 50 },
  apps: [{ name: 'echo', port: 7 }],
  controlNodes: [{ name: 'cn1', serial: 21 }],
  lpars: [{ cec: 1 }, { cec: 2 }, { cec: 1 }, { cec: 2, smc: false }],
  vlans: [
    { name: 'blue', subnet: '10.1.0.0/24', members: ['lpar1', 'lpar2', 'lpar4'] },
    { name: 'green', subnet: '10.2.0.0/24', members: ['lpar3'] },
  ],
});

type Rec = Record<string, any>;

describe('SMC-R links and the location service', () => {
  let p: TestPlatform;
  const rvis = async (node: string) => (await p.admin(node, { t: 'rvis' })).rvis as Rec[];
  /** The RVI `node` has to `peer` for `purpose`, as its `rvis` verb shows it (undefined when it has none). */
  const link = async (node: string, peer: string, purpose: string): Promise<Rec> => (await rvis(node)).find((r) => r.peer === peer && r.purpose === purpose) as Rec;
  const cnStats = async () => (await p.admin('cn1', { t: 'cn-status' })).stats as Rec;
  const locate = async (from: string, ip: string) => {
    const r = await p.admin(from, { t: 'locate', ip });
    return { ip: r.ip, node: r.node, cec: r.cec };
  };
  const cnLog = () => fs.readFileSync(p.runDir.logFile('cn1'), 'utf8');

  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('boots each LPAR with its SMC settings: the platform file\'s, and off where the file says so', async () => {
    const config = async (lpar: string) => ((await p.admin(lpar, { t: 'lpar-status' })) as Rec).config.smc as Rec;
    expect(await config('lpar1')).toEqual({ enabled: true, d: true, r: true, offReason: null, ringBytes: 65536, pollUs: 50, clcTimeoutMs: 10000 });
    const off = await config('lpar4');
    expect(off.enabled).toBe(false);
    expect(off.offReason).toMatch(/platform file/);
  });

  it('grants a link group to a peer on a common virtual LAN: smcr-a on plane a, smcr-b on plane b, up at both ends', async () => {
    const r = await p.admin('lpar1', { t: 'smcr-links', peer: 'lpar2' });
    const links = r.links as Rec[];
    expect(links.map((l) => [l.purpose, l.plane])).toEqual([
      ['smcr-a', 0],
      ['smcr-b', 1],
    ]);
    const ids = links.map((l) => l.id);

    const list = (await p.fm({ t: 'rvi-list' })).rvis as Rec[];
    const smcr = list.filter((x) => x.purpose.startsWith('smcr-'));
    expect(smcr.map((x) => [x.id, x.purpose, [x.a, x.b].sort()])).toEqual([
      [ids[0], 'smcr-a', ['lpar1', 'lpar2']],
      [ids[1], 'smcr-b', ['lpar1', 'lpar2']],
    ]);
    const cli = await p.cli(['rvi']);
    expect(cli.stdout).toMatch(new RegExp(`^${ids[0]}\\t.*lpar1.*lpar2.*\\tsmcr-a$`, 'm'));
    expect(cli.stdout).toMatch(new RegExp(`^${ids[1]}\\t.*lpar1.*lpar2.*\\tsmcr-b$`, 'm'));

    for (const [node, peer] of [
      ['lpar1', 'lpar2'],
      ['lpar2', 'lpar1'],
    ]) {
      await waitFor(`${node}'s links up`, async () => (await link(node, peer, 'smcr-a'))?.state === 'up' && (await link(node, peer, 'smcr-b'))?.state === 'up');
      // Each runs on its own plane only: one leg up, the other never used.
      const a = await link(node, peer, 'smcr-a');
      const b = await link(node, peer, 'smcr-b');
      expect(a.legs).toEqual(['up', 'down']);
      expect(b.legs).toEqual(['down', 'up']);
      expect(a.stats.perLegSent[1]).toBe(0);
      expect(b.stats.perLegSent[0]).toBe(0);
    }

    // Asked again, from either end: the same two RVIs, no new ones.
    const again = await p.admin('lpar2', { t: 'smcr-links', peer: 'lpar1' });
    expect((again.links as Rec[]).map((l) => l.id)).toEqual(ids);
    expect(((await p.fm({ t: 'rvi-list' })).rvis as Rec[]).filter((x) => x.purpose.startsWith('smcr-'))).toHaveLength(2);
    expect((await cnStats()).smcrGranted).toBeGreaterThanOrEqual(1);
  });

  it('a cut of smcr-a\'s VI on plane a takes that link down, not the other, and it comes back when restored', async () => {
    const idA = (await link('lpar1', 'lpar2', 'smcr-a')).id as number;
    // Cutting smcr-a's VI on plane b changes nothing: the link never used it.
    expect((await p.cli(['fault', 'b', 'cut', '--rvi', String(idA)])).code).toBe(0);
    await sleep(500);
    expect((await link('lpar1', 'lpar2', 'smcr-a')).state).toBe('up');
    expect((await p.cli(['fault', 'b', 'clear', '--rvi', String(idA)])).code).toBe(0);

    expect((await p.cli(['fault', 'a', 'cut', '--rvi', String(idA)])).code).toBe(0);
    try {
      // Liveness is per peer and plane (issue 10 item 2): lpar1 and lpar2 still hear each other on plane a, so only
      // the link's own unacknowledged data shows its VI is lost. Two SMC-R connections (the group puts one on each
      // link), a write on each, and an echo back on each: both ends send on smcr-a.
      for (let i = 0; i < 2; i++) {
        const h = (await p.admin('lpar1', { t: 'tcp-hold', dst: '10.1.0.2', port: 7 })) as Rec;
        await p.admin('lpar1', { t: 'tcp-held-write', id: h.id, data: Buffer.alloc(1000, i) });
      }
      await waitFor('smcr-a down at both ends', async () => (await link('lpar1', 'lpar2', 'smcr-a')).state === 'down' && (await link('lpar2', 'lpar1', 'smcr-a')).state === 'down', 5000);
      expect((await link('lpar1', 'lpar2', 'smcr-b')).state).toBe('up');
      expect((await link('lpar1', 'lpar2', 'smcr-a')).stats.legFailovers).toBe(0);
    } finally {
      expect((await p.cli(['fault', 'a', 'restore', '--rvi', String(idA)])).code).toBe(0);
    }
    await waitFor('smcr-a up again', async () => (await link('lpar1', 'lpar2', 'smcr-a')).state === 'up' && (await link('lpar2', 'lpar1', 'smcr-a')).state === 'up', 5000);
  });

  it('refuses peers the configuration keeps apart, once logged per cause, counted, and makes no RVI', async () => {
    const before = (await cnStats()).smcrRefused as number;
    const refused = async (peer: string, reason: RegExp) => {
      await expect(p.admin('lpar1', { t: 'smcr-links', peer })).rejects.toThrow(reason);
    };
    await refused('lpar3', /refused: lpar1 and lpar3 share no virtual LAN/);
    await refused('lpar3', /share no virtual LAN/);
    await refused('lpar4', /SMC-R is off for lpar4 in the platform file/);
    await refused('lpar1', /no SMC-R links to itself/);
    await refused('nosuch', /"nosuch" is not an LPAR of this platform/);
    await refused('cn1', /"cn1" is not an LPAR of this platform/);
    expect((await cnStats()).smcrRefused).toBe(before + 6);

    const list = (await p.fm({ t: 'rvi-list' })).rvis as Rec[];
    expect(list.filter((x) => x.purpose.startsWith('smcr-') && [x.a, x.b].some((n: string) => n !== 'lpar1' && n !== 'lpar2'))).toEqual([]);
    await waitFor('refusal logged', async () => /SMC-R links refused/.test(cnLog()));
    // pino writes asynchronously: give the log a moment before counting lines.
    await sleep(200);
    expect(cnLog().match(/share no virtual LAN/g)).toHaveLength(1);
  });

  it('rejects a malformed request without harm to the control node', async () => {
    const before = (await cnStats()).malformedMgmt as number;
    for (const peer of [42, { toString: 0 }, 'x'.repeat(100_000)]) {
      await p.admin('lpar1', { t: 'rvi-send-raw', peer: 'cn1', purpose: 'mgmt', data: encodeControl({ t: 'smcr-links', peer }) });
    }
    await waitFor('counted', async () => (await cnStats()).malformedMgmt >= before + 3);
    // Still serving.
    const r = await p.admin('lpar2', { t: 'smcr-links', peer: 'lpar1' });
    expect(r.links).toHaveLength(2);
  });

  it('locates a registered address: the LPAR and its CEC; an unknown one: nobody', async () => {
    expect(await locate('lpar1', '10.1.0.2')).toEqual({ ip: '10.1.0.2', node: 'lpar2', cec: 'cec2' });
    expect(await locate('lpar2', '10.1.0.1')).toEqual({ ip: '10.1.0.1', node: 'lpar1', cec: 'cec1' });
    // lpar3's address is on green, which lpar1 is not on: a partition locates only on its own virtual LANs (issue 11 item 11).
    expect(await locate('lpar1', '10.2.0.3')).toEqual({ ip: '10.2.0.3', node: null, cec: null });
    expect(await locate('lpar1', '10.9.9.9')).toEqual({ ip: '10.9.9.9', node: null, cec: null });
    await expect(locate('lpar1', 'not-an-ip')).rejects.toThrow(/not an IPv4 address/);
  });

  it('a refused registration sets no location', async () => {
    await p.admin('lpar3', { t: 'rvi-send-raw', peer: 'cn1', purpose: 'mgmt', data: encodeControl({ t: 'vlan-register', vlan: 'blue', dev: 1, ip: '10.1.0.9', mac: '02:00:15:00:00:99' }) });
    await p.admin('lpar3', { t: 'rvi-send-raw', peer: 'cn1', purpose: 'mgmt', data: encodeControl({ t: 'vlan-register', vlan: 'blue', dev: 1, ip: '10.1.0.2', mac: '02:00:15:00:00:99' }) });
    await waitFor('refused', async () => /registration refused/.test(cnLog()));
    await sleep(100);
    expect(await locate('lpar1', '10.1.0.9')).toEqual({ ip: '10.1.0.9', node: null, cec: null });
    expect(await locate('lpar1', '10.1.0.2')).toEqual({ ip: '10.1.0.2', node: 'lpar2', cec: 'cec2' });
  });

  it('a restarted LPAR registers again and is located again; its link group is still there', async () => {
    await p.kill('lpar1', 'KILL');
    await p.start('lpar1');
    // Asked by lpar2, which shares blue with lpar1 (lpar3 is on green only: issue 11 item 11).
    await waitFor('lpar1 located again', async () => (await locate('lpar2', '10.1.0.1')).node === 'lpar1');
    expect(await locate('lpar2', '10.1.0.1')).toEqual({ ip: '10.1.0.1', node: 'lpar1', cec: 'cec1' });
    // The RVIs persist like the LAN ones: the new process gets them from the fabric manager.
    const links = (await p.admin('lpar1', { t: 'smcr-links', peer: 'lpar2' })).links as Rec[];
    expect(links.map((l) => l.purpose)).toEqual(['smcr-a', 'smcr-b']);
    await waitFor('links up with the new lpar1', async () => (await link('lpar2', 'lpar1', 'smcr-a'))?.state === 'up' && (await link('lpar2', 'lpar1', 'smcr-b'))?.state === 'up');
  });

  it('keeps locations across a restart of the fabric manager', async () => {
    await p.kill('fabric-manager', 'KILL');
    await p.start('fabric-manager');
    // The control node tells the new fabric manager again once it has rejoined.
    await waitFor('location known again', async () => {
      try {
        return (await locate('lpar1', '10.1.0.2')).node === 'lpar2';
      } catch {
        return false;
      }
    });
    expect(await locate('lpar2', '10.1.0.1')).toEqual({ ip: '10.1.0.1', node: 'lpar1', cec: 'cec1' });
  });

  it('moves an address with its registration, and revokes the links of LPARs that no longer share a virtual LAN', async () => {
    // lpar2 gives up 10.1.0.2 and lpar3 (another CEC) takes it: its registration moves the location.
    expect((await p.cli(['vlan', 'leave', 'blue', 'lpar2'])).code).toBe(0);
    expect((await p.cli(['vlan', 'join', 'blue', 'lpar3', '10.1.0.2'])).code).toBe(0);
    await waitFor('location moved', async () => (await locate('lpar1', '10.1.0.2')).node === 'lpar3');
    expect(await locate('lpar1', '10.1.0.2')).toEqual({ ip: '10.1.0.2', node: 'lpar3', cec: 'cec1' });

    // lpar1 and lpar2 share nothing now: their link group is gone at both ends, and not granted again.
    expect(((await p.fm({ t: 'rvi-list' })).rvis as Rec[]).filter((x) => x.purpose.startsWith('smcr-'))).toEqual([]);
    await waitFor('links gone at both ends', async () => !(await link('lpar1', 'lpar2', 'smcr-a')) && !(await link('lpar2', 'lpar1', 'smcr-b')));
    await expect(p.admin('lpar1', { t: 'smcr-links', peer: 'lpar2' })).rejects.toThrow(/share no virtual LAN/);
    // lpar3 is on blue now: it may have links to lpar1.
    expect(((await p.admin('lpar3', { t: 'smcr-links', peer: 'lpar1' })).links as Rec[]).map((l) => l.purpose)).toEqual(['smcr-a', 'smcr-b']);
  });
});

describe('an LPAR\'s SMC settings from its config message', () => {
  const full = { enabled: true, ringBytes: 65536, pollUs: 10, clcTimeoutMs: 500 };

  it('takes the control node\'s values', () => {
    expect(parseSmcConfig(full, {})).toEqual({ ...full, d: true, r: true, offReason: null });
    expect(parseSmcConfig({ ...full, enabled: false }, {})).toMatchObject({ enabled: false, offReason: expect.stringMatching(/platform file/) });
  });

  it('falls back to the platform defaults for what is missing or out of range', () => {
    const dflt = { enabled: true, d: true, r: true, offReason: null, ringBytes: 1048576, pollUs: 1000, clcTimeoutMs: 10000 };
    expect(parseSmcConfig(undefined, {})).toEqual(dflt);
    expect(parseSmcConfig({ ringBytes: 100000, pollUs: -1, clcTimeoutMs: 'x' }, {})).toEqual(dflt);
  });

  it('LPARLAB_SMC=off, 0 or false turns SMC off; nothing in the environment turns it on', () => {
    for (const v of ['off', '0', 'false', 'OFF', ' False ']) {
      const smc = parseSmcConfig(full, { LPARLAB_SMC: v });
      expect(smc.enabled).toBe(false);
      expect(smc.offReason).toMatch(/LPARLAB_SMC/);
    }
    expect(parseSmcConfig(full, { LPARLAB_SMC: 'on' }).enabled).toBe(true);
    expect(parseSmcConfig({ ...full, enabled: false }, { LPARLAB_SMC: 'on' }).enabled).toBe(false);
  });
});
