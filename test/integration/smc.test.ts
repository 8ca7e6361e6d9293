import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPlatform } from '../helpers/platform.ts';

const PLATFORM = `
name: smctest
rclan: { heartbeatMs: 50, deadAfterMs: 250, undeliverableAfterMs: 1000, window: 256 }
planes: [a, b]
controlNodes: [{ name: cn1, serial: 1 }]
cecs: [{ name: cec1 }, { name: cec2 }]
lpars:
  - name: lpar1
    cec: cec1
    apps: [{ name: bulk-sink, port: 9000 }, { name: echo, port: 7 }, { name: http, port: 80 }]
  - name: lpar2
    cec: cec1
    apps: [{ name: bulk-sink, port: 9000 }, { name: echo, port: 7 }, { name: http, port: 80 }]
  - name: lpar3
    cec: cec2
    apps: [{ name: bulk-sink, port: 9000 }, { name: echo, port: 7 }, { name: http, port: 80 }]
vlans:
  - name: blue
    subnets: [10.6.0.0/24]
    members: [{ lpar: lpar1, ip: 10.6.0.1 }, { lpar: lpar2, ip: 10.6.0.2 }, { lpar: lpar3, ip: 10.6.0.3 }]
`;

type Rec = Record<string, any>;

/**
 * SMC under the socket API between real partitions: same CEC → SMC-D, other
 * CEC → SMC-R, each moving data byte-exact (SHA-256 at both ends) through the
 * unchanged bulk source and sink apps.
 */
describe('SMC between partitions', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });
  const send = (from: string, dst: string, bytes: number, seed: number) => p.admin(from, { t: 'tcp-send', dst, port: 9000, bytes, seed }, 240_000) as Promise<Rec>;

  const connections = async () => ((await p.admin('lpar1', { t: 'smc-status' })) as Rec).smc.stats.connections as Rec;

  it('uses SMC-D between LPARs of one CEC, byte-exact', async () => {
    const before = await connections();
    const r = await send('lpar1', '10.6.0.2', 50_000_000, 1);
    expect(r.answer).toBe(r.sha256);
    expect((await connections()).smcd).toBe(before.smcd + 1);
  });

  it('uses SMC-R between LPARs of different CECs, byte-exact', async () => {
    const before = await connections();
    const r = await send('lpar1', '10.6.0.3', 50_000_000, 1);
    expect(r.answer).toBe(r.sha256);
    expect((await connections()).smcr).toBe(before.smcr + 1);
  });
});
