import type { Writable } from 'node:stream';
import type { Link } from '../link/link.ts';

/**
 * Backpressure from a stream back to the channel that feeds it: what comes
 * in as messages on a control channel (nc data, an HTTP body) is written to
 * a stream, and while the stream is full the channel's link stops reading,
 * so the peer's sends back up (Link: `pause` pushes back on the sender's
 * kernel buffers) instead of a queue growing here. The link reads again on
 * the stream's `drain`, or when the stream closes (nothing more will drain,
 * and the link must not stay paused for the channel's other messages).
 */
export interface ChannelPipe {
  /**
   * Writes one chunk. False when the stream is now full (the link is paused
   * until it drains) or has already ended or been destroyed (the chunk is
   * dropped: there is nowhere left to put it).
   */
  write(chunk: Uint8Array): boolean;
  /** The link is paused, waiting for the stream to drain. */
  readonly waiting: boolean;
}

/** What pipeChannel needs of the channel: a ControlChannel is one. */
export interface PausableChannel {
  readonly link: Pick<Link, 'pause' | 'resume'>;
}

export function pipeChannel(stream: Writable, channel: PausableChannel): ChannelPipe {
  let waiting = false;
  const release = (): void => {
    if (!waiting) return;
    waiting = false;
    stream.off('drain', release);
    stream.off('close', release);
    channel.link.resume();
  };
  return {
    write(chunk) {
      if (stream.writableEnded || stream.destroyed) return false;
      if (stream.write(chunk)) return true;
      if (!waiting) {
        waiting = true;
        channel.link.pause();
        stream.once('drain', release);
        stream.once('close', release);
      }
      return false;
    },
    get waiting() {
      return waiting;
    },
  };
}
