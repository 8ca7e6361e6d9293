import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RunDir } from '../runtime/run-dir.ts';
import type { ControlChannel } from './channel.ts';
import { authenticateTo, authenticateWith, type Peer } from './auth.ts';

/**
 * Who may drive a process through its admin socket (issue 11 item 11: tenant
 * code joined its partition to a virtual LAN through a control node's
 * unauthenticated admin socket). Only the operator: the CLI and the
 * supervisor, which hold the management credential. A partition has nothing
 * to ask there — what it may ask a control node it asks over its own RVI,
 * where the control node knows who it is and answers only about it
 * (shared/protocol/mgmt.ts) — so no admin verb is open to a partition, not
 * even about itself; and the same holds for its own admin socket.
 *
 * A process cannot hold the management credential to check a proof (then it
 * could pass for the operator everywhere). Each is handed its own verifier,
 * HMAC(management credential, its name): a proof made with it convinces that
 * process only, so the one partition that learns its verifier can pass for the
 * operator to nobody but itself.
 */

export const OPERATOR = 'mgmt';

export function adminVerifierFor(mgmtCredential: Buffer, name: string): Buffer {
  return crypto.createHmac('sha256', mgmtCredential).update(`lparlab-admin:${name}`).digest();
}

/** Where a process's verifier lives beside its credential: keys/<name>.admin (for processes not started by the supervisor: compose, `lparlab svc`). */
export function adminVerifierFile(runDir: RunDir, name: string): string {
  return path.join(path.dirname(runDir.keyFile), `${name}.admin`);
}

/** Writes every process's verifier (after RunDir.initialise made the credentials), each file created new, mode 0600. */
export function writeAdminVerifiers(runDir: RunDir, names: string[]): void {
  const mgmt = runDir.readCredential(OPERATOR);
  for (const name of names) {
    const file = adminVerifierFile(runDir, name);
    fs.rmSync(file, { force: true });
    fs.writeFileSync(file, adminVerifierFor(mgmt, name), { mode: 0o600, flag: 'wx' });
  }
}

/** Server side of an admin socket: the peer must prove it is the operator, with `verifier` (this process's). */
export function authenticateOperator(ch: ControlChannel, verifier: Buffer): Promise<Peer> {
  return authenticateWith(ch, (name) => (name === OPERATOR ? { role: 'mgmt', credential: verifier } : undefined));
}

/** Client side: proves to `target`'s admin socket that this is the operator (the run directory's management credential). */
export async function operatorLogin(ch: ControlChannel, runDir: RunDir, target: string): Promise<void> {
  await authenticateTo(ch, OPERATOR, adminVerifierFor(runDir.readCredential(OPERATOR), target));
}

/** Roles that check others' proofs with the platform key. */
const KEY_HOLDERS = new Set(['fabric-manager', 'fabric-switch', 'hypervisor']);

/**
 * Copies each process's own key files into `dir/<name>/` (compose.yaml: one
 * volume per container, mounted as that container's keys/, issue 11 item 11):
 * its credential and admin verifier, and the platform key where its role
 * checks proofs. Each directory is emptied first; files are created new, 0600.
 */
export function handOutKeys(runDir: RunDir, processes: ReadonlyArray<{ name: string; role: string }>, dir: string): void {
  const keys = path.dirname(runDir.keyFile);
  for (const p of processes) {
    const own = path.join(dir, p.name);
    fs.mkdirSync(own, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(own)) fs.rmSync(path.join(own, f), { force: true, recursive: true });
    const files = [`${p.name}.cred`, `${p.name}.admin`, ...(KEY_HOLDERS.has(p.role) ? [path.basename(runDir.keyFile)] : [])];
    for (const f of files) fs.writeFileSync(path.join(own, f), fs.readFileSync(path.join(keys, f)), { mode: 0o600, flag: 'wx' });
  }
}
