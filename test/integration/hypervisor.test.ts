import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, hypervisorAddresses } from '../../services/supervisor/process-plan.ts';
import { HypervisorClient, type SmbeGrant } from '../../services/lpar/hypervisor-client.ts';
import { mapShared } from '../../shared/shm/shm-file.ts';
import { CloseFlag, SmbView } from '../../shared/smc/smb.ts';
import { TestPlatform } from '../helpers/platform.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

/**
 * The hypervisor of a CEC on a real platform (seed 002, Fig. 3: it sets up
 * the shared memory buffers; only the two partitions of an element get it).
 * The partitions' own processes are left out (--except), and the test holds
 * their sessions with their real credentials instead: lpar1, lpar2 and lpar4
 * on cec1, lpar3 on cec2.
 */
const PLATFORM = platformYaml({
  name: 'hvtest',
  rclan: FAST_RCLAN,
  lpars: [{ cec: 1 }, { cec: 1 }, { cec: 2 }, { cec: 1 }],
  smc: { ringBytes: 65536, elementsPerSmb: 4 },
});

const log = pino({ level: 'silent' });
let p: TestPlatform;
let urls: Map<string, string>;
const clients: HypervisorClient[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  p = await TestPlatform.boot(PLATFORM, ['lpar1', 'lpar2', 'lpar3', 'lpar4'].flatMap((n) => ['--except', n]));
  urls = hypervisorAddresses(p.runDir.readPlatform(), p.runDir);
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  for (const c of children.splice(0)) c.kill('SIGKILL');
  // Every session gone, every element freed: no buffer is left in the pools, only the owners' marks.
  await waitFor('SMB files removed after the test', () => smbFiles().length === 0, 5000, 10);
});

afterAll(async () => {
  expect(await p.down()).toEqual([]);
  expect(fs.existsSync(p.shmDir)).toBe(false);
});

function smbFiles(): string[] {
  if (!fs.existsSync(p.shmDir)) return [];
  return (fs.readdirSync(p.shmDir, { recursive: true }) as string[]).filter((f) => path.basename(f).startsWith('smb-'));
}

async function session(name: string, cec = 'cec1'): Promise<HypervisorClient> {
  const c = new HypervisorClient({ name, credential: p.runDir.readCredential(name), url: urls.get(cec)!, log });
  clients.push(c);
  await c.start();
  return c;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  throw new Error('expected a refusal');
}

async function hvStatus(cec = 'cec1'): Promise<Record<string, any>> {
  return p.admin(`hypervisor-${cec}`, { t: 'hv-status' });
}

/** A partition's session in a process of its own that allocates for `peer`; resolves with its grant. */
async function lparProcess(name: string, peer: string): Promise<{ child: ChildProcess; grant: SmbeGrant }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'helpers', 'hv-lpar-child.ts'), p.runDir.root, name, urls.get('cec1')!, peer], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const grant = await new Promise<SmbeGrant>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]) as SmbeGrant);
    });
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}): ${err}`)));
  });
  return { child, grant };
}

async function kill(child: ChildProcess): Promise<void> {
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

describe('hypervisor', () => {
  it('is up per CEC with its pool directory and the platform file geometry', async () => {
    const s = await hvStatus();
    expect(s.cec).toBe('cec1');
    expect(s.dir).toBe(path.join(p.shmDir, 'cec1'));
    expect(s.geometry).toEqual({ elements: 4, ringBytes: 65536 });
    expect(fs.existsSync(path.join(p.shmDir, 'cec2'))).toBe(true);
    expect(smbFiles()).toEqual([]);
  });

  it('grants an element to the allocator and its peer, and to no other partition', async () => {
    const [l1, l2, l4] = await Promise.all([session('lpar1'), session('lpar2'), session('lpar4')]);
    const refusedBefore = (await hvStatus()).stats.refused as number;
    const g1 = await l1.alloc('lpar2');
    expect(g1).toMatchObject({ side: 0, peer: 'lpar2', element: 0, ringBytes: 65536 });
    expect(path.dirname(g1.path)).toBe(path.join(p.shmDir, 'cec1'));
    expect(fs.statSync(g1.path).size).toBe(g1.bytes);
    const g2 = await l2.attach(g1.token);
    expect(g2).toEqual({ ...g1, side: 1, peer: 'lpar1' });

    // The file is the SMB the hypervisor formatted, with the element stamped with the token.
    const view = SmbView.open(mapShared(g2.path, g2.bytes));
    expect([view.elements, view.ringBytes, view.token(g2.element)]).toEqual([4, 65536, g1.token]);

    // Nobody else gets it: a third partition of the CEC, the allocator itself, a made-up token.
    expect(await codeOf(l4.attach(g1.token))).toBe('EACCES');
    expect(await codeOf(l1.attach(g1.token))).toBe('EACCES');
    expect(await codeOf(l2.attach((g1.token ^ 0x5a5a5a5a) >>> 0 || 1))).toBe('EACCES');
    expect(await codeOf(l4.attach(0))).toBe('EACCES');
    // Elements only with partitions of this CEC, never with itself.
    expect(await codeOf(l1.alloc('lpar3'))).toBe('EXDEV');
    expect(await codeOf(l1.alloc('lpar1'))).toBe('EINVAL');
    expect(await codeOf(l1.alloc('nobody'))).toBe('ENOENT');
    const s = await hvStatus();
    expect(s.stats.refused - refusedBefore).toBe(7);
    expect(s.elements).toEqual([expect.objectContaining({ token: g1.token, lpars: ['lpar1', 'lpar2'], element: 0, attached: true })]);
    expect(s.smbs).toEqual([expect.objectContaining({ path: g1.path, pair: ['lpar1', 'lpar2'], elementsInUse: 1 })]);

    expect((s.sessions as string[]).sort()).toEqual(['lpar1', 'lpar2', 'lpar4']);
    // A partition's own status names only its own buffers: lpar4 does not learn the pair's path.
    expect((await l1.status()).smbs).toEqual([expect.objectContaining({ path: g1.path })]);
    const other = await l4.status();
    expect([other.smbs, other.elements, other.dir, other.sessions]).toEqual([[], [], undefined, undefined]);
    expect(JSON.stringify(other)).not.toContain(g1.path);

    // The doorbell reaches the other partition of the element, and only from one of its partitions.
    const rung: number[] = [];
    l2.onSignal = (t) => rung.push(t);
    l4.signal(g1.token);
    l1.signal(g1.token);
    await waitFor('signal forwarded to lpar2', () => rung.length === 1, 5000, 10);
    expect(rung).toEqual([g1.token]);
    const refusedSignal = async () => ((await hvStatus()).stats.refused as number) - s.stats.refused === 1;
    for (let i = 0; i < 100 && !(await refusedSignal()); i++) await sleep(10);
    expect(await refusedSignal()).toBe(true);
    expect((await hvStatus()).stats.signals).toBeGreaterThanOrEqual(1);
    expect(rung).toEqual([g1.token]);

    // Both sides release: the element is free and the file is gone.
    l1.release(g1.token);
    await sleep(50);
    expect(fs.existsSync(g1.path)).toBe(true);
    l2.release(g1.token);
    await waitFor('SMB file unlinked', () => !fs.existsSync(g1.path), 5000, 10);
    expect((await hvStatus()).elements).toEqual([]);
  });

  it('refuses the session of a partition of another CEC', async () => {
    const c = new HypervisorClient({ name: 'lpar3', credential: p.runDir.readCredential('lpar3'), url: urls.get('cec1')!, log });
    clients.push(c);
    expect(await codeOf(c.start())).toBe('EACCES');
    expect(c.connected).toBe(false);
    // Its own CEC's hypervisor takes it.
    const own = await session('lpar3', 'cec2');
    expect(own.connected).toBe(true);
    // A credential that is not the partition's is refused too.
    const forged = new HypervisorClient({ name: 'lpar1', credential: p.runDir.readCredential('lpar2'), url: urls.get('cec1')!, log });
    clients.push(forged);
    expect(await codeOf(forged.start())).toBe('EACCES');
  });

  it('hands out a new SMB file, with a new id, once the old one is gone; ENOBUFS when full', async () => {
    const [l1, l2] = await Promise.all([session('lpar1'), session('lpar2')]);
    const grants: SmbeGrant[] = [];
    for (let i = 0; i < 4; i++) grants.push(await l1.alloc('lpar2'));
    expect(grants.map((g) => g.element)).toEqual([0, 1, 2, 3]);
    expect(new Set(grants.map((g) => g.smbId)).size).toBe(1);
    expect(await codeOf(l2.alloc('lpar1'))).toBe('ENOBUFS');
    // Released before the peer attached: freed at once.
    for (const g of grants) l1.release(g.token);
    await waitFor('SMB file unlinked', () => !fs.existsSync(grants[0].path), 5000, 10);
    const again = await l2.alloc('lpar1');
    expect(again.smbId).not.toBe(grants[0].smbId);
    expect(again.path).not.toBe(grants[0].path);
    expect(again.side).toBe(1);
    l2.release(again.token);
  });

  it('aborts a killed partition’s elements towards its peer, and the files go once the peer releases', async () => {
    const l2 = await session('lpar2');
    const rung: number[] = [];
    l2.onSignal = (t) => rung.push(t);
    const { child, grant } = await lparProcess('lpar1', 'lpar2');
    const mine = await l2.attach(grant.token);
    const view = SmbView.open(mapShared(mine.path, mine.bytes));
    expect(view.flags(mine.element, grant.side)).toBe(0);

    await kill(child);
    await waitFor('lpar2 signalled', () => rung.includes(grant.token), 5000, 10);
    // The dead side's flags word says Abort, and lpar2's CSBA bit points at the element.
    expect(view.flags(mine.element, grant.side) & CloseFlag.Abort).toBe(CloseFlag.Abort);
    expect(view.flags(mine.element, mine.side)).toBe(0);
    expect(view.takePending(mine.side, 0) & (1 << mine.element)).not.toBe(0);
    expect(fs.existsSync(mine.path)).toBe(true);
    const s = await hvStatus();
    expect(s.stats.reclaimed).toBeGreaterThanOrEqual(1);

    l2.release(mine.token);
    await waitFor('SMB file unlinked after the survivor released', () => !fs.existsSync(mine.path), 5000, 10);
    expect((await hvStatus()).smbs).toEqual([]);
  });

  it('frees at once when both partitions’ sessions are gone', async () => {
    const l2 = await session('lpar2');
    const { child, grant } = await lparProcess('lpar1', 'lpar2');
    await l2.attach(grant.token);
    l2.stop();
    await sleep(50);
    expect(fs.existsSync(grant.path)).toBe(true);
    await kill(child);
    await waitFor('SMB file unlinked when both sessions ended', () => !fs.existsSync(grant.path), 5000, 10);
  });

  it('empties a dead run’s pool when it starts again, and the partitions’ sessions come back', async () => {
    const [l1, l2] = await Promise.all([session('lpar1'), session('lpar2')]);
    let lost = 0;
    l1.onSessionLost = () => lost++;
    const g = await l1.alloc('lpar2');
    await p.kill('hypervisor-cec1', 'KILL');
    await waitFor('sessions lost', () => !l1.connected && !l2.connected, 5000, 10);
    expect(lost).toBe(1);
    // SIGKILL: the hypervisor could not clean up.
    expect(fs.existsSync(g.path)).toBe(true);
    await p.start('hypervisor-cec1');
    expect(fs.existsSync(g.path)).toBe(false);
    await waitFor('sessions back', () => l1.connected && l2.connected, 10_000, 10);
    // The old token means nothing to the new hypervisor; new ids never repeat old ones.
    expect(await codeOf(l2.attach(g.token))).toBe('EACCES');
    const fresh = await l1.alloc('lpar2');
    expect(fresh.smbId).toBeGreaterThan(g.smbId);
    l1.release(fresh.token);
  });

  it('removes its pool directory when it stops, and makes it again when it starts', async () => {
    const dir = path.join(p.shmDir, 'cec2');
    await p.kill('hypervisor-cec2', 'TERM');
    await waitFor('cec2 pool removed', () => !fs.existsSync(dir), 5000, 10);
    await p.start('hypervisor-cec2');
    expect(fs.existsSync(dir)).toBe(true);
  });
});
