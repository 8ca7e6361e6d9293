import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BootEvent } from '../../shared/protocol/boot.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import { HealthError } from './health.ts';

/**
 * A platform's boot (issue 10 item 4): its processes started in plan order,
 * as many at a time as the box can take, each followed until it is up.
 *
 *   waiting -> loading -> starting -> up
 *                 \__________\______-> failed (exited first, or the timeout)
 *
 * loading: spawned, reading and compiling its code (the CPU-heavy part);
 * starting: its admin socket exists, so its code runs, and it is connecting
 * to the fabric and its peers (mostly waiting on them); up: its state file
 * says healthy (or degraded, when processes are left out on purpose).
 *
 * Bounded by work: the next process starts as soon as one finishes loading
 * (the run directory's sock/ and state/ are watched, inotify), not after a
 * fixed pause, and at most `limits.loading` load at once. Only loading is
 * bounded: it needs nothing but CPU, so it always ends, whereas a process's
 * health may wait for processes after it in the plan (a control node
 * reports healthy once it has made its RVIs to every partition), so holding
 * a slot until healthy could deadlock. Partitions still arrive at the
 * control nodes paced by how fast they load. Plan order puts every process
 * after what it needs to load and connect (fabric manager, planes,
 * hypervisors, control nodes, partitions).
 */
export type BootPhase = 'waiting' | 'loading' | 'starting' | 'up' | 'failed';

export interface BootLimits {
  /** Processes loading their code at once. */
  loading: number;
}

/**
 * Loading is CPU, plus file reads, plus (for a partition) the first
 * handshakes while the fabric is busy with the ones before it: four per core
 * keeps the cores busy across those waits. Measured on a 2-core box loaded by
 * other work (load average ~55), 32 partitions: two per core left ten not
 * healthy after 90 s, where starting all at once booted in 95 s. Each loading
 * process also peaks at ~64 MB while it compiles, so free memory bounds it too.
 */
export function bootLimits(cores = os.availableParallelism(), freeBytes = os.freemem()): BootLimits {
  return { loading: Math.max(1, Math.min(4 * cores, Math.floor(freeBytes / (64 << 20)))) };
}

export interface BootOptions {
  limits: BootLimits;
  /** With processes left out (`--except`), the others cannot all be whole: degraded counts as up. */
  degradedIsUp: boolean;
  /** Whole boot; the processes not up by then fail it, the first of them named. */
  timeoutMs: number;
  onEvent: (e: BootEvent) => void;
}

export class Boot {
  private readonly phases = new Map<string, BootPhase>();
  private readonly spawnedAt = new Map<string, number>();
  private readonly startedAt = Date.now();
  private readonly watchers: fs.FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private settled = false;
  private finish?: { resolve: () => void; reject: (err: Error) => void };

  constructor(
    private readonly runDir: RunDir,
    names: string[],
    /** Starts one process (the supervisor's spawn: log file, environment, exit bookkeeping). */
    private readonly spawn: (name: string) => ChildProcess,
    private readonly opts: BootOptions,
  ) {
    for (const n of names) this.phases.set(n, 'waiting');
  }

  phase(name: string): BootPhase | undefined {
    return this.phases.get(name);
  }

  /** The processes not up yet. */
  pending(): string[] {
    return [...this.phases].filter(([, p]) => p !== 'up').map(([n]) => n);
  }

  /** Resolves once every process is up; rejects with a HealthError naming the process to blame. */
  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.finish = { resolve, reject };
      // Watch before the first spawn, so no socket or state file is missed.
      for (const dir of [path.dirname(this.runDir.adminSocket('x')), path.dirname(this.runDir.stateFile('x'))]) {
        this.watchers.push(fs.watch(dir, () => this.advance()));
      }
      this.timer = setTimeout(() => {
        const pending = this.pending();
        this.fail(pending[0], `${pending.join(', ')} not healthy after ${this.opts.timeoutMs} ms`);
      }, this.opts.timeoutMs);
      this.advance();
    });
  }

  /** Stops following the processes (the boot is over, or the supervisor stops). */
  close(): void {
    this.settled = true;
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }

  private count(phase: BootPhase): number {
    let n = 0;
    for (const p of this.phases.values()) if (p === phase) n++;
    return n;
  }

  /** Moves every process on as far as the run directory says, then starts as many as the limits allow. */
  private advance(): void {
    if (this.settled) return;
    for (const [name, phase] of this.phases) {
      if (phase !== 'loading' && phase !== 'starting') continue;
      const health = readState(this.runDir.stateFile(name))?.health;
      if (health === 'healthy' || (this.opts.degradedIsUp && health === 'degraded')) {
        this.phases.set(name, 'up');
        this.opts.onEvent({ t: 'up', name, health, ms: Date.now() - this.spawnedAt.get(name)! });
      } else if (phase === 'loading' && fs.existsSync(this.runDir.adminSocket(name))) {
        this.phases.set(name, 'starting');
        this.opts.onEvent({ t: 'loaded', name });
      }
    }
    let loading = this.count('loading');
    for (const [name, phase] of this.phases) {
      if (loading >= this.opts.limits.loading) break;
      if (phase !== 'waiting') continue;
      this.start(name);
      loading++;
    }
    if (this.count('up') === this.phases.size) {
      this.close();
      this.opts.onEvent({ t: 'booted', ms: Date.now() - this.startedAt });
      this.finish?.resolve();
    }
  }

  private start(name: string): void {
    this.phases.set(name, 'loading');
    this.spawnedAt.set(name, Date.now());
    let child: ChildProcess;
    try {
      child = this.spawn(name);
    } catch (err) {
      this.fail(name, `${name} could not be started: ${(err as Error).message}`);
      return;
    }
    this.opts.onEvent({ t: 'spawned', name, pid: child.pid ?? 0 });
    child.once('exit', (code, signal) => {
      if (this.phases.get(name) !== 'up') this.fail(name, `${name} exited before it was healthy (${signal ?? `code ${code}`})`);
    });
  }

  private fail(name: string, reason: string): void {
    if (this.settled) return;
    this.phases.set(name, 'failed');
    this.close();
    this.opts.onEvent({ t: 'failed', name, reason });
    this.finish?.reject(new HealthError(name, reason));
  }
}
