import type { Logger } from 'pino';
import { linkUsable, type MemoryRegion, type RdmaError, type Rvi } from '../../../../shared/rclan/rvi.ts';
import { CdcFlag, CdcType, emitCdc, tryParseCdc, type Cdc } from '../../../../shared/wire/smc-cdc.ts';
import { RMBE_CONS_OFFSET, RMBE_CURSOR_BYTES, RmbeView, emitRmbeCursor, rmbeRingOffset } from '../../../../shared/smc/rmbe.ts';
import { cursorAdd, cursorAfter, cursorDistance, ringRead, ringWrite } from '../../../../shared/ring/byte-ring.ts';
import { RingStream, streamTransition, type PendingWrite } from './ring-stream.ts';
import type { SmcSocketSide, SmcStats } from './smc-path.ts';

/** What one side tells the other of its RMBE in the CLC accept or confirm. */
export interface RmbeDescriptor {
  token: number;
  ringBytes: number;
  links: Array<{ region: number; key: number }>;
}

type LinkOp = { path: SmcrPath; kind: 'send'; payload: Buffer } | { path: SmcrPath; kind: 'rdma'; region: number; key: number; offset: number; data: Buffer };

/**
 * An SMC-R link group between this partition and one peer: two links, one
 * per fabric plane, each an RVI of its own (seed 002, Fig. 4 step 409: RC-QPs;
 * Fig. 10 step 1015: fail over to another link of the group). Operations go
 * out in order per link; what the RVI window does not take waits here.
 */
export class LinkGroup {
  readonly links: [Rvi | undefined, Rvi | undefined] = [undefined, undefined];
  private readonly paths = new Map<number, SmcrPath>();
  private readonly queues: [LinkOp[], LinkOp[]] = [[], []];

  constructor(
    readonly peer: string,
    readonly stats: SmcStats,
    readonly log: Logger,
  ) {}

  attach(rvi: Rvi, plane: 0 | 1): void {
    this.links[plane] = rvi;
    this.queues[plane] = [];
    rvi.onMessage = (payload) => this.onMessage(plane, payload);
    // The peer partition restarted: its RMBEs and connections are gone, so are ours with it.
    rvi.onPeerRestart = () => {
      for (const p of [...this.paths.values()]) p.peerLost('the peer partition restarted');
    };
    rvi.onDrain = () => this.flush(plane);
    rvi.onStateChange = (state, prev) => {
      this.log.info({ peer: this.peer, link: plane, state, prev }, 'SMC-R link state');
      if (!linkUsable(rvi)) this.linkDown(plane);
    };
  }

  detach(rvi: Rvi): void {
    const plane = this.links.indexOf(rvi);
    if (plane < 0) return;
    this.links[plane] = undefined;
    this.linkDown(plane as 0 | 1);
  }

  usable(plane: number): boolean {
    const rvi = this.links[plane];
    return rvi !== undefined && linkUsable(rvi);
  }

  /** Both links exist (regions are registered on each, so a connection can move). */
  get complete(): boolean {
    return this.links[0] !== undefined && this.links[1] !== undefined;
  }

  /** The link for a new connection: a usable one, the less loaded of two. */
  pick(): number {
    const load = [0, 0];
    for (const p of this.paths.values()) if (p.link >= 0) load[p.link]++;
    const ok = [this.usable(0), this.usable(1)];
    if (ok[0] && ok[1]) return load[0] <= load[1] ? 0 : 1;
    return ok[0] ? 0 : ok[1] ? 1 : -1;
  }

  add(path: SmcrPath): void {
    this.paths.set(path.localToken, path);
  }

  /**
   * The connection is over here. What it queued still goes out: its close CDC may wait behind a full
   * window, and splicing it out left the peer in CLOSE-WAIT for good (issue 11 item 3). Only a fallback
   * to TCP, which says nothing more over the links, drops it (`dropQueued`).
   */
  remove(path: SmcrPath, dropQueued: boolean): void {
    if (this.paths.get(path.localToken) === path) this.paths.delete(path.localToken);
    if (dropQueued) for (const q of this.queues) for (let i = q.length - 1; i >= 0; i--) if (q[i].path === path) q.splice(i, 1);
  }

  /** Forgets what `path` queued on `plane`: it moved (the peer refuses WRITEs there from now on). */
  dropQueued(path: SmcrPath, plane: number): void {
    const q = this.queues[plane];
    for (let i = q.length - 1; i >= 0; i--) if (q[i].path === path) q.splice(i, 1);
  }

  send(plane: number, path: SmcrPath, payload: Buffer): void {
    this.op(plane, { path, kind: 'send', payload });
  }

  rdma(plane: number, path: SmcrPath, region: number, key: number, offset: number, data: Buffer): void {
    this.op(plane, { path, kind: 'rdma', region, key, offset, data });
  }

  private op(plane: number, op: LinkOp): void {
    const q = this.queues[plane];
    if (q.length > 0 || !this.issue(plane, op)) q.push(op);
  }

  private issue(plane: number, op: LinkOp): boolean {
    const rvi = this.links[plane];
    if (!rvi) return true;
    if (op.kind === 'send') return rvi.send(op.payload);
    return rvi.rdmaWrite(op.region, op.key, op.offset, op.data, (err) => {
      // A refusal on a link the connection has left, or of a registration the peer has since replaced, is
      // the point of the Move. Of the registration in use, the peer let the RMBE go while this side still
      // wrote (it fell back to TCP first, its links blipped): the connection follows it over TCP, which is
      // alive, rather than resetting (issue 11 items 2 and 4).
      if (err && (err as RdmaError).code !== 'UNDELIVERABLE') op.path.refused(plane, op.region, err.message);
    });
  }

  private flush(plane: number): void {
    const q = this.queues[plane];
    while (q.length > 0) {
      if (!this.issue(plane, q[0])) return;
      q.shift();
    }
  }

  private onMessage(plane: 0 | 1, payload: Buffer): void {
    const cdc = tryParseCdc(payload);
    if (!cdc) {
      this.stats.malformedCdc++;
      return;
    }
    const path = this.paths.get(cdc.token);
    if (!path) {
      // The connection is gone here: the peer's last CDCs (its close, a late cursor) cross ours.
      this.stats.staleCdc++;
      return;
    }
    path.onCdc(cdc, plane);
  }

  private linkDown(plane: 0 | 1): void {
    this.queues[plane] = [];
    for (const p of [...this.paths.values()]) if (p.link === plane) p.failover();
  }

  info(): Record<string, unknown> {
    return {
      peer: this.peer,
      links: this.links.map((l, i) => (l ? { plane: i, rvi: l.id, state: l.state, queued: this.queues[i].length } : null)),
      connections: this.paths.size,
    };
  }
}

/** Where both sides are when every link is gone (seed 002, Fig. 10 step 1018: sync, then fail back to TCP). */
export interface SmcrFallback {
  /** Bytes of the peer's stream this side has (delivered or waiting in its RMBE). */
  received: number;
  /** Those of them not yet given to the app, in order. */
  undelivered: Buffer[];
  /** This side's bytes from absolute offset `from` on (what the peer says it lacks); undefined if they are no longer held. */
  resendFrom(from: number): Buffer[] | undefined;
  /** A write the app is blocked in: its rest goes on over TCP. */
  pending?: PendingWrite;
  doneWriting: boolean;
  peerDoneWriting: boolean;
}

/**
 * One SMC-R connection (seed 002, Figs. 8A, 8B, 9): this side's RMBE, which
 * the peer RDMA-WRITEs into, registered on both links; a staging copy of what
 * this side wrote into the peer's RMBE and the peer has not consumed yet
 * (Fig. 8A step 803), which is what makes a move to the other link, or the
 * fallback to TCP, lose and duplicate nothing: RDMA WRITEs of the same bytes
 * at the same place are idempotent, and cursors only move forward. The
 * cursors travel in CDC messages (the producer's) and RDMA WRITEs into the
 * RMBE header (the consumer's); the stream machinery is ring-stream.ts.
 *
 * Besides the stream's state, two independent requests for space, one per
 * direction (Fig. 9 step 975): `wantSpace` (we asked the peer to say when it
 * consumed) and `peerWantsSpace` (the peer asked us).
 */
export class SmcrPath extends RingStream {
  readonly mode = 'SMC-R' as const;
  /** This side's RMBE (shared/smc/rmbe.ts), registered on both links. */
  readonly rmbe: RmbeView;
  readonly regions: Array<MemoryRegion | undefined>;
  link = -1;
  private peer?: RmbeDescriptor;
  /** Our copy of what we wrote into the peer's ring (Fig. 8A step 803), indexed by txProd like the peer's ring. */
  private shadow = Buffer.alloc(0);
  /** Bytes we ever wrote (txProd without the wrap): the fallback's resend offsets. */
  private txAbs = 0;
  /** txAbs, for what a clean close tells the peer over TCP (ClcType.Closed). */
  get sentTotal(): number {
    return this.txAbs;
  }
  /** The peer's producer cursor of our ring, from its last CDC. */
  private rxProd = 0;
  /** Bytes of the peer's stream ever announced to us (rxProd without the wrap): the fallback's sync. */
  private rxAbs = 0;
  /** The consumer cursor we last RDMA-wrote into the peer's RMBE header. */
  private consSent = 0;
  /** CdcFlag bits we send (DoneWriting, Closed, Abort) and the peer's we have seen. */
  private localFlags = 0;
  private peerFlags = 0;
  private peerWantsSpace = false;
  private wantSpace = false;
  /** A CDC for a burst of writes is due at the next tick. */
  private cdcScheduled = false;
  /** deliver() is on the stack (a delivery can call back into it). */
  private delivering = false;
  /** Every link is gone: the session takes the connection over to TCP. */
  onLinksLost: () => void = () => {};

  constructor(
    private readonly group: LinkGroup,
    readonly localToken: number,
    readonly ringBytes: number,
    side: SmcSocketSide,
  ) {
    const rmbe = RmbeView.create(ringBytes);
    super(side, rmbe.ring);
    this.rmbe = rmbe;
    this.regions = group.links.map((rvi) => rvi?.registerRegion(this.rmbe.buffer));
    group.add(this);
  }

  /** This side's RMBE, for the CLC accept or confirm (Fig. 4 step 407). */
  describe(): RmbeDescriptor {
    return { token: this.localToken, ringBytes: this.ringBytes, links: this.regions.map((r) => ({ region: r?.id ?? 0, key: r?.key ?? 0 })) };
  }

  /** The peer's RMBE is known: pick a link and start (Fig. 4 step 411). */
  start(peer: RmbeDescriptor): void {
    // A copy: the links' registrations change as connections move (Rkey CDCs).
    this.peer = { ...peer, links: peer.links.map((l) => ({ ...l })) };
    this.shadow = Buffer.allocUnsafe(peer.ringBytes);
    this.link = this.group.pick();
  }

  /** How far the peer consumed what we sent: its RDMA-written copy in our RMBE header (Fig. 8B step 863). */
  private get txCons(): number {
    return this.rmbe.consumerCursor;
  }

  // ---- the cursors, by CDC and RDMA WRITE ----

  protected peerProducer(): number {
    return this.rxProd;
  }

  protected peerDoneWriting(): boolean {
    return (this.peerFlags & (CdcFlag.DoneWriting | CdcFlag.Closed)) !== 0;
  }

  protected peerClosed(): boolean {
    return (this.peerFlags & (CdcFlag.Closed | CdcFlag.Abort)) !== 0;
  }

  protected canPush(): boolean {
    return this.peer !== undefined && this.link >= 0;
  }

  protected txFree(): number {
    return this.peer!.ringBytes - cursorDistance(this.txProd, this.txCons);
  }

  /** Fig. 8A steps 803-807: stage, RDMA WRITE into the peer's ring, and one CDC with the producer cursor after the burst. */
  protected produce(chunk: Buffer, off: number, n: number): void {
    ringWrite(this.shadow, this.txProd, chunk, off, off + n);
    this.writeSpan(this.txProd, n);
    this.txProd = cursorAdd(this.txProd, n);
    this.txAbs += n;
    this.group.stats.bytes.smcrOut += n;
    this.scheduleCdc();
  }

  protected writeDone(): void {
    this.wantSpace = false;
  }

  protected blocked(): void {
    this.group.stats.ringFull++;
    if (!this.wantSpace) {
      this.wantSpace = true;
      this.sendCdc();
    }
  }

  /** Fig. 9: the consumer cursor back to the peer at once if it waits for space, else after a quarter of the ring. */
  protected consumed(n: number): void {
    this.group.stats.bytes.smcrIn += n;
    if (this.peerWantsSpace) this.writeBackCons(true);
    else if (cursorDistance(this.rxCons, this.consSent) >= this.ringBytes >>> 2) this.writeBackCons(false);
  }

  protected sendDoneWriting(): void {
    this.localFlags |= CdcFlag.DoneWriting;
    this.sendCdc();
  }

  protected sendClose(clean: boolean): void {
    this.localFlags |= clean ? CdcFlag.DoneWriting | CdcFlag.Closed : CdcFlag.Abort;
    this.sendCdc();
  }

  protected releaseBuffers(): void {
    this.deregister();
    this.group.remove(this, false);
  }

  private deregister(): void {
    this.regions.forEach((r, i) => {
      if (r) this.group.links[i]?.deregisterRegion(r.id);
    });
    this.regions.fill(undefined);
  }

  protected pull(): void {
    this.deliver();
  }

  /** RDMA WRITEs of the staged bytes [at, at+n) into the peer's ring, in at most two pieces. */
  private writeSpan(at: number, n: number): void {
    const peer = this.peer!;
    const size = peer.ringBytes;
    const region = peer.links[this.link];
    const pos = at & (size - 1);
    const first = Math.min(n, size - pos);
    this.group.rdma(this.link, this, region.region, region.key, rmbeRingOffset(pos), this.shadow.subarray(pos, pos + first));
    if (first < n) this.group.rdma(this.link, this, region.region, region.key, rmbeRingOffset(0), this.shadow.subarray(0, n - first));
  }

  /** One CDC for a burst of writes: after them, on the same link. */
  private scheduleCdc(): void {
    if (this.cdcScheduled) return;
    this.cdcScheduled = true;
    process.nextTick(() => {
      this.cdcScheduled = false;
      this.sendCdc();
    });
  }

  private sendCdc(extra = 0): void {
    if (this.link < 0 || !this.peer) return;
    const flags = this.localFlags | (this.wantSpace ? CdcFlag.WantSpace : 0) | extra;
    this.group.send(this.link, this, emitCdc({ type: CdcType.Cursor, flags, link: 0, token: this.peer.token, prod: this.txProd, key: 0 }));
  }

  /** Fig. 8B step 863 / Fig. 9 step 975: the consumer cursor into the sender's copy, by RDMA WRITE. */
  private writeBackCons(alert: boolean): void {
    if (this.link < 0 || !this.peer) return;
    const region = this.peer.links[this.link];
    const word = emitRmbeCursor(Buffer.allocUnsafe(RMBE_CURSOR_BYTES), this.rxCons);
    this.group.rdma(this.link, this, region.region, region.key, RMBE_CONS_OFFSET, word);
    this.consSent = this.rxCons;
    if (alert) {
      this.peerWantsSpace = false;
      this.sendCdc(CdcFlag.ConsUpdated);
    }
  }

  onCdc(cdc: Cdc, plane: 0 | 1): void {
    if (this.finished) return;
    if (cdc.type === CdcType.Move) return this.peerMoved(cdc.link);
    if (cdc.type === CdcType.Rkey) {
      // The peer's RMBE on link `cdc.link` anew: a move back there writes to it (issue 11 item 2).
      if (this.peer) this.peer.links[cdc.link] = { region: cdc.prod, key: cdc.key };
      return;
    }
    void plane;
    if (cursorAfter(cdc.prod, this.rxProd)) {
      const n = cursorDistance(cdc.prod, this.rxProd);
      if (n > this.ringBytes) {
        this.group.stats.malformedCdc++;
        return;
      }
      this.rxAbs += n;
      this.rxProd = cdc.prod;
    }
    this.peerFlags |= cdc.flags & (CdcFlag.DoneWriting | CdcFlag.Closed | CdcFlag.Abort);
    if (this.peerFlags & CdcFlag.Abort) return this.peerAborted('the peer aborted the SMC-R connection');
    // The peer answered our WantSpace: if the ring is still full, push asks again.
    if (cdc.flags & CdcFlag.ConsUpdated) this.wantSpace = false;
    if (cdc.flags & CdcFlag.WantSpace) this.peerWantsSpace = true;
    if (cdc.flags & CdcFlag.ConsUpdated || this.pending) this.push();
    this.deliver();
    // A blocked writer learns of what was consumed before its ask; if nothing was, the next consumption tells it.
    if (this.peerWantsSpace && this.rxCons !== this.consSent) this.writeBackCons(true);
  }

  private deliver(): void {
    if (this.delivering || this.finished) return;
    this.delivering = true;
    try {
      this.deliverAvailable();
    } finally {
      this.delivering = false;
    }
  }

  /** The peer's side of the connection is gone: reset (ECONNRESET). */
  peerLost(why: string): void {
    this.resetLost(why);
  }

  /**
   * The peer left link `link` (Fig. 10 step 1015): its late WRITEs there are refused from now on (the
   * registration goes), and we leave it too if we still use it. The RMBE is registered there again at
   * once, under a new id and key that the peer learns in an Rkey CDC, so that a later move back to the
   * link (it came back, the other failed) finds a region the peer may write (issue 11 item 2): WRITEs
   * still in flight carry the old id and stay refused.
   */
  private peerMoved(link: number): void {
    const old = this.regions[link];
    if (old) this.group.links[link]?.deregisterRegion(old.id);
    this.regions[link] = this.group.links[link]?.registerRegion(this.rmbe.buffer);
    if (this.link === link) this.failover();
    const fresh = this.regions[link];
    if (fresh && this.link >= 0 && this.peer) this.group.send(this.link, this, emitCdc({ type: CdcType.Rkey, flags: 0, link, token: this.peer.token, prod: fresh.id, key: fresh.key }));
  }

  /** An RDMA WRITE to `region` on `plane` refused by the peer (see LinkGroup.issue). */
  refused(plane: number, region: number, why: string): void {
    if (this.finished || this.link !== plane || this.peer?.links[plane]?.region !== region) return;
    this.group.log.warn({ token: this.localToken, link: plane, err: why }, 'SMC-R RDMA WRITE refused on the link in use: falling back to TCP');
    this.link = -1;
    this.onLinksLost();
  }

  /**
   * The link failed (Fig. 10 steps 1012-1016): move to the other link if it
   * is usable — tell the peer (it stops taking WRITEs on the old one), write
   * again what it has not consumed, and the cursors — else fall back to TCP.
   */
  failover(): void {
    if (this.finished || this.link < 0) return;
    const old = this.link;
    this.group.dropQueued(this, old);
    const next = old ^ 1;
    // Both ends need a registration there: the peer's to write into, ours for the peer to write into.
    if (!this.group.usable(next) || !this.peer || this.peer.links[next].region === 0 || !this.regions[next]) {
      this.link = -1;
      this.onLinksLost();
      return;
    }
    this.link = next;
    this.group.stats.linkFailovers++;
    this.group.send(next, this, emitCdc({ type: CdcType.Move, flags: 0, link: old, token: this.peer.token, prod: this.txProd, key: 0 }));
    // The peer lets its registration on `old` go when the Move arrives; until its Rkey says what replaced it, there is none to move back to.
    this.peer.links[old] = { region: 0, key: 0 };
    const unconsumed = cursorDistance(this.txProd, this.txCons);
    if (unconsumed > 0) this.writeSpan(this.txCons, unconsumed);
    this.writeBackCons(this.peerWantsSpace);
    this.sendCdc();
  }

  /** Seed 002 Fig. 10 step 1018: what the TCP fallback needs; the path is finished afterwards. */
  fallback(): SmcrFallback {
    const undelivered: Buffer[] = [];
    const avail = cursorDistance(this.rxProd, this.rxCons);
    if (avail > 0) undelivered.push(ringRead(this.rxRing, this.rxCons, avail));
    const heldFrom = this.txAbs - cursorDistance(this.txProd, this.txCons);
    const txProd = this.txProd;
    const txAbs = this.txAbs;
    const shadow = this.shadow;
    const result: SmcrFallback = {
      received: this.rxAbs,
      undelivered,
      resendFrom: (from) => {
        if (from < heldFrom || from > txAbs) return undefined;
        const n = txAbs - from;
        if (n === 0) return [];
        return [ringRead(shadow, cursorAdd(txProd, -n), n)];
      },
      pending: this.pending,
      doneWriting: (this.localFlags & CdcFlag.DoneWriting) !== 0,
      peerDoneWriting: (this.peerFlags & CdcFlag.DoneWriting) !== 0,
    };
    this.pending = undefined;
    // Finished without a word to the peer (every link is gone): the buffers go, the stream goes on over TCP.
    this.state = streamTransition(this.state, 'close');
    this.deregister();
    this.group.remove(this, true);
    return result;
  }

  info(): Record<string, unknown> {
    return {
      mode: this.mode,
      token: this.localToken,
      peerToken: this.peer?.token,
      link: this.link,
      ringBytes: this.ringBytes,
      tx: { prod: this.txProd, cons: this.txCons },
      rx: { prod: this.rxProd, cons: this.rxCons },
      flags: { local: this.localFlags, peer: this.peerFlags },
    };
  }
}
