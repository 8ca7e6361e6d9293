import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ownSession, PARTITION_NICE, processPlan } from '../../services/supervisor/process-plan.ts';
import { loadPlatformFile } from '../../shared/platform/platform.ts';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { TEST_PLATFORM, cli, shmLeft, uniquePlatform, waitFor } from '../helpers/platform.ts';
import { isAlive } from '../../services/supervisor/health.ts';

/**
 * `lparlab up` as a script sees it (issue 10 item 4): stdout is not a
 * terminal, so the boot is plain lines, one per step; with --json stdout is
 * the final status only; a process that fails at start fails the boot,
 * named, with the end of its log, and nothing is left running.
 */
const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) {
    await cli(['down', '--run-dir', path.join(root, 'run')]);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** The session id of a process (/proc/PID/stat field 6; the name before it may hold spaces and parentheses). */
function sessionOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

function scratch(yaml: string): { file: string; runDir: RunDir; name: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-'));
  roots.push(root);
  const unique = uniquePlatform(yaml);
  const file = path.join(root, 'platform.yaml');
  fs.writeFileSync(file, unique.yaml);
  return { file, runDir: new RunDir(path.join(root, 'run')), name: unique.name };
}

describe('lparlab up progress', () => {
  it('prints a plain line per step when stdout is not a terminal: each process starting, then healthy, then all up', async () => {
    const p = scratch(TEST_PLATFORM);
    const plan = processPlan(loadPlatformFile(p.file), p.runDir);
    const names = plan.map((s) => s.name);
    const r = await cli(['up', '--detach', '-c', p.file, '--run-dir', p.runDir.root], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    // No terminal control sequences in plain mode.
    expect(r.stdout).not.toMatch(/\x1b\[|\r/);
    for (const n of names) {
      const started = lines.findIndex((l) => new RegExp(`^starting ${n} \\(pid \\d+\\)$`).test(l));
      const up = lines.findIndex((l) => new RegExp(`^${n} healthy after \\d+\\.\\d s$`).test(l));
      expect(started, `${n} starting line`).toBeGreaterThanOrEqual(0);
      expect(up, `${n} healthy line after its starting line`).toBeGreaterThan(started);
    }
    // Partitions yield to the boxes that serve them all (PARTITION_NICE, ownSession).
    const sessions = new Map<string, number[]>();
    for (const spec of plan) {
      const pid = Number(/\(pid (\d+)\)/.exec(lines.find((l) => l.startsWith(`starting ${spec.name} (`))!)![1]);
      expect(os.getPriority(pid), `${spec.name}'s nice`).toBe(spec.role === 'lpar' ? PARTITION_NICE : 0);
      // Shared boxes lead a session (a scheduling group of their own under autogroup); partitions share the supervisor's.
      const session = sessionOf(pid);
      if (ownSession(spec.role)) expect(session, `${spec.name} leads its own session`).toBe(pid);
      else expect(session, `${spec.name} is in the supervisor's session`).not.toBe(pid);
      sessions.set(spec.role, [...(sessions.get(spec.role) ?? []), session]);
    }
    expect(new Set(sessions.get('lpar')).size, 'every partition in one session').toBe(1);
    const all = lines.findIndex((l) => new RegExp(`^all ${names.length} processes up in \\d+\\.\\d s$`).test(l));
    expect(all).toBeGreaterThan(0);
    expect(lines.indexOf(`platform ${p.name} is up (run directory ${p.runDir.root})`)).toBe(all + 1);
    // The status table follows.
    expect(r.stdout).toMatch(/^NAME +ROLE +PID +HEALTH +CPU% +MEM +PRIV/m);
  });

  it('prints only the final status on stdout with --json', async () => {
    const p = scratch(TEST_PLATFORM);
    const r = await cli(['up', '--detach', '--json', '-c', p.file, '--run-dir', p.runDir.root], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const status = JSON.parse(r.stdout) as { platform: string; processes: Array<{ health: string }> };
    expect(status.platform).toBe(p.name);
    expect(status.processes.every((x) => x.health === 'healthy')).toBe(true);
  });

  it('leaves nothing running when the supervisor is SIGKILLed: each service reads end of file on its launcher descriptor and exits', async () => {
    const p = scratch(TEST_PLATFORM);
    const r = await cli(['up', '--detach', '--json', '-c', p.file, '--run-dir', p.runDir.root], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const pids = (JSON.parse(r.stdout) as { processes: Array<{ pid: number | null }> }).processes.map((x) => x.pid).filter((x): x is number => !!x);
    expect(pids.length).toBeGreaterThan(5);
    process.kill(Number(fs.readFileSync(p.runDir.supervisorPidFile, 'utf8').trim()), 'SIGKILL');
    await waitFor(() => `services gone (left: ${pids.filter(isAlive).join(' ')})`, () => !pids.some(isAlive), 10_000);
    await waitFor(() => `shared memory removed (left: ${shmLeft(p.name).join(' ')})`, () => shmLeft(p.name).length === 0, 5000);
  });

  it('fails the boot when a process fails at start: named, with the end of its log, and nothing left running', async () => {
    // The fabric manager's WebSocket port is taken, so it cannot listen and exits (EADDRINUSE).
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const p = scratch(`${TEST_PLATFORM}\ntransport: ws\nws: { host: 127.0.0.1, basePort: ${port} }\n`);
      const r = await cli(['up', '--detach', '-c', p.file, '--run-dir', p.runDir.root], 120_000);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^starting fabric-manager \(pid \d+\)$/m);
      expect(r.stdout).toMatch(/^fabric-manager FAILED: fabric-manager exited before it was healthy \(code 1\)$/m);
      expect(r.stderr).toMatch(/^lparlab up: fabric-manager exited before it was healthy \(code 1\)\n--- last lines of fabric-manager's log ---\n/);
      expect(r.stderr).toMatch(/EADDRINUSE/);
      // The supervisor stopped everything it had started.
      let sup = 0;
      try {
        sup = Number(fs.readFileSync(p.runDir.supervisorPidFile, 'utf8').trim());
      } catch {
        /* cleaned up already */
      }
      const gone = (pid: number) => !isAlive(pid);
      const deadline = Date.now() + 15_000;
      while (sup > 0 && !gone(sup) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      expect(sup === 0 || gone(sup), 'supervisor gone').toBe(true);
      expect(shmLeft(p.name)).toEqual([]);
    } finally {
      squatter.close();
    }
  });
});
