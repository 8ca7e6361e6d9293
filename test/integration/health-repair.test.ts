import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readState } from '../../shared/runtime/state-file.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { TestPlatform, waitFor } from '../helpers/platform.ts';

interface RviRec {
  id: number;
  a: string;
  b: string;
  purpose: string;
}

/** Issue 11 item 12: health that reflects reachability, and a control node that re-makes the RVIs it owns. */
describe('honest health and self-repair', () => {
  let p: TestPlatform;
  const health = (name: string) => readState(p.runDir.stateFile(name));
  const rvis = async () => (await p.fm({ t: 'rvi-list' })).rvis as RviRec[];
  const vlanRvi = async (lpar: string) => (await rvis()).find((r) => r.purpose === 'vlan' && ((r.a === 'cn1' && r.b === lpar) || (r.b === 'cn1' && r.a === lpar)));
  const pingOk = async (from: string, ip: string) => Number((await p.admin(from, { t: 'ping', dst: ip, count: 1, timeoutMs: 1000 }, 10_000)).received) === 1;

  beforeAll(async () => {
    // undeliverableAfterMs long enough that a cut below leaves an RVI Down, not Failed, whatever the suite's load.
    p = await TestPlatform.boot(platformYaml({ rclan: { ...FAST_RCLAN, undeliverableAfterMs: 10_000 }, vlans: [{ name: 'blue', subnet: '10.1.0.0/24', members: ['lpar1', 'lpar2'] }] }));
  }, 180_000);
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('re-creates a virtual-LAN RVI the operator destroyed, and ARP works again', async () => {
    await waitFor('lpar1 pings lpar2', () => pingOk('lpar1', '10.1.0.2'), 30_000, 200);
    const before = (await vlanRvi('lpar1'))!;
    expect(before).toBeDefined();
    await p.fm({ t: 'rvi-destroy', id: before.id });
    await waitFor('cn1 re-created its virtual-LAN RVI to lpar1', async () => {
      const now = await vlanRvi('lpar1');
      return now !== undefined && now.id !== before.id;
    }, 15_000, 100);
    // lpar1 forgets lpar2's MAC first, so the ping needs ARP over the new RVI.
    await p.admin('lpar1', { t: 'arp-flush' });
    await waitFor('lpar1 pings lpar2 after the repair', () => pingOk('lpar1', '10.1.0.2'), 30_000, 200);
    await waitFor('cn1 and lpar1 healthy', () => health('cn1')?.health === 'healthy' && health('lpar1')?.health === 'healthy', 15_000, 100);
  }, 90_000);

  it('an LPAR without a live virtual-LAN path says degraded, then healthy once it is back', async () => {
    const r = (await vlanRvi('lpar1'))!;
    for (const plane of ['a', 'b']) expect((await p.cli(['fault', plane, 'cut', '--rvi', String(r.id)])).code).toBe(0);
    try {
      await waitFor(() => `lpar1 degraded (is ${JSON.stringify(health('lpar1'))})`, () => health('lpar1')?.health === 'degraded' && /virtual-LAN path/.test(health('lpar1')!.detail), 15_000, 50);
      // The control node sees the same RVI down.
      await waitFor(() => `cn1 degraded (is ${JSON.stringify(health('cn1'))})`, () => health('cn1')?.health === 'degraded' && /unreachable: lpar1/.test(health('cn1')!.detail), 15_000, 50);
    } finally {
      for (const plane of ['a', 'b']) await p.cli(['fault', plane, 'clear', '--rvi', String(r.id)]);
    }
    await waitFor('lpar1 and cn1 healthy again', () => health('lpar1')?.health === 'healthy' && health('cn1')?.health === 'healthy', 30_000, 50);
  }, 60_000);

  it('a management RVI down and back does not boot the partition again: RCLAN kept its session with the control node', async () => {
    const mgmt = (await rvis()).find((r) => r.purpose === 'mgmt' && [r.a, r.b].includes('cn1') && [r.a, r.b].includes('lpar1'))!;
    const cnView = async () => (((await p.admin('cn1', { t: 'cn-status' })) as Record<string, any>).lpars as Array<{ name: string; boots: number }>).find((l) => l.name === 'lpar1')!;
    const mgmtState = async () => (((await p.admin('lpar1', { t: 'rvis' })) as Record<string, any>).rvis as Array<{ id: number; state: string }>).find((r) => r.id === mgmt.id)?.state;
    await waitFor('lpar1 healthy', () => health('lpar1')?.health === 'healthy', 15_000, 50);
    const before = (await cnView()).boots;
    expect(before).toBeGreaterThanOrEqual(1);
    // lpar1's port cut on both planes: a cut of the management VI alone would leave the RVI up while the virtual-LAN
    // RVI to cn1 is heard (liveness is per peer and plane, shared/rclan/peer-link.ts) and nothing is in flight on it.
    const fault = (plane: string, action: string) => p.admin(`plane-${plane}`, { t: 'fault', action, port: 'lpar1' } as never);
    for (const plane of ['a', 'b']) await fault(plane, 'cut');
    try {
      await waitFor("lpar1's management RVI to cn1 down", async () => (await mgmtState()) === 'down', 10_000, 20);
    } finally {
      for (const plane of ['a', 'b']) await fault(plane, 'clear');
    }
    await waitFor('the management RVI up again', async () => (await mgmtState()) === 'up', 10_000, 20);
    // Still configured and registered there: the ping goes, and cn1 answered no second boot.
    await waitFor('lpar1 pings lpar2', () => pingOk('lpar1', '10.1.0.2'), 15_000, 100);
    expect((await cnView()).boots).toBe(before);
  }, 60_000);

  it('a control node with every LPAR stopped says degraded; a hypervisor does not count a partition that died', async () => {
    await p.kill('lpar1', 'STOP');
    await p.kill('lpar2', 'STOP');
    try {
      await waitFor(() => `cn1 degraded (is ${JSON.stringify(health('cn1'))})`, () => health('cn1')?.health === 'degraded' && /unreachable: lpar1, lpar2/.test(health('cn1')!.detail), 15_000, 50);
    } finally {
      await p.kill('lpar1', 'CONT');
      await p.kill('lpar2', 'CONT');
    }
    await waitFor('cn1 healthy again', () => health('cn1')?.health === 'healthy', 15_000, 50);
    // lpar2 is cec2's only partition.
    await waitFor('hypervisor-cec2 counts lpar2', () => /1 of 1 partitions attached/.test(health('hypervisor-cec2')?.detail ?? ''), 15_000, 50);
    await p.kill('lpar2', 'KILL');
    await waitFor(() => `hypervisor-cec2 counts no partition (is ${health('hypervisor-cec2')?.detail})`, () => /0 of 1 partitions attached/.test(health('hypervisor-cec2')?.detail ?? ''), 15_000, 50);
  }, 60_000);
});
