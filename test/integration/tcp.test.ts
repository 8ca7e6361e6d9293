import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPlatform } from '../helpers/platform.ts';

/**
 * The partition's own TCP between two LPARs on a virtual LAN (groundwork of
 * issue "TCP, a node:net-compatible socket API"): byte-exact bulk transfer both
 * ways, Node's error codes, and Node's http running unmodified over it.
 */
const PLATFORM = `
name: tcptest
planes: [a, b]
controlNodes: [{ name: cn1, serial: 1 }]
cecs: [{ name: cec1 }, { name: cec2 }]
lpars: [{ name: lpar1, cec: cec1 }, { name: lpar2, cec: cec2 }]
vlans:
  - name: blue
    subnets: [10.5.0.0/24]
    members: [{ lpar: lpar1, ip: 10.5.0.1 }, { lpar: lpar2, ip: 10.5.0.2 }]
`;

type Rec = Record<string, any>;

describe('TCP between partitions', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
    await p.admin('lpar1', { t: 'app-start', app: 'bulk-sink', port: 9000 });
    await p.admin('lpar2', { t: 'app-start', app: 'bulk-sink', port: 9000 });
    await p.admin('lpar2', { t: 'app-start', app: 'http', port: 80 });
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('moves 50 MB each way byte-exact (SHA-256 at both ends)', async () => {
    const [there, back] = (await Promise.all([
      p.admin('lpar1', { t: 'tcp-send', dst: '10.5.0.2', port: 9000, bytes: 50_000_000, seed: 7 }, 120_000),
      p.admin('lpar2', { t: 'tcp-send', dst: '10.5.0.1', port: 9000, bytes: 50_000_000, seed: 9 }, 120_000),
    ])) as Rec[];
    for (const r of [there, back]) {
      expect(r.bytes).toBe(50_000_000);
      expect(r.answer).toBe(r.sha256);
    }
    const sink = (await p.admin('lpar2', { t: 'app-report', port: 9000 })) as Rec;
    expect(sink.results.at(-1)).toMatchObject({ bytes: 50_000_000, sha256: there.sha256 });
  });

  it('refuses a connection to a closed port with ECONNREFUSED', async () => {
    await expect(p.admin('lpar1', { t: 'tcp-send', dst: '10.5.0.2', port: 9999, bytes: 10 })).rejects.toThrow(/connect ECONNREFUSED 10\.5\.0\.2:9999/);
  });

  it("runs Node's http server and a keep-alive client over it", async () => {
    const small = (await p.admin('lpar1', { t: 'http-get', host: '10.5.0.2', port: 80, path: '/hi', count: 500 }, 120_000)) as Rec;
    expect(small.ok).toBe(500);
    expect(small.lastBody).toBe('hello from lparlab GET /hi\n');
    const big = (await p.admin('lpar1', { t: 'http-get', host: '10.5.0.2', port: 80, path: '/bytes/3000000', count: 3 }, 120_000)) as Rec;
    expect(big.ok).toBe(3);
    expect(big.bytes).toBe(9_000_000);
    const ss = (await p.admin('lpar2', { t: 'ss' })) as Rec;
    expect(ss.listening).toContain('0.0.0.0:80');
  });
});
