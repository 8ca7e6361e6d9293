import type { ControlChannel } from '../../shared/control/channel.ts';
import { type AdminReplies, type AdminRequests, type AdminStreams, type AdminVerb, adminCall, decodeAdminStream } from '../../shared/protocol/admin.ts';

/** A long-lived channel to a process's admin socket, for verbs that stream (nc, http): logged in as the operator. */
export { openAdmin } from '../../shared/runtime/admin-client.ts';

/** A typed request on a long-lived admin channel, its reply decoded as its verb's (a malformed one rejects naming the field). */
export function channelAsk<V extends AdminVerb>(ch: ControlChannel, request: AdminRequests[V] & { t: V }, timeoutMs?: number): Promise<AdminReplies[V]> {
  return adminCall<V>((m) => ch.request(m, timeoutMs), request);
}

/**
 * Handles the streamed messages `t` of a verb (shared/protocol/admin.ts
 * adminStreams), each decoded first: `fn` gets the typed message, `bad` the
 * reason a malformed one was refused (the command then fails, as on any
 * other error).
 */
export function onStream<T extends keyof AdminStreams>(ch: ControlChannel, t: T, fn: (m: AdminStreams[T]) => void, bad: (reason: string) => void): void {
  ch.handle(t, (raw) => {
    const d = decodeAdminStream(t, raw);
    if (d.ok) fn(d.value);
    else bad(d.reason);
  });
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
