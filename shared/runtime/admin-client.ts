import { ControlChannel } from '../control/channel.ts';
import { authenticateTo } from '../control/auth.ts';
import { operatorLogin } from '../control/admin-auth.ts';
import type { ControlMessage } from '../control/codec.ts';
import { connectLink } from '../link/transport.ts';
import { type AdminReplies, type AdminRequests, type AdminVerb, adminCall } from '../protocol/admin.ts';
import { MessageError } from '../protocol/check.ts';
import { type FmReplies, type FmRequest, decodeFmReply } from '../protocol/fm.ts';
import type { SupervisorRequest } from '../protocol/supervisor.ts';
import { fabricAddresses } from './addresses.ts';
import type { RunDir } from './run-dir.ts';
import { processLogger } from './log.ts';

const log = processLogger('cli', 'lparlab');

/**
 * A channel to a process's admin socket, logged in as the operator (the run
 * directory's management credential: shared/control/admin-auth.ts). Every
 * admin socket and the supervisor's take only the operator.
 */
export async function openAdmin(runDir: RunDir, name: string): Promise<ControlChannel> {
  return operatorChannel(runDir, runDir.adminSocket(name), name, `cannot reach ${name}'s admin socket`, 'is it running?');
}

async function operatorChannel(runDir: RunDir, socket: string, name: string, unreachable: string, hint: string): Promise<ControlChannel> {
  const link = await connectLink(`unix:${socket}`).catch((err: Error) => {
    throw new Error(`${unreachable} (${err.message}): ${hint}`);
  });
  const ch = new ControlChannel(link, log);
  try {
    await operatorLogin(ch, runDir, name);
  } catch (err) {
    ch.close();
    throw new Error(`${name} refused the operator's login: ${(err as Error).message}`);
  }
  return ch;
}

/** One request to a process's admin socket. */
export async function adminRequest(runDir: RunDir, name: string, msg: ControlMessage, timeoutMs = 10_000): Promise<ControlMessage> {
  const ch = await openAdmin(runDir, name);
  try {
    return await ch.request(msg, timeoutMs);
  } finally {
    ch.close();
  }
}

/**
 * One typed request to a process's admin socket, its reply decoded as its
 * verb's (shared/protocol/admin.ts): a reply that does not fit rejects with
 * a MessageError naming the field, as an error reply or an unreachable
 * socket rejects.
 */
export function adminAsk<V extends AdminVerb>(runDir: RunDir, name: string, request: AdminRequests[V] & { t: V }, timeoutMs = 10_000): Promise<AdminReplies[V]> {
  return adminCall<V>((m) => adminRequest(runDir, name, m, timeoutMs), request);
}

/** A management session with the fabric manager, authenticated with the run directory's mgmt credential. */
export async function fmSession(runDir: RunDir): Promise<ControlChannel> {
  const platform = runDir.readPlatform();
  const link = await connectLink(fabricAddresses(platform, runDir).fm);
  const ch = new ControlChannel(link, log);
  await authenticateTo(ch, 'mgmt', runDir.readCredential('mgmt'));
  return ch;
}

export async function fmRequest(runDir: RunDir, msg: ControlMessage): Promise<ControlMessage> {
  const ch = await fmSession(runDir);
  try {
    return await ch.request(msg);
  } finally {
    ch.close();
  }
}

/** One typed request to the fabric manager, its reply checked (shared/protocol/fm.ts): a reply that does not fit rejects naming the field. */
export async function fmAsk<T extends FmRequest['t']>(runDir: RunDir, msg: Extract<FmRequest, { t: T }>): Promise<FmReplies[T]> {
  const d = decodeFmReply<T>(msg.t, await fmRequest(runDir, msg));
  if (!d.ok) throw new MessageError(d.reason);
  return d.value;
}

/** One request to the supervisor of a running platform (shared/protocol/supervisor.ts); the reply is the caller's to decode. */
export async function supervisorRequest(runDir: RunDir, msg: SupervisorRequest, timeoutMs = 15_000): Promise<ControlMessage> {
  const ch = await operatorChannel(runDir, runDir.socket('supervisor'), 'supervisor', `no supervisor for ${runDir.root}`, 'is the platform up?');
  try {
    return await ch.request(msg, timeoutMs);
  } finally {
    ch.close();
  }
}
