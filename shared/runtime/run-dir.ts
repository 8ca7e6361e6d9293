import fs from 'node:fs';
import path from 'node:path';
import type { Platform } from '../platform/platform.ts';
import { credentialFor, generateKey } from '../control/auth.ts';
import { UnsafeRunDirError, callerUid, checkPrivateDir, modeText } from './private-dir.ts';
import { syncDir, writeFileAtomic } from './state-file.ts';

export { UnsafeRunDirError };

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY } = fs.constants;

/** Throws unless `dir` is safe to keep a platform's key and credentials in (private-dir.ts; issue 11 item 9). */
export function checkRunDirPath(dir: string): void {
  checkPrivateDir(dir, 'run directory');
}

/**
 * The contents of `file`, read only if it is a regular file (O_NOFOLLOW: not
 * through a symlink) owned by the caller and writable by no one else; a
 * `secret` one (a key, a credential) must be readable by no one else either.
 */
function readOwnFile(file: string, secret: boolean): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeRunDirError(file, 'is a symlink');
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    const me = callerUid();
    if (!st.isFile()) throw new UnsafeRunDirError(file, 'is not a regular file');
    if (st.uid !== me) throw new UnsafeRunDirError(file, `is owned by uid ${st.uid}, not by this user (uid ${me})`);
    if (st.mode & (secret ? 0o077 : 0o022)) throw new UnsafeRunDirError(file, `is ${secret ? 'open to' : 'writable by'} other users (${modeText(st.mode)})`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates `file` with `data`, mode 0600; fails if anything (a file, a symlink) is there already. */
function createExclusive(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Everything a running platform keeps on disk lives under one run directory,
 * so several platforms run side by side and teardown is one rm -r:
 *
 *   platform.json           the validated platform file
 *   keys/platform.key       the platform key (fabric manager and switches only)
 *   keys/<name>.cred        one credential per process, and mgmt.cred for the CLI
 *                           (both made anew by each boot and removed by down)
 *   sock/                   UNIX sockets: fm, plane-<p>, admin-<name>, supervisor
 *   state/<name>.json       each process's pid, role and health
 *   state/<name>.<what>     runtime state that outlives a process restart but not a new boot
 *   logs/<name>.log         each process's pino log
 *   data/<name>/            control-node NVRAM, which survives restarts and boots (kept by down);
 *                           the fabric manager's tables, which survive its restarts, not a boot
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

  /** The platform file; refused unless the run directory and the file are this user's alone (issue 11 item 9). */
  readPlatform(): Platform {
    checkRunDirPath(this.root);
    return JSON.parse(readOwnFile(this.platformFile, false).toString('utf8')) as Platform;
  }
  readKey(): Buffer {
    checkRunDirPath(this.root);
    return readOwnFile(this.keyFile, true);
  }
  readCredential(name: string): Buffer {
    checkRunDirPath(this.root);
    return readOwnFile(this.credFile(name), true);
  }

  /**
   * Makes the run directory (mode 0700, and any missing parent) if it is not
   * there, and refuses one that is not safe (checkRunDirPath): another user's,
   * writable by others, or a symlink. Everything that writes into it first
   * calls this.
   */
  prepare(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    checkRunDirPath(this.root);
  }

  /**
   * Lays out a fresh run directory for `platform`: the platform file, a new
   * key and every process's credential. Data (NVRAM) and logs are kept if present.
   * Each subdirectory is checked as the run directory is; the keys directory is
   * made anew and every key file created exclusively (O_EXCL | O_NOFOLLOW, mode 0600),
   * so nothing planted there beforehand is written through.
   */
  initialise(platform: Platform, processNames: string[]): void {
    this.prepare();
    fs.rmSync(path.join(this.root, 'keys'), { recursive: true, force: true });
    for (const d of ['keys', 'sock', 'state', 'logs', 'data']) {
      const dir = path.join(this.root, d);
      fs.mkdirSync(dir, { mode: 0o700, recursive: true });
      checkRunDirPath(dir);
      fs.chmodSync(dir, 0o700);
    }
    for (const f of fs.readdirSync(path.join(this.root, 'state'))) fs.rmSync(path.join(this.root, 'state', f), { force: true });
    this.removeBootData();
    writeFileAtomic(this.platformFile, JSON.stringify(platform, null, 2), { mode: 0o600 });
    const key = generateKey();
    createExclusive(this.keyFile, key);
    for (const name of [...processNames, 'mgmt']) createExclusive(this.credFile(name), credentialFor(key, name));
    syncDir(path.join(this.root, 'keys'));
  }

  /** What `down` removes beside sockets and state (issue 11 item 14): the keys, valid for one boot only. */
  removeKeys(): void {
    fs.rmSync(path.join(this.root, 'keys'), { recursive: true, force: true });
  }

  /** The fabric tables are runtime state (they survive a fabric-manager restart, not a new boot); NVRAM is kept. */
  removeBootData(): void {
    fs.rmSync(this.dataDir('fabric-manager'), { recursive: true, force: true });
  }
}

/** Where `lparlab` puts a platform's run directory unless told otherwise: short, so socket paths fit. */
export function defaultRunDir(platformName: string): string {
  return path.join('/tmp', `lparlab-${process.getuid?.() ?? 0}`, platformName);
}
