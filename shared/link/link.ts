import type { CutThroughSink } from './frame.ts';

/**
 * A fabric link: a duplex stream of frames (see frame.ts) with backpressure in
 * both directions. Two transports implement it: UNIX domain sockets (default,
 * one machine) and WebSockets (between containers or hosts).
 *
 * Backpressure: `send` returns false once the link holds more than its
 * high-water mark of unsent bytes; the caller stops and waits for `onDrain`.
 * `pause` stops reading, so a slow consumer pushes back on the sender's kernel
 * buffers instead of growing a queue here.
 */
export interface Link {
  /** Human-readable peer description for logs. */
  readonly remote: string;
  /** False while the link holds more than its high-water mark of unsent bytes. */
  readonly writable: boolean;
  /** Bytes queued and not yet handed to the kernel (the switch bounds each output by it). */
  readonly queued: number;
  readonly closed: boolean;
  /** Sends one whole frame. Returns `writable` after queueing it. */
  send(frame: Buffer): boolean;
  /** Sends one frame given as a header and a body, without joining them. */
  sendParts(head: Buffer, body: Buffer): boolean;
  /**
   * Passes VI frames that span reads to `sink` as they arrive (cut-through,
   * issue 10 item 6); undefined goes back to whole frames. Only stream
   * transports have it: a WebSocket hands over whole messages anyway.
   */
  setCutThrough?(sink: CutThroughSink | undefined): void;
  /**
   * Starts sending one frame piece by piece (the other half of cut-through):
   * `head` is its first bytes, `sendPiece` the rest, in order, `last` on the
   * one that completes it. Until then every whole frame sent on this link, by
   * whoever sends it (a flow frame, a control reply, another input's frame),
   * waits behind it inside the link, so nothing can land in the middle of a
   * frame on the wire. Counted in `queued`. Stream transports only.
   */
  sendStart?(head: Buffer): boolean;
  sendPiece?(bytes: Buffer, last: boolean): boolean;
  pause(): void;
  resume(): void;
  close(): void;
  onFrame: (frame: Buffer) => void;
  onDrain: () => void;
  onClose: (err?: Error) => void;
}

export interface LinkServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Bytes a link may hold unsent before `send` reports false. */
export const HIGH_WATER = 1024 * 1024;

export function noop(): void {}

/**
 * Frame delivery shared by both transports. Frames that arrive before anyone
 * set `onFrame` are kept, not lost: a WebSocket can hand over the peer's first
 * frame in the same turn as the upgrade, before the caller has its handler in
 * place.
 */
export abstract class FrameDelivery {
  private handler?: (frame: Buffer) => void;
  private early: Buffer[] = [];
  /** Exceptions thrown by the consumer of a frame: counted and reported, never fatal to the link. */
  consumerErrors = 0;
  onConsumerError: (err: unknown) => void = (err) => {
    process.stderr.write(`lparlab: frame handler failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  };

  get onFrame(): (frame: Buffer) => void {
    return this.handler ?? noop;
  }

  set onFrame(fn: (frame: Buffer) => void) {
    this.handler = fn;
    const early = this.early;
    this.early = [];
    for (const f of early) fn(f);
  }

  protected deliver(frame: Buffer): void {
    if (!this.handler) {
      this.early.push(frame);
      return;
    }
    try {
      this.handler(frame);
    } catch (err) {
      this.consumerErrors++;
      this.onConsumerError(err);
    }
  }
}
