import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PoolRefusal, SmbPool } from '../../services/hypervisor/smb-pool.ts';
import { claimPool, platformPoolDir, poolDir, removePool, sweepPools } from '../../shared/shm/pool-dir.ts';
import { mapShared } from '../../shared/shm/shm-file.ts';
import { CloseFlag, SMB_HEADER_BYTES, SmbView, elementBytes } from '../../shared/smc/smb.ts';
import { mountSmallTmpfs, tmpfsUsed } from '../helpers/small-tmpfs.ts';

// The hypervisor's books (services/hypervisor/smb-pool.ts) and the pool
// directory's ownership (shared/shm/pool-dir.ts), without a platform.

const log = pino({ level: 'silent' });
const G = { elements: 2, ringBytes: 4096 };

let platform: string;
let dir: string;
let pool: SmbPool;
let seq: number;

beforeEach(() => {
  platform = `unit-${crypto.randomBytes(3).toString('hex')}`;
  dir = poolDir(platform, 'cec1');
  claimPool(dir, { pid: process.pid, runDir: '/nowhere', name: 'hypervisor-cec1' });
  seq = 0;
  pool = new SmbPool(dir, G, () => ++seq, log);
});

afterEach(() => {
  fs.rmSync(platformPoolDir(platform), { recursive: true, force: true });
});

const smbFiles = () => fs.readdirSync(dir).filter((f) => f.startsWith('smb-'));

function refusal(fn: () => unknown): PoolRefusal {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PoolRefusal);
    return err as PoolRefusal;
  }
  throw new Error('not refused');
}

describe('SmbPool', () => {
  it('creates one formatted file per pair and grants each side its own view of an element', () => {
    const e = pool.alloc('lpar2', 'lpar1');
    const g2 = pool.grant(e, 'lpar2');
    expect(g2).toMatchObject({ smbId: 1, element: 0, side: 1, peer: 'lpar1', ringBytes: 4096, bytes: pool.bytes });
    expect(path.basename(g2.path)).toBe('smb-lpar1-lpar2.1');
    expect(e.token).toBeGreaterThan(0);
    const view = SmbView.open(mapShared(g2.path, g2.bytes));
    expect(view.token(0)).toBe(e.token);
    expect(pool.attach('lpar1', e.token)).toBe(e);
    expect(pool.grant(e, 'lpar1')).toMatchObject({ side: 0, peer: 'lpar2', path: g2.path, token: e.token });
    // A second connection of the pair shares the file.
    expect(pool.grant(pool.alloc('lpar1', 'lpar2'), 'lpar1')).toMatchObject({ smbId: 1, element: 1 });
    expect(smbFiles()).toEqual(['smb-lpar1-lpar2.1']);
  });

  it('refuses a third element of a two-element SMB with ENOBUFS', () => {
    pool.alloc('lpar1', 'lpar2');
    pool.alloc('lpar2', 'lpar1');
    expect(refusal(() => pool.alloc('lpar1', 'lpar2'))).toMatchObject({ code: 'ENOBUFS', cause: 'full' });
    // Another pair has its own SMB.
    expect(pool.grant(pool.alloc('lpar1', 'lpar3'), 'lpar1').smbId).toBe(2);
  });

  it('reserves an element’s pages before granting it: on a full tmpfs the next one is ENOMEM, and every granted page can be touched', () => {
    const tmpfs = mountSmallTmpfs(256 * 1024);
    try {
      // 64 KiB rings: the header and one element (~136 KiB) fit in 256 KiB, a second does not.
      const small = new SmbPool(tmpfs.dir, { elements: 8, ringBytes: 65536 }, () => ++seq, log);
      const e = small.alloc('lpar1', 'lpar2');
      const used = tmpfsUsed(tmpfs.dir);
      expect(used).toBeGreaterThanOrEqual(SMB_HEADER_BYTES + elementBytes(65536));
      const r = refusal(() => small.alloc('lpar1', 'lpar2'));
      expect(r.code).toBe('ENOMEM');
      expect(r.message).toMatch(/no room in .* for element 1/);
      // Refused before a byte was written: the attempt took no room.
      expect(tmpfsUsed(tmpfs.dir)).toBe(used);
      // Issue 11 item 6: what was granted is real memory, so filling both rings is no SIGBUS (it was, sparse).
      const g = small.grant(e, 'lpar1');
      const view = SmbView.open(mapShared(g.path, g.bytes));
      view.ring(g.element, 0).fill(1);
      view.ring(g.element, 1).fill(2);
      // Both sides let go: the pages go back to the tmpfs at once although this test still maps the file,
      // and the room is there for the pair's next element.
      small.attach('lpar2', e.token);
      small.release('lpar1', e.token);
      expect(small.release('lpar2', e.token)).toBe('freed');
      expect(tmpfsUsed(tmpfs.dir)).toBeLessThan(used - elementBytes(65536));
      expect(small.alloc('lpar2', 'lpar1').index).toBe(0);
      small.clear();
    } finally {
      tmpfs.unmount();
    }
  });

  it('refuses a new SMB whose header does not fit, leaving no file', () => {
    const tmpfs = mountSmallTmpfs(4096);
    try {
      fs.writeFileSync(path.join(tmpfs.dir, 'filler'), Buffer.alloc(4096));
      const small = new SmbPool(tmpfs.dir, G, () => ++seq, log);
      expect(refusal(() => small.alloc('lpar1', 'lpar2')).code).toBe('ENOMEM');
      expect(fs.readdirSync(tmpfs.dir)).toEqual(['filler']);
    } finally {
      tmpfs.unmount();
    }
  });

  it('lets only the peer attach: not the allocator, not a third partition, not a made-up token', () => {
    const e = pool.alloc('lpar1', 'lpar2');
    expect(refusal(() => pool.attach('lpar1', e.token))).toMatchObject({ code: 'EACCES', cause: 'own-element' });
    expect(refusal(() => pool.attach('lpar3', e.token))).toMatchObject({ code: 'EACCES', cause: 'not-party' });
    expect(refusal(() => pool.attach('lpar2', (e.token ^ 1) >>> 0 || 1))).toMatchObject({ code: 'EACCES', cause: 'unknown-token' });
    pool.release('lpar2', e.token);
    expect(refusal(() => pool.attach('lpar2', e.token))).toMatchObject({ code: 'EACCES', cause: 'released' });
  });

  it('frees an element once both sides released, and unlinks the file with the last one', () => {
    const a = pool.alloc('lpar1', 'lpar2');
    const b = pool.alloc('lpar1', 'lpar2');
    pool.attach('lpar2', a.token);
    pool.attach('lpar2', b.token);
    const file = a.smb.path;
    expect(pool.release('lpar1', a.token)).toBe('released');
    expect(pool.release('lpar1', a.token)).toBe('already');
    expect(pool.release('lpar2', a.token)).toBe('freed');
    expect(a.smb.view.token(a.index)).toBe(0);
    expect(fs.existsSync(file)).toBe(true);
    pool.release('lpar2', b.token);
    pool.release('lpar1', b.token);
    expect(fs.existsSync(file)).toBe(false);
    expect(pool.elementsInUse).toBe(0);
    // The pair's next file is a new SMB.
    expect(pool.grant(pool.alloc('lpar1', 'lpar2'), 'lpar1').smbId).toBe(2);
  });

  it('takes the file’s name away once both partitions map it; the pair’s elements keep coming from it, and smb-gone goes with the last', () => {
    const removed: number[] = [];
    pool.onRemoved = (smb) => removed.push(smb.id);
    const a = pool.alloc('lpar1', 'lpar2');
    pool.attach('lpar2', a.token);
    const file = a.smb.path;
    pool.mapped('lpar1', a.smb.id);
    expect(fs.existsSync(file)).toBe(true);
    expect(refusal(() => pool.mapped('lpar3', a.smb.id)).cause).toBe('not-party');
    expect(refusal(() => pool.mapped('lpar1', 99)).cause).toBe('unknown-smb');
    // Issue 11 item 6: with no name, nothing can open the file to truncate it under the mappings.
    pool.mapped('lpar2', a.smb.id);
    expect(fs.existsSync(file)).toBe(false);
    expect(smbFiles()).toEqual([]);
    const b = pool.alloc('lpar2', 'lpar1');
    expect(b.smb).toBe(a.smb);
    expect(pool.status().smbs).toEqual([expect.objectContaining({ smbId: a.smb.id, elementsInUse: 2 })]);
    for (const e of [a, b]) {
      pool.release('lpar1', e.token);
      pool.release('lpar2', e.token);
    }
    expect(removed).toEqual([a.smb.id]);
    expect(pool.status().smbs).toEqual([]);
  });

  it('gives a pair a new SMB once one of its partitions’ sessions ended (that partition’s mapping went with it)', () => {
    const a = pool.alloc('lpar1', 'lpar2');
    pool.attach('lpar2', a.token);
    pool.mapped('lpar1', a.smb.id);
    pool.mapped('lpar2', a.smb.id);
    pool.abandon('lpar2');
    const b = pool.alloc('lpar1', 'lpar2');
    expect(b.smb.id).not.toBe(a.smb.id);
    expect(fs.existsSync(b.smb.path)).toBe(true);
    expect(pool.status().smbs.map((x) => x.smbId)).toEqual([a.smb.id, b.smb.id]);
    pool.release('lpar1', a.token);
    expect(pool.status().smbs.map((x) => x.smbId)).toEqual([b.smb.id]);
  });

  it('frees at once what the allocator lets go before its peer attached', () => {
    const e = pool.alloc('lpar1', 'lpar2');
    expect(pool.release('lpar1', e.token)).toBe('freed');
    expect(smbFiles()).toEqual([]);
    expect(refusal(() => pool.attach('lpar2', e.token)).cause).toBe('unknown-token');
  });

  it('aborts a dead partition’s elements towards the survivor, and frees those the survivor never had', () => {
    const live = pool.alloc('lpar1', 'lpar2');
    pool.attach('lpar2', live.token);
    const unattached = pool.alloc('lpar1', 'lpar2');
    const r = pool.abandon('lpar1');
    expect(r.map((x) => [x.element.token, x.freed, x.notify])).toEqual([
      [live.token, false, 'lpar2'],
      [unattached.token, true, undefined],
    ]);
    const v = live.smb.view;
    expect(v.flags(live.index, 0)).toBe(CloseFlag.Abort);
    expect(v.flags(live.index, 1)).toBe(0);
    expect(v.takePending(1, 0)).toBe(1 << live.index);
    expect(smbFiles()).toHaveLength(1);
    expect(pool.abandon('lpar1')).toEqual([]);
    expect(pool.release('lpar2', live.token)).toBe('freed');
    expect(smbFiles()).toEqual([]);
  });

  it('aborts towards the allocator when the peer dies before attaching', () => {
    const e = pool.alloc('lpar2', 'lpar1');
    expect(pool.abandon('lpar1').map((x) => [x.freed, x.notify])).toEqual([[false, 'lpar2']]);
    expect(e.smb.view.flags(e.index, 0)).toBe(CloseFlag.Abort);
    expect(pool.abandon('lpar2').map((x) => x.freed)).toEqual([true]);
    expect(smbFiles()).toEqual([]);
  });

  it('shows a partition only its own SMBs and elements', () => {
    pool.alloc('lpar1', 'lpar2');
    pool.alloc('lpar3', 'lpar4');
    expect(pool.status().smbs).toHaveLength(2);
    const mine = pool.status('lpar3');
    expect(mine.smbs.map((s) => (s as { pair: string[] }).pair)).toEqual([['lpar3', 'lpar4']]);
    expect(mine.elements.map((e) => (e as { lpars: string[] }).lpars)).toEqual([['lpar3', 'lpar4']]);
  });
});

describe('pool directory', () => {
  it('is emptied of what a dead run left, and refused while a live hypervisor owns it', async () => {
    fs.writeFileSync(path.join(dir, 'smb-x-y.9'), 'stale');
    expect(claimPool(dir, { pid: process.pid, runDir: '/again', name: 'hypervisor-cec1' }).stale).toEqual(['smb-x-y.9']);
    // A live process that is a hypervisor owns it: a second platform of the same name is refused.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'hypervisor'], { stdio: 'ignore' });
    try {
      await new Promise((r) => other.once('spawn', r));
      claimPool(dir, { pid: other.pid!, runDir: '/other', name: 'hypervisor-cec1' });
      expect(() => claimPool(dir, { pid: process.pid, runDir: '/mine', name: 'hypervisor-cec1' })).toThrow(/belongs to hypervisor-cec1 \(pid \d+, run directory \/other\): another platform with this name/);
      expect(sweepPools(platform, ['cec1'], '/mine')).toEqual([]);
      expect(sweepPools(platform, ['cec1'], '/other')).toEqual([dir]);
      expect(fs.existsSync(platformPoolDir(platform))).toBe(false);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('goes with its platform directory once no CEC is left', () => {
    const dir2 = poolDir(platform, 'cec2');
    claimPool(dir2, { pid: process.pid, runDir: '/r', name: 'hypervisor-cec2' });
    removePool(dir);
    expect(fs.existsSync(platformPoolDir(platform))).toBe(true);
    removePool(dir2);
    expect(fs.existsSync(platformPoolDir(platform))).toBe(false);
  });
});
