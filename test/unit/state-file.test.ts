// issue 11 item 8: state files are written atomically and a corrupt one is refused naming the file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Nvram } from '../../services/control-node/boot/nvram.ts';
import { FabricManager } from '../../services/fabric-manager/fabric-manager.ts';
import { loadPlatformFile, defaultPlatformFile } from '../../shared/platform/platform.ts';
import { int } from '../../shared/protocol/check.ts';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { ServiceContext } from '../../shared/runtime/service.ts';
import { StateFileError, readState, readStateFile, writeFileAtomic, writeStateFile } from '../../shared/runtime/state-file.ts';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-state-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const platform = loadPlatformFile(defaultPlatformFile());
const planes = [
  { name: 'a', url: 'unix:/nonexistent/a' },
  { name: 'b', url: 'unix:/nonexistent/b' },
];
const fabricManager = (dir: string) => new FabricManager(platform, Buffer.alloc(32), planes, dir, log);

describe('state files', () => {
  it('are replaced whole, leave no temporary file, and a missing one is a first start', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'x.json');
    expect(readStateFile(file, int())).toBeUndefined();
    writeStateFile(file, 41);
    writeStateFile(file, 42);
    expect(readStateFile(file, int())).toBe(42);
    expect(fs.readdirSync(dir)).toEqual(['x.json']);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('never write through a symlink planted at the temporary name, nor read through one', () => {
    const dir = tmpDir();
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'untouched');
    const file = path.join(dir, 'x.json');
    fs.symlinkSync(victim, path.join(dir, `.x.json.${process.pid}.tmp`));
    writeFileAtomic(file, 'new');
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
    fs.rmSync(file);
    fs.symlinkSync(victim, file);
    expect(() => readStateFile(file, int())).toThrow(/x\.json is corrupt \(it is a symlink\)/);
  });

  it('that are truncated, empty or of the wrong shape are refused naming the file', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'p.json');
    fs.writeFileSync(file, '{"name":"lpar1","role":"lpar","pid":12');
    expect(() => readState(file)).toThrow(StateFileError);
    expect(() => readState(file)).toThrow(file);
    fs.writeFileSync(file, '');
    expect(() => readState(file)).toThrow(/is empty/);
    fs.writeFileSync(file, JSON.stringify({ name: 'lpar1', role: 'lpar', pid: 'x', health: 'healthy', detail: '', since: 'now' }));
    expect(() => readState(file)).toThrow(/field "pid"/);
  });
});

describe('the fabric manager\'s tables', () => {
  it('come back after a restart', () => {
    const dir = tmpDir();
    const r = fabricManager(dir).create('lpar1', 'lpar2', 'perf');
    expect(fabricManager(dir).status().rvis).toEqual([r]);
  });

  it('when truncated stop the fabric manager naming the file instead of starting it empty', () => {
    const dir = tmpDir();
    const fm = fabricManager(dir);
    fm.create('lpar1', 'lpar2', 'perf');
    fm.create('lpar1', 'lpar3', 'perf');
    const file = path.join(dir, 'fabric.json');
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text.slice(0, text.length - 20));
    expect(() => fabricManager(dir)).toThrow(`state file ${file} is corrupt`);
    // Well-formed JSON that does not hold the tables is refused too.
    fs.writeFileSync(file, JSON.stringify({ nextRvi: 3, nextVi: {}, rvis: [{ id: 1, a: 'lpar1', b: 'nobody', purpose: 'perf', viA: 1, viB: 1 }] }));
    expect(() => fabricManager(dir)).toThrow(/RVI 1 joins lpar1 and nobody/);
    fs.writeFileSync(file, '{}');
    expect(() => fabricManager(dir)).toThrow(/field "nextRvi"/);
  });
});

describe('NVRAM', () => {
  it('keeps its counter across restarts and never hands a MAC out twice', () => {
    const dir = tmpDir();
    const a = new Nvram(dir, 7);
    const m1 = a.macFor('lpar1', 'blue');
    const m2 = new Nvram(dir, 7).macFor('lpar2', 'blue');
    expect(m2).not.toBe(m1);
    expect(new Nvram(dir, 7).snapshot().counter).toBe(3);
  });

  it('refuses a counter that went back behind a MAC it handed out, and a truncated file, naming the file', () => {
    const dir = tmpDir();
    const nv = new Nvram(dir, 7);
    for (const l of ['lpar1', 'lpar2', 'lpar3']) nv.macFor(l, 'blue');
    const file = path.join(dir, 'nvram.json');
    const data = JSON.parse(fs.readFileSync(file, 'utf8')) as { counter: number };
    fs.writeFileSync(file, JSON.stringify({ ...data, counter: 2 }));
    expect(() => new Nvram(dir, 7)).toThrow(/nvram\.json is corrupt .*below the counter \(2\)/);
    fs.writeFileSync(file, JSON.stringify(data).slice(0, 10));
    expect(() => new Nvram(dir, 7)).toThrow(`state file ${file} is corrupt`);
  });
});

describe("a process's health file", () => {
  it('follows health at most every 250 ms with the latest, the first change at once, off the event loop, and is left whole', async () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'state'));
    const rd = new RunDir(root);
    const level = process.env.LPARLAB_LOG;
    process.env.LPARLAB_LOG = 'silent';
    const ctx = new ServiceContext('lpar', 'lpar1', rd, {} as never);
    if (level === undefined) delete process.env.LPARLAB_LOG;
    else process.env.LPARLAB_LOG = level;
    ctx.setHealth('healthy', 'a');
    // Written at once, off the event loop.
    await new Promise((r) => setTimeout(r, 100));
    expect(readState(rd.stateFile('lpar1'))).toMatchObject({ health: 'healthy', detail: 'a', pid: process.pid });
    // A burst of changes (paths flapping under load) is one write, of the last.
    for (let i = 0; i < 50; i++) ctx.setHealth(i % 2 ? 'degraded' : 'healthy', `flap ${i}`);
    expect(readState(rd.stateFile('lpar1'))?.detail).toBe('a');
    await new Promise((r) => setTimeout(r, 400));
    expect(readState(rd.stateFile('lpar1'))).toMatchObject({ health: 'degraded', detail: 'flap 49' });
    expect(fs.readdirSync(path.join(root, 'state'))).toEqual(['lpar1.json']);
    // flushHealth waits for a write under way and writes a waiting change at once (what shutdown does before the process exits).
    ctx.setHealth('healthy', 'b');
    ctx.setHealth('stopping', 'c');
    await ctx.flushHealth();
    expect(readState(rd.stateFile('lpar1'))).toMatchObject({ health: 'stopping', detail: 'c' });
  });
});
