import crypto from 'node:crypto';
import type { ControlChannel } from './channel.ts';
import type { ControlMessage } from './codec.ts';
import { guardPreAuth } from '../link/pre-auth.ts';

/**
 * Who may do what on the fabric. Seed 004 ("Network Architecture"): paths are
 * created and destroyed centrally by management and control-node logic; "the
 * individual processing nodes are not permitted to establish such paths".
 *
 * The launcher makes one random platform key. Each process gets only its own
 * credential, HMAC(key, name), so an LPAR can prove who it is but cannot pass
 * for a control node. The fabric manager and the switches hold the key and
 * derive any credential to check a proof. A proof is HMAC(credential, nonce)
 * over a fresh server nonce, so a captured proof cannot be replayed.
 */

export type Role = 'fabric-manager' | 'fabric-switch' | 'control-node' | 'lpar' | 'mgmt';

/** Roles allowed to create and destroy VIs and RVIs, inject faults and run admin verbs. */
export const PRIVILEGED: ReadonlySet<Role> = new Set(['control-node', 'mgmt', 'fabric-switch']);

export function generateKey(): Buffer {
  return crypto.randomBytes(32);
}

export function credentialFor(key: Buffer, name: string): Buffer {
  return crypto.createHmac('sha256', key).update(`lparlab-node:${name}`).digest();
}

export function proofFor(credential: Buffer, nonce: Buffer): Buffer {
  return crypto.createHmac('sha256', credential).update(nonce).digest();
}

export class AuthError extends Error {}

export interface Peer {
  name: string;
  role: Role;
  hello: ControlMessage;
}

/**
 * Server side: challenge, then check the hello's proof. `roleOf` maps a name to
 * its role (undefined: unknown name, refused). Until the proof checks out the
 * link is under the pre-authentication limits (shared/link/pre-auth.ts, issue
 * 11 item 10); a peer that breaks them is cut off and this rejects saying why.
 */
export function authenticatePeer(ch: ControlChannel, key: Buffer, roleOf: (name: string) => Role | undefined, timeoutMs = 5000): Promise<Peer> {
  return authenticateWith(ch, (name) => {
    const role = roleOf(name);
    return role && { role, credential: credentialFor(key, name) };
  }, timeoutMs);
}

/**
 * The challenge and proof check of authenticatePeer with the credentials
 * given by `lookup` (a name it does not know is refused): the platform key
 * derives them at the fabric manager and the switches, an admin socket knows
 * the one operator verifier it was handed (shared/control/admin-auth.ts).
 */
export async function authenticateWith(
  ch: ControlChannel,
  lookup: (name: string) => { role: Role; credential: Buffer } | undefined,
  timeoutMs = 5000,
): Promise<Peer> {
  let cutOff: (reason: string) => void = () => {};
  const refusedByGuard = new Promise<never>((_, reject) => {
    cutOff = (reason) => reject(new AuthError(reason));
  });
  refusedByGuard.catch(() => {});
  const guard = guardPreAuth(ch.link, (reason) => cutOff(reason));
  ch.onClose(() => cutOff('link closed before authentication'));
  try {
    const peer = await Promise.race([checkHello(ch, lookup, timeoutMs), refusedByGuard]);
    guard.lift();
    return peer;
  } catch (err) {
    const wsCut = (ch.link as { preAuthRefused?: string }).preAuthRefused;
    throw wsCut ? new AuthError(wsCut) : err;
  }
}

async function checkHello(ch: ControlChannel, lookup: (name: string) => { role: Role; credential: Buffer } | undefined, timeoutMs: number): Promise<Peer> {
  const nonce = crypto.randomBytes(16);
  const helloP = ch.next('hello', timeoutMs);
  ch.send({ t: 'challenge', nonce });
  const hello = await helloP;
  const name = hello.name;
  if (typeof name !== 'string' || !Buffer.isBuffer(hello.proof) && !(hello.proof instanceof Uint8Array)) {
    throw new AuthError('hello without name and proof');
  }
  const known = lookup(name);
  if (!known) throw new AuthError(`unknown node "${name.slice(0, 64)}"`);
  const { role } = known;
  const expected = proofFor(known.credential, nonce);
  const given = Buffer.from(hello.proof as Uint8Array);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw new AuthError(`bad credential for "${name}"`);
  }
  return { name, role, hello };
}

/** Client side: answer the challenge; resolves with the server's welcome (or rejects with its refusal). */
export async function authenticateTo(
  ch: ControlChannel,
  name: string,
  credential: Buffer,
  extra: Record<string, unknown> = {},
  timeoutMs = 5000,
): Promise<ControlMessage> {
  const challenge = await ch.next('challenge', timeoutMs);
  const nonce = Buffer.from(challenge.nonce as Uint8Array);
  const welcome = ch.next('welcome', timeoutMs);
  const refused = ch.next('refused', timeoutMs).then((m) => {
    throw new AuthError(String(m.reason ?? 'refused'));
  });
  ch.send({ t: 'hello', name, proof: proofFor(credential, nonce), ...extra });
  return Promise.race([welcome, refused]) as Promise<ControlMessage>;
}
