import path from 'node:path';
import type { Logger } from 'pino';
import type { AppSpec } from '../../../shared/platform/platform.ts';
import type { Net } from '../net/socket/net-api.ts';
import { BUILTIN_APPS } from './builtin.ts';
import { startUserModule, type AppHandle } from './user-module.ts';

/** A module's start that has not finished by then is reported failed (it may still come up later). */
const START_TIMEOUT_MS = 10_000;
/** Shutdown waits this long for each app's stop. */
const STOP_TIMEOUT_MS = 2_000;

export type AppState = 'starting' | 'running' | 'failed' | 'stopped';

export interface AppStatus {
  /** The built-in's name, or the module's file name. */
  app: string;
  module?: string;
  port: number | null;
  /** Named in the platform file, or started by hand (`app-start`). */
  source: 'platform' | 'admin';
  state: AppState;
  error?: string;
}

interface Entry {
  status: AppStatus;
  handle: AppHandle;
}

/**
 * The workloads of one partition: the apps its platform file names, started
 * once when the network is up, in file order, and those started by hand
 * through the admin verb `app-start`. One app per port. A failing app is
 * logged and kept in the list as failed; the partition carries on.
 */
export class Workloads {
  private readonly entries: Entry[] = [];
  private begun = false;
  /** Every platform app has started or failed (true at once when there are none). */
  settled = false;
  /** An app started, failed or stopped. */
  onChange: () => void = () => {};

  constructor(
    private readonly lpar: string,
    private readonly log: Logger,
  ) {}

  /** Starts the platform file's apps, once; later calls do nothing. */
  async startPlatformApps(net: Net, specs: AppSpec[]): Promise<void> {
    if (this.begun) return;
    this.begun = true;
    for (const spec of specs) {
      try {
        await this.start(net, spec, 'platform');
      } catch {
        /* recorded and logged by start */
      }
    }
    this.settled = true;
  }

  /** Starts one app; rejects (after recording it as failed) when it cannot. */
  async start(net: Net, spec: AppSpec, source: AppStatus['source']): Promise<AppStatus> {
    const isModule = 'module' in spec;
    const status: AppStatus = { app: isModule ? path.basename(spec.module) : spec.name, ...(isModule ? { module: spec.module } : {}), port: spec.port ?? null, source, state: 'starting' };
    const entry: Entry = { status, handle: {} };
    const taken = spec.port === undefined ? undefined : this.byPort(spec.port);
    if (taken) throw new Error(`port ${spec.port} already runs ${taken.status.app}`);
    if (!isModule && !BUILTIN_APPS[spec.name]) throw new Error(`no built-in app "${spec.name}" (${Object.keys(BUILTIN_APPS).join(', ')})`);
    this.entries.push(entry);
    try {
      entry.handle = isModule ? await this.startModule(net, spec, entry) : await this.startBuiltin(net, spec.name, spec.port);
      status.state = 'running';
      this.log.info({ app: status.app, module: status.module, port: status.port, source }, 'app started');
      this.onChange();
      return status;
    } catch (err) {
      status.state = 'failed';
      status.error = (err as Error).message;
      this.log.error({ app: status.app, module: status.module, port: status.port, source, err: (err as Error).stack }, 'app failed to start');
      this.onChange();
      throw err;
    }
  }

  private startBuiltin(net: Net, name: string, port: number): Promise<AppHandle> {
    const app = BUILTIN_APPS[name](net, port);
    // listen reports success and failure (EADDRINUSE) as events, like node:net.
    return new Promise((resolve, reject) => {
      app.server.once('error', reject);
      app.server.once('listening', () => {
        app.server.removeListener('error', reject);
        app.server.on('error', (err: Error) => this.log.warn({ app: name, port, err: err.message }, 'app server error'));
        resolve({ report: () => app.report(), stop: () => new Promise<void>((r) => app.server.close(() => r())) });
      });
    });
  }

  private startModule(net: Net, spec: { module: string; port?: number; options: Record<string, unknown> }, entry: Entry): Promise<AppHandle> {
    const status = entry.status;
    const started = startUserModule(spec.module, { net, port: spec.port, options: { ...spec.options }, log: this.log.child({ app: status.app }), lpar: this.lpar });
    let timedOut = false;
    // A start that finishes after the timeout still counts: the app is running after all.
    started.then(
      (handle) => {
        if (!timedOut) return;
        entry.handle = handle;
        status.state = 'running';
        delete status.error;
        this.log.info({ app: status.app, module: status.module, port: status.port, source: status.source }, 'app started (late)');
        this.onChange();
      },
      () => {},
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`start(ctx) did not finish within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      started.then(
        (handle) => {
          clearTimeout(timer);
          resolve(handle);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  byPort(port: number): Entry | undefined {
    return this.entries.find((e) => e.status.port === port && (e.status.state === 'running' || e.status.state === 'starting'));
  }

  /** The app on `port` and what it has seen. */
  report(port: number): Record<string, unknown> & { app: string } {
    const e = this.byPort(port);
    if (!e) throw new Error(`no app on port ${port}`);
    return { ...this.safeReport(e), app: e.status.app };
  }

  private safeReport(e: Entry): Record<string, unknown> {
    try {
      return e.handle.report?.() ?? {};
    } catch (err) {
      return { reportError: (err as Error).message };
    }
  }

  /** Every app with its state and report. */
  list(): Array<AppStatus & { report: Record<string, unknown> }> {
    return this.entries.map((e) => ({ ...e.status, report: e.status.state === 'running' ? this.safeReport(e) : {} }));
  }

  /** One line for the partition's health detail: "" without apps. */
  summary(): string {
    if (this.entries.length === 0) return '';
    const running = this.entries.filter((e) => e.status.state === 'running').length;
    const failed = this.entries.filter((e) => e.status.state === 'failed');
    return `apps ${running} running${failed.length ? `, ${failed.length} FAILED (${failed.map((e) => `${e.status.app}: ${e.status.error}`).join('; ')})` : ''}`;
  }

  /** Stops every running app (each given STOP_TIMEOUT_MS), for shutdown. */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.entries
        .filter((e) => e.status.state === 'running')
        .map(async (e) => {
          e.status.state = 'stopped';
          let timer: NodeJS.Timeout | undefined;
          try {
            await Promise.race([Promise.resolve().then(() => e.handle.stop?.()), new Promise<void>((r) => (timer = setTimeout(r, STOP_TIMEOUT_MS)))]);
          } catch (err) {
            this.log.warn({ app: e.status.app, err: (err as Error).message }, 'app stop failed');
          } finally {
            clearTimeout(timer);
          }
        }),
    );
  }
}
