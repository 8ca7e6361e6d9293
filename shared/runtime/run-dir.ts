import fs from 'node:fs';
import path from 'node:path';
import type { Platform } from '../platform/platform.ts';
import { credentialFor, generateKey } from '../control/auth.ts';

/**
 * Everything a running platform keeps on disk lives under one run directory,
 * so several platforms run side by side and teardown is one rm -r:
 *
 *   platform.json           the validated platform file
 *   keys/platform.key       the platform key (fabric manager and switches only)
 *   keys/<name>.cred        one credential per process, and mgmt.cred for the CLI
 *   sock/                   UNIX sockets: fm, plane-<p>, admin-<name>, supervisor
 *   state/<name>.json       each process's pid, role and health
 *   state/<name>.<what>     runtime state that outlives a process restart but not a new boot
 *   logs/<name>.log         each process's pino log
 *   data/<name>/            control-node NVRAM that survives restarts
 */
export class RunDir {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get platformFile(): string {
    return path.join(this.root, 'platform.json');
  }
  get keyFile(): string {
    return path.join(this.root, 'keys', 'platform.key');
  }
  credFile(name: string): string {
    return path.join(this.root, 'keys', `${name}.cred`);
  }
  socket(name: string): string {
    return path.join(this.root, 'sock', `${name}.sock`);
  }
  adminSocket(name: string): string {
    return this.socket(`admin-${name}`);
  }
  stateFile(name: string): string {
    return path.join(this.root, 'state', `${name}.json`);
  }
  runtimeFile(name: string, what: string): string {
    return path.join(this.root, 'state', `${name}.${what}`);
  }
  logFile(name: string): string {
    return path.join(this.root, 'logs', `${name}.log`);
  }
  dataDir(name: string): string {
    return path.join(this.root, 'data', name);
  }
  get supervisorPidFile(): string {
    return path.join(this.root, 'supervisor.pid');
  }

  readPlatform(): Platform {
    return JSON.parse(fs.readFileSync(this.platformFile, 'utf8')) as Platform;
  }
  readKey(): Buffer {
    return fs.readFileSync(this.keyFile);
  }
  readCredential(name: string): Buffer {
    return fs.readFileSync(this.credFile(name));
  }

  /**
   * Lays out a fresh run directory for `platform`: the platform file, a new
   * key and every process's credential. Data (NVRAM) is kept if present.
   */
  initialise(platform: Platform, processNames: string[]): void {
    for (const d of ['keys', 'sock', 'state', 'logs', 'data']) fs.mkdirSync(path.join(this.root, d), { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(path.join(this.root, 'state'))) fs.rmSync(path.join(this.root, 'state', f), { force: true });
    // The fabric tables are runtime state (they survive a fabric-manager restart, not a new boot); NVRAM is kept.
    fs.rmSync(this.dataDir('fabric-manager'), { recursive: true, force: true });
    fs.writeFileSync(this.platformFile, JSON.stringify(platform, null, 2));
    const key = generateKey();
    fs.writeFileSync(this.keyFile, key, { mode: 0o600 });
    for (const name of [...processNames, 'mgmt']) fs.writeFileSync(this.credFile(name), credentialFor(key, name), { mode: 0o600 });
  }
}

/** Where `lparlab` puts a platform's run directory unless told otherwise: short, so socket paths fit. */
export function defaultRunDir(platformName: string): string {
  return path.join('/tmp', `lparlab-${process.getuid?.() ?? 0}`, platformName);
}
