import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Boot, bootLimits } from '../../services/supervisor/boot.ts';
import { BootProgress } from '../../services/supervisor/boot-progress.ts';
import type { BootEvent } from '../../shared/protocol/boot.ts';
import { parseBootLine, emitBootLine } from '../../shared/protocol/boot.ts';
import { HealthError } from '../../services/supervisor/health.ts';
import { RunDir } from '../../shared/runtime/run-dir.ts';

/**
 * The boot's scheduling with real child processes standing in for services:
 * each one "loads" (a pause), opens its admin socket, then writes a healthy
 * state file, as a service does. Nothing of the supervisor is replaced: Boot
 * watches the same run directory files a real boot does.
 */
const roots: string[] = [];
const children: Array<ReturnType<typeof spawn>> = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

function runDir(): RunDir {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-boot-'));
  roots.push(root);
  const rd = new RunDir(root);
  fs.mkdirSync(path.dirname(rd.adminSocket('x')), { recursive: true });
  fs.mkdirSync(path.dirname(rd.stateFile('x')), { recursive: true });
  return rd;
}

/** A process that loads for `loadMs`, listens on its admin socket, then reports healthy after `upMs` (or exits with `exitCode`). */
function fakeService(rd: RunDir, name: string, loadMs: number, upMs: number, exitCode?: number, after?: string) {
  // `after`: healthy only once that process is (a control node waits for its partitions).
  const script = `
    const net = require('node:net'), fs = require('node:fs');
    const healthy = () => {
      const f = ${JSON.stringify(rd.stateFile(name))};
      fs.writeFileSync(f + '.tmp', JSON.stringify({ name: ${JSON.stringify(name)}, role: 'lpar', pid: process.pid, health: 'healthy', detail: '', since: new Date().toISOString() }));
      fs.renameSync(f + '.tmp', f);
    };
    const whenAfter = () => ${after === undefined ? 'healthy()' : `fs.existsSync(${JSON.stringify(rd.stateFile(after))}) ? healthy() : setTimeout(whenAfter, 20)`};
    setTimeout(() => {
      ${exitCode === undefined ? '' : `process.stderr.write('cannot start'); process.exit(${exitCode});`}
      net.createServer().listen(${JSON.stringify(rd.adminSocket(name))}, () => setTimeout(whenAfter, ${upMs}));
    }, ${loadMs});`;
  const c = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  children.push(c);
  return c;
}

describe('Boot', () => {
  it('keeps at most limits.loading processes loading at once and finishes when all are up', async () => {
    const rd = runDir();
    const names = Array.from({ length: 7 }, (_, i) => `p${i + 1}`);
    const events: BootEvent[] = [];
    let loading = 0;
    let maxLoading = 0;
    const boot = new Boot(rd, names, (n) => fakeService(rd, n, 150, 100), {
      limits: { loading: 2 },
      degradedIsUp: false,
      timeoutMs: 60_000,
      onEvent: (e) => {
        events.push(e);
        if (e.t === 'spawned') maxLoading = Math.max(maxLoading, ++loading);
        if (e.t === 'loaded' || (e.t === 'up' && !events.some((x) => x.t === 'loaded' && x.name === e.name))) loading--;
      },
    });
    await boot.run();
    expect(maxLoading).toBe(2);
    // Plan order, and every process up exactly once.
    expect(events.filter((e) => e.t === 'spawned').map((e) => e.name)).toEqual(names);
    expect(events.filter((e) => e.t === 'up').map((e) => e.name).sort()).toEqual([...names].sort());
    expect(events.at(-1)?.t).toBe('booted');
    expect(boot.pending()).toEqual([]);
  });

  it('fails at once, naming it, when a process exits before it is up; starts no more after that', async () => {
    const rd = runDir();
    const events: BootEvent[] = [];
    const boot = new Boot(rd, ['a', 'b', 'c', 'd'], (n) => fakeService(rd, n, 50, 50, n === 'b' ? 3 : undefined), {
      limits: { loading: 2 },
      degradedIsUp: false,
      timeoutMs: 60_000,
      onEvent: (e) => events.push(e),
    });
    const err = await boot.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HealthError);
    expect((err as HealthError).processName).toBe('b');
    expect((err as Error).message).toBe('b exited before it was healthy (code 3)');
    expect(events.filter((e) => e.t === 'failed')).toEqual([{ t: 'failed', name: 'b', reason: 'b exited before it was healthy (code 3)' }]);
    expect(events.some((e) => e.t === 'spawned' && e.name === 'd')).toBe(false);
  });

  it('does not wait for a process to be healthy before starting the next: one may need a later one to be', async () => {
    const rd = runDir();
    const boot = new Boot(rd, ['cn', 'lpar1', 'lpar2'], (n) => fakeService(rd, n, 50, 20, undefined, n === 'cn' ? 'lpar2' : undefined), {
      limits: { loading: 1 },
      degradedIsUp: false,
      timeoutMs: 60_000,
      onEvent: () => {},
    });
    await boot.run();
  });

  it('fails when processes stay not up past the timeout, naming them', async () => {
    const rd = runDir();
    const boot = new Boot(rd, ['slow'], (n) => fakeService(rd, n, 50, 60_000), { limits: { loading: 1 }, degradedIsUp: false, timeoutMs: 1500, onEvent: () => {} });
    await expect(boot.run()).rejects.toThrow('slow not healthy after 1500 ms');
  });

  it('sizes its limits from the cores and the free memory', () => {
    expect(bootLimits(2, 24 * 2 ** 30)).toEqual({ loading: 8 });
    expect(bootLimits(64, 24 * 2 ** 30).loading).toBe(256);
    expect(bootLimits(8, 128 << 20).loading).toBe(2);
    expect(bootLimits(8, 0).loading).toBe(1);
  });
});

describe('boot events on the progress pipe', () => {
  it('round-trip as lines and refuse what is not one, with the reason', () => {
    const e: BootEvent = { t: 'up', name: 'lpar1', health: 'healthy', ms: 1234 };
    expect(parseBootLine(emitBootLine(e).trimEnd())).toEqual({ ok: true, value: e });
    expect(parseBootLine('{"t":"up","name":"lpar1","health":"sleepy","ms":1}')).toMatchObject({ ok: false, reason: expect.stringContaining('health') });
    expect(parseBootLine('{"t":"reboot"}')).toMatchObject({ ok: false, reason: expect.stringContaining('field "t"') });
    expect(parseBootLine('not json')).toMatchObject({ ok: false, reason: expect.stringContaining('not JSON') });
  });
});

describe('BootProgress', () => {
  const sink = () => {
    let text = '';
    return { out: { write: (s: string) => (text += s), columns: 80 }, text: () => text };
  };

  it('on a terminal redraws one line in place, names slow processes, and keeps a failure on screen', () => {
    let t = 0;
    const s = sink();
    const p = new BootProgress(3, s.out, 'tty', 10_000, () => t);
    p.event({ t: 'spawned', name: 'fabric-manager', pid: 10 });
    p.event({ t: 'spawned', name: 'lpar1', pid: 11 });
    expect(s.text()).toMatch(/\r\x1b\[Kbooting: 0\/3 up \| starting fabric-manager 0\.0 s, lpar1 0\.0 s$/);
    t = 1500;
    p.event({ t: 'up', name: 'fabric-manager', health: 'healthy', ms: 1500 });
    expect(s.text()).toMatch(/\r\x1b\[Kbooting: 1\/3 up \| starting lpar1 1\.5 s$/);
    t = 12_000;
    p.event({ t: 'spawned', name: 'lpar2', pid: 12 });
    expect(s.text()).toMatch(/\r\x1b\[Kbooting: 1\/3 up \| starting lpar2 0\.0 s \| SLOW lpar1 12\.0 s$/);
    p.event({ t: 'failed', name: 'lpar2', reason: 'lpar2 exited before it was healthy (code 1)' });
    p.done();
    // The status line is cleared and the failure stays, on a line of its own.
    expect(s.text()).toMatch(/\r\x1b\[Klpar2 FAILED: lpar2 exited before it was healthy \(code 1\)\n$/);
    // No plain step lines on a terminal.
    expect(s.text()).not.toMatch(/^starting /m);
  });

  it('cuts the status line to the terminal width', () => {
    const s = sink();
    s.out.columns = 40;
    const p = new BootProgress(300, s.out, 'tty', 10_000, () => 0);
    for (let i = 1; i <= 20; i++) p.event({ t: 'spawned', name: `lpar${i}`, pid: i });
    p.done();
    const last = s.text().split('\r\x1b[K').filter(Boolean).at(-1)!;
    expect(last.length).toBeLessThanOrEqual(39);
    expect(last.endsWith('…')).toBe(true);
  });

  it('says nothing in mode none', () => {
    const s = sink();
    const p = new BootProgress(1, s.out, 'none');
    p.event({ t: 'spawned', name: 'a', pid: 1 });
    p.event({ t: 'failed', name: 'a', reason: 'x' });
    p.done();
    expect(s.text()).toBe('');
    expect(BootProgress.modeFor({ isTTY: true }, true)).toBe('none');
    expect(BootProgress.modeFor({ isTTY: true }, false)).toBe('tty');
    expect(BootProgress.modeFor({}, false)).toBe('lines');
  });
});
