import fs from 'node:fs';
import type { RunDir } from '../runtime/run-dir.ts';
import { adminVerifierFile, adminVerifierFor, OPERATOR } from './admin-auth.ts';

/**
 * What one process holds of the platform's secrets: its own fabric
 * credential and its own admin verifier (shared/control/admin-auth.ts), and
 * nothing of any other process (issue 11 item 11: an LPAR's app read
 * keys/mgmt.cred).
 *
 * The supervisor hands them over an inherited descriptor: the child reads it
 * to the end at start and closes it, so nothing is left in its environment or
 * on a path it can open (a partition started by a root supervisor cannot see
 * keys/ at all: services/supervisor/partition-jail.ts). A process started
 * otherwise — a container that mounts only its own key files, `lparlab svc`
 * for debugging — reads its own two files, keys/<name>.cred and
 * keys/<name>.admin. An environment variable would have been simpler to hand
 * over, but /proc/<pid>/environ keeps it for the life of the process.
 */
export interface ProcessSecrets {
  credential: Buffer;
  adminVerifier: Buffer;
}

/** The environment variable naming the descriptor the secrets come on (its number, not the secret). */
export const SECRETS_FD_ENV = 'LPARLAB_SECRETS_FD';
/** The descriptor the supervisor hands them on. */
export const SECRETS_FD = 3;
const PART = 32;

/** What the supervisor writes to a child's descriptor: credential, then verifier. */
export function secretsFor(runDir: RunDir, name: string): Buffer {
  return Buffer.concat([runDir.readCredential(name), adminVerifierFor(runDir.readCredential(OPERATOR), name)]);
}

/** This process's secrets: from the inherited descriptor when it was handed one, else its own files. */
export function readOwnSecrets(runDir: RunDir, name: string): ProcessSecrets {
  const fdText = process.env[SECRETS_FD_ENV];
  if (fdText !== undefined) {
    delete process.env[SECRETS_FD_ENV];
    const fd = Number(fdText);
    if (!Number.isInteger(fd) || fd < 3) throw new Error(`${SECRETS_FD_ENV}="${fdText}" is not a descriptor number above 2`);
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(2 * PART);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        // A descriptor left non-blocking: the supervisor writes right after the spawn, so wait for it.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(pause, 0, 0, 5);
        continue;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    fs.closeSync(fd);
    const all = Buffer.concat(chunks);
    if (all.length !== 2 * PART) throw new Error(`secrets on descriptor ${fd}: ${all.length} bytes, expected ${2 * PART}`);
    return { credential: all.subarray(0, PART), adminVerifier: all.subarray(PART) };
  }
  const own = (file: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`${name}'s own key file ${file} cannot be read (${(err as NodeJS.ErrnoException).code}): lay out the run directory with lparlab init or lparlab up`);
    }
  };
  return { credential: own(runDir.credFile(name)), adminVerifier: own(adminVerifierFile(runDir, name)) };
}
