/**
 * The shared plumbing of the benchmarks in scripts/bench/ (rvi.ts, vlan.ts):
 * boot and teardown of a platform in a temporary run directory (always torn
 * down: finally, signals, uncaught errors), child processes that are killed at
 * teardown, CPU per process from /proc, the contention check, medians and
 * percentiles, and which code was measured.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../shared/runtime/build-paths.ts';
import { serviceEnv } from '../../services/supervisor/process-plan.ts';
import { UsageError, optionsHelp, parseOptions, type OptionsTable } from '../../shared/runtime/options.ts';

export { REPO_ROOT };
const LPARLAB = path.join(REPO_ROOT, 'scripts', 'lparlab.mjs');
// The partitions' allocator setting goes to every child, kernel baselines included (a fair ratio); the
// lparlab CLI gets the caller's environment, so each platform process has its own role's (process-plan.ts).
const CHILD_ENV = serviceEnv('lpar');
const CLI_ENV = { ...process.env };

// The admin client logs with pino to fd 1: keep this process's logging off stdout
// (--json prints exactly one object). The platform gets the caller's environment.
process.env.LPARLAB_LOG = 'silent';
const { adminRequest, fmRequest } = await import('../../shared/runtime/admin-client.ts');
const { RunDir } = await import('../../shared/runtime/run-dir.ts');
const { readState } = await import('../../shared/runtime/state-file.ts');
export { adminRequest, fmRequest };
export type RunDirT = InstanceType<typeof RunDir>;

export const log = (s: string): void => void process.stderr.write(`${s}\n`);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const r1 = (x: number): number => Math.round(x * 10) / 10;
export const r2 = (x: number): number => Math.round(x * 100) / 100;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median of each key (those of the first record) across repetitions. */
export function medianOf(xs: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(xs[0] ?? {})) out[k] = median(xs.map((x) => x[k]));
  return out;
}

/** p50 / p99 / min / mean the way the LPAR's `perf-ping` computes them (sorted[n/2], sorted[floor(0.99 n)]). */
export function latency(samplesUs: number[]): { p50Us: number; p99Us: number; minUs: number; meanUs: number } {
  const s = [...samplesUs].sort((a, b) => a - b);
  return { p50Us: s[s.length >> 1], p99Us: s[Math.floor(s.length * 0.99)], minUs: s[0], meanUs: s.reduce((a, b) => a + b, 0) / s.length };
}

/** Which code was measured: the commit, and the files under services/ and shared/ that differ from it (read-only git). */
export function codeVersion(): { commit: string; modified: string[] } {
  const git = (...a: string[]) => execFileSync('git', a, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', '--short', 'HEAD'), modified: git('diff', '--name-only', 'HEAD', '--', 'services', 'shared').split('\n').filter(Boolean) };
  } catch {
    return { commit: 'unknown', modified: [] };
  }
}

/** The head of a bench's JSON record: which bench, when, which code, on which machine, how many repetitions. */
export function runRecord(bench: string, code: ReturnType<typeof codeVersion>, reps: number, quick: boolean) {
  return {
    bench,
    date: new Date().toISOString(),
    code,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadavg: os.loadavg().map(r2) },
    reps,
    quick,
  };
}

// ---------------------------------------------------------------- CPU from /proc

const CLK_TCK = 100;

/** CPU seconds (user + system) of a process, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine, from /proc/stat (user..steal). */
function machineJiffies(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

export interface CpuSample {
  wallMs: number;
  /** % of one core per platform process over the measurement. */
  processes: Record<string, number>;
  /** The whole box, % of one core (100 x CPUs = every core busy). */
  machine: number;
  /** machine minus the platform's processes: this bench and other users of the box. */
  other: number;
}

/** Runs `fn` and reports the CPU each of `names` (platform processes) used meanwhile. */
export async function withCpu<T>(runDir: RunDirT, names: string[], fn: () => Promise<T>): Promise<{ result: T; cpu: CpuSample }> {
  const pids = names.map((n) => [n, readState(runDir.stateFile(n))?.pid ?? 0] as const);
  const before = pids.map(([, pid]) => cpuSeconds(pid));
  const m0 = machineJiffies();
  const t0 = performance.now();
  const result = await fn();
  const wallMs = performance.now() - t0;
  const m1 = machineJiffies();
  const processes: Record<string, number> = {};
  pids.forEach(([name, pid], i) => (processes[name] = r1(((cpuSeconds(pid) - before[i]) * 1000 * 100) / wallMs)));
  const machine = r1(((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * os.cpus().length * 100);
  const ours = Object.values(processes).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return { result, cpu: { wallMs: Math.round(wallMs), processes, machine, other: r1(Math.max(0, machine - ours)) } };
}

/** Median per process (and machine, other) across repetitions. */
export function medianCpu(xs: CpuSample[]): Record<string, number> {
  return medianOf(xs.map((x) => ({ ...x.processes, machine: x.machine, other: x.other })));
}

/** `name pct, name pct, …` rounded, for the readable table. */
export function cpuLine(c: Record<string, number>): string {
  return Object.entries(c)
    .map(([k, v]) => `${k} ${Math.round(v)}`)
    .join(', ');
}

// ---------------------------------------------------------------- contention

/** CPU (% of one core) taken by others during a measurement above which the run counts as contended. */
export const CONTENDED_PCT = 30;

/**
 * How much CPU processes other than the measured ones took during the timed
 * parts (`cpu.other` of each sample), per measurement (median of its samples)
 * and over all of them; `contended` when any measurement is above CONTENDED_PCT.
 */
export function contention<K extends string>(
  byGroup: Record<K, Array<{ cpu: CpuSample | Record<string, number> }>>,
  note: string,
): { otherPctMedian: number; otherPctMax: number; byMeasurement: Record<K, number>; contended: boolean; note: string } {
  const otherOf = (xs: Array<{ cpu: CpuSample | Record<string, number> }>) => xs.map((x) => x.cpu.other).filter(Number.isFinite);
  const groups = Object.entries(byGroup) as Array<[K, Array<{ cpu: CpuSample | Record<string, number> }>]>;
  const byMeasurement = Object.fromEntries(groups.map(([k, xs]) => [k, r1(median(otherOf(xs)))])) as Record<K, number>;
  const all = otherOf(groups.flatMap(([, xs]) => xs));
  return {
    otherPctMedian: r1(median(all)),
    otherPctMax: r1(Math.max(...all)),
    byMeasurement,
    contended: Object.values<number>(byMeasurement).some((v) => v > CONTENDED_PCT),
    note,
  };
}

// ---------------------------------------------------------------- child processes and platform lifecycle

export interface NodeRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `node ARGS` in the repository with the caller's environment, stdout and stderr piped. */
function spawnNode(args: string[], detached: boolean, env: NodeJS.ProcessEnv = CHILD_ENV): ChildProcess {
  return spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached });
}

/** Collects a child's stdout and stderr until it exits; SIGKILL and a rejection after `timeoutMs`. */
function completion(child: ChildProcess, args: string[], timeoutMs: number): Promise<NodeRun> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/**
 * `node scripts/lparlab.mjs ARGS` in its own process group, so a Ctrl-C at the
 * terminal does not cut `up` or `down` short (teardown waits for them instead).
 */
function lparlab(args: string[], timeoutMs: number): Promise<NodeRun> {
  const all = [LPARLAB, ...args];
  return completion(spawnNode(all, true, CLI_ENV), all, timeoutMs).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
}

export interface Bench {
  root: string;
  runDir: RunDirT;
  /** Set on SIGINT/SIGTERM/SIGHUP: measurements should stop; teardown runs. */
  readonly interrupted: boolean;
  /** Boots `yaml` (`lparlab up --detach ...extra`) in the temporary run directory, within `timeoutMs` (default 90 s). */
  up(yaml: string, timeoutMs?: number, extra?: string[]): Promise<void>;
  /** Spawns `node ARGS` (stdout and stderr piped) as a child that teardown kills; throws once interrupted. */
  spawn(args: string[]): ChildProcess;
  /** Runs `node ARGS` to completion as such a child; rejects once interrupted or after `timeoutMs`. */
  run(args: string[], timeoutMs: number): Promise<NodeRun>;
  /** Kills the children, `lparlab down`, removes the temporary directory; safe to call more than once. */
  teardown(): Promise<void>;
  /**
   * Runs `main`, tears down and exits with its code; 2 when it throws (after
   * printing the platform's log tails), 130 when interrupted.
   */
  main(main: () => Promise<number>): Promise<never>;
}

/**
 * A temporary directory (`/tmp/<prefix>*`) with teardown wired to signals
 * (exit 130), uncaught exceptions (exit 2) and closed stdout/stderr.
 * `processNames` are the platform's processes, whose log tails are printed
 * when the bench fails.
 */
export function createBench(prefix: string, processNames: string[]): Bench {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const runDir = new RunDir(path.join(root, 'run'));
  const children = new Set<ChildProcess>();
  /** `lparlab up` while it runs: teardown lets it finish before `down`, so no process is left starting. */
  let booting: Promise<unknown> | undefined;
  let tearingDown: Promise<void> | undefined;
  const state = { interrupted: false };

  const teardown = (): Promise<void> =>
    (tearingDown ??= (async () => {
      for (const c of children) c.kill('SIGKILL');
      if (booting) await booting;
      if (fs.existsSync(runDir.platformFile) || fs.existsSync(runDir.supervisorPidFile)) {
        const r = await lparlab(['down', '--run-dir', runDir.root], 30_000);
        if (r.code !== 0) log(`lparlab down failed (${r.code}): ${r.stderr}`);
      }
      fs.rmSync(root, { recursive: true, force: true });
    })());

  const spawnChild = (args: string[]): ChildProcess => {
    if (state.interrupted) throw new Error('interrupted');
    const child = spawnNode(args, false);
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  };

  // A closed stdout/stderr (e.g. piped into `head`) must not skip the teardown.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  process.on('uncaughtException', (err) => {
    try {
      log(`bench failed: ${err.stack ?? String(err)}`);
    } catch {
      /* stderr gone */
    }
    void teardown().finally(() => process.exit(2));
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (state.interrupted) return;
      state.interrupted = true;
      log(`\n${sig}: tearing down`);
      void teardown().finally(() => process.exit(130));
    });
  }

  return {
    root,
    runDir,
    get interrupted() {
      return state.interrupted;
    },
    async up(yaml: string, timeoutMs = 90_000, extra: string[] = []) {
      if (state.interrupted) throw new Error('interrupted');
      const file = path.join(root, 'platform.yaml');
      fs.writeFileSync(file, yaml);
      const up = lparlab(['up', '--detach', '-c', file, '--run-dir', runDir.root, ...extra], timeoutMs);
      booting = up;
      const r = await up;
      booting = undefined;
      if (r.code !== 0) throw new Error(`lparlab up failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
      if (state.interrupted) throw new Error('interrupted');
    },
    spawn: spawnChild,
    async run(args: string[], timeoutMs: number) {
      return completion(spawnChild(args), args, timeoutMs);
    },
    teardown,
    async main(main: () => Promise<number>): Promise<never> {
      let code = 2;
      try {
        code = await main();
      } catch (err) {
        if (state.interrupted) {
          await teardown();
          process.exit(130);
        }
        log(`bench failed: ${(err as Error).stack ?? String(err)}`);
        logTails(runDir, processNames);
      } finally {
        await teardown();
      }
      process.exit(code);
    },
  };
}

/** Prints the last warnings/errors of each process's log (after a failure). */
function logTails(runDir: RunDirT, names: string[]): void {
  for (const n of names) {
    try {
      const tail = fs.readFileSync(runDir.logFile(n), 'utf8').trim().split('\n').slice(-5).join('\n');
      if (/"level":(40|50|60)/.test(tail)) log(`--- ${n} log tail ---\n${tail}`);
    } catch {
      /* no log */
    }
  }
}

/**
 * The arguments every bench takes: --json, --quick, --reps N (default 1 quick,
 * 3 otherwise), --help (prints `usage` and the options, and exits), plus the
 * bench's own whole-number options (`own`, names without dashes), read with
 * `num('--name')`. Parsed strictly with shared/runtime/options.ts: an unknown
 * flag or a bad number is an error naming it (exit 2).
 */
export function benchArgs(
  usage: string,
  own: Record<string, string> = {},
  /** The bench's own text options (names without dashes), read with `str('--name')`. */
  ownText: Record<string, string> = {},
): { json: boolean; quick: boolean; reps: number; num: (name: string) => number | undefined; str: (name: string) => string | undefined } {
  const table: OptionsTable = {
    json: { type: 'boolean', help: 'exactly one JSON object on stdout; progress on stderr' },
    quick: { type: 'boolean', help: 'fewer and shorter runs (a smoke test, not a figure)' },
    reps: { type: 'integer', arg: 'N', min: 1, help: 'repetitions (default 3, 1 with --quick)' },
    help: { type: 'boolean', short: 'h', help: 'this help' },
    ...Object.fromEntries(Object.entries(own).map(([name, help]) => [name, { type: 'integer', arg: 'N', min: 0, help }])),
    ...Object.fromEntries(Object.entries(ownText).map(([name, help]) => [name, { type: 'string', arg: 'LIST', help }])),
  };
  let values: Record<string, unknown>;
  try {
    const parsed = parseOptions(process.argv.slice(2), table);
    if (parsed.positionals.length) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
    values = parsed.values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: ${usage}\n${optionsHelp(table)}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`usage: ${usage}\n${optionsHelp(table)}\n`);
    process.exit(0);
  }
  const num = (name: string): number | undefined => values[name.replace(/^--/, '')] as number | undefined;
  const str = (name: string): string | undefined => values[name.replace(/^--/, '')] as string | undefined;
  const quick = values.quick === true;
  return { json: values.json === true, quick, reps: (values.reps as number | undefined) ?? (quick ? 1 : 3), num, str };
}

/** The bench platform: one control node, two LPARs on different CECs, one virtual LAN (10.9.0.0/24); SMC off, so TCP is what is measured. */
export function benchPlatformYaml(name: string): string {
  return `# lparlab bench platform: one control node, two LPARs on different CECs, one virtual LAN.
name: ${name}
transport: unix
rclan: { heartbeatMs: 100, deadAfterMs: 400, undeliverableAfterMs: 1500, window: 256 }
planes: [a, b]
controlNodes: [{ name: cn1, serial: 1 }]
cecs: [{ name: cec1 }, { name: cec2 }]
lpars: [{ name: lpar1, cec: cec1, smc: false }, { name: lpar2, cec: cec2, smc: false }]
vlans:
  - name: blue
    subnets: [10.9.0.0/24]
    members: [{ lpar: lpar1, ip: 10.9.0.1 }, { lpar: lpar2, ip: 10.9.0.2 }]
`;
}

export const BENCH_PROCESSES = ['fabric-manager', 'plane-a', 'plane-b', 'cn1', 'lpar1', 'lpar2'];
export const BENCH_DST = '10.9.0.2';

/** Polls `check` until it returns a value, or fails naming `what` (and the last error) after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms${last ? ` (${last})` : ''}`);
    await sleep(50);
  }
}
