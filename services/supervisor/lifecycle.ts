import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import type { Platform } from '../../shared/platform/platform.ts';
import { parseBootLine, type BootEvent } from '../../shared/protocol/boot.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import { cleanRunDir } from './clean.ts';
import { HealthError, isAlive, logTail } from './health.ts';
import { builtFile } from '../../shared/runtime/build-paths.ts';
import { processPlan, REPO_ROOT } from './process-plan.ts';

/**
 * A platform's life as a whole, Mininet's net.start()/net.stop(): boot it
 * under a detached supervisor, find that supervisor, tear everything down.
 * The CLI's up/down verbs are these; tests and benches may call them directly.
 */

/** The live supervisor of a run directory, if any. */
export function supervisorPid(runDir: RunDir): number | undefined {
  try {
    const pid = Number(fs.readFileSync(runDir.supervisorPidFile, 'utf8'));
    return pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export class AlreadyRunningError extends Error {}

/**
 * Boots `platform` (read from `platformFile`) under a detached supervisor
 * (`lparlab supervise`, its output in supervisor.log) and follows the boot
 * through the supervisor's events on a pipe (shared/protocol/boot.ts), each
 * handed to `onEvent`, until every process but `except` is up. On failure
 * the supervisor is stopped and the error names the process to blame, with
 * the last lines of its log.
 */
export async function bootDetached(platform: Platform, platformFile: string, runDir: RunDir, except: string[], timeoutMs = 90_000, onEvent: (e: BootEvent) => void = () => {}): Promise<void> {
  const running = supervisorPid(runDir);
  if (running) throw new AlreadyRunningError(`platform already running in ${runDir.root} (supervisor pid ${running}); lparlab down --run-dir ${runDir.root}`);
  // Checked before anything starts: a typo in --except fails here, not in the detached supervisor's log.
  const names = processPlan(platform, runDir).map((p) => p.name);
  for (const e of except) if (!names.includes(e)) throw new Error(`--except ${e}: no such process in platform ${platform.name}`);
  runDir.prepare(); // issue 11 item 9: made 0700, or refused when another user could have planted it or its files
  const supArgs = ['supervise', '--run-dir', runDir.root, '--config', platformFile, ...except.flatMap((e) => ['--except', e]), '--progress-fd', '3', '--boot-timeout', String(timeoutMs)];
  const logFile = path.join(runDir.root, 'supervisor.log');
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [builtFile('scripts/cli/main.ts'), ...supArgs], { detached: true, stdio: ['ignore', out, out, 'pipe'], cwd: REPO_ROOT });
  fs.closeSync(out);
  child.unref();
  const pipe = child.stdio[3] as Readable;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const lines = readline.createInterface({ input: pipe });
      lines.on('line', (line) => {
        const d = parseBootLine(line);
        if (!d.ok) {
          process.stderr.write(`lparlab up: ignored a malformed boot event from the supervisor: ${d.reason}\n`);
          return;
        }
        onEvent(d.value);
        if (d.value.t === 'booted') resolve();
        if (d.value.t === 'failed') reject(new HealthError(d.value.name, d.value.reason));
      });
      child.once('exit', (code, signal) => reject(new HealthError('supervisor', `the supervisor exited (${signal ?? `code ${code}`}) before the platform was up`)));
      // The supervisor times the boot out itself; this catches one that stops reporting.
      timer = setTimeout(() => reject(new HealthError('supervisor', `no word from the supervisor within ${timeoutMs + 15_000} ms`)), timeoutMs + 15_000);
    });
  } catch (err) {
    const name = err instanceof HealthError ? err.processName : 'supervisor';
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
    throw new Error(`${(err as Error).message}\n--- last lines of ${name}'s log ---\n${name === 'supervisor' ? tailOf(logFile) : logTail(runDir, name)}`);
  } finally {
    clearTimeout(timer);
    pipe.destroy();
  }
}

/**
 * Stops the platform of a run directory: the supervisor first (it stops its
 * children in order), then whatever is left (a supervisor that was killed, a
 * process started by hand with `lparlab svc`) with SIGKILL, then the sockets,
 * state, keys and shared memory. Leaves platform.json, logs and data (clean.ts, KEPT_AFTER_DOWN).
 */
export async function stopPlatform(runDir: RunDir): Promise<void> {
  const sup = supervisorPid(runDir);
  if (sup) {
    process.kill(sup, 'SIGTERM');
    // Not our child, so no exit event: polled until the pid is gone (reaped by init, not just exited).
    const deadline = Date.now() + 10_000;
    while (isAlive(sup) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  if (fs.existsSync(runDir.platformFile)) {
    for (const spec of processPlan(runDir.readPlatform(), runDir)) {
      const st = readState(runDir.stateFile(spec.name));
      if (st && isAlive(st.pid)) process.kill(st.pid, 'SIGKILL');
    }
  }
  if (sup && isAlive(sup)) process.kill(sup, 'SIGKILL');
  cleanRunDir(runDir);
}

function tailOf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n');
  } catch {
    return '(no log)';
  }
}
