import crypto from 'node:crypto';
import { TcpFlag, seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqSub, type TcpOptions, type TcpSegment } from '../../../../shared/wire/tcp.ts';
import { NewReno } from './congestion.ts';
import { Reassembly } from './reassembly.ts';
import { RtoEstimator, RttSampler } from './rto.ts';

/** RFC 9293 3.3.2 connection states (LISTEN lives in the listener, not here). */
export const TcpState = {
  Closed: 'CLOSED',
  SynSent: 'SYN-SENT',
  SynReceived: 'SYN-RECEIVED',
  Established: 'ESTABLISHED',
  FinWait1: 'FIN-WAIT-1',
  FinWait2: 'FIN-WAIT-2',
  CloseWait: 'CLOSE-WAIT',
  Closing: 'CLOSING',
  LastAck: 'LAST-ACK',
  TimeWait: 'TIME-WAIT',
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

/**
 * The transitions RFC 9293 3.3.2 (Figure 5) draws, plus the aborts: any
 * state may go to CLOSED (ABORT, RST, timeout, TIME-WAIT expiry). A change
 * outside this table is a bug in the connection, not bad input.
 */
const TRANSITIONS: Record<TcpState, readonly TcpState[]> = {
  [TcpState.Closed]: [TcpState.SynSent, TcpState.SynReceived],
  [TcpState.SynSent]: [TcpState.SynReceived, TcpState.Established],
  [TcpState.SynReceived]: [TcpState.Established, TcpState.FinWait1, TcpState.CloseWait],
  [TcpState.Established]: [TcpState.FinWait1, TcpState.CloseWait],
  [TcpState.FinWait1]: [TcpState.FinWait2, TcpState.Closing, TcpState.TimeWait],
  [TcpState.FinWait2]: [TcpState.TimeWait],
  [TcpState.CloseWait]: [TcpState.LastAck],
  [TcpState.Closing]: [TcpState.TimeWait],
  [TcpState.LastAck]: [],
  [TcpState.TimeWait]: [],
};

/** Whether RFC 9293's state diagram has the edge `from` → `to` (CLOSED is reachable from anywhere). */
export function tcpTransitionAllowed(from: TcpState, to: TcpState): boolean {
  return to === TcpState.Closed || from === to || TRANSITIONS[from].includes(to);
}

/** Node's error codes for what ends a connection. */
export type TcpErrorCode = 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' | 'EPIPE';

export interface OutSegment {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options?: TcpOptions;
  payload: Buffer[];
}

/** What a connection needs from the TCP layer and from its socket. */
export interface TcpHost {
  transmit(seg: OutSegment): void;
  /** Data for the application, in order. */
  deliver(data: Buffer): void;
  /** Bytes delivered that the application has not read yet (they shrink the window). */
  unread(): number;
  /** The peer sent FIN: no more data. */
  eof(): void;
  connected(): void;
  /** The connection is over; `code` when it ended in error. */
  closed(code?: TcpErrorCode): void;
  /** Send buffer space freed. */
  writable(): void;
  /** Options this side adds to its SYN or SYN-ACK, and sees on the peer's (the SMC negotiation hook). */
  synOptions?(): TcpOptions['experimental'];
  peerSynOptions?(options: TcpOptions): void;
  /** What the socket adds to this connection's `info()` (`lparlab ss`): the SMC session's transport, state and cursors. */
  info?(): Record<string, unknown> | undefined;
}

export interface TcpSettings {
  /** Our MSS: the interface MTU less 40. */
  mss: number;
  rcvBuf: number;
  sndBuf: number;
  /** RFC 9293 R2: retransmissions of one segment before giving up. */
  maxRetransmits: number;
  delayedAckMs: number;
  timeWaitMs: number;
  /** An orphaned connection (its socket gone) waits this long in FIN-WAIT-2 for the peer's FIN (default 60 s, as Linux's tcp_fin_timeout). */
  finWait2Ms?: number;
  minRtoMs: number;
  /** Keepalive probes unanswered before ETIMEDOUT (default 9, as Linux's tcp_keepalive_probes). */
  keepaliveProbes?: number;
  /** Between keepalive probes (default a tenth of the idle time, at least 1 s). */
  keepaliveIntervalMs?: number;
  /**
   * The initial send sequence number of every connection, instead of a random
   * one (RFC 9293 3.4.1, RFC 6528). For tests only (sequence wraparound):
   * a real stack must leave it unset.
   */
  issForTest?: number;
}

/** RFC 7323 2.3: the scale that lets the receive buffer be advertised. */
function scaleFor(bytes: number): number {
  let s = 0;
  while (s < 14 && 65535 * 2 ** s < bytes) s++;
  return s;
}

const KEEPALIVE_PROBES = 9;
const FIN_WAIT_2_MS = 60_000;
/**
 * At most one ACK per this interval answers out-of-window pure ACKs (Linux's tcp_invalid_ratelimit, 500 ms):
 * two ends that each find the other's ACKs out of window — both windows shut with data past them — would
 * otherwise answer each other for good (issue 11 item 3: ~900 pure ACKs/s per connection for minutes).
 */
const OOW_ACK_INTERVAL_MS = 500;
/** RFC 9293 3.7.1: the send MSS when the peer's SYN has no MSS option (IPv4). */
const DEFAULT_MSS = 536;

/**
 * One TCP connection: the transmission control block and its state machine
 * (RFC 9293 3.10: OPEN, SEND, RECEIVE, CLOSE, ABORT, SEGMENT ARRIVES and the
 * timeouts), with MSS and window-scale options, sliding windows and window
 * updates, zero-window probing, the RFC 6298 timer, fast retransmit and
 * NewReno (RFC 6582), delayed ACK, Nagle, out-of-order reassembly and
 * keepalive.
 */
export class TcpConnection {
  private state_: TcpState = TcpState.Closed;
  /** Every state change, for tracing (smoltcp's set_state logs each one); set by whoever watches. */
  onStateChange: (to: TcpState, from: TcpState) => void = () => {};
  readonly stats = { segmentsIn: 0, segmentsOut: 0, retransmits: 0, fastRetransmits: 0, timeouts: 0, bytesIn: 0, bytesOut: 0, dupAcks: 0 };
  noDelay = false;

  // Send sequence space (RFC 9293 3.3.1).
  private iss = 0;
  private sndUna = 0;
  private sndNxt = 0;
  /** Highest sequence number sent (sndNxt moves back on retransmission). */
  private sndMax = 0;
  /** End of a zero-window probe byte sent past sndMax, while its ACK may still come. */
  private probeEnd: number | undefined;
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  private sndWscale = 0;
  /** The peer's SYN offered window scaling (RFC 7323 2.2: only then may a SYN-ACK carry the option). */
  private peerWscale = false;
  private finQueued = false;
  private finSent = false;
  private readonly sendQueue: Buffer[] = [];
  private sendQueueBytes = 0;
  /** Bytes of sendQueue[0] already acknowledged. */
  private sendHeadOffset = 0;

  // Receive sequence space.
  private irs = 0;
  private rcvNxt = 0;
  private rcvWscale = 0;
  private lastAdvertised = 0;
  private readonly reassembly: Reassembly;
  private finReceivedAt: number | undefined;
  private eofDelivered = false;

  private effMss: number;
  private cc: NewReno;
  private readonly rtt: RtoEstimator;
  private readonly sampler = new RttSampler();
  private retransmits = 0;
  private ackPending = 0;

  private rtoTimer?: NodeJS.Timeout;
  private ackTimer?: NodeJS.Timeout;
  private persistTimer?: NodeJS.Timeout;
  private keepaliveTimer?: NodeJS.Timeout;
  private timeWaitTimer?: NodeJS.Timeout;
  /** When we last answered an out-of-window pure ACK (OOW_ACK_INTERVAL_MS). */
  private lastOowAck = -Infinity;
  /** The socket is gone (close(true)): FIN-WAIT-2 is bounded. */
  private orphaned = false;
  private keepaliveMs = 0;
  private keepaliveProbes = 0;
  /** Zero-window probes sent since the peer was last heard from. */
  private persistProbes = 0;
  private lastHeard = Date.now();

  constructor(
    private readonly host: TcpHost,
    private readonly settings: TcpSettings,
  ) {
    this.effMss = settings.mss;
    this.cc = new NewReno(settings.mss);
    this.rtt = new RtoEstimator({ minMs: settings.minRtoMs });
    this.reassembly = new Reassembly(settings.rcvBuf);
    this.rcvWscale = scaleFor(settings.rcvBuf);
  }

  get state(): TcpState {
    return this.state_;
  }

  /**
   * The one place the state changes (smoltcp's `set_state`): the change is
   * checked against RFC 9293's diagram and reported to `onStateChange`.
   */
  private setState(to: TcpState): void {
    const from = this.state_;
    if (from === to) return;
    if (!tcpTransitionAllowed(from, to)) throw new Error(`TCP state ${from} -> ${to} is not in RFC 9293's diagram`);
    this.state_ = to;
    this.onStateChange(to, from);
  }

  get mss(): number {
    return this.effMss;
  }

  /**
   * The path MTU towards the peer went down (an ICMP "fragmentation needed",
   * RFC 1191 6.4): the send MSS follows it, never below 536 - what every
   * IPv4 host must take - less what a smaller MTU leaves (RFC 8201 5.2 for
   * the floor idea). What was in flight was dropped by the router: resent now
   * in the new size, without counting as congestion (RFC 1191 6.4: "should
   * not ... reduce the congestion window").
   */
  pathMtuChanged(mtu: number): void {
    const mss = Math.max(mtu - 40, 8);
    if (mss >= this.effMss) return;
    this.effMss = mss;
    if (!this.synchronized() || seqSub(this.sndMax, this.sndUna) === 0) return;
    this.sndNxt = this.sndUna;
    this.finSent = false;
    this.retransmitFirst();
    this.pushOut();
  }

  /** Bytes queued and not yet acknowledged (what `send` holds). */
  get bufferedBytes(): number {
    return this.sendQueueBytes - this.sendHeadOffset;
  }

  get sendBufferFull(): boolean {
    return this.bufferedBytes >= this.settings.sndBuf;
  }

  info(): Record<string, unknown> {
    return {
      state: this.state,
      iss: this.iss,
      irs: this.irs,
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      sndWnd: this.sndWnd,
      rcvNxt: this.rcvNxt,
      rcvWnd: this.receiveWindow(),
      cwnd: this.cc.cwnd,
      ssthresh: this.cc.ssthresh,
      rtoMs: this.rtt.rto,
      srttMs: this.rtt.srtt ?? null,
      mss: this.effMss,
      sendQueue: this.bufferedBytes,
      recvQueue: this.host.unread() + this.reassembly.bytes,
      ...this.stats,
      ...this.host.info?.(),
    };
  }

  // ---- OPEN ----------------------------------------------------------

  /** Active OPEN (RFC 9293 3.10.1): send SYN. */
  connect(): void {
    this.iss = this.chooseIss();
    this.sndUna = this.iss;
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.setState(TcpState.SynSent);
    this.sendSyn(false);
  }

  /** Passive OPEN: a listener got this SYN (RFC 9293 3.10.7.2). */
  acceptSyn(seg: TcpSegment): void {
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.iss = this.chooseIss();
    this.sndUna = this.iss;
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.takeSynOptions(seg);
    this.sndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndWl2 = this.iss;
    this.setState(TcpState.SynReceived);
    this.sendSyn(true);
  }

  private chooseIss(): number {
    return this.settings.issForTest !== undefined ? this.settings.issForTest >>> 0 : crypto.randomBytes(4).readUInt32BE(0);
  }

  private takeSynOptions(seg: TcpSegment): void {
    let o: TcpOptions;
    try {
      o = seg.options();
    } catch {
      o = {};
    }
    // RFC 9293 3.7.1 (MUST-15): without the option, assume a send MSS of 536.
    this.effMss = Math.max(64, Math.min(this.settings.mss, o.mss ?? DEFAULT_MSS));
    // RFC 7323 2.2: scaling only when both sides offered it.
    this.peerWscale = o.windowScale !== undefined;
    if (o.windowScale !== undefined) this.sndWscale = Math.min(14, o.windowScale);
    else this.rcvWscale = 0;
    this.cc = new NewReno(this.effMss);
    this.host.peerSynOptions?.(o);
  }

  private sendSyn(withAck: boolean): void {
    const options: TcpOptions = { mss: this.settings.mss };
    // RFC 7323 2.2: a <SYN,ACK> carries Window Scale only if the <SYN> did.
    if (!withAck || this.peerWscale) options.windowScale = this.rcvWscale;
    const experimental = this.host.synOptions?.();
    if (experimental?.length) options.experimental = experimental;
    this.output({ seq: this.iss, ack: withAck ? this.rcvNxt : 0, flags: TcpFlag.Syn | (withAck ? TcpFlag.Ack : 0), window: Math.min(65535, this.settings.rcvBuf), options, payload: [] });
    this.armRto();
  }

  // ---- SEND / RECEIVE / CLOSE / ABORT (user calls) ------------------

  /**
   * SEND: queues data; returns false once the send buffer is over its size (wait for `writable`).
   * After CLOSE (or once closed) the data is refused, and false returned.
   */
  send(data: Buffer): boolean {
    // RFC 9293 3.10.2: SEND after CLOSE is an error ("connection closing"); nothing may follow the FIN.
    if (this.finQueued || this.state === TcpState.Closed) return false;
    if (data.length > 0) {
      this.sendQueue.push(data);
      this.sendQueueBytes += data.length;
    }
    if (this.state === TcpState.Established || this.state === TcpState.CloseWait) this.pushOut();
    return !this.sendBufferFull;
  }

  /** The application read data: the window may have opened enough to say so (RFC 9293 3.8.6.2.2). */
  read(): void {
    if (!this.synchronized()) return;
    const wnd = this.receiveWindow();
    if (wnd - this.lastAdvertised >= Math.min(this.settings.rcvBuf / 2, 2 * this.effMss)) this.sendAck();
  }

  /** CLOSE: no more data from us; FIN after what is queued. */
  /** CLOSE; `orphan` when the socket goes with it (nobody reads any more): FIN-WAIT-2 then has a timer. */
  close(orphan = false): void {
    if (orphan) {
      this.orphaned = true;
      if (this.state === TcpState.FinWait2) this.armFinWait2();
    }
    switch (this.state) {
      case TcpState.SynSent:
        this.teardown();
        return;
      case TcpState.SynReceived:
        // RFC 9293 3.10.4: with data or not, the FIN waits for ESTABLISHED (the ACK of our SYN), then FIN-WAIT-1.
        this.finQueued = true;
        return;
      case TcpState.Established:
        this.finQueued = true;
        this.setState(TcpState.FinWait1);
        this.pushOut();
        return;
      case TcpState.CloseWait:
        this.finQueued = true;
        this.setState(TcpState.LastAck);
        this.pushOut();
        return;
      default:
        return;
    }
  }

  /** ABORT: RST to the peer (when synchronized) and gone. */
  abort(): void {
    // RFC 9293 3.10.5: SYN-RECEIVED too. SND.MAX rather than a SND.NXT pulled back by a timeout, so the reset lands at the peer's RCV.NXT once it has everything.
    if (this.synchronized() || this.state === TcpState.SynReceived) this.output({ seq: this.sndMax, ack: 0, flags: TcpFlag.Rst, window: 0, payload: [] });
    this.teardown();
  }

  setKeepAlive(enable: boolean, initialDelayMs: number): void {
    this.keepaliveMs = enable ? Math.max(1000, initialDelayMs || 7_200_000) : 0;
    this.armKeepalive();
  }

  private synchronized(): boolean {
    return this.state !== TcpState.Closed && this.state !== TcpState.SynSent && this.state !== TcpState.SynReceived;
  }

  // ---- output ----------------------------------------------------------

  /**
   * Out-of-order data held for reassembly lies inside the window already
   * offered, so it does not shrink it: taking it off would move the right edge
   * left (RFC 9293 3.8.6.2.2, SHLD-14), and would change the window on every
   * ACK sent for out-of-order data, so the sender would never see them as
   * duplicate ACKs (RFC 5681 2) and never fast-retransmit.
   */
  private receiveWindow(): number {
    return Math.max(0, this.settings.rcvBuf - this.host.unread());
  }

  private windowField(): number {
    const w = this.receiveWindow();
    this.lastAdvertised = w;
    return Math.min(65535, w >>> this.rcvWscale);
  }

  private output(seg: OutSegment): void {
    this.stats.segmentsOut++;
    this.host.transmit(seg);
  }

  private sendAck(): void {
    this.clearAckTimer();
    this.ackPending = 0;
    // SND.MAX, not a SND.NXT that a timeout pulled back (as BSD does): the peer may have all we sent, and
    // an ACK numbered below its RCV.NXT is unacceptable there (RFC 9293 3.10.7.4), its acknowledgment
    // unread. With both sides rewound, neither would hear the other's ACKs again.
    this.output({ seq: this.sndMax, ack: this.rcvNxt, flags: TcpFlag.Ack, window: this.windowField(), payload: [] });
  }

  /** Payload views for [seq, seq + length) of the send queue. */
  private slice(seq: number, length: number): Buffer[] {
    let skip = seqSub(seq, this.sndUna) + this.sendHeadOffset;
    const out: Buffer[] = [];
    for (const b of this.sendQueue) {
      if (length === 0) break;
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      const n = Math.min(b.length - skip, length);
      out.push(b.subarray(skip, skip + n));
      length -= n;
      skip = 0;
    }
    return out;
  }

  /**
   * Sends what the windows allow (RFC 9293 3.8.6.2.1 with RFC 5681's cwnd),
   * holding small segments while data is unacknowledged unless noDelay
   * (Nagle, RFC 896), and the FIN after the last byte.
   */
  private pushOut(): void {
    if (!this.synchronized()) return;
    for (;;) {
      const inFlight = seqSub(this.sndNxt, this.sndUna);
      const unsent = this.bufferedBytes - inFlight;
      if (unsent <= 0) break;
      if (this.sndWnd === 0) {
        this.armPersist();
        break;
      }
      const len = Math.min(unsent, this.effMss, Math.min(this.sndWnd, this.cc.cwnd) - inFlight);
      if (len <= 0) break;
      // Nagle (RFC 896) and sender SWS avoidance: a short segment waits while anything is unacknowledged.
      if (len < this.effMss && !this.noDelay && inFlight > 0) break;
      this.sendData(this.sndNxt, len, len === unsent);
      this.sndNxt = seqAdd(this.sndNxt, len);
    }
    if (this.finQueued && !this.finSent && seqSub(this.sndNxt, this.sndUna) === this.bufferedBytes) {
      this.finSent = true;
      this.output({ seq: this.sndNxt, ack: this.rcvNxt, flags: TcpFlag.Fin | TcpFlag.Ack, window: this.windowField(), payload: [] });
      this.sndNxt = seqAdd(this.sndNxt, 1);
      if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
      this.armRto();
    }
  }

  private sendData(seq: number, len: number, push: boolean): void {
    // After a timeout pulled SND.NXT back this resends: Karn's rule (RFC 6298 3) times only new data, and bytesOut counts each byte once.
    if (seqGeq(seq, this.sndMax) && !this.sampler.timing) this.sampler.start(seq, performance.now());
    this.passSndMax(seqAdd(seq, len));
    this.clearAckTimer();
    this.ackPending = 0;
    this.output({ seq, ack: this.rcvNxt, flags: TcpFlag.Ack | (push ? TcpFlag.Psh : 0), window: this.windowField(), payload: this.slice(seq, len) });
    if (!this.rtoTimer) this.armRto();
  }

  /** Data up to `end` is on the wire: bytes past SND.MAX are sent for the first time, and bytesOut counts each byte once. */
  private passSndMax(end: number): void {
    const fresh = seqSub(end, this.sndMax);
    if (fresh <= 0) return;
    this.stats.bytesOut += fresh;
    this.sndMax = end;
  }

  // ---- SEGMENT ARRIVES (RFC 9293 3.10.7) -----------------------------

  segmentArrives(seg: TcpSegment): void {
    this.stats.segmentsIn++;
    this.lastHeard = Date.now();
    this.keepaliveProbes = 0;
    this.persistProbes = 0;
    if (this.state === TcpState.SynSent) {
      this.synSentArrives(seg);
      return;
    }
    if (this.state === TcpState.Closed) return;

    // First: sequence number acceptable? (3.10.7.4, the four cases)
    const segLen = seg.segmentLength;
    const rcvWnd = this.receiveWindow();
    const seq = seg.seq;
    let acceptable: boolean;
    if (segLen === 0) acceptable = rcvWnd === 0 ? seq === this.rcvNxt : seqGeq(seq, this.rcvNxt) && seqLt(seq, seqAdd(this.rcvNxt, rcvWnd));
    else
      acceptable =
        rcvWnd > 0
          ? (seqGeq(seq, this.rcvNxt) && seqLt(seq, seqAdd(this.rcvNxt, rcvWnd))) ||
            (seqGeq(seqAdd(seq, segLen - 1), this.rcvNxt) && seqLt(seqAdd(seq, segLen - 1), seqAdd(this.rcvNxt, rcvWnd)))
          : // A zero window takes no data, but a bare FIN at RCV.NXT needs no room (as Linux does): otherwise a
            // sender that closes behind a slow reader retransmits its FIN until it gives up (RFC 9293 3.10.7.4
            // asks for "special allowance" at a zero window).
            seg.isFin && !seg.isSyn && seg.payload.length === 0 && seq === this.rcvNxt;
    if (!acceptable) {
      if (seg.isRst) return;
      if (segLen === 0 && !this.oowAckAllowed()) return;
      this.sendAck();
      // RFC 9293 3.10.7.4 (TIME-WAIT): a retransmission of the peer's FIN is acknowledged and restarts the 2 MSL timeout.
      if (this.state === TcpState.TimeWait && seg.isFin) this.armTimeWait();
      return;
    }

    // Second: RST (RFC 5961 3.2: only an exact match resets; in-window gets a challenge ACK).
    if (seg.isRst) {
      if (seq !== this.rcvNxt) {
        this.sendAck();
        return;
      }
      if (this.state === TcpState.SynReceived && this.passive) {
        this.teardown();
        return;
      }
      this.fail(this.state === TcpState.SynReceived ? 'ECONNREFUSED' : 'ECONNRESET');
      return;
    }

    // Fourth: SYN in a synchronized state → challenge ACK (RFC 5961 4.2).
    if (seg.isSyn) {
      this.sendAck();
      return;
    }

    // Fifth: ACK.
    if (!seg.isAck) return;
    if (this.state === TcpState.SynReceived) {
      if (seqGt(seg.ack, this.sndUna) && seqLeq(seg.ack, this.sndNxt)) {
        this.setState(TcpState.Established);
        this.sndWnd = seg.window << this.sndWscale;
        this.sndWl1 = seq;
        this.sndWl2 = seg.ack;
        // Our SYN is acknowledged: it took a sequence number but no byte of the send queue, so SND.UNA
        // passes it here, before the host may queue data and before processAck counts acknowledged bytes.
        this.sndUna = seqAdd(this.iss, 1);
        this.clearRto();
        this.retransmits = 0;
        this.rtt.resetBackoff();
        this.host.connected();
        this.armKeepalive();
        // A CLOSE issued in SYN-RECEIVED (RFC 9293 3.10.4) takes effect now; processAck sends the FIN.
        // (The host's connected() may have closed or aborted it: read the state again.)
        if (this.finQueued && (this.state as TcpState) === TcpState.Established) this.setState(TcpState.FinWait1);
      } else {
        this.output({ seq: seg.ack, ack: 0, flags: TcpFlag.Rst, window: 0, payload: [] });
        return;
      }
    }
    if (!this.processAck(seg)) return;

    // Seventh: segment text, trimmed to the window (RFC 9293 3.10.7.4: the segment is taken as if it did not
    // exceed the window; what lies past the right edge is not ours to keep, and goes unacknowledged).
    let payload = seg.payload;
    const room = seqSub(seqAdd(this.rcvNxt, rcvWnd), seq);
    const trimmed = payload.length > Math.max(0, room);
    if (trimmed) payload = payload.subarray(0, Math.max(0, room));
    if (payload.length > 0 && (this.state === TcpState.Established || this.state === TcpState.FinWait1 || this.state === TcpState.FinWait2)) {
      this.receiveText(seq, payload, seg.isPsh);
    } else if (trimmed) this.ackPending += 2;

    // Eighth: FIN (not when trimmed off with the text past the window).
    if (seg.isFin && !trimmed) {
      this.finReceivedAt = seqAdd(seq, payload.length);
      this.ackPending++;
    }
    this.maybeTakeFin();
    if (this.ackPending > 0) this.scheduleAck(seg.isFin || !this.reassembly.isEmpty);
  }

  /** Whether this side was opened by a listener (a reset in SYN-RECEIVED then just drops it). */
  passive = false;

  private synSentArrives(seg: TcpSegment): void {
    if (seg.isAck && (seqLeq(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt))) {
      if (!seg.isRst) this.output({ seq: seg.ack, ack: 0, flags: TcpFlag.Rst, window: 0, payload: [] });
      return;
    }
    if (seg.isRst) {
      if (seg.isAck) this.fail('ECONNREFUSED');
      return;
    }
    if (!seg.isSyn) return;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.takeSynOptions(seg);
    if (seg.isAck) {
      this.sndUna = seg.ack;
      this.sampler.invalidate();
      this.clearRto();
      this.retransmits = 0;
      this.setState(TcpState.Established);
      // RFC 7323 2.2: the window of a <SYN,ACK> is never scaled.
      this.sndWnd = seg.window;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.sendAck();
      this.host.connected();
      this.pushOut();
      this.armKeepalive();
    } else {
      // Simultaneous open (RFC 9293 3.5, Figure 8).
      this.setState(TcpState.SynReceived);
      this.sndWnd = seg.window;
      this.sendSyn(true);
    }
  }

  /** Returns false when the segment is to be dropped after ACK processing. */
  private processAck(seg: TcpSegment): boolean {
    const ack = seg.ack;
    if (seqGt(ack, this.sndMax)) {
      // A zero-window probe byte past SND.MAX that the peer took (its window had opened unseen) is sent data.
      if (this.probeEnd !== undefined && seqLeq(ack, this.probeEnd)) {
        this.stats.bytesOut += seqSub(ack, this.sndMax);
        this.sndMax = ack;
      } else {
        if (seg.segmentLength > 0 || this.oowAckAllowed()) this.sendAck();
        return false;
      }
    }
    if (this.probeEnd !== undefined && seqGeq(this.sndMax, this.probeEnd)) this.probeEnd = undefined;
    const window = seg.window << this.sndWscale;
    const newlyAcked = seqGt(ack, this.sndUna);
    if (newlyAcked) {
      const acked = seqSub(ack, this.sndUna);
      // The FIN's sequence number follows the last queued byte (nothing is queued after CLOSE). Whether it is
      // acknowledged is a matter of that number, not of which transmission (a timeout may have pulled SND.NXT back).
      const finAcked = this.finQueued && acked > this.bufferedBytes;
      if (finAcked) this.finSent = true;
      this.dropAcked(acked - (finAcked ? 1 : 0));
      this.sndUna = ack;
      if (seqLt(this.sndNxt, this.sndUna)) this.sndNxt = this.sndUna;
      const rtt = this.sampler.ack(ack, performance.now());
      if (rtt !== undefined) this.rtt.sample(rtt);
      this.rtt.resetBackoff();
      this.retransmits = 0;
      const flight = seqSub(this.sndMax, this.sndUna);
      const r = this.cc.onAck(acked, ack, flight);
      if (r.retransmit) this.retransmitFirst();
      if (seqGeq(this.sndUna, this.sndMax)) this.clearRto();
      else this.armRto(true);
      if (finAcked) this.ourFinAcked();
    } else if (ack === this.sndUna && seg.payload.length === 0 && !seg.isFin && window === this.sndWnd && seqGt(this.sndMax, this.sndUna)) {
      // RFC 5681 2: a duplicate ACK.
      this.stats.dupAcks++;
      const r = this.cc.onDupAck(ack, this.sndMax, seqSub(this.sndMax, this.sndUna));
      if (r.fastRetransmit) {
        this.stats.fastRetransmits++;
        this.retransmitFirst();
      }
    }
    // Window update (RFC 9293 3.10.7.4, fifth, ESTABLISHED: only for SND.UNA =< SEG.ACK).
    if (seqGeq(ack, this.sndUna) && (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLeq(this.sndWl2, ack)))) {
      const opened = window > this.sndWnd;
      this.sndWnd = window;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (window > 0) this.clearPersist();
      if (opened) this.pushOut();
    }
    this.pushOut();
    // Only now, with SND.UNA and SND.WND both from this segment: a writer woken earlier would send
    // against the old window from the new SND.UNA, past the right edge the peer offered.
    if (newlyAcked && !this.sendBufferFull && this.state !== TcpState.Closed) this.host.writable();
    return this.state !== TcpState.Closed;
  }

  private dropAcked(bytes: number): void {
    let n = bytes;
    while (n > 0 && this.sendQueue.length > 0) {
      const head = this.sendQueue[0];
      const left = head.length - this.sendHeadOffset;
      if (n >= left) {
        n -= left;
        this.sendQueue.shift();
        this.sendQueueBytes -= head.length;
        this.sendHeadOffset = 0;
      } else {
        this.sendHeadOffset += n;
        n = 0;
      }
    }
  }

  private ourFinAcked(): void {
    switch (this.state) {
      case TcpState.FinWait1:
        this.setState(TcpState.FinWait2);
        if (this.orphaned) this.armFinWait2();
        return;
      case TcpState.Closing:
        this.enterTimeWait();
        return;
      case TcpState.LastAck:
        this.teardown();
        return;
      default:
        return;
    }
  }

  private receiveText(seq: number, payload: Buffer, push: boolean): void {
    if (seq === this.rcvNxt && this.reassembly.isEmpty) {
      this.accept(payload);
    } else {
      this.reassembly.insert(seq, payload, this.rcvNxt);
      for (const chunk of this.reassembly.take(this.rcvNxt)) this.accept(chunk);
      // Out of order: say so at once, so the sender's duplicate ACKs start (RFC 5681 4.2).
      this.ackPending += 2;
    }
    this.ackPending += push ? 2 : 1;
  }

  private accept(data: Buffer): void {
    this.rcvNxt = seqAdd(this.rcvNxt, data.length);
    this.stats.bytesIn += data.length;
    this.host.deliver(data);
  }

  private maybeTakeFin(): void {
    if (this.finReceivedAt === undefined || this.finReceivedAt !== this.rcvNxt || this.eofDelivered) return;
    this.eofDelivered = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.ackPending += 2;
    this.host.eof();
    switch (this.state) {
      case TcpState.SynReceived:
      case TcpState.Established:
        this.setState(TcpState.CloseWait);
        return;
      case TcpState.FinWait1:
        this.setState(TcpState.Closing);
        return;
      case TcpState.FinWait2:
        this.enterTimeWait();
        return;
      default:
        return;
    }
  }

  /** RFC 1122 4.2.3.2 / RFC 9293 3.8.6.3: ACK at least every second full segment, at once when out of order or on FIN. */
  private scheduleAck(now: boolean): void {
    if (now || this.ackPending >= 2) {
      this.sendAck();
      return;
    }
    if (!this.ackTimer) this.ackTimer = setTimeout(() => this.sendAck(), this.settings.delayedAckMs);
  }

  private clearAckTimer(): void {
    if (this.ackTimer) {
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
    }
  }

  // ---- timeouts ---------------------------------------------------------

  private armRto(restart = false): void {
    if (this.rtoTimer && !restart) return;
    if (this.rtoTimer) clearTimeout(this.rtoTimer);
    this.rtoTimer = setTimeout(() => this.onRto(), this.rtt.rto);
  }

  private clearRto(): void {
    if (this.rtoTimer) {
      clearTimeout(this.rtoTimer);
      this.rtoTimer = undefined;
    }
  }

  /** RFC 6298 5.4-5.7: resend the earliest, back off, collapse the window; give up after R2. */
  private onRto(): void {
    this.rtoTimer = undefined;
    if (this.state === TcpState.Closed || this.state === TcpState.TimeWait) return;
    this.stats.timeouts++;
    if (++this.retransmits > this.settings.maxRetransmits) {
      this.fail('ETIMEDOUT');
      return;
    }
    this.rtt.backoff();
    this.sampler.invalidate();
    if (this.state === TcpState.SynSent) {
      this.stats.retransmits++;
      this.sendSyn(false);
      return;
    }
    if (this.state === TcpState.SynReceived) {
      this.stats.retransmits++;
      this.sendSyn(true);
      return;
    }
    this.cc.onRetransmitTimeout(seqSub(this.sndMax, this.sndUna), this.sndMax);
    // Go back to the first unacknowledged byte; pushOut sends on from there as cwnd allows.
    this.sndNxt = this.sndUna;
    // SND.NXT is back before the FIN (still unacknowledged, or the timer would not run): it goes again after the data.
    this.finSent = false;
    this.retransmitFirst();
    this.armRto();
  }

  private retransmitFirst(): void {
    this.stats.retransmits++;
    this.sampler.invalidate();
    const pending = this.bufferedBytes;
    if (pending > 0) {
      const len = Math.min(pending, this.effMss);
      const end = seqAdd(this.sndUna, len);
      // The first segment may take in bytes never sent before (held by Nagle or cwnd behind a short one
      // that was lost): they are sent now, so SND.MAX moves past them. Else the peer's ACK of them lies
      // past SND.MAX and is refused, with every segment carrying it, for good (56 of 300 SMC-R fallbacks
      // hung so under load in issue 11 item 4).
      this.passSndMax(end);
      this.output({ seq: this.sndUna, ack: this.rcvNxt, flags: TcpFlag.Ack, window: this.windowField(), payload: this.slice(this.sndUna, len) });
      if (seqLt(this.sndNxt, end)) this.sndNxt = end;
    } else if (this.finQueued) {
      this.finSent = true;
      this.output({ seq: this.sndUna, ack: this.rcvNxt, flags: TcpFlag.Fin | TcpFlag.Ack, window: this.windowField(), payload: [] });
      this.sndNxt = seqAdd(this.sndUna, 1);
    }
    this.armRto();
  }

  /** RFC 9293 3.8.6.1: probe a zero window with one byte, backing off like the retransmission timer. */
  private armPersist(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => this.onPersist(), this.rtt.rto);
  }

  private onPersist(): void {
    this.persistTimer = undefined;
    if (this.sndWnd > 0 || !this.synchronized()) return;
    const pending = this.bufferedBytes - seqSub(this.sndNxt, this.sndUna);
    if (pending <= 0) return;
    // RFC 9293 3.8.6.1: a zero window is kept open only while the receiver answers the probes; unanswered
    // ones count like retransmissions (R2), or a vanished peer would be probed forever.
    if (++this.persistProbes > this.settings.maxRetransmits) {
      this.fail('ETIMEDOUT');
      return;
    }
    this.output({ seq: this.sndNxt, ack: this.rcvNxt, flags: TcpFlag.Ack, window: this.windowField(), payload: this.slice(this.sndNxt, 1) });
    // The window may have opened unseen (its update lost), and then the peer takes the byte: its ACK must
    // not count as acknowledging "something not yet sent" (processAck). SND.NXT stays: if the byte is
    // refused it goes again with the data.
    const end = seqAdd(this.sndNxt, 1);
    if (seqGt(end, this.sndMax)) this.probeEnd = end;
    this.rtt.backoff();
    this.armPersist();
  }

  private clearPersist(): void {
    if (this.persistTimer) {
      clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
    }
  }

  /**
   * RFC 1122 4.2.3.6: after `keepaliveMs` without hearing from the peer, probe
   * with seq sndUna-1 every interval; when `keepaliveProbes` probes went
   * unanswered → ETIMEDOUT. Anything that arrives resets the count
   * (segmentArrives), and the idle wait starts again.
   */
  private armKeepalive(delayMs = this.keepaliveMs): void {
    if (this.keepaliveTimer) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
    if (!this.keepaliveMs || !this.synchronized() || this.state === TcpState.TimeWait) return;
    this.keepaliveTimer = setTimeout(() => this.onKeepalive(), Math.max(1, delayMs));
    this.keepaliveTimer.unref?.();
  }

  private onKeepalive(): void {
    this.keepaliveTimer = undefined;
    const idle = Date.now() - this.lastHeard;
    // Heard from lately: wait out the rest of the idle time (not a whole new period).
    if (this.keepaliveProbes === 0 && idle < this.keepaliveMs) return this.armKeepalive(this.keepaliveMs - idle);
    if (this.keepaliveProbes >= (this.settings.keepaliveProbes ?? KEEPALIVE_PROBES)) return this.fail('ETIMEDOUT');
    this.keepaliveProbes++;
    this.output({ seq: seqAdd(this.sndUna, -1), ack: this.rcvNxt, flags: TcpFlag.Ack, window: this.windowField(), payload: [] });
    // The next look is one interval on: a probe answered in the meantime reset the count, and the idle wait resumes.
    this.armKeepalive(this.settings.keepaliveIntervalMs ?? Math.max(1000, this.keepaliveMs / 10));
  }

  private enterTimeWait(): void {
    this.setState(TcpState.TimeWait);
    this.clearRto();
    this.clearPersist();
    this.armKeepalive();
    this.armTimeWait();
    this.host.closed();
  }

  private armTimeWait(): void {
    if (this.timeWaitTimer) clearTimeout(this.timeWaitTimer);
    // 2 MSL, then the quadruple may be used again (RFC 9293 3.6.1).
    this.timeWaitTimer = setTimeout(() => this.teardown(), this.settings.timeWaitMs);
    this.timeWaitTimer.unref?.();
  }

  /** An orphaned FIN-WAIT-2 ends after finWait2Ms: a peer whose FIN never comes leaves nothing behind for good (issue 11 item 3). */
  private armFinWait2(): void {
    if (this.timeWaitTimer) clearTimeout(this.timeWaitTimer);
    this.timeWaitTimer = setTimeout(() => this.teardown(), this.settings.finWait2Ms ?? FIN_WAIT_2_MS);
    this.timeWaitTimer.unref?.();
  }

  /** Whether an out-of-window pure ACK may be answered now (OOW_ACK_INTERVAL_MS). */
  private oowAckAllowed(): boolean {
    const now = performance.now();
    if (now - this.lastOowAck < OOW_ACK_INTERVAL_MS) return false;
    this.lastOowAck = now;
    return true;
  }

  private fail(code: TcpErrorCode): void {
    this.teardown(code);
  }

  private teardown(code?: TcpErrorCode): void {
    const wasClosed = this.state === TcpState.Closed;
    const wasTimeWait = this.state === TcpState.TimeWait;
    this.setState(TcpState.Closed);
    for (const t of [this.rtoTimer, this.ackTimer, this.persistTimer, this.keepaliveTimer, this.timeWaitTimer]) if (t) clearTimeout(t);
    this.rtoTimer = this.ackTimer = this.persistTimer = this.keepaliveTimer = this.timeWaitTimer = undefined;
    this.sendQueue.length = 0;
    this.sendQueueBytes = 0;
    this.sendHeadOffset = 0;
    this.reassembly.clear();
    if (!wasClosed && !wasTimeWait) this.host.closed(code);
    this.onRelease();
  }

  /** Called once the connection is gone for good (the layer frees its quadruple). */
  onRelease: () => void = () => {};
}
