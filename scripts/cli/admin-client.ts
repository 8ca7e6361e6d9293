import { ControlChannel } from '../../shared/control/channel.ts';
import { authenticateTo } from '../../shared/control/auth.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { connectLink } from '../../shared/link/transport.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { processLogger } from '../../shared/runtime/log.ts';
import { fabricAddresses } from './process-plan.ts';

const log = processLogger('cli', 'lparlab');

/** One request to a process's admin socket. */
export async function adminRequest(runDir: RunDir, name: string, msg: ControlMessage, timeoutMs = 10_000): Promise<ControlMessage> {
  const link = await connectLink(`unix:${runDir.adminSocket(name)}`).catch((err: Error) => {
    throw new Error(`cannot reach ${name}'s admin socket (${err.message}): is it running?`);
  });
  const ch = new ControlChannel(link, log);
  try {
    return await ch.request(msg, timeoutMs);
  } finally {
    ch.close();
  }
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
