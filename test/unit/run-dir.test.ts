// issue 11 item 9: a run directory another user could have planted, or that others can write, is refused;
// key files are created exclusively and never through a symlink.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPlatformFile, defaultPlatformFile } from '../../shared/platform/platform.ts';
import { RunDir, UnsafeRunDirError, checkRunDirPath } from '../../shared/runtime/run-dir.ts';
import { KEPT_AFTER_DOWN, cleanRunDir } from '../../services/supervisor/clean.ts';
import { claimPool } from '../../shared/shm/pool-dir.ts';
import { cli } from '../helpers/platform.ts';

const NOBODY = 65534;
const platform = loadPlatformFile(defaultPlatformFile());
const names = ['fabric-manager', 'plane-a', 'plane-b', 'lpar1'];
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A base directory like /tmp: world-writable with the sticky bit, so another user can make entries in it. */
function stickyBase(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-rundir-'));
  dirs.push(d);
  fs.chmodSync(d, 0o1777);
  return d;
}

/** Runs `cmd` as the unprivileged user nobody (setpriv); the test needs root for that and fails naming it otherwise. */
function asNobody(cmd: string[]): void {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (to act as uid 65534 with setpriv)');
  execFileSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '--', ...cmd], { stdio: 'pipe' });
}

describe('run directories', () => {
  it('pre-created by another user are refused naming the directory, and no key is written into them', async () => {
    const base = stickyBase();
    const planted = path.join(base, 'planted');
    asNobody(['mkdir', '-m', '0700', planted]);
    expect(() => new RunDir(planted).initialise(platform, names)).toThrow(`unsafe run directory: ${planted} is owned by uid ${NOBODY}`);
    // The CLI says the same and writes nothing.
    const r = await cli(['init', '--run-dir', planted]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`unsafe run directory: ${planted} is owned by uid ${NOBODY}`);
    expect(fs.readdirSync(planted)).toEqual([]);
  });

  it('under a directory another user owns (the predictable /tmp/lparlab-<uid>) are refused naming that directory', () => {
    const base = stickyBase();
    const parent = path.join(base, `lparlab-${process.getuid?.()}`);
    asNobody(['mkdir', '-m', '0755', parent]);
    const rd = new RunDir(path.join(parent, 'default'));
    expect(() => rd.prepare()).toThrow(`unsafe run directory: ${parent} (above the run directory) is owned by uid ${NOBODY}`);
  });

  it('as shared-memory pools, pre-created by another user, are refused too', () => {
    const base = stickyBase();
    const pool = path.join(base, 'cec1');
    asNobody(['mkdir', '-m', '0700', pool]);
    expect(() => claimPool(pool, { pid: process.pid, runDir: '/r', name: 'hypervisor-cec1' })).toThrow(`unsafe shared-memory pool: ${pool} is owned by uid ${NOBODY}`);
  });

  it('that others can write to, or that are symlinks, are refused', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-rundir-'));
    dirs.push(base);
    const open = path.join(base, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    expect(() => new RunDir(open).prepare()).toThrow(`unsafe run directory: ${open} is group- or world-writable (mode 0777)`);
    const real = path.join(base, 'real');
    fs.mkdirSync(real, { mode: 0o700 });
    const link = path.join(base, 'link');
    fs.symlinkSync(real, link);
    expect(() => new RunDir(link).prepare()).toThrow(`unsafe run directory: ${link} is a symlink`);
    // A symlink above the run directory made by another user is not followed either.
    const sticky = stickyBase();
    asNobody(['ln', '-s', real, path.join(sticky, 'hop')]);
    expect(() => checkRunDirPath(path.join(sticky, 'hop', 'x'))).toThrow(`${path.join(sticky, 'hop')} is a symlink owned by uid ${NOBODY}`);
  });

  it('never write keys, credentials or the platform file through a symlink left in them', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-rundir-'));
    dirs.push(base);
    const victim = path.join(base, 'victim');
    fs.writeFileSync(victim, 'untouched', { mode: 0o644 });
    const rd = new RunDir(path.join(base, 'run'));
    fs.mkdirSync(path.join(rd.root, 'keys'), { recursive: true, mode: 0o700 });
    fs.chmodSync(rd.root, 0o700);
    fs.symlinkSync(victim, rd.keyFile);
    fs.symlinkSync(victim, rd.credFile('mgmt'));
    fs.symlinkSync(victim, rd.platformFile);
    rd.initialise(platform, names);
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
    for (const f of [rd.keyFile, rd.credFile('mgmt'), rd.platformFile]) {
      const st = fs.lstatSync(f);
      expect(st.isFile(), f).toBe(true);
      expect(st.mode & 0o777, f).toBe(0o600);
    }
    expect(rd.readKey().length).toBeGreaterThan(0);
    expect(rd.readPlatform().name).toBe(platform.name);
  });

  it('refuse a key that is a symlink, another user\'s, or readable by others', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-rundir-'));
    dirs.push(base);
    const rd = new RunDir(path.join(base, 'run'));
    rd.initialise(platform, names);
    fs.chmodSync(rd.credFile('mgmt'), 0o644);
    expect(() => rd.readCredential('mgmt')).toThrow(`${rd.credFile('mgmt')} is open to other users (mode 0644)`);
    fs.chownSync(rd.keyFile, NOBODY, NOBODY);
    expect(() => rd.readKey()).toThrow(UnsafeRunDirError);
    expect(() => rd.readKey()).toThrow(`${rd.keyFile} is owned by uid ${NOBODY}`);
    fs.rmSync(rd.keyFile);
    fs.symlinkSync(rd.credFile('lpar1'), rd.keyFile);
    expect(() => rd.readKey()).toThrow(`${rd.keyFile} is a symlink`);
  });
});

describe('down', () => {
  // issue 11 item 14: the README promises no state left; the keys go, NVRAM (data/) and logs stay, as it says.
  it('removes keys, credentials, sockets and state, and keeps only what the README names', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-rundir-'));
    dirs.push(base);
    const rd = new RunDir(path.join(base, 'run'));
    rd.initialise({ ...platform, name: `down-${process.pid}` }, names);
    fs.mkdirSync(rd.dataDir('cn1'), { recursive: true });
    fs.writeFileSync(path.join(rd.dataDir('cn1'), 'nvram.json'), '{}');
    fs.mkdirSync(rd.dataDir('fabric-manager'));
    fs.writeFileSync(path.join(rd.dataDir('fabric-manager'), 'fabric.json'), '{}');
    fs.writeFileSync(rd.logFile('lpar1'), 'log\n');
    fs.writeFileSync(rd.stateFile('lpar1'), '{}');
    fs.writeFileSync(path.join(rd.root, 'supervisor.log'), '');
    fs.writeFileSync(rd.supervisorPidFile, '1');
    cleanRunDir(rd);
    expect(fs.existsSync(path.dirname(rd.keyFile))).toBe(false);
    expect(fs.readdirSync(rd.root).sort()).toEqual([...KEPT_AFTER_DOWN].sort());
    expect(fs.readFileSync(path.join(rd.dataDir('cn1'), 'nvram.json'), 'utf8')).toBe('{}');
    expect(fs.readdirSync(path.join(rd.root, 'data'))).toEqual(['cn1']);
    const readme = fs.readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8');
    for (const kept of KEPT_AFTER_DOWN) expect(readme, `README names ${kept} as kept after down`).toContain(`\`${kept === 'logs' || kept === 'data' ? `${kept}/` : kept}\``);
  });
});
