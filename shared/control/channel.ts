import type { Logger } from 'pino';
import type { Link } from '../link/link.ts';
import { FrameType, controlBody, emitControlFrame, frameType } from '../link/frame.ts';
import { decodeControl, encodeControl, type ControlMessage } from './codec.ts';
import { refusals } from '../runtime/refusal-log.ts';

/** A request or notification handler; `ch` lets a long-lived verb (a capture) keep sending on the channel. */
export type Handler = (msg: ControlMessage, ch: ControlChannel) => unknown | Promise<unknown>;

export class RemoteError extends Error {}

const UNCLAIMED_KEPT = 16;

/**
 * Request/response and notifications over the control frames of one link.
 * VI frames on the same link go to `onViFrame`. A handler's return value is the
 * reply; a thrown error becomes an error reply, so a bad request never takes the
 * process down.
 */
export class ControlChannel {
  onViFrame: (frame: Buffer) => void;
  /** Malformed frames and messages: counted and dropped. */
  malformed = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: ControlMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly handlers = new Map<string, Handler>();
  private readonly waiters: Array<{ t: string; resolve: (m: ControlMessage) => void }> = [];
  private closeHandlers: Array<(err?: Error) => void> = [];
  /** Notifications nobody waited for yet, e.g. a challenge that beat the caller to `next`; bounded. */
  private readonly unclaimed: ControlMessage[] = [];

  constructor(
    readonly link: Link,
    private readonly log: Logger,
  ) {
    this.onViFrame = () => {
      this.malformed++;
    };
    link.onFrame = (frame) => {
      const type = frameType(frame);
      if (type === FrameType.Vi) this.onViFrame(frame);
      else if (type === FrameType.Control) this.dispatch(frame);
      else this.malformed++;
    };
    link.onClose = (err) => {
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`link to ${link.remote} closed`));
      }
      this.pending.clear();
      for (const h of this.closeHandlers) h(err);
    };
  }

  onClose(fn: (err?: Error) => void): void {
    this.closeHandlers.push(fn);
  }

  handle(t: string, fn: Handler): void {
    this.handlers.set(t, fn);
  }

  send(msg: ControlMessage): boolean {
    return this.link.send(emitControlFrame(encodeControl(msg)));
  }

  request(msg: ControlMessage, timeoutMs = 5000): Promise<ControlMessage> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to "${msg.t}" from ${this.link.remote} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (this.link.closed) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`link to ${this.link.remote} is closed`));
        return;
      }
      this.send({ ...msg, rq: id });
    });
  }

  /** Resolves with the next message of type `t` that no handler claimed (also one that came before the call). */
  next(t: string, timeoutMs = 5000): Promise<ControlMessage> {
    const early = this.unclaimed.findIndex((m) => m.t === t);
    if (early >= 0) return Promise.resolve(this.unclaimed.splice(early, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        t,
        resolve: (m: ControlMessage) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no "${t}" from ${this.link.remote} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  close(): void {
    this.link.close();
  }

  private dispatch(frame: Buffer): void {
    let msg: ControlMessage;
    try {
      msg = decodeControl(controlBody(frame));
    } catch (err) {
      this.malformed++;
      // Rate-limited: a peer decides how many it sends (issue 11 item 10).
      refusals.warn(this.log, { err: (err as Error).message.slice(0, 200), remote: this.link.remote }, 'malformed control message dropped');
      return;
    }
    if (msg.re !== undefined) {
      const p = this.pending.get(msg.re);
      if (!p) return;
      this.pending.delete(msg.re);
      clearTimeout(p.timer);
      if (msg.err !== undefined) p.reject(new RemoteError(String(msg.err)));
      else p.resolve(msg);
      return;
    }
    const handler = this.handlers.get(msg.t);
    if (!handler) {
      const i = this.waiters.findIndex((w) => w.t === msg.t);
      if (i >= 0) {
        this.waiters.splice(i, 1)[0].resolve(msg);
        return;
      }
      if (msg.rq !== undefined) this.send({ t: 'error', re: msg.rq, err: `unknown request "${msg.t}"` });
      else {
        this.unclaimed.push(msg);
        if (this.unclaimed.length > UNCLAIMED_KEPT) this.unclaimed.shift();
      }
      return;
    }
    const id = msg.rq;
    Promise.resolve()
      .then(() => handler(msg, this))
      .then(
        (result) => {
          if (id !== undefined) this.send({ ...(result as object), t: `${msg.t}-ok`, re: id });
        },
        (err: Error) => {
          if (id !== undefined) this.send({ t: 'error', re: id, err: err.message });
          else refusals.warn(this.log, { t: String(msg.t).slice(0, 64), err: err.message.slice(0, 200) }, 'control message handler failed');
        },
      );
  }
}
