import type { Logger } from 'pino';
import { mapShared } from '../../../../shared/shm/shm-file.ts';
import { CloseFlag, ElementWord, SmbView } from '../../../../shared/smc/smb.ts';
import type { SmbeGrant } from '../../../../shared/protocol/hv.ts';
import type { HvPort } from './hv-port.ts';
import { cursorAdd, cursorDistance, ringRead, ringWrite } from '../../../../shared/ring/byte-ring.ts';
import { RingStream, streamTransition } from './ring-stream.ts';
import type { SmcrFallback } from './smc-r.ts';
import type { SmcSocketSide, SmcStats } from './smc-path.ts';

/** µs a poll spins on the CSBA before it lets the event loop run (bounded by pollUs). */
const SPIN_US = 20;

/** An SMB this partition has mapped, and its elements in use here. */
interface MappedSmb {
  id: number;
  path: string;
  view: SmbView;
  side: 0 | 1;
  paths: Array<SmcdPath | undefined>;
  inUse: number;
  /** The hypervisor removed it (smb-gone): the mapping goes with its last element here. */
  gone: boolean;
}

/**
 * The partition's SMC-D device: the SMBs the hypervisor handed it, and the
 * receive side of seed 002 Fig. 7 — find the SMB with work, find the element
 * through the connection status bit array (steps 753-755), post the socket.
 *
 * Work is found by polling the CSBA words while some connection waits (for
 * data, or for ring space) and for `pollUs` after the last progress; then the
 * device marks itself asleep in each SMB it waits on and needs the peer's
 * signal (step 608: the signal is sent only to a sleeping reader). Marking
 * asleep, then looking once more, against the peer's "publish the cursor, then
 * look at the asleep word", both sequentially consistent, means a wake-up is
 * never lost.
 */
export class SmcdDevice {
  private readonly smbs = new Map<number, MappedSmb>();
  private readonly byToken = new Map<number, SmcdPath>();
  private readonly waiters = new Set<SmcdPath>();
  private polling = false;
  private lastProgress = 0;

  constructor(
    readonly hv: HvPort,
    private readonly pollUs: number,
    readonly stats: SmcStats,
    private readonly log: Logger,
  ) {
    hv.onSignal = (token) => this.signalled(token);
    hv.onSessionLost = () => this.sessionLost();
    hv.onSmbGone = (smbId) => this.smbGone(smbId);
  }

  /** Maps the element of `grant` (once per SMB file) and makes the data path of the connection. */
  open(grant: SmbeGrant, side: SmcSocketSide): SmcdPath {
    // A grant of a session that has ended since (the hypervisor died between the grant and this open) names an
    // element nobody manages any more: no doorbell would ever ring for it. Refused, so the connection takes TCP.
    if (!this.hv.holds(grant.token)) throw new Error(`element ${grant.token} was granted in a hypervisor session that has ended`);
    let smb = this.smbs.get(grant.smbId);
    if (!smb) {
      const buf = mapShared(grant.path, grant.bytes);
      const view = SmbView.open(buf);
      smb = { id: grant.smbId, path: grant.path, view, side: grant.side, paths: new Array(view.elements), inUse: 0, gone: false };
      this.smbs.set(grant.smbId, smb);
      // Kept mapped from now until the hypervisor says the SMB is gone: once both sides map it, its file has no
      // name (so nothing can truncate it under us: issue 11 item 6), and the pair's later elements come from it.
      this.hv.mapped(grant.smbId);
    }
    if (smb.side !== grant.side) throw new Error(`hypervisor granted side ${grant.side} of SMB ${grant.smbId}, mapped here as side ${smb.side}`);
    if (smb.view.token(grant.element) !== grant.token >>> 0) throw new Error(`element ${grant.element} of ${grant.path} does not carry token ${grant.token}`);
    const path = new SmcdPath(this, smb, grant, side);
    smb.paths[grant.element] = path;
    smb.inUse++;
    this.byToken.set(grant.token >>> 0, path);
    return path;
  }

  /** A path is done: give the element back to the hypervisor and forget the mapping once nothing here uses it. */
  release(path: SmcdPath): void {
    if (this.byToken.get(path.token) !== path) return;
    this.byToken.delete(path.token);
    this.waiters.delete(path);
    const smb = path.smb;
    smb.paths[path.element] = undefined;
    if (--smb.inUse === 0 && smb.gone) this.smbs.delete(smb.id);
    this.hv.release(path.token);
  }

  private smbGone(smbId: number): void {
    const smb = this.smbs.get(smbId);
    if (!smb) return;
    smb.gone = true;
    if (smb.inUse === 0) this.smbs.delete(smbId);
  }

  /** Seed 002 Fig. 6 step 608: interrupt the peer, only when it sleeps. */
  signalPeerIfAsleep(path: SmcdPath): void {
    if (path.smb.view.takeAsleep(path.peerSide)) this.signal(path);
  }

  signal(path: SmcdPath): void {
    this.stats.signalsSent++;
    this.hv.signal(path.token);
  }

  /** A path waits for data or ring space: poll until it has it. */
  wait(path: SmcdPath): void {
    this.waiters.add(path);
    if (!this.polling) {
      this.polling = true;
      this.lastProgress = performance.now();
      setImmediate(this.poll);
    }
  }

  private signalled(token: number): void {
    this.stats.signalsReceived++;
    const path = this.byToken.get(token >>> 0);
    if (!path) {
      // A connection this side has closed since: the peer took our asleep word of that SMB to send this signal
      // (Fig. 6 step 608), so nothing signals us for the SMB's other connections until we poll again. Wake up as
      // for any signal, in every SMB (which one the token was in is forgotten with it); ignoring it lost wake-ups.
      // Only SMBs with connections here: an idle one may be removed already, its pages given back (SmbPool.remove).
      for (const smb of this.smbs.values()) {
        if (smb.inUse === 0) continue;
        smb.view.setAsleep(smb.side, false);
        this.scan(smb);
      }
      if (this.waiters.size > 0 && !this.polling) this.wait([...this.waiters][0]);
      return;
    }
    path.smb.view.setAsleep(path.smb.side, false);
    this.scan(path.smb);
    // A close flag comes with a signal even to a partition that waits for nothing.
    if (this.byToken.get(path.token) === path) path.service();
    if (this.waiters.size > 0 && !this.polling) this.wait([...this.waiters][0]);
  }

  /** Takes the CSBA of `smb` for this side and services each element marked (seed 002 Fig. 7 step 755). */
  private scan(smb: MappedSmb): boolean {
    let found = false;
    const words = smb.view.csbaWords;
    for (let w = 0; w < words; w++) {
      let bits = smb.view.takePending(smb.side, w);
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits &= ~(1 << bit);
        const p = smb.paths[w * 32 + bit];
        if (p) {
          found = true;
          p.service();
        }
      }
    }
    return found;
  }

  private readonly poll = (): void => {
    let progress = false;
    const smbs = this.waitedSmbs();
    // A short spin before yielding to the event loop: a peer that answers within it is seen at once,
    // not an event-loop turn later (what request/response latency is made of).
    const spinUntil = performance.now() + Math.min(SPIN_US, this.pollUs) / 1000;
    do {
      for (const smb of smbs) if (this.scan(smb)) progress = true;
    } while (!progress && performance.now() < spinUntil);
    for (const p of this.waiters) if (!p.waiting) this.waiters.delete(p);
    if (this.waiters.size === 0) {
      this.polling = false;
      return;
    }
    const now = performance.now();
    if (progress) this.lastProgress = now;
    if ((now - this.lastProgress) * 1000 < this.pollUs) {
      setImmediate(this.poll);
      return;
    }
    // Going to sleep: say so, then look once more (a producer that published before seeing us asleep is found here).
    const sleepers = this.waitedSmbs();
    for (const smb of sleepers) smb.view.setAsleep(smb.side, true);
    let late = false;
    for (const smb of sleepers) if (this.scan(smb)) late = true;
    for (const p of this.waiters) if (!p.waiting) this.waiters.delete(p);
    if (late && this.waiters.size > 0) {
      for (const smb of sleepers) smb.view.setAsleep(smb.side, false);
      this.lastProgress = performance.now();
      setImmediate(this.poll);
      return;
    }
    this.polling = false;
  };

  private waitedSmbs(): MappedSmb[] {
    const out = new Set<MappedSmb>();
    for (const p of this.waiters) out.add(p.smb);
    return [...out];
  }

  info(): Record<string, unknown> {
    return { smbs: [...this.smbs.values()].map((s) => ({ id: s.id, path: s.path, side: s.side, elements: s.inUse })), waiting: this.waiters.size, polling: this.polling };
  }

  /**
   * The hypervisor session ended. Either the hypervisor died (issue 11 item
   * 7: both partitions and their TCP connections are alive, only the
   * doorbell and the books are gone) or it counted this partition as gone and
   * aborted its elements towards their peers. In both cases the connections
   * leave SMC-D for the TCP connection each kept, as SMC-R does when every
   * link is lost (seed 002, Fig. 10 steps 1018-1021): the memory is still
   * mapped here, so each knows exactly what it received and what its peer has
   * not consumed. A peer that saw Abort resets instead, and the fallback then
   * ends with the TCP connection.
   */
  sessionLost(): void {
    if (this.byToken.size > 0) this.log.warn({ connections: this.byToken.size }, 'hypervisor session lost: SMC-D connections fall back to TCP');
    for (const p of [...this.byToken.values()]) p.lost();
    this.smbs.clear();
  }
}

/**
 * One connection over a shared memory buffer element (seed 002, Fig. 5): the
 * direction this side writes (its ring, its producer cursor, the peer's
 * consumer cursor) and the direction it reads. Send is Fig. 6 (copy into the
 * peer's receive area, move the producer cursor, mark the CSBA, signal a
 * sleeping peer); receive is Figs. 7 and 9 (copy out, move the consumer
 * cursor). The cursors and close flags travel by Atomics in the element's
 * header; the stream machinery is ring-stream.ts. A full ring holds the
 * writer's callback back: backpressure to the app.
 */
export class SmcdPath extends RingStream {
  readonly mode = 'SMC-D' as const;
  readonly token: number;
  readonly element: number;
  readonly peerSide: 0 | 1;
  private readonly view: SmbView;
  private readonly words: Int32Array;
  private readonly txRing: Buffer;
  private readonly ringBytes: number;
  private readonly wProd: number;
  private readonly wPeerCons: number;
  private readonly wPeerProd: number;
  private readonly wCons: number;
  private readonly wMyWantSpace: number;
  private readonly wPeerWantSpace: number;
  /** The peer's close flags as this service pass read them (once, as Fig. 10's flags are read per look). */
  private peerFlags = 0;
  /** service() runs again when asked while running (a delivery can call back into it). */
  private servicing = false;
  private again = false;
  /** Bytes we ever produced and ever consumed (the cursors without the wrap): the fallback's offsets. */
  private txAbs = 0;
  private rxAbs = 0;
  /** The hypervisor session is gone: the session takes the connection over to TCP (SmcSession, as for SMC-R's onLinksLost). */
  onLost?: () => void;

  constructor(
    private readonly device: SmcdDevice,
    readonly smb: MappedSmb,
    grant: SmbeGrant,
    side: SmcSocketSide,
  ) {
    const me = grant.side;
    const peer = (1 - me) as 0 | 1;
    super(side, smb.view.ring(grant.element, peer));
    this.token = grant.token >>> 0;
    this.element = grant.element;
    this.peerSide = peer;
    this.view = smb.view;
    this.words = smb.view.words;
    this.txRing = smb.view.ring(this.element, me);
    this.ringBytes = smb.view.ringBytes;
    const w = (word: number) => smb.view.elementWord(this.element, word);
    this.wProd = w(me === 0 ? ElementWord.Prod0 : ElementWord.Prod1);
    this.wPeerCons = w(me === 0 ? ElementWord.Cons0 : ElementWord.Cons1);
    this.wPeerProd = w(peer === 0 ? ElementWord.Prod0 : ElementWord.Prod1);
    this.wCons = w(peer === 0 ? ElementWord.Cons0 : ElementWord.Cons1);
    this.wMyWantSpace = w(me === 0 ? ElementWord.WantSpace0 : ElementWord.WantSpace1);
    this.wPeerWantSpace = w(peer === 0 ? ElementWord.WantSpace0 : ElementWord.WantSpace1);
    this.txProd = Atomics.load(this.words, this.wProd) >>> 0;
    this.rxCons = Atomics.load(this.words, this.wCons) >>> 0;
  }

  /** Waiting for data the app wants, or for room for what it wrote. */
  get waiting(): boolean {
    if (this.finished) return false;
    return this.pending !== undefined || (this.wantData && this.readable);
  }

  // ---- the cursors, by Atomics in the element header ----

  protected peerProducer(): number {
    return Atomics.load(this.words, this.wPeerProd) >>> 0;
  }

  protected peerDoneWriting(): boolean {
    return (this.peerFlags & (CloseFlag.DoneWriting | CloseFlag.Closed)) !== 0;
  }

  protected peerClosed(): boolean {
    return (this.view.flags(this.element, this.peerSide) & (CloseFlag.Closed | CloseFlag.Abort)) !== 0;
  }

  protected txFree(): number {
    return this.ringBytes - cursorDistance(this.txProd, Atomics.load(this.words, this.wPeerCons) >>> 0);
  }

  /** Fig. 6 steps 603-608: copy, publish the producer cursor, mark the peer's CSBA bit, signal it if it sleeps. */
  protected produce(chunk: Buffer, off: number, n: number): void {
    ringWrite(this.txRing, this.txProd, chunk, off, off + n);
    this.txProd = cursorAdd(this.txProd, n);
    this.txAbs += n;
    Atomics.store(this.words, this.wProd, this.txProd | 0);
    this.view.markPending(this.peerSide, this.element);
    this.device.stats.bytes.smcdOut += n;
    this.device.signalPeerIfAsleep(this);
  }

  /** Full: ask the reader to tell us when it frees space, then look once more before waiting. */
  protected blocked(): void {
    this.device.stats.ringFull++;
    Atomics.store(this.words, this.wMyWantSpace, 1);
    if (this.txFree() > 0) {
      queueMicrotask(() => this.push());
      return;
    }
    this.device.wait(this);
  }

  /** Fig. 9 step 969: publish the consumer cursor, then tell a writer blocked on the full ring. */
  protected consumed(n: number): void {
    this.rxAbs += n;
    Atomics.store(this.words, this.wCons, this.rxCons | 0);
    this.device.stats.bytes.smcdIn += n;
    if (Atomics.load(this.words, this.wPeerWantSpace) !== 0 && Atomics.exchange(this.words, this.wPeerWantSpace, 0) !== 0) {
      this.view.markPending(this.peerSide, this.element);
      this.device.signalPeerIfAsleep(this);
    }
  }

  protected sendDoneWriting(): void {
    this.setFlagsAndSignal(CloseFlag.DoneWriting);
  }

  protected sendClose(clean: boolean): void {
    this.setFlagsAndSignal(clean ? CloseFlag.DoneWriting | CloseFlag.Closed : CloseFlag.Abort);
  }

  protected releaseBuffers(): void {
    this.device.release(this);
  }

  protected pull(): void {
    this.service();
  }

  /** Something may have changed for this element: data, space, close flags. */
  service(): void {
    if (this.servicing) {
      this.again = true;
      return;
    }
    this.servicing = true;
    try {
      do {
        this.again = false;
        this.serviceOnce();
      } while (this.again);
    } finally {
      this.servicing = false;
    }
  }

  private serviceOnce(): void {
    if (this.finished) return;
    // Read before the data: a DoneWriting seen here comes after every byte the peer produced (it sets it last).
    this.peerFlags = this.view.flags(this.element, this.peerSide);
    // The peer aborted, or died and its hypervisor marked the abort (seed 002, Fig. 10).
    if (this.peerFlags & CloseFlag.Abort) return this.peerAborted('the peer aborted the SMC-D connection');
    if (this.pending) this.push();
    if (this.deliverAvailable()) return;
    if (this.waiting) this.device.wait(this);
  }

  /** The element is gone with the hypervisor session: over to TCP where the session can take it, else reset. */
  lost(): void {
    if (this.finished) return;
    if (this.onLost) this.onLost();
    else this.resetLost('the hypervisor session was lost');
  }

  /**
   * Seed 002 Fig. 10 step 1018, as SmcrPath.fallback: where this side is, for
   * the fallback sync over TCP; the path is finished afterwards, with nothing
   * more written into the element. What the peer produced and we have not
   * consumed is copied out (ours to deliver); what we produced and the peer has
   * not consumed is copied out too (ours to resend from wherever the peer's
   * sync says it stopped: it consumes no more either). Both copies are taken
   * now, so the mapping is not touched again.
   */
  fallback(): SmcrFallback {
    const avail = cursorDistance(this.peerProducer(), this.rxCons);
    const undelivered = avail > 0 ? [ringRead(this.rxRing, this.rxCons, avail)] : [];
    const received = this.rxAbs + avail;
    const unconsumed = cursorDistance(this.txProd, Atomics.load(this.words, this.wPeerCons) >>> 0);
    const held = ringRead(this.txRing, cursorAdd(this.txProd, -unconsumed), unconsumed);
    const txAbs = this.txAbs;
    const heldFrom = txAbs - unconsumed;
    const peerFlags = this.view.flags(this.element, this.peerSide);
    const result: SmcrFallback = {
      received,
      undelivered,
      resendFrom: (from) => (from < heldFrom || from > txAbs ? undefined : from === txAbs ? [] : [held.subarray(from - heldFrom)]),
      pending: this.pending,
      // Our app ended (WriteDone): the FIN follows the resend.
      doneWriting: !this.writable,
      peerDoneWriting: (peerFlags & CloseFlag.DoneWriting) !== 0,
    };
    this.pending = undefined;
    this.state = streamTransition(this.state, 'close');
    this.releaseBuffers();
    return result;
  }

  /** Close flags always come with a signal: a peer that waits for nothing must still learn of them. */
  private setFlagsAndSignal(flags: number): void {
    this.view.setFlags(this.element, this.peerSide === 0 ? 1 : 0, flags);
    this.view.markPending(this.peerSide, this.element);
    this.device.signal(this);
  }

  info(): Record<string, unknown> {
    const me = this.peerSide === 0 ? 1 : 0;
    return {
      mode: this.mode,
      token: this.token,
      smb: this.smb.path,
      element: this.element,
      ringBytes: this.ringBytes,
      tx: { prod: this.txProd, cons: Atomics.load(this.words, this.wPeerCons) >>> 0 },
      rx: { prod: Atomics.load(this.words, this.wPeerProd) >>> 0, cons: this.rxCons },
      flags: { local: this.view.flags(this.element, me as 0 | 1), peer: this.view.flags(this.element, this.peerSide) },
    };
  }
}
