import { ControlChannel } from '../../shared/control/channel.ts';
import { connectLink } from '../../shared/link/transport.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { processLogger } from '../../shared/runtime/log.ts';

const log = processLogger('cli', 'lparlab');

/** A long-lived channel to a process's admin socket, for verbs that stream (nc, http). */
export async function openAdmin(runDir: RunDir, name: string): Promise<ControlChannel> {
  const link = await connectLink(`unix:${runDir.adminSocket(name)}`).catch((err: Error) => {
    throw new Error(`cannot reach ${name}'s admin socket (${err.message}): is it running?`);
  });
  return new ControlChannel(link, log);
}

/** Writes to `stream`; while it is full, the channel's link stops reading (backpressure to the LPAR). */
export function writeOrPause(stream: NodeJS.WritableStream & { writableNeedDrain?: boolean }, ch: ControlChannel, data: Buffer, state: { waiting: boolean }): void {
  if (!stream.write(data) && !state.waiting) {
    state.waiting = true;
    ch.link.pause();
    stream.once('drain', () => {
      state.waiting = false;
      ch.link.resume();
    });
  }
}

/** Resolves once everything written to `stream` is flushed. */
export function drained(stream: NodeJS.WritableStream & { writableNeedDrain?: boolean }): Promise<void> {
  return new Promise<void>((r) => (stream.writableNeedDrain ? stream.once('drain', () => r()) : r()));
}
