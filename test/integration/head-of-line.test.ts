import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPlatform } from '../helpers/platform.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { sleep } from '../helpers/wait.ts';

/**
 * Issue 11 item 1 on real processes: a receiver that stops reading (SIGSTOP)
 * in the middle of a TCP transfer into it stalls only what is addressed to it.
 * The sender's other RVIs stay up, its pings and ARP to a bystander work, and
 * the control node's broadcast reflection goes on for the others (the stopped
 * member's copies dropped and counted); once the reader is back the transfer
 * completes byte-exact. SMC is off: the transfer is the partition's TCP over
 * the virtual LAN's RVI, the path the switch's flow control is on.
 */
const PLATFORM = platformYaml({
  name: 'holtest',
  rclan: FAST_RCLAN,
  lpars: [
    { cec: 1, smc: false },
    { cec: 2, smc: false },
    { name: 'lpar4', cec: 2, smc: false, apps: [{ name: 'bulk-sink', port: 9000 }] },
  ],
  vlans: [{ name: 'blue', subnet: '10.6.0.0/24', members: ['lpar1', 'lpar2', 'lpar4'] }],
});

type Rec = Record<string, any>;

describe('a stopped receiver stalls only what is addressed to it', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
    // Every pair has resolved the others and its RVIs carry traffic before the test.
    for (const [from, dst] of [['lpar1', '10.6.0.2'], ['lpar1', '10.6.0.4'], ['lpar2', '10.6.0.1']]) {
      const r = (await p.admin(from, { t: 'ping', dst, count: 1, timeoutMs: 2000 })) as Rec;
      expect(r.received).toBe(1);
    }
  }, 180_000);
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  const ping = async (from: string, dst: string) => (await p.admin(from, { t: 'ping', dst, count: 3, timeoutMs: 1000 })) as Rec;
  /** lpar1's RVIs to anyone but lpar4 that are not up, as "peer/purpose: state". */
  const notUp = async () =>
    ((await p.admin('lpar1', { t: 'rvis' })).rvis as Rec[]).filter((r) => r.peer !== 'lpar4' && r.state !== 'up').map((r) => `${r.peer}/${r.purpose}: ${r.state}`);
  const switchPort = async (plane: string, node: string) => ((await p.admin(plane, { t: 'switch-status' })).ports as Rec[]).find((x) => x.node === node)!;

  it('keeps lpar1 -> lpar2 ping, ARP and RVIs, and the control node reflecting, while lpar4 is SIGSTOPped under a transfer from lpar1', async () => {
    const bytes = 400_000_000;
    const transfer = p.admin('lpar1', { t: 'tcp-send', dst: '10.6.0.4', port: 9000, bytes, seed: 11 }, 300_000) as Promise<Rec>;
    transfer.catch(() => undefined);
    await sleep(1500);
    await p.kill('lpar4', 'STOP');
    let resumed = false;
    try {
      // The switch holds lpar4's output full: lpar1's VI to it is told to stop on both planes (proof the stall bit).
      await sleep(1000);
      for (const plane of ['plane-a', 'plane-b']) {
        const port = await switchPort(plane, 'lpar4');
        expect(port.flowStops, `${plane}: stop notices for lpar4's output`).toBeGreaterThan(0);
      }
      // Several times deadAfterMs (250 ms) with lpar4 stopped: none of lpar1's other RVIs is marked down.
      for (let i = 0; i < 8; i++) {
        expect(await notUp()).toEqual([]);
        await sleep(250);
      }
      const direct = await ping('lpar1', '10.6.0.2');
      expect(direct.received).toBe(3);
      // ARP afresh from both sides: requests and answers go through the control node.
      await p.admin('lpar1', { t: 'arp-flush' });
      expect((await ping('lpar1', '10.6.0.2')).received).toBe(3);
      await p.admin('lpar2', { t: 'arp-flush' });
      expect((await ping('lpar2', '10.6.0.1')).received).toBe(3);

      // Broadcasts from lpar2, reflected by the control node to lpar1 and to the stopped lpar4.
      const rx = (await p.admin('lpar1', { t: 'udp-open', port: 9999 })) as Rec;
      const tx = (await p.admin('lpar2', { t: 'udp-open', broadcast: true })) as Rec;
      const count = 1000;
      await p.admin('lpar2', { t: 'udp-send', socket: tx.socket, dst: '10.6.0.255', port: 9999, size: 1000, count, window: 16 }, 60_000);
      let got = 0;
      for (let i = 0; i < 200 && got < count; i++) {
        got += ((await p.admin('lpar1', { t: 'udp-recv', socket: rx.socket })).messages as Rec[]).length;
        if (got < count) await sleep(100);
      }
      // Bystanders get every broadcast (nothing here drops them on lpar1's path); lpar4's copies beyond its RVI's window are dropped and counted.
      const blue = ((await p.admin('cn1', { t: 'cn-status' })).vlans as Rec[]).find((v) => v.name === 'blue')!;
      expect(got).toBe(count);
      expect(blue.stats.reflectDropped).toBeGreaterThanOrEqual(count);
      expect(await notUp()).toEqual([]);

      await p.kill('lpar4', 'CONT');
      resumed = true;
      const r = await transfer;
      expect(r.bytes).toBe(bytes);
      expect(r.answer).toBe(r.sha256);
      const sink = (await p.admin('lpar4', { t: 'app-report', port: 9000 })) as Rec;
      expect(sink.results.at(-1)).toMatchObject({ bytes, sha256: r.sha256 });
    } finally {
      if (!resumed) await p.kill('lpar4', 'CONT');
    }
  }, 360_000);
});
