import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlChannel } from '../../shared/control/channel.ts';
import { authenticateTo } from '../../shared/control/auth.ts';
import { connectLink } from '../../shared/link/transport.ts';
import { processLogger } from '../../shared/runtime/log.ts';
import { fabricAddresses } from '../../services/supervisor/process-plan.ts';
import { TestPlatform } from '../helpers/platform.ts';
import { sleep } from '../helpers/wait.ts';

const log = processLogger('test', 'test');

/** Issue "Foundation": only privileged callers make paths; identities cannot be forged; RDMA is key- and bounds-checked. */
describe('fabric authority and RDMA protection', () => {
  let p: TestPlatform;
  let addr: ReturnType<typeof fabricAddresses>;

  const session = async (url: string, name: string, credential: Buffer) => {
    const ch = new ControlChannel(await connectLink(url), log);
    const welcome = await authenticateTo(ch, name, credential);
    return { ch, welcome };
  };

  beforeAll(async () => {
    p = await TestPlatform.boot();
    addr = fabricAddresses(p.runDir.readPlatform(), p.runDir);
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('refuses an LPAR that asks the fabric manager for an RVI, and logs the refusal', async () => {
    const { ch } = await session(addr.fm, 'lpar1', p.runDir.readCredential('lpar1'));
    try {
      await expect(ch.request({ t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'sneaky' })).rejects.toThrow(/permission denied: lpar "lpar1"/);
      await expect(ch.request({ t: 'rvi-destroy', id: 1 })).rejects.toThrow(/permission denied/);
      // Its own RVIs it may list; others' it does not see.
      const listed = (await ch.request({ t: 'rvi-list' })).rvis as Array<{ a: string; b: string }>;
      expect(listed.every((r) => r.a === 'lpar1' || r.b === 'lpar1')).toBe(true);
    } finally {
      ch.close();
    }
    const rvis = ((await p.fm({ t: 'rvi-list' })).rvis as Array<{ purpose: string }>).map((r) => r.purpose);
    expect(rvis).not.toContain('sneaky');
    // pino writes asynchronously: wait for the line rather than race it.
    const deadline = Date.now() + 5000;
    while (!/refused: processing nodes may not establish paths/.test(fs.readFileSync(p.runDir.logFile('fabric-manager'), 'utf8')) && Date.now() < deadline) await sleep(25);
    expect(fs.readFileSync(p.runDir.logFile('fabric-manager'), 'utf8')).toMatch(/refused: processing nodes may not establish paths/);
  });

  it('lets a control node and management create RVIs', async () => {
    const { ch } = await session(addr.fm, 'cn1', p.runDir.readCredential('cn1'));
    try {
      const r = await ch.request({ t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'by-cn' });
      expect((r.rvi as { purpose: string }).purpose).toBe('by-cn');
    } finally {
      ch.close();
    }
  });

  it('refuses a node that claims another name, at the fabric manager and at a plane', async () => {
    const lparCred = p.runDir.readCredential('lpar1');
    await expect(session(addr.fm, 'cn1', lparCred)).rejects.toThrow(/bad credential for "cn1"/);
    await expect(session(addr.fm, 'mgmt', lparCred)).rejects.toThrow(/bad credential/);
    await expect(session(addr.planes[0].url, 'lpar2', lparCred)).rejects.toThrow(/bad credential for "lpar2"/);
    await expect(session(addr.fm, 'nobody', lparCred)).rejects.toThrow(/unknown node/);
  });

  it('counts and drops malformed frames at a plane and keeps forwarding', async () => {
    const link = await connectLink(addr.planes[0].url);
    link.send(Buffer.from([0, 0, 0, 2, 9, 9]));
    link.send(Buffer.from([0, 0, 0, 1, 1]));
    await sleep(100);
    link.close();
    const sw = await p.admin('plane-a', { t: 'switch-status' });
    expect((sw.stats as Record<string, number>).refusedAttach).toBeGreaterThan(0);
    expect((await p.admin('lpar1', { t: 'status' })).health).toBe('healthy');
  });

  it('applies a good RDMA WRITE and refuses a wrong key or an out-of-bounds write without touching the region', async () => {
    await p.fm({ t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'perf' });
    for (let i = 0; i < 200; i++) {
      const r = (await p.admin('lpar1', { t: 'rvis' })).rvis as Array<{ purpose: string; state: string }>;
      if (r.find((x) => x.purpose === 'perf')?.state === 'up') break;
      await sleep(25);
    }
    const reg = await p.admin('lpar2', { t: 'rdma-register', peer: 'lpar1', size: 4096 });
    const region = reg.region as number;
    const key = reg.key as number;
    const data = Buffer.from('written by RDMA');
    await p.admin('lpar1', { t: 'rdma-write', peer: 'lpar2', region, key, offset: 100, data });
    const read = async () => Buffer.from((await p.admin('lpar2', { t: 'rdma-read', peer: 'lpar1', region })).data as Uint8Array);
    const good = await read();
    expect(good.subarray(100, 100 + data.length).toString()).toBe('written by RDMA');

    await expect(p.admin('lpar1', { t: 'rdma-write', peer: 'lpar2', region, key: (key ^ 1) >>> 0, offset: 0, data: Buffer.from('evil') })).rejects.toThrow(/bad memory key/);
    await expect(p.admin('lpar1', { t: 'rdma-write', peer: 'lpar2', region, key, offset: 4090, data: Buffer.alloc(64, 0xee) })).rejects.toThrow(/out of the region bounds/);
    await expect(p.admin('lpar1', { t: 'rdma-write', peer: 'lpar2', region: region + 99, key, offset: 0, data: Buffer.from('x') })).rejects.toThrow(/no such memory region/);
    expect((await read()).equals(good)).toBe(true);
    const lpar2Rvi = ((await p.admin('lpar2', { t: 'rvis' })).rvis as Array<{ purpose: string; stats: Record<string, number> }>).find((x) => x.purpose === 'perf')!;
    expect(lpar2Rvi.stats.rdmaRefused).toBe(3);
  });
});
