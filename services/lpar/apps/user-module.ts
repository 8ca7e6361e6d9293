import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { Net } from '../net/socket/net-api.ts';

/**
 * The user module interface: how a partition runs a workload it was not built
 * with. A module is an ES module file whose default export is
 *
 *     export default async function start(ctx) { ... return { stop, report }; }
 *
 * called once, when the partition's network is up, with `ctx` (AppContext).
 * Everything it does on the network goes through `ctx.net`, the partition's
 * own `node:net`-shaped module (createServer, connect, createConnection; the
 * sockets are Duplex streams with node:net's events and error codes), never
 * through the host's `node:net`. It may return an AppHandle: `stop()` is called
 * when the partition shuts down, `report()` answers `lparlab`'s app report.
 *
 * An error thrown by `start` (or its promise rejecting) marks the app failed in
 * the partition's status; the partition goes on. Errors the module's own
 * event handlers throw later are not isolated: handle 'error' events, as with
 * node:net.
 */
export interface AppContext {
  /** The partition's `net` module: createServer, connect/createConnection. */
  net: Net;
  /** The port the platform file gave the app, if any. */
  port?: number;
  /** The app's `options` from the platform file ({} when none). */
  options: Record<string, unknown>;
  /** A pino logger into the partition's log, bound to the app. */
  log: Logger;
  /** The partition's name. */
  lpar: string;
}

export interface AppHandle {
  stop?(): Promise<void> | void;
  report?(): Record<string, unknown>;
}

export type AppStart = (ctx: AppContext) => Promise<AppHandle | void> | AppHandle | void;

/** Imports a module file and returns its start function. */
export async function loadUserModule(file: string): Promise<AppStart> {
  const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error(`${file}: the default export must be a function start(ctx), found ${mod.default === undefined ? 'no default export' : typeof mod.default}`);
  return mod.default as AppStart;
}

/** Loads the module and runs its start; resolves with its handle ({} when it returned nothing). */
export async function startUserModule(file: string, ctx: AppContext): Promise<AppHandle> {
  const start = await loadUserModule(file);
  const handle = await start(ctx);
  if (handle === undefined || handle === null) return {};
  if (typeof handle !== 'object') throw new Error(`${file}: start(ctx) must return nothing or an object { stop?, report? }, got ${typeof handle}`);
  return handle;
}
