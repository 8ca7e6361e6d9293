import crypto from 'node:crypto';
import { VI_HEADER } from '../link/frame.ts';
import {
  RCLAN_HEADER,
  RDMA_STATUS_NAME,
  RclanFlag,
  RclanKind,
  RclanPacket,
  RdmaStatus,
  emitRclanHeader,
  emitRdmaExt,
  type RclanHeaderFields,
  rdmaExtLength,
  seqAdd,
  seqDiff,
  seqLt,
} from './packet.ts';
import { pinnedPlane } from './purpose.ts';
import type { PeerLink } from './peer-link.ts';

/**
 * One end of a reliable virtual interface (seed 004, "RCLAN layer" and
 * "Giganet Driver"): a VI through each switch plane, used alternately to
 * balance load, with sequence numbers, cumulative + selective acknowledgement,
 * retransmission on the surviving leg, in-order exactly-once delivery, credits,
 * per-leg heartbeats and an error to the sender for what nothing could deliver.
 *
 * An RVI whose purpose pins it to one plane (an SMC-R link, see
 * purpose.ts) has a single leg: the other plane's VI is never sent on,
 * never heartbeated and never counted up, so losing that one VI takes the RVI
 * down and the layer above (SMC-R's link group) does the failing over.
 *
 * Liveness: an RVI made by the RCLAN layer (rclan.ts) shares one PeerLink
 * with every other RVI to the same peer node (peer-link.ts, issue 10 item 2):
 * the legs are that link's per-plane liveness, its frames feed it, and it
 * sends the heartbeats. An RVI made on its own (no link, as in the unit
 * tests) heartbeats and judges its legs itself, as before.
 *
 * With a link, the peer being heard does not prove this RVI's own VI works
 * (a switch may lose one VI: `lparlab fault cut --rvi`). So an RVI with data
 * in flight also judges its own legs by acknowledgements: data last sent on a
 * leg that nothing has acknowledged for 2 × deadAfterMs takes that leg down for
 * this RVI alone (failover as for a dead plane). While such a leg is down the
 * RVI probes it every heartbeatMs with a heartbeat flagged Probe, which the
 * peer answers on the same VI and plane; the answer brings the leg back. An
 * RVI that carries nothing cannot find out, and needs not: its first message
 * does.
 */

/** What the RVI needs of a fabric port (one per plane). */
export interface LegPort {
  readonly attached: boolean;
  readonly writable: boolean;
  send(frame: Buffer): boolean;
  sendParts(head: Buffer, body: Buffer): boolean;
}

/**
 * The RCLAN timing and credit settings, one definition: the platform file's
 * `rclan` section (shared/platform fills the defaults) is this, and the
 * fabric manager hands it to every node at welcome.
 */
export interface RclanSettings {
  /** A heartbeat goes out on a leg that has sent nothing for this long. */
  heartbeatMs: number;
  /** A leg not heard from for this long is down. */
  deadAfterMs: number;
  /** With no leg up for this long, what waits is reported undeliverable. */
  undeliverableAfterMs: number;
  /** Messages in flight per RVI direction. */
  window: number;
}

export const LegState = { Down: 'down', Up: 'up' } as const;
export type LegState = (typeof LegState)[keyof typeof LegState];

/**
 * RVI states. Connecting: no leg has been heard yet. Up: every leg the RVI
 * runs on (both planes; the one plane of a pinned RVI). Degraded: one leg of
 * two. Down: none, messages wait. Failed: none for longer than
 * undeliverableAfterMs; what was waiting was reported undeliverable.
 * Up and Degraded carry messages (see linkUsable); a pinned RVI is never
 * Degraded.
 */
export const RviState = { Connecting: 'connecting', Up: 'up', Degraded: 'degraded', Down: 'down', Failed: 'failed' } as const;
export type RviState = (typeof RviState)[keyof typeof RviState];

/** `of`: how many legs the RVI runs on (2 unless pinned to one plane). */
export type RviEvent = { type: 'legs'; up: number; of?: 1 | 2 } | { type: 'give-up' };

/** The RVI state machine: one transition per event. */
export function rviTransition(state: RviState, event: RviEvent): RviState {
  switch (event.type) {
    case 'legs':
      if (event.up === (event.of ?? 2)) return RviState.Up;
      if (event.up === 1) return RviState.Degraded;
      if (state === RviState.Connecting || state === RviState.Failed) return state;
      return RviState.Down;
    case 'give-up':
      return state === RviState.Down || state === RviState.Connecting || state === RviState.Failed ? RviState.Failed : state;
  }
}

/**
 * Whether the RVI carries messages now: Up, or Degraded (one leg of two). For
 * a pinned RVI (an SMC-R link) that means Up, its one leg alive; Connecting,
 * Down and Failed are a link SMC-R must not use (seed 002, Fig. 10 step 1012:
 * the link has failed, move to another of the group).
 */
export function linkUsable(rvi: { readonly state: RviState }): boolean {
  return rvi.state === RviState.Up || rvi.state === RviState.Degraded;
}

export class RdmaError extends Error {
  constructor(
    readonly code: 'ENOREGION' | 'EKEY' | 'ERANGE' | 'UNDELIVERABLE',
    message: string,
  ) {
    super(message);
  }
}

const RDMA_CODE: Record<number, RdmaError['code']> = {
  [RdmaStatus.NoRegion]: 'ENOREGION',
  [RdmaStatus.BadKey]: 'EKEY',
  [RdmaStatus.OutOfBounds]: 'ERANGE',
};

export interface MemoryRegion {
  readonly id: number;
  readonly key: number;
  readonly buffer: Buffer;
}

interface OutMsg {
  seq: number;
  kind: RclanKind;
  payload: Buffer;
  region: number;
  key: number;
  offset: number;
  nakSeq: number;
  nakReason: number;
  sentAt: number;
  /** Leg of the last transmission, -1 before the first. */
  leg: number;
  sends: number;
  sacked: boolean;
  done?: (err?: Error) => void;
  settled: boolean;
}

export interface RviStats {
  sent: number;
  acked: number;
  undeliverable: number;
  retransmits: number;
  received: number;
  duplicates: number;
  stale: number;
  overrun: number;
  malformed: number;
  rdmaWrites: number;
  rdmaRefused: number;
  /** onMessage handlers that threw (the message counts as delivered; the stream goes on). */
  handlerErrors: number;
  legFailovers: number;
  /** Frames that arrived on the plane a pinned RVI does not run on: dropped unread. */
  offPlane: number;
  /** Times a plane told this RVI to stop sending on its leg (the peer's output there was full). */
  flowStops: number;
  bytesSent: number;
  bytesReceived: number;
  perLegSent: [number, number];
}

/** Bodies up to this size are copied behind the header: one buffer, one write. */
const INLINE_BODY = 512;
const MIN_RTO = 30;
const MAX_RTO = 1000;
const RETIRED_INCARNATIONS = 4;

export class Rvi {
  state: RviState = RviState.Connecting;
  readonly legs: [LegState, LegState] = [LegState.Down, LegState.Down];
  readonly stats: RviStats = {
    sent: 0,
    acked: 0,
    undeliverable: 0,
    retransmits: 0,
    received: 0,
    duplicates: 0,
    stale: 0,
    overrun: 0,
    malformed: 0,
    rdmaWrites: 0,
    rdmaRefused: 0,
    handlerErrors: 0,
    legFailovers: 0,
    offPlane: 0,
    flowStops: 0,
    bytesSent: 0,
    bytesReceived: 0,
    perLegSent: [0, 0],
  };

  /** A message delivered in order, exactly once. */
  onMessage: (payload: Buffer) => void = () => {};
  /** A message nothing could deliver (no leg for undeliverableAfterMs, or the peer restarted before acknowledging it). */
  onUndeliverable: (seq: number, payload: Buffer) => void = () => {};
  onStateChange: (state: RviState, previous: RviState) => void = () => {};
  /** Room to send again after `send` returned false. */
  onDrain: () => void = () => {};
  /** The other end came back as a new process: its stream starts over. */
  onPeerRestart: () => void = () => {};
  /** A peer's RDMA WRITE was refused (reported to the writer too). */
  onRdmaRefused: (reason: string, region: number) => void = () => {};
  /** The one plane index this RVI runs on (from its purpose), or undefined for both. */
  readonly plane: 0 | 1 | undefined;

  /** Per leg: the plane asked us to stop sending on this VI (its output to the peer is full). */
  private readonly flowStopped: [boolean, boolean] = [false, false];
  private readonly lastHeard: [number, number] = [0, 0];
  private readonly lastSent: [number, number] = [0, 0];
  /** When a stale frame was last answered (rate limit: one answer per heartbeat interval). */
  private lastStaleAnswer = -Infinity;
  /** Per leg: when a probe was last answered there (both legs' probes come together, each wants its answer). */
  private readonly lastProbeAnswer: [number, number] = [-Infinity, -Infinity];
  /** With a link: since when data sent on each leg has waited for an acknowledgement (0: nothing waits). */
  private readonly awaitingSince: [number, number] = [0, 0];
  /** With a link: legs this RVI took down itself (its VI silent while the peer is heard), probed until they answer. */
  private readonly viSilent: [boolean, boolean] = [false, false];
  private noLegSince: number;
  private nextLeg = 0;

  // Sending side: seqs in [ackBase, nextTx) are in flight, [nextTx, nextSeq) wait for credit or a leg.
  private readonly incarnation: number;
  private epoch = 0;
  private ackBase = 0;
  private nextTx = 0;
  private nextSeq = 0;
  private peerLimit: number;
  private readonly ring: Array<OutMsg | undefined>;
  private readonly mask: number;
  private wantDrain = false;
  private srtt = 0;
  private rttvar = 0;
  private rto = 200;
  /** When anything was last sent again: later sends give clean RTT samples (Karn). */
  private lastRetransmitAt = 0;
  /** RDMA WRITEs acknowledged, completing once anything the peer sent before the ack is delivered (a refusal would be). */
  private readonly rdmaGates: Array<{ msg: OutMsg; stamp: number }> = [];
  private readonly rdmaBySeq = new Map<number, OutMsg>();

  // Receiving side.
  private rxIncarnation = 0;
  private rxEpoch = 0;
  private expected = 0;
  private readonly ooo = new Map<number, RclanPacket>();
  private readonly retired: number[] = [];
  private readonly held: RclanPacket[] = [];
  private paused = false;
  private ackOwed = 0;

  private readonly hdr: RclanHeaderFields;
  private readonly regions = new Map<number, MemoryRegion>();
  private nextRegion = 1;

  constructor(
    readonly id: number,
    readonly vi: number,
    readonly peer: string,
    readonly purpose: string,
    private readonly ports: [LegPort, LegPort],
    private readonly settings: RclanSettings,
    private readonly scheduleAck: (rvi: Rvi) => void,
    now: number,
    /** The peer's shared liveness (rclan.ts); without one the RVI heartbeats on its own. */
    readonly link?: PeerLink,
    /** Called when the RVI gets something to deliver: whoever ticks it must now (rclan.ts ticks busy RVIs only). */
    private readonly onBusy?: (rvi: Rvi) => void,
  ) {
    this.plane = pinnedPlane(purpose);
    this.incarnation = crypto.randomBytes(4).readUInt32BE(0) || 1;
    this.hdr = { kind: RclanKind.Data, flags: 0, epoch: 0, incarnation: this.incarnation, seq: 0, next: 0, ackEpoch: 0, window: 0, ackIncarnation: 0, ack: 0, sack: 0 };
    this.peerLimit = settings.window;
    let size = 1;
    // Twice the window: the app may fill one window, refusals of a peer's RDMA WRITEs ride on top.
    while (size < settings.window * 2) size <<= 1;
    this.ring = new Array(size);
    this.mask = size - 1;
    this.noLegSince = now;
  }

  /** Whether the RVI runs on plane `leg` at all. */
  private runsOn(leg: number): boolean {
    return this.plane === undefined || this.plane === leg;
  }

  runsOnPlane(leg: number): boolean {
    return this.runsOn(leg);
  }

  /** Whether anything waits for an acknowledgement or a completion: the RVI needs ticks (retransmission, give-up). */
  get busy(): boolean {
    return this.nextSeq !== this.ackBase || this.rdmaGates.length > 0 || this.viSilent[0] || this.viSilent[1];
  }

  /** Messages accepted and not yet acknowledged. */
  get inFlight(): number {
    return seqDiff(this.nextSeq, this.ackBase);
  }

  /** Whether `send` would accept a message now. */
  get writable(): boolean {
    return this.inFlight < this.settings.window;
  }

  /**
   * Queues a message. Returns false, accepting nothing, when the window is
   * full: wait for onDrain. Delivery failures come back through onUndeliverable.
   */
  send(payload: Buffer): boolean {
    if (!this.writable) {
      this.wantDrain = true;
      return false;
    }
    this.enqueue(RclanKind.Data, payload);
    this.pump();
    return true;
  }

  /**
   * RDMA WRITE `data` at `offset` of the peer's region `region` guarded by
   * `key`. `done` is called once: without an error when the data is in the
   * peer's memory, with an RdmaError when the peer refused it or nothing could
   * deliver it. Returns false, accepting nothing, when the window is full.
   */
  rdmaWrite(region: number, key: number, offset: number, data: Buffer, done: (err?: Error) => void): boolean {
    if (!this.writable) {
      this.wantDrain = true;
      return false;
    }
    const msg = this.enqueue(RclanKind.RdmaWrite, data);
    msg.region = region;
    msg.key = key >>> 0;
    msg.offset = offset >>> 0;
    msg.done = done;
    this.rdmaBySeq.set(msg.seq, msg);
    this.stats.rdmaWrites++;
    this.pump();
    return true;
  }

  /** Registers memory the peer may RDMA WRITE into; hand the id and key to the peer. */
  registerRegion(buffer: Buffer): MemoryRegion {
    const region = { id: this.nextRegion++, key: crypto.randomBytes(4).readUInt32BE(0), buffer };
    this.regions.set(region.id, region);
    return region;
  }

  deregisterRegion(id: number): void {
    this.regions.delete(id);
  }

  /** Stop delivering: messages are held and the peer's credit shrinks (end-to-end backpressure). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (this.held.length > 0 && !this.paused) this.apply(this.held.shift()!);
    this.sendAck();
  }

  private enqueue(kind: RclanKind, payload: Buffer): OutMsg {
    const msg: OutMsg = {
      seq: this.nextSeq,
      kind,
      payload,
      region: 0,
      key: 0,
      offset: 0,
      nakSeq: 0,
      nakReason: 0,
      sentAt: 0,
      leg: -1,
      sends: 0,
      sacked: false,
      settled: false,
    };
    const wasIdle = this.nextSeq === this.ackBase;
    this.ring[this.nextSeq & this.mask] = msg;
    this.nextSeq = seqAdd(this.nextSeq, 1);
    if (wasIdle) {
      this.onBusy?.(this);
      this.link?.busy(performance.now());
    }
    return msg;
  }

  /** Transmits what credit and legs allow. */
  pump(): void {
    while (seqLt(this.nextTx, this.nextSeq) && seqLt(this.nextTx, this.peerLimit)) {
      const leg = this.pickLeg();
      if (leg < 0) return;
      this.transmit(this.ring[this.nextTx & this.mask]!, leg);
      this.nextTx = seqAdd(this.nextTx, 1);
    }
  }

  /** Round robin over the legs that are up and not backed up (the port, or this VI at the plane). */
  private pickLeg(): number {
    for (let i = 0; i < 2; i++) {
      const leg = (this.nextLeg + i) & 1;
      if (this.legs[leg] === LegState.Up && !this.flowStopped[leg] && this.ports[leg].writable) {
        this.nextLeg = leg ^ 1;
        return leg;
      }
    }
    return -1;
  }

  private transmit(msg: OutMsg, leg: number): void {
    const now = performance.now();
    const retransmit = msg.sends > 0;
    const ext = rdmaExtLength(msg.kind);
    const body = msg.payload;
    const inline = body.length <= INLINE_BODY ? body.length : 0;
    const head = this.header(msg.kind, retransmit ? RclanFlag.Retransmit : 0, msg.seq, ext, body.length, inline);
    const o = VI_HEADER + RCLAN_HEADER;
    if (ext > 0) emitRdmaExt(head, msg);
    const port = this.ports[leg];
    if (inline > 0 || body.length === 0) {
      if (inline > 0) body.copy(head, o + ext);
      port.send(head);
    } else {
      port.sendParts(head, body);
    }
    if (retransmit) {
      this.stats.retransmits++;
      this.lastRetransmitAt = now;
    }
    else {
      this.stats.sent++;
      this.stats.bytesSent += body.length;
    }
    this.stats.perLegSent[leg]++;
    msg.sends++;
    msg.sentAt = now;
    msg.leg = leg;
    this.lastSent[leg] = now;
    if (this.link) {
      if (this.awaitingSince[leg] === 0) this.awaitingSince[leg] = now;
      this.link.sent(leg, now, true);
    }
  }

  private header(kind: RclanKind, flags: number, seq: number, ext: number, bodyLength: number, inline: number): Buffer {
    this.ackOwed = 0;
    // One fields object per RVI, filled for each packet: no object per frame on the send path (issue 9).
    const h = this.hdr;
    h.kind = kind;
    h.flags = flags;
    h.epoch = this.epoch;
    h.seq = seq;
    h.next = this.nextSeq;
    h.ackEpoch = this.rxEpoch;
    h.window = this.creditWindow();
    h.ackIncarnation = this.rxIncarnation;
    h.ack = this.expected;
    h.sack = this.sackBits();
    return emitRclanHeader(this.vi, h, ext, bodyLength, inline);
  }


  private creditWindow(): number {
    return Math.max(0, this.settings.window - this.held.length);
  }

  private sackBits(): number {
    if (this.ooo.size === 0) return 0;
    let bits = 0;
    for (const seq of this.ooo.keys()) {
      const d = seqDiff(seq, this.expected) - 1;
      if (d >= 0 && d < 32) bits |= 1 << d;
    }
    return bits >>> 0;
  }

  private sendControl(kind: RclanKind, leg: number, flags = 0): void {
    const head = this.header(kind, flags, this.nextSeq, 0, 0, 0);
    this.ports[leg].send(head);
    const now = performance.now();
    this.lastSent[leg] = now;
    this.link?.sent(leg, now, kind !== RclanKind.Heartbeat);
  }

  /**
   * A heartbeat on `leg` (the peer link's, when this RVI carries it; also the
   * hello of a new RVI). A probe asks the peer to answer on the same VI and
   * plane; an answer is never answered.
   */
  sendHeartbeat(leg: number, probe = false): void {
    if (this.runsOn(leg) && this.ports[leg].attached) this.sendControl(RclanKind.Heartbeat, leg, probe ? RclanFlag.Probe : 0);
  }

  /** A new RVI says hello on each plane it runs on, so the peer learns this end's incarnation at once. */
  hello(): void {
    for (let leg = 0; leg < 2; leg++) this.sendHeartbeat(leg, true);
  }

  /** Sends a standalone acknowledgement (credits included) if one is owed. */
  sendAck(): void {
    let leg = this.pickLeg();
    if (leg < 0) leg = this.runsOn(0) && this.ports[0].attached ? 0 : this.runsOn(1) && this.ports[1].attached ? 1 : -1;
    if (leg >= 0) this.sendControl(RclanKind.Ack, leg);
  }

  flushAck(): void {
    if (this.ackOwed > 0) this.sendAck();
  }

  /** Handles one VI frame that arrived on `leg`. */
  receive(leg: number, frame: Buffer, now: number): void {
    if (!this.runsOn(leg)) {
      this.stats.offPlane++;
      return;
    }
    const pkt = RclanPacket.tryParse(frame);
    if (!pkt) {
      this.stats.malformed++;
      return;
    }
    if (this.link) {
      this.link.heard(leg, now, pkt.kind !== RclanKind.Heartbeat);
      if (this.viSilent[leg]) {
        // The VI answers again: the leg is this RVI's once more if the peer link has it.
        this.viSilent[leg] = false;
        this.awaitingSince[leg] = 0;
        if (this.link.legs[leg] === LegState.Up) this.setLeg(leg, LegState.Up, now);
      }
      if (pkt.kind === RclanKind.Heartbeat && pkt.flags & RclanFlag.Probe && now - this.lastProbeAnswer[leg] >= this.settings.heartbeatMs / 2) {
        this.lastProbeAnswer[leg] = now;
        this.sendControl(RclanKind.Heartbeat, leg);
      }
    } else {
      this.lastHeard[leg] = now;
      if (this.legs[leg] === LegState.Down && this.ports[leg].attached) this.setLeg(leg, LegState.Up, now);
    }

    // The sender still talks to an earlier process of ours: nothing in it is for us. A heartbeat of ours tells
    // it at once (a quiet peer link sends none of its own), at most one per heartbeat interval.
    const ackInc = pkt.ackIncarnation;
    if (ackInc !== 0 && ackInc !== this.incarnation) {
      this.stats.stale++;
      if (now - this.lastStaleAnswer >= this.settings.heartbeatMs) {
        this.lastStaleAnswer = now;
        this.sendHeartbeat(leg);
      }
      return;
    }
    if (!this.acceptStream(pkt)) return;

    if (pkt.ackIncarnation === this.incarnation && pkt.ackEpoch === this.epoch) {
      this.onAck(pkt.ack, pkt.window, pkt.sack, pkt.next);
    }
    if (pkt.sequenced) this.onSequenced(pkt);
    if (this.rdmaGates.length > 0) this.settleRdmaGates();
  }

  /** Tracks which incarnation and epoch of the peer's stream is current. */
  private acceptStream(pkt: RclanPacket): boolean {
    const inc = pkt.incarnation;
    if (inc !== this.rxIncarnation) {
      if (this.retired.includes(inc)) {
        this.stats.stale++;
        return false;
      }
      const restarted = this.rxIncarnation !== 0;
      if (restarted) {
        this.retired.push(this.rxIncarnation);
        if (this.retired.length > RETIRED_INCARNATIONS) this.retired.shift();
      }
      this.resetReceive(inc, pkt.epoch);
      if (restarted) {
        // The new process knows nothing of our stream: what it did not acknowledge is lost with the old one.
        this.giveUp();
        this.onPeerRestart();
      }
      return true;
    }
    if (pkt.epoch !== this.rxEpoch) {
      if (((pkt.epoch - this.rxEpoch) << 16) >> 16 < 0) {
        this.stats.stale++;
        return false;
      }
      this.resetReceive(inc, pkt.epoch);
    }
    return true;
  }

  private resetReceive(incarnation: number, epoch: number): void {
    this.rxIncarnation = incarnation;
    this.rxEpoch = epoch;
    this.expected = 0;
    this.ooo.clear();
    // Held messages were accepted and acknowledged in order: they are still delivered on resume().
    // Gates wait on the old stream's positions, which will never come: those writes were acknowledged.
    for (const g of this.rdmaGates.splice(0)) this.settleRdma(g.msg);
  }

  private onAck(ack: number, window: number, sack: number, stamp: number): void {
    const advance = seqDiff(ack, this.ackBase);
    if (advance > 0 && seqDiff(ack, this.nextTx) <= 0) {
      const now = performance.now();
      for (let seq = this.ackBase; seq !== ack; seq = seqAdd(seq, 1)) {
        const msg = this.ring[seq & this.mask]!;
        this.ring[seq & this.mask] = undefined;
        // Karn, widened: a message sent before the last retransmission may have waited behind it at the receiver.
        if (msg.sends === 1 && seq === seqAdd(ack, -1) && msg.sentAt > this.lastRetransmitAt) this.sampleRtt(now - msg.sentAt);
        if (msg.leg >= 0) this.awaitingSince[msg.leg] = -1;
        if (msg.kind === RclanKind.Data) this.stats.acked++;
        else if (msg.kind === RclanKind.RdmaWrite && !msg.settled) this.rdmaGates.push({ msg, stamp });
      }
      this.ackBase = ack;
      // A leg whose data was acknowledged works; it waits again from now if more went on it since.
      if (this.link) {
        for (let leg = 0; leg < 2; leg++) {
          if (this.awaitingSince[leg] !== -1) continue;
          this.awaitingSince[leg] = 0;
          for (let seq = ack; seqLt(seq, this.nextTx); seq = seqAdd(seq, 1)) {
            if (this.ring[seq & this.mask]!.leg === leg) {
              this.awaitingSince[leg] = now;
              break;
            }
          }
        }
      }
      // Progress ends any backoff (RFC 6298 5.7 in spirit): the path works.
      this.rto = this.baseRto();
    }
    if (advance >= 0) {
      const limit = seqAdd(ack, window);
      if (seqDiff(limit, this.peerLimit) > 0 || advance > 0) this.peerLimit = limit;
      if (sack !== 0) this.onSack(ack, sack);
      if (this.wantDrain && this.writable) {
        this.wantDrain = false;
        this.onDrain();
      }
      this.pump();
    }
  }

  /**
   * Selective acknowledgement: marks what the receiver holds, and resends at
   * once a hole that later messages have overtaken by more than the reordering
   * the two legs cause (a quarter of the RTT), instead of waiting for the timer.
   */
  private onSack(ack: number, sack: number): void {
    const highest = 31 - Math.clz32(sack);
    const now = performance.now();
    const reorder = Math.max(2, this.srtt / 4);
    for (let i = -1; i <= highest; i++) {
      const seq = seqAdd(ack, i + 1);
      if (!seqLt(seq, this.nextTx)) break;
      const msg = this.ring[seq & this.mask]!;
      if (i >= 0 && (sack >>> i) & 1) msg.sacked = true;
      else if (!msg.sacked && msg.sends === 1 && now - msg.sentAt > reorder) this.retransmit(msg);
    }
  }

  private baseRto(): number {
    return this.srtt === 0 ? 200 : Math.min(MAX_RTO, Math.max(MIN_RTO, this.srtt + 4 * this.rttvar));
  }

  private sampleRtt(rtt: number): void {
    if (this.srtt === 0) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
    this.rto = this.baseRto();
  }

  private onSequenced(pkt: RclanPacket): void {
    const d = seqDiff(pkt.seq, this.expected);
    if (d < 0) {
      // Already delivered: the ack was lost or a leg retransmitted. Say so again.
      this.stats.duplicates++;
      this.ackOwed++;
      this.sendAck();
      return;
    }
    if (d >= this.creditWindow()) {
      this.stats.overrun++;
      return;
    }
    if (d > 0) {
      if (this.ooo.has(pkt.seq)) this.stats.duplicates++;
      else this.ooo.set(pkt.seq, pkt);
      this.ackOwed++;
      this.scheduleAck(this);
      return;
    }
    this.accept(pkt);
    while (this.ooo.size > 0) {
      const next = this.ooo.get(this.expected);
      if (!next) break;
      this.ooo.delete(this.expected);
      this.accept(next);
    }
    // Ack at once every quarter window so the sender never idles waiting for credit.
    if (++this.ackOwed >= this.settings.window >> 2) this.sendAck();
    else this.scheduleAck(this);
  }

  private accept(pkt: RclanPacket): void {
    this.expected = seqAdd(this.expected, 1);
    this.stats.received++;
    if (this.paused && pkt.kind === RclanKind.Data) this.held.push(pkt);
    else this.apply(pkt);
  }

  private apply(pkt: RclanPacket): void {
    switch (pkt.kind) {
      case RclanKind.Data: {
        const payload = pkt.payload;
        this.stats.bytesReceived += payload.length;
        try {
          this.onMessage(payload);
        } catch {
          this.stats.handlerErrors++;
        }
        return;
      }
      case RclanKind.RdmaWrite:
        this.applyRdmaWrite(pkt);
        return;
      case RclanKind.RdmaNak: {
        const msg = this.rdmaBySeq.get(pkt.nakSeq);
        if (msg && !msg.settled) {
          const reason = RDMA_STATUS_NAME[pkt.nakReason] ?? `status ${pkt.nakReason}`;
          this.settleRdma(msg, new RdmaError(RDMA_CODE[pkt.nakReason] ?? 'ERANGE', `RDMA WRITE refused by ${this.peer}: ${reason}`));
        }
        return;
      }
    }
  }

  /** Key and bounds are checked before a byte is written; a refusal goes back to the writer. */
  private applyRdmaWrite(pkt: RclanPacket): void {
    const region = this.regions.get(pkt.rdmaRegion);
    const data = pkt.payload;
    let status: RdmaStatus = RdmaStatus.Ok;
    if (!region) status = RdmaStatus.NoRegion;
    else if (region.key !== pkt.rdmaKey) status = RdmaStatus.BadKey;
    else if (pkt.rdmaOffset + data.length > region.buffer.length) status = RdmaStatus.OutOfBounds;
    if (status === RdmaStatus.Ok) {
      data.copy(region!.buffer, pkt.rdmaOffset);
      this.stats.bytesReceived += data.length;
      return;
    }
    this.stats.rdmaRefused++;
    this.onRdmaRefused(RDMA_STATUS_NAME[status], pkt.rdmaRegion);
    if (seqDiff(this.nextSeq, this.ackBase) >= this.ring.length) return;
    const nak = this.enqueue(RclanKind.RdmaNak, Buffer.alloc(0));
    nak.nakSeq = pkt.seq;
    nak.nakReason = status;
    this.pump();
  }

  private settleRdmaGates(): void {
    while (this.rdmaGates.length > 0 && seqDiff(this.expected, this.rdmaGates[0].stamp) >= 0) {
      this.settleRdma(this.rdmaGates.shift()!.msg);
    }
  }

  private settleRdma(msg: OutMsg, err?: Error): void {
    if (msg.settled) return;
    msg.settled = true;
    this.rdmaBySeq.delete(msg.seq);
    msg.done?.(err);
  }

  /** Periodic work: heartbeats, dead-leg detection, retransmission, give-up. */
  tick(now: number): void {
    const s = this.settings;
    for (let leg = 0; leg < 2 && !this.link; leg++) {
      if (!this.runsOn(leg)) continue;
      if (this.legs[leg] === LegState.Up && now - this.lastHeard[leg] > s.deadAfterMs) this.setLeg(leg, LegState.Down, now);
      if (this.ports[leg].attached && now - this.lastSent[leg] >= s.heartbeatMs) this.sendControl(RclanKind.Heartbeat, leg);
    }
    if (this.link) this.judgeOwnLegs(now);
    if (this.legs[0] === LegState.Down && this.legs[1] === LegState.Down) {
      if (this.inFlight > 0 && now - this.noLegSince >= s.undeliverableAfterMs) {
        const prev = this.state;
        this.state = this.transitionTo({ type: 'give-up' });
        if (prev !== this.state) this.onStateChange(this.state, prev);
        this.giveUp();
      }
      return;
    }
    this.retransmitExpired(now);
  }

  /** With a link: data unacknowledged on a leg for deadAfterMs takes that leg down for this RVI; a silent leg is probed. */
  private judgeOwnLegs(now: number): void {
    const s = this.settings;
    for (let leg = 0; leg < 2; leg++) {
      if (!this.runsOn(leg)) continue;
      const since = this.awaitingSince[leg];
      // Twice deadAfterMs: a peer that is heard but slow to acknowledge (a loaded box) is not a lost VI.
      if (this.legs[leg] === LegState.Up && since > 0 && now - since > 2 * s.deadAfterMs) {
        this.viSilent[leg] = true;
        this.awaitingSince[leg] = 0;
        // What fails over to the other leg has waited 2 x deadAfterMs already: that leg gets half a deadAfterMs (a round trip
        // is far less), so a VI lost on both planes is down in 2.5 deadAfterMs, not 4.
        const o = leg ^ 1;
        const start = now - 1.5 * s.deadAfterMs;
        if (this.legs[o] === LegState.Up && (this.awaitingSince[o] <= 0 || this.awaitingSince[o] > start)) this.awaitingSince[o] = start;
        this.setLeg(leg, LegState.Down, now);
      }
      if (this.viSilent[leg] && this.ports[leg].attached && now - this.lastSent[leg] >= s.heartbeatMs) this.sendControl(RclanKind.Heartbeat, leg, RclanFlag.Probe);
    }
  }

  private retransmitExpired(now: number): void {
    let budget = 64;
    let backedOff = false;
    for (let seq = this.ackBase; seqLt(seq, this.nextTx) && budget > 0; seq = seqAdd(seq, 1)) {
      const msg = this.ring[seq & this.mask]!;
      if (msg.sacked || now - msg.sentAt < this.rto) continue;
      this.retransmit(msg);
      budget--;
      if (!backedOff) {
        this.rto = Math.min(MAX_RTO, this.rto * 2);
        backedOff = true;
      }
    }
  }

  /**
   * Resends on the other leg when it is up (the surviving leg after a
   * failure). A leg the plane stopped for this VI is not used: the message
   * stays due and the timer resends it once a leg may carry it.
   */
  private retransmit(msg: OutMsg): void {
    const other = msg.leg ^ 1;
    const leg = msg.leg >= 0 && this.canResend(other) ? other : this.canResend(0) ? 0 : this.canResend(1) ? 1 : -1;
    if (leg >= 0) this.transmit(msg, leg);
  }

  /** The peer link's verdict on plane `leg` (peer-link.ts); ignored for a plane this RVI does not run on. */
  applyLeg(leg: number, state: LegState, now: number): void {
    if (!this.runsOn(leg)) return;
    if (state === LegState.Up && this.viSilent[leg]) return;
    if (state === LegState.Down) {
      this.viSilent[leg] = false;
      this.awaitingSince[leg] = 0;
    }
    this.setLeg(leg, state, now);
  }

  private canResend(leg: number): boolean {
    return this.legs[leg] === LegState.Up && !this.flowStopped[leg];
  }

  /**
   * The plane of `leg` says stop (its output to the peer is over its mark) or
   * go on, for this VI only (issue 11 item 1): a peer that does not drain holds
   * back this RVI on that leg and nothing else of this node.
   */
  flow(leg: number, stop: boolean): void {
    if (this.flowStopped[leg] === stop) return;
    this.flowStopped[leg] = stop;
    if (stop) this.stats.flowStops++;
    else this.pump();
  }

  private setLeg(leg: number, state: LegState, now: number): void {
    if (this.legs[leg] === state) return;
    this.legs[leg] = state;
    const up = (this.legs[0] === LegState.Up ? 1 : 0) + (this.legs[1] === LegState.Up ? 1 : 0);
    if (state === LegState.Down) {
      this.lastHeard[leg] = 0;
      if (up === 0) this.noLegSince = now;
      else {
        // Fail over at once: everything last sent on the dead leg goes again on the other.
        this.stats.legFailovers++;
        for (let seq = this.ackBase; seqLt(seq, this.nextTx); seq = seqAdd(seq, 1)) {
          const msg = this.ring[seq & this.mask]!;
          if (msg.leg === leg && !msg.sacked) this.retransmit(msg);
        }
      }
    } else if (up === 1) {
      // Back from no leg at all: whatever was waiting goes now (on a pinned RVI, what went on this very leg too).
      for (let seq = this.ackBase; seqLt(seq, this.nextTx); seq = seqAdd(seq, 1)) {
        const msg = this.ring[seq & this.mask]!;
        if (!msg.sacked && (msg.leg !== leg || this.plane !== undefined)) this.retransmit(msg);
      }
    }
    const prev = this.state;
    this.state = this.transitionTo({ type: 'legs', up, of: this.plane === undefined ? 2 : 1 });
    if (state === LegState.Up) this.pump();
    if (prev !== this.state) this.onStateChange(this.state, prev);
  }

  private transitionTo(event: RviEvent): RviState {
    return rviTransition(this.state, event);
  }

  /** The port of a plane went away (closed socket): its leg is down now, not after a heartbeat timeout. */
  portDetached(leg: number, now: number): void {
    // The plane's stop notices went with its link: a new link starts with none.
    this.flowStopped[leg] = false;
    this.setLeg(leg, LegState.Down, now);
  }

  /** A port can write again: send what waited. */
  portDrained(): void {
    this.pump();
  }

  /**
   * Reports everything unacknowledged as undeliverable and starts a new epoch,
   * so the peer drops any straggler of the old one and both ends agree on
   * where the new stream begins.
   */
  private giveUp(): void {
    for (let seq = this.ackBase; seqLt(seq, this.nextSeq); seq = seqAdd(seq, 1)) {
      const msg = this.ring[seq & this.mask]!;
      this.ring[seq & this.mask] = undefined;
      if (msg.kind === RclanKind.Data) {
        this.stats.undeliverable++;
        this.onUndeliverable(msg.seq, msg.payload);
      } else if (msg.kind === RclanKind.RdmaWrite) {
        this.settleRdma(msg, new RdmaError('UNDELIVERABLE', `RDMA WRITE to ${this.peer} could not be delivered`));
      }
    }
    for (const g of this.rdmaGates.splice(0)) this.settleRdma(g.msg);
    this.epoch = (this.epoch + 1) & 0xffff;
    this.ackBase = this.nextTx = this.nextSeq = 0;
    this.peerLimit = this.settings.window;
    if (this.wantDrain) {
      this.wantDrain = false;
      this.onDrain();
    }
  }

  /** Round-trip time estimate in ms (0 before the first sample). */
  get rttMs(): number {
    return this.srtt;
  }
}
