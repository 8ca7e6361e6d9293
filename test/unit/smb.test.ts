import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../services/supervisor/process-plan.ts';
import { waitFor } from '../helpers/wait.ts';
import { SharedFile, createShared, mapShared } from '../../shared/shm/shm-file.ts';
import { mountSmallTmpfs, tmpfsUsed } from '../helpers/small-tmpfs.ts';
import {
  CloseFlag,
  ELEMENT_HEADER_BYTES,
  ElementWord,
  MAX_ELEMENTS,
  SMB_HEADER_BYTES,
  SMB_VERSION,
  SmbView,
  SmbWord,
  elementBytes,
  sideOf,
  smbBytes,
  smbFileName,
  smbInstanceFileName,
} from '../../shared/smc/smb.ts';

// The SMB layout (shared/smc/smb.ts, seed 002 Fig. 5) and the shared files
// under it (shared/shm/shm-file.ts), down to two real processes storing into
// one mapping.

const G = { elements: 40, ringBytes: 4096 };
const fresh = (g = G) => SmbView.format(Buffer.alloc(smbBytes(g)), g);

// tmpfs, as the hypervisor uses; each test file gets its own directory.
const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'lpl-smb-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('SmbView.format', () => {
  it('writes a header open() accepts, with the geometry it was given', () => {
    const v = fresh();
    const o = SmbView.open(v.buf);
    expect([o.elements, o.ringBytes, o.elementBytes]).toEqual([40, 4096, elementBytes(4096)]);
    expect(Atomics.load(o.words, SmbWord.Version)).toBe(SMB_VERSION);
    expect(smbBytes(G)).toBe(SMB_HEADER_BYTES + 40 * elementBytes(4096));
    expect(elementBytes(4096) % 4096).toBe(0);
    expect(elementBytes(4096)).toBeGreaterThanOrEqual(ELEMENT_HEADER_BYTES + 2 * 4096);
  });

  it('refuses geometry outside the layout, naming the bound', () => {
    const buf = Buffer.alloc(smbBytes({ elements: 1, ringBytes: 4096 }));
    expect(() => SmbView.format(buf, { elements: 0, ringBytes: 4096 })).toThrow(/element count 0 is outside 1\.\.1024/);
    expect(() => SmbView.format(buf, { elements: MAX_ELEMENTS + 1, ringBytes: 4096 })).toThrow(/element count 1025/);
    expect(() => SmbView.format(buf, { elements: 1.5, ringBytes: 4096 })).toThrow(RangeError);
    expect(() => SmbView.format(buf, { elements: 1, ringBytes: 6000 })).toThrow(/ring size 6000 must be a power of two/);
    expect(() => SmbView.format(buf, { elements: 1, ringBytes: 2048 })).toThrow(/power of two in 4096\.\.16777216/);
    expect(() => SmbView.format(buf, { elements: 1, ringBytes: 32 * 1024 * 1024 })).toThrow(RangeError);
  });

  it('refuses a mapping smaller than the geometry needs', () => {
    expect(() => SmbView.format(Buffer.alloc(smbBytes(G) - 1), G)).toThrow(/smaller than the \d+ its geometry needs/);
  });
});

describe('SmbView.open', () => {
  it('refuses a mapping with no room for the header', () => {
    expect(() => SmbView.open(Buffer.alloc(SMB_HEADER_BYTES - 4))).toThrow(/no room for its header/);
  });

  it('refuses a bad magic, another version, and a geometry the header cannot have', () => {
    expect(() => SmbView.open(Buffer.alloc(smbBytes(G)))).toThrow(/bad magic/);
    const v = fresh();
    Atomics.store(v.words, SmbWord.Version, SMB_VERSION + 1);
    expect(() => SmbView.open(v.buf)).toThrow(`SMB version ${SMB_VERSION + 1} is not ${SMB_VERSION}`);
    const ring = fresh();
    Atomics.store(ring.words, SmbWord.RingBytes, 5000);
    expect(() => SmbView.open(ring.buf)).toThrow(/power of two/);
    const size = fresh();
    Atomics.store(size.words, SmbWord.ElementBytes, 4096);
    expect(() => SmbView.open(size.buf)).toThrow(/element size does not match its ring size/);
  });

  it('refuses a mapping shorter than the header claims (which would be SIGBUS, not an error)', () => {
    const v = fresh();
    expect(() => SmbView.open(v.buf.subarray(0, smbBytes(G) - 4096))).toThrow(/smaller than the \d+ its header claims/);
  });
});

describe('elements', () => {
  it('lay out rings of exactly ringBytes, apart from each other and from the headers', () => {
    const v = fresh();
    const spans: Array<[number, number]> = [];
    for (let i = 0; i < v.elements; i++) {
      const start = v.elementOffset(i);
      expect(start).toBe(SMB_HEADER_BYTES + i * v.elementBytes);
      for (const dir of [0, 1] as const) {
        const r = v.ring(i, dir);
        expect(r.length).toBe(v.ringBytes);
        const off = r.byteOffset - v.buf.byteOffset;
        expect(off).toBeGreaterThanOrEqual(start + ELEMENT_HEADER_BYTES);
        expect(off + r.length).toBeLessThanOrEqual(start + v.elementBytes);
        spans.push([off, off + r.length]);
      }
    }
    spans.sort((a, b) => a[0] - b[0]);
    for (let k = 1; k < spans.length; k++) expect(spans[k][0]).toBeGreaterThanOrEqual(spans[k - 1][1]);
    expect(spans.at(-1)![1]).toBeLessThanOrEqual(v.buf.length);
  });

  it('refuses element indexes outside the SMB', () => {
    const v = fresh();
    for (const bad of [-1, 40, 1.5, Number.NaN]) {
      expect(() => v.elementOffset(bad)).toThrow(RangeError);
      expect(() => v.ring(bad, 0)).toThrow(RangeError);
      expect(() => v.markPending(0, bad)).toThrow(/outside 0\.\.39/);
    }
  });

  it('resetElement zeroes cursors and flags, clears both CSBA bits and stamps the token (any u32)', () => {
    const v = fresh();
    for (let w = 1; w <= ElementWord.Flags1; w++) Atomics.store(v.words, v.elementWord(7, w), 99);
    v.markPending(0, 7);
    v.markPending(1, 7);
    v.markPending(1, 8);
    v.resetElement(7, 0xdeadbeef);
    expect(v.token(7)).toBe(0xdeadbeef);
    for (let w = 1; w <= ElementWord.Flags1; w++) expect(Atomics.load(v.words, v.elementWord(7, w))).toBe(0);
    expect(v.takePending(0, 0)).toBe(0);
    expect(v.takePending(1, 0)).toBe(1 << 8);
    v.resetElement(7, 0);
    expect(v.token(7)).toBe(0);
  });

  it('keeps each side its own close flags', () => {
    const v = fresh();
    v.setFlags(3, 1, CloseFlag.DoneWriting);
    v.setFlags(3, 1, CloseFlag.Abort);
    expect(v.flags(3, 1)).toBe(CloseFlag.DoneWriting | CloseFlag.Abort);
    expect(v.flags(3, 0)).toBe(0);
    expect(v.flags(4, 1)).toBe(0);
  });
});

describe('connection status bit array', () => {
  it('has one bit per element and side, across word boundaries, taken whole', () => {
    const v = fresh();
    expect(v.csbaWords).toBe(2);
    for (const i of [0, 31, 32, 39]) v.markPending(1, i);
    v.markPending(0, 5);
    expect(v.takePending(1, 0) >>> 0).toBe((1 | (1 << 31)) >>> 0);
    expect(v.takePending(1, 1)).toBe(1 | (1 << 7));
    expect(v.takePending(1, 0)).toBe(0);
    v.markPending(0, 6);
    v.clearPending(0, 5);
    expect(v.takePending(0, 0)).toBe(1 << 6);
  });
});

describe('asleep words', () => {
  it('hand the waker exactly one signal per sleep, per side', () => {
    const v = fresh();
    expect(v.takeAsleep(0)).toBe(false);
    v.setAsleep(0, true);
    expect(v.takeAsleep(1)).toBe(false);
    expect(v.takeAsleep(0)).toBe(true);
    expect(v.takeAsleep(0)).toBe(false);
    v.setAsleep(1, true);
    v.setAsleep(1, false);
    expect(v.takeAsleep(1)).toBe(false);
  });
});

describe('names and sides', () => {
  it('name one file per pair whichever side asks, side 0 the name that sorts first', () => {
    expect(smbFileName('lpar2', 'lpar1')).toBe(smbFileName('lpar1', 'lpar2'));
    expect(sideOf('lpar1', 'lpar2')).toBe(0);
    expect(sideOf('lpar2', 'lpar1')).toBe(1);
    expect(smbInstanceFileName('a-b', 'c', 1)).not.toBe(smbInstanceFileName('a', 'b-c', 2));
    expect(smbInstanceFileName('lpar2', 'lpar1', 7)).toBe(`${smbFileName('lpar1', 'lpar2')}.7`);
  });
});

describe('shared files', () => {
  it('are created exclusively, mode 0600, every page reserved, and mapped', () => {
    const file = path.join(dir, 'create');
    const buf = createShared(file, 1 << 20);
    expect(buf.length).toBe(1 << 20);
    const st = fs.statSync(file);
    expect(st.size).toBe(1 << 20);
    expect(st.mode & 0o777).toBe(0o600);
    // Issue 11 item 6: real pages, not a sparse file whose first touch on a full tmpfs is a SIGBUS.
    expect(st.blocks * 512).toBeGreaterThanOrEqual(1 << 20);
    expect(() => createShared(file, 4096)).toThrow(/EEXIST/);
    expect(() => createShared(path.join(dir, 'zero'), 0)).toThrow(/not a positive/);
  });

  it('reserve what they are told to: the rest stays sparse until reserved, and a full tmpfs is ENOSPC, not a SIGBUS', () => {
    const tmpfs = mountSmallTmpfs(256 * 1024);
    try {
      const f = SharedFile.create(path.join(tmpfs.dir, 'part'), 1 << 20, 4096);
      expect(f.buffer.length).toBe(1 << 20);
      expect(tmpfsUsed(tmpfs.dir)).toBeLessThan(64 * 1024);
      f.reserve(4096, 128 * 1024);
      expect(tmpfsUsed(tmpfs.dir)).toBeGreaterThanOrEqual(128 * 1024);
      // Past the mount's size: an error with its code, and this process still runs.
      let code: string | undefined;
      try {
        f.reserve(256 * 1024, 512 * 1024);
      } catch (err) {
        code = (err as NodeJS.ErrnoException).code;
      }
      expect(code).toBe('ENOSPC');
      f.buffer.fill(7, 0, 132 * 1024);
      f.close();
      // Whole-file creation that cannot be reserved is refused and leaves no file.
      expect(() => createShared(path.join(tmpfs.dir, 'big'), 1 << 20)).toThrow(/ENOSPC/);
      expect(fs.existsSync(path.join(tmpfs.dir, 'big'))).toBe(false);
    } finally {
      tmpfs.unmount();
    }
  });

  it('map an existing file only as far as it reaches, with a clear error', () => {
    const file = path.join(dir, 'short');
    createShared(file, 8192);
    expect(mapShared(file, 8192).length).toBe(8192);
    expect(() => mapShared(file, 8193)).toThrow(`shared file ${file} has 8192 bytes, fewer than the 8193 to map`);
    expect(() => mapShared(path.join(dir, 'missing'), 4096)).toThrow(/ENOENT/);
  });

  it('are one memory for two mappings in one process', () => {
    const file = path.join(dir, 'twice');
    const a = SmbView.format(createShared(file, smbBytes(G)), G);
    const b = SmbView.open(mapShared(file, smbBytes(G)));
    a.resetElement(2, 1234);
    expect(b.token(2)).toBe(1234);
    b.markPending(0, 2);
    expect(a.takePending(0, 0)).toBe(1 << 2);
  });

  it('are one memory for two processes: each sees the other’s Atomics stores and ring bytes', async () => {
    const file = path.join(dir, 'two-processes');
    const view = SmbView.format(createShared(file, smbBytes(G)), G);
    const token = 0xfeedf00d;
    view.resetElement(0, token);
    const text = Buffer.from('from the test');
    text.copy(view.ring(0, 0));
    Atomics.store(view.words, view.elementWord(0, ElementWord.Prod0), text.length);

    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'helpers', 'smb-child.ts'), file, String(smbBytes(G)), String(token)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? 1)));

    await waitFor(
      () => `the child to publish: ${stderr}`,
      () => {
        if (Atomics.load(view.words, view.elementWord(0, ElementWord.Prod1)) !== 0) return true;
        if (child.exitCode !== null) throw new Error(`the child never published: ${stderr}`);
        return false;
      },
      20_000,
      5,
    );
    expect(Atomics.load(view.words, view.elementWord(0, ElementWord.Cons0))).toBe(text.length);
    const prod1 = Atomics.load(view.words, view.elementWord(0, ElementWord.Prod1));
    expect(view.ring(0, 1).subarray(0, prod1).toString()).toBe('from the child');
    expect(view.takePending(0, 0)).toBe(1);
    Atomics.store(view.words, view.elementWord(0, ElementWord.Cons1), prod1);
    expect(await exited, stderr).toBe(0);
  });
});
