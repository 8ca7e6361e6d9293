import { cursorAdd, cursorDistance, DELIVERY_BYTES, ringRead } from '../../../../shared/ring/byte-ring.ts';
import type { SmcMode, SmcPath, SmcSocketSide } from './smc-path.ts';

/**
 * A connection's stream over a pair of rings (seed 002, Fig. 5: data between
 * a consumer cursor and a producer cursor; Fig. 10: the close), as SMC-D and
 * SMC-R both run it. What differs is how the cursors travel — SMC-D stores
 * them with Atomics in the shared memory both partitions map, SMC-R carries
 * them in CDC messages and RDMA WRITEs — and that is what a subclass says
 * (smc-d.ts SmcdPath, smc-r.ts SmcrPath). The rest is here once: the close
 * states, the write the app is blocked in, the app's read backpressure, the
 * delivery loop, and how a write fails once the stream is closed (EPIPE) or
 * reset (ECONNRESET).
 *
 * The close is an explicit state machine, one transition per event:
 *
 *   Open       both directions carry data
 *   WriteDone  our app ended its writable side (DoneWriting sent); we still read
 *   ReadDone   the peer's data ended and we delivered it all (EOF); we still write
 *   Closing    both done: the buffers are let go (a step within one call)
 *   Finished   closed, aborted or reset; the buffers are released
 */
// A const enum: the data path compares states on every delivery, and esbuild inlines a const enum's values within this file.
export const enum StreamState {
  Open,
  WriteDone,
  ReadDone,
  Closing,
  Finished,
}

/** `end`: our app ended. `eof`: the peer's data ended and is all delivered. `close`: abort, reset or a clean close. */
export type StreamEvent = 'end' | 'eof' | 'close';

export function streamTransition(state: StreamState, event: StreamEvent): StreamState {
  switch (event) {
    case 'end':
      return state === StreamState.Open ? StreamState.WriteDone : state === StreamState.ReadDone ? StreamState.Closing : state;
    case 'eof':
      return state === StreamState.Open ? StreamState.ReadDone : state === StreamState.WriteDone ? StreamState.Closing : state;
    case 'close':
      return StreamState.Finished;
  }
}

/** A write the app is blocked in: `off` bytes of `chunk` are in the peer's ring so far. */
export interface PendingWrite {
  chunk: Buffer;
  off: number;
  cb: (err?: Error) => void;
}

function errno(message: string, code: 'EPIPE' | 'ECONNRESET'): Error {
  return Object.assign(new Error(message), { code });
}

export abstract class RingStream implements SmcPath {
  abstract readonly mode: SmcMode;
  protected state: StreamState = StreamState.Open;
  protected pending?: PendingWrite;
  /** The app takes data (false: its buffer is full until it calls resume). */
  protected wantData = true;
  /** Our producer cursor: how far we have written into the peer's receive ring. */
  protected txProd = 0;
  /** Our consumer cursor: how far we have read our receive ring (what the peer learns as its free space). */
  protected rxCons = 0;

  constructor(
    protected readonly side: SmcSocketSide,
    /** The ring the peer writes into and we read. */
    protected readonly rxRing: Buffer,
  ) {}

  // ---- how the cursors travel (the subclass) ----------------------------

  /** The peer's producer cursor of our receive ring, as far as we know it. */
  protected abstract peerProducer(): number;
  /** The peer will write no more (DoneWriting or Closed). */
  protected abstract peerDoneWriting(): boolean;
  /** The peer closed or aborted: writing to it fails (EPIPE). */
  protected abstract peerClosed(): boolean;
  /** Bytes free in the peer's receive ring. */
  protected abstract txFree(): number;
  /** Copies `chunk[off, off+n)` into the peer's ring at txProd and publishes it (txProd moves here). */
  protected abstract produce(chunk: Buffer, off: number, n: number): void;
  /** The peer's ring is full with some of the write left: ask it to say when it frees space, and wait. */
  protected abstract blocked(): void;
  /** We consumed `n` bytes (rxCons has moved): tell the peer as its path does. */
  protected abstract consumed(n: number): void;
  /** Our app ended: DoneWriting to the peer. */
  protected abstract sendDoneWriting(): void;
  /** The close flags to the peer: DoneWriting and Closed when `clean`, else Abort. */
  protected abstract sendClose(clean: boolean): void;
  /** Gives the buffers back (the element to the hypervisor, the RMBE's registrations). */
  protected abstract releaseBuffers(): void;
  /** Runs delivery again (the app wants more data). */
  protected abstract pull(): void;
  /** Whether writes can go out now (SMC-R: the peer's RMBE is known and a link is up). */
  protected canPush(): boolean {
    return true;
  }
  /** The write the app was blocked in is all in the peer's ring. */
  protected writeDone(): void {}

  // ---- the socket's side (SmcPath) --------------------------------------

  /** Our side may write: not ended, not closed. */
  get writable(): boolean {
    return this.state === StreamState.Open || this.state === StreamState.ReadDone;
  }

  /** Our side still reads: the peer's data has not ended. */
  get readable(): boolean {
    return this.state === StreamState.Open || this.state === StreamState.WriteDone;
  }

  get finished(): boolean {
    return this.state === StreamState.Finished;
  }

  write(chunk: Buffer, cb: (err?: Error) => void): void {
    if (!this.writable) {
      cb(errno('write after end', 'EPIPE'));
      return;
    }
    this.pending = { chunk, off: 0, cb };
    this.push();
  }

  end(): void {
    if (!this.writable) return;
    this.state = streamTransition(this.state, 'end');
    this.sendDoneWriting();
    this.complete();
  }

  resume(): void {
    this.wantData = true;
    this.pull();
  }

  close(abort: boolean): void {
    this.finish(!abort);
  }

  abstract info(): Record<string, unknown>;

  // ---- the machinery -----------------------------------------------------

  /** Seed 002 Fig. 6 steps 603-608 / Fig. 8A steps 803-807 for as much of the pending write as the peer's ring takes. */
  protected push(): void {
    const p = this.pending;
    if (!p || !this.canPush()) return;
    if (this.peerClosed()) {
      this.pending = undefined;
      p.cb(errno('write EPIPE: the peer closed', 'EPIPE'));
      return;
    }
    const n = Math.min(this.txFree(), p.chunk.length - p.off);
    if (n > 0) {
      this.produce(p.chunk, p.off, n);
      p.off += n;
    }
    if (p.off === p.chunk.length) {
      this.pending = undefined;
      this.writeDone();
      p.cb();
      return;
    }
    this.blocked();
  }

  /**
   * Seed 002 Figs. 7 and 9: hands the app what the peer produced, in pieces
   * of at most DELIVERY_BYTES, while it takes them; then, when the peer's
   * data ended and all of it is delivered, the EOF. True once at EOF.
   */
  protected deliverAvailable(): boolean {
    while (this.wantData && this.readable) {
      const avail = Math.min(DELIVERY_BYTES, cursorDistance(this.peerProducer(), this.rxCons));
      if (avail === 0) break;
      const data = ringRead(this.rxRing, this.rxCons, avail);
      this.rxCons = cursorAdd(this.rxCons, avail);
      this.consumed(avail);
      if (!this.side.deliver(data)) this.wantData = false;
    }
    if (!this.readable || !this.peerDoneWriting() || cursorDistance(this.peerProducer(), this.rxCons) !== 0) return false;
    this.state = streamTransition(this.state, 'eof');
    this.side.eof();
    this.complete();
    return true;
  }

  /** Both directions done (Fig. 10 steps 1003-1007): close cleanly, once, whichever came last. */
  private complete(): void {
    if (this.state !== StreamState.Closing) return;
    this.finish(true);
    this.side.finished();
  }

  /** Closes (clean) or aborts: the close flags to the peer, the buffers back; a blocked write fails EPIPE. */
  protected finish(clean: boolean): void {
    if (this.state === StreamState.Finished) return;
    this.state = streamTransition(this.state, 'close');
    const p = this.pending;
    this.pending = undefined;
    this.sendClose(clean);
    this.releaseBuffers();
    p?.cb(errno('the connection closed', 'EPIPE'));
  }

  /**
   * The peer aborted (Fig. 10): the socket resets first, then a write the app
   * is blocked in fails the same way. Failing that write first (with finish's
   * EPIPE) made the socket error "write EPIPE" rather than ECONNRESET.
   */
  protected peerAborted(why: string): void {
    const p = this.pending;
    this.pending = undefined;
    this.finish(false);
    this.side.reset(why);
    p?.cb(errno('the connection was reset', 'ECONNRESET'));
  }

  /** The peer's side is gone without a word (its session or partition died): reset, buffers back, nothing sent. */
  protected resetLost(why: string): void {
    if (this.state === StreamState.Finished) return;
    this.state = streamTransition(this.state, 'close');
    this.releaseBuffers();
    const p = this.pending;
    this.pending = undefined;
    // The reset before the blocked write's callback, as for a peer's abort.
    this.side.reset(why);
    p?.cb(errno('the connection was reset', 'ECONNRESET'));
  }
}
