import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPlatform } from '../helpers/platform.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Issue "Foundation", the RCLAN scenario on real processes: two LPARs stream on
 * an RVI while the planes are killed, restarted and hung under them.
 */
describe('RVI failover across the two planes', () => {
  let p: TestPlatform;

  const rvi = async (node: string, peer: string) => {
    const r = await p.admin(node, { t: 'rvis' });
    return (r.rvis as Array<Record<string, any>>).find((x) => x.peer === peer && x.purpose === 'perf')!;
  };
  const received = async () => (await p.admin('lpar2', { t: 'perf-received', peer: 'lpar1' })) as Record<string, number>;
  const expectExactlyOnceInOrder = (rx: Record<string, number>, count: number) => {
    expect({ received: rx.received, expected: rx.expected, missing: rx.missing, duplicates: rx.duplicates, outOfOrder: rx.outOfOrder, corrupt: rx.corrupt }).toEqual({
      received: count,
      expected: count,
      missing: 0,
      duplicates: 0,
      outOfOrder: 0,
      corrupt: 0,
    });
  };

  beforeAll(async () => {
    p = await TestPlatform.boot();
    await p.fm({ t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'perf' });
    await waitFor('perf RVI up', async () => (await rvi('lpar1', 'lpar2'))?.state === 'up');
  });

  afterAll(async () => {
    const alive = await p?.down();
    expect(alive).toEqual([]);
  });

  it('delivers 200k mixed-size messages exactly once and in order while plane a is SIGKILLed mid-stream', async () => {
    const count = 200_000;
    const sending = p.admin('lpar1', { t: 'perf-send', peer: 'lpar2', count, sizes: [64, 1500, 300, 9000, 16384, 1, 4096].map((s) => Math.max(s, 9)) }, 240_000);
    await waitFor('a fifth of the stream', async () => (await received()).received > count / 5, 60_000);
    await p.kill('plane-a', 'KILL');
    const sent = await sending;
    expect(sent.sent).toBe(count);
    expect(sent.acked).toBe(count);
    expect(sent.undeliverable).toBe(0);
    expectExactlyOnceInOrder(await received(), count);
    const r = await rvi('lpar1', 'lpar2');
    expect(r.legs[0]).toBe('down');
    expect(r.stats.legFailovers).toBeGreaterThan(0);
  });

  it('uses both legs again once plane a is back', async () => {
    await p.start('plane-a');
    await waitFor('both legs up', async () => (await rvi('lpar1', 'lpar2')).state === 'up');
    const before = (await rvi('lpar1', 'lpar2')).stats.perLegSent as number[];
    const sent = await p.admin('lpar1', { t: 'perf-send', peer: 'lpar2', count: 20_000, sizes: [1024] });
    expect(sent.acked).toBe(20_000);
    const after = (await rvi('lpar1', 'lpar2')).stats.perLegSent as number[];
    expect(after[0] - before[0]).toBeGreaterThan(5000);
    expect(after[1] - before[1]).toBeGreaterThan(5000);
    expectExactlyOnceInOrder(await received(), 20_000);
  });

  it('detects a hung (SIGSTOPped) plane b by heartbeat and fails over', async () => {
    const count = 60_000;
    const sending = p.admin('lpar1', { t: 'perf-send', peer: 'lpar2', count, sizes: [2048] }, 120_000);
    await waitFor('a sixth of the stream', async () => (await received()).received > count / 6);
    await p.kill('plane-b', 'STOP');
    try {
      await waitFor('leg b declared down', async () => (await rvi('lpar1', 'lpar2')).legs[1] === 'down', 5000);
      const sent = await sending;
      expect(sent.acked).toBe(count);
      expect(sent.undeliverable).toBe(0);
      expectExactlyOnceInOrder(await received(), count);
      // The switch's socket never closed: only the missing heartbeats told RCLAN.
      const r = await rvi('lpar1', 'lpar2');
      expect(r.state).toBe('degraded');
    } finally {
      await p.kill('plane-b', 'CONT');
    }
    await waitFor('both legs up after SIGCONT', async () => (await rvi('lpar1', 'lpar2')).state === 'up');
  });

  it('reports every unacknowledged message undeliverable when both planes die', async () => {
    const sending = p.admin('lpar1', { t: 'perf-send', peer: 'lpar2', count: 1_000_000, sizes: [4096] }, 120_000);
    await waitFor('stream under way', async () => (await received()).received > 10_000);
    await Promise.all([p.kill('plane-a', 'KILL'), p.kill('plane-b', 'KILL')]);
    const sent = (await sending) as Record<string, number>;
    expect(sent.undeliverable).toBeGreaterThan(0);
    expect(sent.acked + sent.undeliverable).toBe(sent.sent);
    expect(sent.inFlight).toBe(0);
    const rx = await received();
    // Nothing is delivered twice, nothing out of order; what arrived is at least what was acknowledged.
    expect(rx.duplicates).toBe(0);
    expect(rx.outOfOrder).toBe(0);
    expect(rx.received).toBeGreaterThanOrEqual(sent.acked as number);
    expect((await rvi('lpar1', 'lpar2')).state).toBe('failed');
  });
});
