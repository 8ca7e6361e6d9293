import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPlatform } from '../helpers/platform.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { sleep } from '../helpers/wait.ts';

/**
 * The partition's own TCP between two LPARs on a virtual LAN (issue "TCP, a
 * node:net-compatible socket API, and Linux's own TCP as a peer"): byte-exact
 * bulk both ways, many connections, Node's error codes, faults on the planes,
 * and Node's http running unmodified over it. The apps come from the platform file.
 * SMC is off on both partitions: these tests are about TCP itself (test/integration/smc.test.ts runs the same over SMC).
 */
const PLATFORM = platformYaml({
  name: 'tcptest',
  rclan: FAST_RCLAN,
  lpars: [
    { cec: 1, smc: false, apps: [{ name: 'bulk-sink', port: 9000 }] },
    { cec: 2, smc: false, apps: [{ name: 'bulk-sink', port: 9000 }, { name: 'echo', port: 7 }, { name: 'http', port: 80 }] },
  ],
  vlans: [{ name: 'blue', subnet: '10.5.0.0/24', members: ['lpar1', 'lpar2'] }],
});

type Rec = Record<string, any>;

describe('TCP between partitions', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  const send = (from: string, dst: string, bytes: number, seed: number) => p.admin(from, { t: 'tcp-send', dst, port: 9000, bytes, seed }, 240_000) as Promise<Rec>;

  it('moves 200 MB each way byte-exact (SHA-256 at both ends)', async () => {
    const [there, back] = await Promise.all([send('lpar1', '10.5.0.2', 200_000_000, 7), send('lpar2', '10.5.0.1', 200_000_000, 9)]);
    for (const r of [there, back]) {
      expect(r.bytes).toBe(200_000_000);
      expect(r.answer).toBe(r.sha256);
    }
    const sink = (await p.admin('lpar2', { t: 'app-report', port: 9000 })) as Rec;
    expect(sink.results.at(-1)).toMatchObject({ bytes: 200_000_000, sha256: there.sha256 });
  });

  it('serves 1000 concurrent connections', async () => {
    const r = (await p.admin('lpar1', { t: 'tcp-many', dst: '10.5.0.2', port: 7, count: 1000, size: 200 }, 240_000)) as Rec;
    expect(r.errors).toEqual({});
    expect(r.ok).toBe(1000);
  });

  it('refuses a connection to a closed port with ECONNREFUSED', async () => {
    await expect(p.admin('lpar1', { t: 'tcp-send', dst: '10.5.0.2', port: 9999, bytes: 10 })).rejects.toThrow(/connect ECONNREFUSED 10\.5\.0\.2:9999/);
  });

  it('completes transfers byte-exact with 1% drop and reordering delay on both planes', async () => {
    for (const plane of ['a', 'b']) {
      expect((await p.cli(['fault', plane, 'drop', '1'])).code).toBe(0);
      expect((await p.cli(['fault', plane, 'delay', '1', '--jitter', '4'])).code).toBe(0);
    }
    try {
      const [there, back] = await Promise.all([send('lpar1', '10.5.0.2', 20_000_000, 3), send('lpar2', '10.5.0.1', 20_000_000, 4)]);
      expect(there.answer).toBe(there.sha256);
      expect(back.answer).toBe(back.sha256);
    } finally {
      for (const plane of ['a', 'b']) await p.cli(['fault', plane, 'clear']);
    }
  });

  it("runs Node's http server and a keep-alive client over it: 10k requests, all answered", async () => {
    const small = (await p.admin('lpar1', { t: 'http-get', host: '10.5.0.2', port: 80, path: '/hi', count: 10_000 }, 240_000)) as Rec;
    expect(small.ok).toBe(10_000);
    expect(small.lastBody).toBe('hello from lparlab GET /hi\n');
    const big = (await p.admin('lpar1', { t: 'http-get', host: '10.5.0.2', port: 80, path: '/bytes/3000000', count: 3 }, 120_000)) as Rec;
    expect(big.ok).toBe(3);
    expect(big.bytes).toBe(9_000_000);
  });

  it('gives ECONNRESET, as Node does, when the peer partition was killed and came back', async () => {
    const held = (await p.admin('lpar1', { t: 'tcp-hold', dst: '10.5.0.2', port: 7 })) as Rec;
    expect(held.connected).toBe(true);
    await p.kill('lpar2', 'KILL');
    await p.start('lpar2');
    // The restarted partition has no such connection: it answers our next segment with a reset.
    await p.admin('lpar1', { t: 'tcp-held-write', id: held.id, data: Buffer.from('are you there?') });
    const deadline = Date.now() + 20_000;
    let state = (await p.admin('lpar1', { t: 'tcp-held', id: held.id })) as Rec;
    while (!state.closed && Date.now() < deadline) {
      await sleep(100);
      state = (await p.admin('lpar1', { t: 'tcp-held', id: held.id })) as Rec;
    }
    expect(state.code).toBe('ECONNRESET');
    expect(state.error).toMatch(/read ECONNRESET/);
  });
});
