import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { platformPoolDir } from '../../shared/shm/pool-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { adminRequest, fmRequest } from '../../shared/runtime/admin-client.ts';
import { REPO_ROOT } from '../../services/supervisor/process-plan.ts';
import { FAST_RCLAN, platformYaml } from './platform-yaml.ts';
import { sleep } from './wait.ts';
import { isAlive } from '../../services/supervisor/health.ts';

// Integration tests have long imported waiting from here; there is one of each, in wait.ts.
export { sleep, waitFor } from './wait.ts';

export const LPARLAB = path.join(REPO_ROOT, 'scripts', 'lparlab.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `lparlab` command; `env` adds to this process's environment (e.g. LPARLAB_RUN_DIR), `input` is its stdin. */
export function cli(args: string[], timeoutMs = 60_000, opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LPARLAB, ...args], { cwd: REPO_ROOT, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lparlab ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** A small platform for tests: fast heartbeats so failures are seen within a fraction of a second. */
export const TEST_PLATFORM = platformYaml({ rclan: FAST_RCLAN });

/**
 * `yaml` with its platform name made unique (`<name>-<6 hex digits>`): the
 * shared memory of a platform lives under /dev/shm/lparlab/<name>/, which
 * test platforms running side by side must not share.
 */
export function uniquePlatform(yaml: string): { yaml: string; name: string } {
  const m = /^name:[ \t]*(\S+)[ \t]*$/m.exec(yaml);
  if (!m) throw new Error('test platform file has no top-level "name:" line');
  const name = `${m[1].slice(0, 24)}-${crypto.randomBytes(3).toString('hex')}`;
  return { yaml: `${yaml.slice(0, m.index)}name: ${name}${yaml.slice(m.index + m[0].length)}`, name };
}

/** Files left under a platform's shared-memory directory (none once it is down). */
export function shmLeft(platformName: string): string[] {
  const dir = platformPoolDir(platformName);
  if (!fs.existsSync(dir)) return [];
  return [dir, ...fs.readdirSync(dir, { recursive: true }).map((f) => path.join(dir, String(f)))];
}

/**
 * One platform of real processes in its own run directory (so tests run side
 * by side), booted with `lparlab up --detach` and torn down with `lparlab down`.
 * Its name is made unique (uniquePlatform), so its shared memory is its own.
 */
export class TestPlatform {
  private constructor(
    readonly root: string,
    readonly runDir: RunDir,
    readonly name: string,
  ) {}

  /** `timeoutMs`: how long `up` may take as a whole (a big platform on a loaded box takes minutes; pass `--timeout` in `extra` too). */
  static async boot(yaml = TEST_PLATFORM, extra: string[] = [], timeoutMs = 120_000): Promise<TestPlatform> {
    // Short path under /tmp: UNIX socket paths must stay under 108 bytes.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-'));
    const file = path.join(root, 'platform.yaml');
    const unique = uniquePlatform(yaml);
    fs.writeFileSync(file, unique.yaml);
    const p = new TestPlatform(root, new RunDir(path.join(root, 'run')), unique.name);
    // up waits up to 90 s for every process to be healthy (a loaded machine boots slowly).
    const r = await cli(['up', '--detach', '-c', file, '--run-dir', p.runDir.root, ...extra], timeoutMs);
    if (r.code !== 0) {
      await p.down();
      throw new Error(`lparlab up failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
    }
    return p;
  }

  cli(args: string[], timeoutMs?: number): Promise<CliResult> {
    return cli([...args, '--run-dir', this.runDir.root], timeoutMs);
  }

  /** `lparlab ARGS` as a person types it, without --run-dir: the run directory comes from $LPARLAB_RUN_DIR. */
  cliByEnv(args: string[], timeoutMs?: number, input?: string | Buffer): Promise<CliResult> {
    return cli(args, timeoutMs, { env: { LPARLAB_RUN_DIR: this.runDir.root }, input });
  }

  admin(name: string, msg: ControlMessage, timeoutMs = 60_000): Promise<ControlMessage> {
    return adminRequest(this.runDir, name, msg, timeoutMs);
  }

  fm(msg: ControlMessage): Promise<ControlMessage> {
    return fmRequest(this.runDir, msg);
  }

  pid(name: string): number {
    const st = readState(this.runDir.stateFile(name));
    if (!st) throw new Error(`${name} has no state file`);
    return st.pid;
  }

  async kill(name: string, signal: 'KILL' | 'STOP' | 'CONT' | 'TERM'): Promise<void> {
    const r = await this.cli(['kill', name, '--signal', signal]);
    if (r.code !== 0) throw new Error(`kill ${name}: ${r.stderr}`);
  }

  async start(name: string): Promise<void> {
    const r = await this.cli(['start', name]);
    if (r.code !== 0) throw new Error(`start ${name}: ${r.stderr}`);
    await this.waitHealthy(name);
  }

  async waitHealthy(name: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (readState(this.runDir.stateFile(name))?.health !== 'healthy') {
      if (Date.now() > deadline) throw new Error(`${name} not healthy within ${timeoutMs} ms`);
      await sleep(25);
    }
  }

  /** Pids of every process this platform started, to check none survives teardown. */
  pids(): number[] {
    const dir = path.join(this.runDir.root, 'state');
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readState(path.join(dir, f))?.pid ?? 0)
      .filter((pid) => pid > 0);
  }

  /** The platform's shared-memory directory, /dev/shm/lparlab/<name>. */
  get shmDir(): string {
    return platformPoolDir(this.name);
  }

  /**
   * Stops everything and removes the run directory. Returns pids still alive
   * afterwards (should be none); throws if shared memory is left behind.
   */
  async down(): Promise<number[]> {
    const pids = this.pids();
    let sup = 0;
    try {
      sup = Number(fs.readFileSync(this.runDir.supervisorPidFile, 'utf8'));
    } catch {
      /* never started */
    }
    await cli(['down', '--run-dir', this.runDir.root]);
    const alive = [...pids, sup].filter((pid) => pid > 0 && isAlive(pid));
    fs.rmSync(this.root, { recursive: true, force: true });
    const left = shmLeft(this.name);
    if (left.length) {
      fs.rmSync(this.shmDir, { recursive: true, force: true });
      throw new Error(`platform ${this.name} left shared memory behind: ${left.join(', ')}`);
    }
    return alive;
  }
}
