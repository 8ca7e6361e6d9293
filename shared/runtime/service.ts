import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { ControlChannel, type Handler } from '../control/channel.ts';
import { authenticateOperator } from '../control/admin-auth.ts';
import { readOwnSecrets, type ProcessSecrets } from '../control/process-secrets.ts';
import { refusals } from './refusal-log.ts';
import { listenLink } from '../link/transport.ts';
import type { LinkServer } from '../link/link.ts';
import { UsageError, optionsHelp, parseOptions, required, type OptionValues } from './options.ts';
import { processLogger } from './log.ts';
import { RunDir } from './run-dir.ts';
import { writeState, writeStateAsync, type Health, type ProcessState } from './state-file.ts';
import { SERVICE_OPTIONS, type ServiceOptions, type ServiceRole } from './service-options.ts';

export type AdminVerb = Handler;

/** The shortest interval between two writes of a process's health file (setHealth). */
const HEALTH_WRITE_MS = 250;

/**
 * What every lparlab process has: identity, logger, run directory, a state
 * file with its health, an admin socket, and an orderly shutdown.
 *
 * The admin socket is a UNIX socket in the run directory's sock/ folder (mode
 * 0700). It answers `status` and whatever verbs the service adds, to the
 * operator only: a caller proves it holds the management credential first
 * (shared/control/admin-auth.ts, issue 11 item 11: a partition's own code
 * could open a control node's socket and join itself to a virtual LAN).
 */
export class ServiceContext<R extends ServiceRole = ServiceRole> {
  readonly log: Logger;
  health: Health = 'starting';
  detail = '';
  private readonly verbs = new Map<string, AdminVerb>();
  private readonly shutdownHooks: Array<() => void | Promise<void>> = [];
  private adminServer?: LinkServer;
  private stopping = false;
  /** Admin connections refused for want of the operator's proof. */
  adminRefused = 0;
  readonly startedAt = Date.now();
  private ownSecrets?: ProcessSecrets;

  constructor(
    readonly role: R,
    readonly name: string,
    readonly runDir: RunDir,
    /** The process's command-line options, parsed with its role's table (shared/runtime/service-options.ts). */
    readonly options: OptionValues<ServiceOptions[R]>,
  ) {
    this.log = processLogger(role, name);
    this.verb('status', () => this.status());
  }

  /** This process's own credential and admin verifier, and no one else's (shared/control/process-secrets.ts); read once, at the admin socket's start. */
  get secrets(): ProcessSecrets {
    this.ownSecrets ??= readOwnSecrets(this.runDir, this.name);
    return this.ownSecrets;
  }

  setHealth(health: Health, detail = ''): void {
    if (health === this.health && detail === this.detail) return;
    this.health = health;
    this.detail = detail;
    this.since = new Date().toISOString();
    this.log.info({ health, detail }, 'health');
    this.writeHealthSoon();
  }

  private since = '';
  private healthTimer: NodeJS.Timeout | undefined;
  private healthWriting: Promise<void> | undefined;
  /** A change the state file does not have yet. */
  private healthDirty = false;
  private healthWrittenAt = -Infinity;

  /**
   * The state file follows health at most once per HEALTH_WRITE_MS, with the
   * latest (a change after a quiet spell is written at once; the log has every
   * change), and off the event loop (writeStateAsync). Health follows
   * reachability: a partition whose paths flapped under load changed it many
   * times a second, each change a synchronous write (two fsyncs, three steps on
   * the shared state directory) that held its event loop for up to seconds, so
   * its peers judged it dead and its health changed again (issue 10: a
   * 256-partition pingall that never settled).
   */
  private writeHealthSoon(): void {
    this.healthDirty = true;
    if (this.healthTimer || this.healthWriting || this.stopping) return;
    const wait = this.healthWrittenAt + HEALTH_WRITE_MS - performance.now();
    if (wait <= 0) return this.writeHealth();
    this.healthTimer = setTimeout(() => {
      this.healthTimer = undefined;
      this.writeHealth();
    }, wait);
    this.healthTimer.unref();
  }

  private healthState(): ProcessState {
    return { name: this.name, role: this.role, pid: process.pid, health: this.health, detail: this.detail, since: this.since };
  }

  private writeHealth(): void {
    this.healthDirty = false;
    this.healthWrittenAt = performance.now();
    this.healthWriting = writeStateAsync(this.runDir.stateFile(this.name), this.healthState())
      // A full disk or a removed run directory costs the file, not the process: the next change writes it again.
      .catch((err: Error) => this.log.warn({ err: err.message }, 'state file could not be written'))
      .finally(() => {
        this.healthWriting = undefined;
        if (this.healthDirty) this.writeHealthSoon();
      });
  }

  /** Waits for a write under way, then writes a waiting change at once (shutdown, before the process exits). */
  async flushHealth(): Promise<void> {
    clearTimeout(this.healthTimer);
    this.healthTimer = undefined;
    while (this.healthWriting) await this.healthWriting;
    clearTimeout(this.healthTimer);
    this.healthTimer = undefined;
    if (!this.healthDirty) return;
    this.healthDirty = false;
    try {
      writeState(this.runDir.stateFile(this.name), this.healthState());
    } catch {
      /* the run directory is gone: the log has the reason */
    }
  }

  /** A required option of this service, or an error naming it (the process then fails to start). */
  option<K extends keyof ServiceOptions[R] & string>(name: K): NonNullable<OptionValues<ServiceOptions[R]>[K]> {
    return required(this.options, name);
  }

  verb(name: string, fn: AdminVerb): void {
    this.verbs.set(name, fn);
  }

  onShutdown(fn: () => void | Promise<void>): void {
    this.shutdownHooks.push(fn);
  }

  status(): Record<string, unknown> {
    return { name: this.name, role: this.role, pid: process.pid, health: this.health, detail: this.detail, uptimeMs: Date.now() - this.startedAt };
  }

  async startAdmin(): Promise<void> {
    const path = this.runDir.adminSocket(this.name);
    const verifier = this.secrets.adminVerifier;
    this.adminServer = await listenLink(`unix:${path}`, (link) => {
      const ch = new ControlChannel(link, this.log.child({ component: 'admin' }));
      authenticateOperator(ch, verifier).then(
        () => {
          for (const [name, fn] of this.verbs) ch.handle(name, fn);
          ch.send({ t: 'welcome' });
        },
        (err: Error) => {
          this.adminRefused++;
          refusals.warn(this.log, { err: err.message.slice(0, 200) }, 'admin connection refused: not the operator');
          ch.send({ t: 'refused', reason: err.message });
          setTimeout(() => link.close(), 50);
        },
      );
    });
    fs.chmodSync(path, 0o600);
  }

  /**
   * Stops the process. `failure` (why it could not start) is left in its
   * state file instead of removing it, so `lparlab status` shows the reason
   * beside the dead process (issue 11 item 8: a corrupt state file is refused
   * naming the file, where the operator looks).
   */
  async shutdown(code = 0, failure?: string): Promise<never> {
    if (!this.stopping) {
      this.stopping = true;
      this.log.info({ code }, 'shutting down');
      for (const hook of this.shutdownHooks.reverse()) {
        try {
          await hook();
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'shutdown hook failed');
        }
      }
      await this.adminServer?.close();
      if (failure === undefined) {
        // No write may land after the file is removed.
        this.healthDirty = false;
        await this.flushHealth();
        fs.rmSync(this.runDir.stateFile(this.name), { force: true });
      } else {
        this.setHealth('stopping', `failed to start: ${failure}`);
        await this.flushHealth();
      }
    }
    process.exit(code);
  }
}

/**
 * The launcher holds the other end of descriptor `fd` open and never writes
 * to it; the kernel closes that end when the launcher dies, however it dies,
 * and this one reads end of file. Polling the launcher's pid instead, as this
 * once did, woke every process of a platform twice a second for nothing
 * (issue 10 item 2: idle cost).
 */
function onLauncherGone(fd: number, gone: () => void): void {
  let once = false;
  const fire = () => {
    if (once) return;
    once = true;
    gone();
  };
  const end = new net.Socket({ fd, readable: true, writable: false });
  // Nothing is written on it; bytes would be the launcher's mistake, and are dropped.
  end.on('data', () => {});
  end.once('end', fire);
  end.once('close', fire);
  end.once('error', fire);
  end.unref();
}

/**
 * Runs a service process: `--id NAME --run-dir DIR [--parent-fd FD]` plus
 * the role's own flags (SERVICE_OPTIONS). A command line that does not fit the
 * table ends the process with exit code 2 before it touches the run directory.
 * With --parent-fd the process ends when its launcher is gone, so a killed
 * launcher leaves nothing behind.
 */
export async function runService<R extends ServiceRole>(role: R, main: (ctx: ServiceContext<R>) => Promise<void>): Promise<void> {
  const table = SERVICE_OPTIONS[role];
  let ctx: ServiceContext<R>;
  try {
    const { values, positionals } = parseOptions(process.argv.slice(2), table);
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const common = values as { id?: string; 'run-dir'?: string };
    ctx = new ServiceContext(role, required(common, 'id'), new RunDir(required(common, 'run-dir')), values as OptionValues<ServiceOptions[R]>);
  } catch (err) {
    process.stderr.write(`${role}: ${(err as Error).message}\noptions:\n${optionsHelp(table)}\n`);
    process.exit(2);
  }
  process.on('SIGTERM', () => void ctx.shutdown(0));
  process.on('SIGINT', () => void ctx.shutdown(0));
  process.on('uncaughtException', (err) => {
    ctx.log.fatal({ err: err.stack }, 'uncaught exception');
    void ctx.shutdown(1);
  });
  const parentFd = (ctx.options as { 'parent-fd'?: number })['parent-fd'] ?? 0;
  if (parentFd > 0) {
    onLauncherGone(parentFd, () => {
      ctx.log.warn({ fd: parentFd }, 'launcher is gone');
      void ctx.shutdown(0);
    });
  }
  try {
    await ctx.startAdmin();
    ctx.setHealth('starting');
    await main(ctx);
  } catch (err) {
    ctx.log.fatal({ err: (err as Error).stack }, 'failed to start');
    await ctx.shutdown(1, (err as Error).message);
  }
}
