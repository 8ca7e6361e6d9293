import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { REPO_ROOT } from '../../shared/runtime/build-paths.ts';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import { LPARLAB, TEST_PLATFORM, TestPlatform, cli, shmLeft, sleep, uniquePlatform } from '../helpers/platform.ts';
import { isAlive } from '../../services/supervisor/health.ts';

/** The source map a debugger gets for the first script whose URL matches: over the inspector protocol, as VS Code or DevTools would. */
async function sourceMapSeenByDebugger(wsUrl: string, script: RegExp): Promise<{ file: string; sources: string[] }> {
  const ws = new WebSocket(wsUrl);
  try {
    const parsed = await new Promise<{ url: string; sourceMapURL: string }>((resolve, reject) => {
      ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'Debugger.enable' })));
      ws.on('error', reject);
      ws.on('message', (d) => {
        const m = JSON.parse(String(d)) as { method?: string; params?: { url: string; sourceMapURL: string } };
        if (m.method === 'Debugger.scriptParsed' && script.test(m.params!.url)) resolve(m.params!);
      });
    });
    expect(parsed.sourceMapURL, `${parsed.url} has a source map`).toBeTruthy();
    const file = fileURLToPath(parsed.url);
    const map = JSON.parse(fs.readFileSync(path.resolve(path.dirname(file), parsed.sourceMapURL), 'utf8')) as { sources: string[] };
    return { file, sources: map.sources };
  } finally {
    ws.close();
  }
}

describe('lparlab CLI', () => {
  it('reports every process with role, pid, health, CPU and memory, plus planes and RVIs', async () => {
    const p = await TestPlatform.boot();
    try {
      const r = await p.cli(['status', '--json']);
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s.processes.map((x: { name: string }) => x.name)).toEqual(['fabric-manager', 'plane-a', 'plane-b', 'hypervisor-cec1', 'hypervisor-cec2', 'cn1', 'lpar1', 'lpar2']);
      for (const x of s.processes) {
        expect(x.health).toBe('healthy');
        expect(x.pid).toBeGreaterThan(0);
        expect(typeof x.cpu).toBe('number');
        expect(x.memory).toBeGreaterThan(1_000_000);
        expect(x.privateMemory).toBeGreaterThan(1_000_000);
        expect(x.privateMemory).toBeLessThan(x.memory);
      }
      expect(s.planes.map((x: { up: boolean; portsUp: number }) => [x.up, x.portsUp])).toEqual([
        [true, 3],
        [true, 3],
      ]);
      // The control node made one management RVI per LPAR.
      expect(s.rvis.filter((x: { purpose: string }) => x.purpose === 'mgmt')).toHaveLength(2);
      expect(s.hypervisors.map((h: { cec: string; up: boolean; smbs: number }) => [h.cec, h.up, h.smbs])).toEqual([
        ['cec1', true, 0],
        ['cec2', true, 0],
      ]);
      const text = await p.cli(['status']);
      expect(text.stdout).toMatch(/lpar1\s+lpar\s+\d+\s+healthy/);

      await p.kill('lpar1', 'STOP');
      expect(JSON.parse((await p.cli(['status', '--json'])).stdout).processes.find((x: { name: string }) => x.name === 'lpar1').health).toBe('stopped');
      await p.kill('lpar1', 'CONT');
    } finally {
      expect(await p.down()).toEqual([]);
    }
  });

  it('runs two platforms side by side and tears both down completely', async () => {
    const [a, b] = await Promise.all([TestPlatform.boot(), TestPlatform.boot()]);
    const pids = [...a.pids(), ...b.pids()];
    expect(pids).toHaveLength(16);
    const again = await cli(['up', '--detach', '--run-dir', a.runDir.root, '-c', path.join(a.root, 'platform.yaml')]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already running/);
    expect(await a.down()).toEqual([]);
    expect((await b.admin('lpar1', { t: 'status' })).health).toBe('healthy');
    expect(await b.down()).toEqual([]);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(fs.existsSync(a.root) || fs.existsSync(b.root)).toBe(false);
  });

  it('kills a process and starts it again; the LPAR boots again from the control node', async () => {
    const p = await TestPlatform.boot();
    try {
      const old = p.pid('lpar2');
      await p.kill('lpar2', 'KILL');
      await sleep(100);
      expect(isAlive(old)).toBe(false);
      expect(JSON.parse((await p.cli(['status', '--json'])).stdout).processes.find((x: { name: string }) => x.name === 'lpar2').health).toBe('dead');
      await p.start('lpar2');
      expect(p.pid('lpar2')).not.toBe(old);
      const cn = await p.admin('cn1', { t: 'cn-status' });
      const view = (cn.lpars as Array<{ name: string; booted: boolean; rviState: string }>).find((l) => l.name === 'lpar2')!;
      expect(view.booted).toBe(true);
      expect((await p.cli(['start', 'lpar2'])).stderr).toMatch(/already running/);
    } finally {
      expect(await p.down()).toEqual([]);
    }
  });

  it('leaves a process out for a person to run under the debugger with lparlab svc --inspect', async () => {
    const p = await TestPlatform.boot(TEST_PLATFORM, ['--except', 'lpar2']);
    const child = spawn(process.execPath, [LPARLAB, 'svc', 'lpar', '--id', 'lpar2', '--run-dir', p.runDir.root, '--inspect=127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      await p.waitHealthy('lpar2');
      expect(stderr).toMatch(/Debugger listening on ws:\/\/127\.0\.0\.1:\d+\//);
      const st = readState(p.runDir.stateFile('lpar2'))!;
      expect(st.detail).toMatch(/cec cec2/);
      // It runs the compiled file, and a debugger sees its source map back to the TypeScript (issue 10 item 1).
      expect(stderr).toMatch(/running: .* --enable-source-maps .*build\/services\/lpar\/main\.js /);
      const map = await sourceMapSeenByDebugger(/ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(stderr)![0], /\/build\/services\/lpar\/main\.js$/);
      expect(map.sources.map((s) => path.resolve(path.dirname(map.file), s))).toContain(path.join(REPO_ROOT, 'services', 'lpar', 'main.ts'));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
      expect(await p.down()).toEqual([]);
    }
  });

  it('injects and clears faults on a plane', async () => {
    const p = await TestPlatform.boot();
    try {
      const cut = await p.cli(['fault', 'a', 'cut', '--port', 'lpar1']);
      expect(cut.code).toBe(0);
      const s = JSON.parse((await p.cli(['status', '--json'])).stdout);
      expect(s.planes[0].faults[0]).toMatchObject({ cut: true, target: { kind: 'port', name: 'lpar1' } });
      await sleep(600);
      const mgmt = ((await p.admin('lpar1', { t: 'rvis' })).rvis as Array<{ purpose: string; legs: string[] }>).find((r) => r.purpose === 'mgmt')!;
      expect(mgmt.legs).toEqual(['down', 'up']);
      expect((await p.cli(['fault', 'a', 'drop', '5'])).code).toBe(0);
      expect((await p.cli(['fault', 'a', 'delay', '2', '--jitter', '3'])).code).toBe(0);
      expect((await p.cli(['fault', 'a', 'explode'])).stderr).toMatch(/unknown fault action/);
      expect((await p.cli(['fault', 'a', 'clear'])).code).toBe(0);
      expect(JSON.parse((await p.cli(['status', '--json'])).stdout).planes[0].faults).toEqual([]);
    } finally {
      expect(await p.down()).toEqual([]);
    }
  });

  it('stops everything on Ctrl-C of a foreground lparlab up', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-'));
    const file = path.join(root, 'p.yaml');
    const platform = uniquePlatform(TEST_PLATFORM);
    fs.writeFileSync(file, platform.yaml);
    const runDir = new RunDir(path.join(root, 'run'));
    const child = spawn(process.execPath, [LPARLAB, 'up', '-c', file, '--run-dir', runDir.root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes('is up')) {
        if (Date.now() > deadline) throw new Error(`no "is up": ${out}`);
        await sleep(50);
      }
      const pids = fs.readdirSync(path.join(runDir.root, 'state')).map((f) => readState(path.join(runDir.root, 'state', f))!.pid);
      expect(pids).toHaveLength(8);
      expect(shmLeft(platform.name)).not.toEqual([]);
      child.kill('SIGINT');
      await new Promise((r) => child.on('exit', r));
      expect(pids.filter(isAlive)).toEqual([]);
      expect(fs.existsSync(path.join(runDir.root, 'sock'))).toBe(false);
      expect(shmLeft(platform.name)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await cli(['down', '--run-dir', runDir.root]);
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('rejects a bad platform file at load, naming the field', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-'));
    try {
      const file = path.join(root, 'bad.yaml');
      fs.writeFileSync(file, TEST_PLATFORM.replace('{ name: lpar2, cec: cec2 }', '{ name: lpar2, cec: cec9 }'));
      const r = await cli(['up', '--detach', '-c', file, '--run-dir', path.join(root, 'run')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/\/lpars\/1\/cec: CEC "cec9" does not exist/);
      fs.writeFileSync(file, TEST_PLATFORM.replace('planes: [a, b]', 'planes: [a, b]\ncolour: blue'));
      expect((await cli(['up', '--detach', '-c', file, '--run-dir', path.join(root, 'run')])).stderr).toMatch(/\/colour: unknown key "colour"/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('boots and streams over WebSocket links', async () => {
    const basePort = 20_000 + Math.floor(Math.random() * 20_000);
    const p = await TestPlatform.boot(`${TEST_PLATFORM}\ntransport: ws\nws: { host: 127.0.0.1, basePort: ${basePort} }\n`);
    try {
      await p.fm({ t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'perf' });
      for (let i = 0; i < 200; i++) {
        const r = (await p.admin('lpar1', { t: 'rvis' })).rvis as Array<{ purpose: string; state: string }>;
        if (r.find((x) => x.purpose === 'perf')?.state === 'up') break;
        await sleep(25);
      }
      const sent = await p.admin('lpar1', { t: 'perf-send', peer: 'lpar2', count: 5000, sizes: [100, 70_000] });
      expect(sent.acked).toBe(5000);
      const rx = await p.admin('lpar2', { t: 'perf-received', peer: 'lpar1' });
      expect([rx.received, rx.missing, rx.duplicates, rx.corrupt]).toEqual([5000, 0, 0, 0]);
    } finally {
      expect(await p.down()).toEqual([]);
    }
  });
});
