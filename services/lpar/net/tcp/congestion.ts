/**
 * TCP congestion control, pure state: slow start, congestion avoidance, fast
 * retransmit and fast recovery (RFC 5681) with the NewReno response to
 * partial acknowledgments (RFC 6582), appropriate byte counting (RFC 3465)
 * and the larger initial windows of RFC 3390 and RFC 6928.
 *
 * The caller owns the connection: it decides what an acceptable ACK and a
 * duplicate ACK are (RFC 5681 section 2: no data, no SYN/FIN, unchanged
 * window, ack == SND.UNA, data outstanding), sends and retransmits, and arms
 * the retransmission timer. This class only says how large cwnd is and when
 * a loss-repair retransmission is due.
 *
 * Sequence convention: `highestSent` is SND.MAX, the sequence number just
 * past the highest one transmitted so far (SND.NXT, unless a timeout pulled
 * SND.NXT back), and `recover` is kept in the same form. RFC 6582 stores
 * "the highest sequence number transmitted", which is one less, so its
 * tests "ack - 1 >= recover" (full acknowledgment) and "ack - 1 > recover"
 * (covers more than recover) read "ack >= recover" and "ack > recover" here.
 * FlightSize is the data outstanding in bytes (RFC 5681 section 2), which
 * the caller computes.
 */
import { seqGeq, seqGt } from '../../../../shared/wire/tcp.ts';

/** RFC 5681 section 3.2: the duplicate-ACK threshold for fast retransmit. */
const DUPACK_THRESHOLD = 3;

/**
 * RFC 5681 section 3.1: the initial ssthresh "MAY be arbitrarily high", for
 * instance the largest window the peer can advertise: 65535 << 14 with the
 * largest window scale of RFC 7323 section 2.3.
 */
export const INITIAL_SSTHRESH = 65535 * 2 ** 14;

/**
 * The initial congestion window in bytes.
 *  - 10 segments (the default): RFC 6928 section 2,
 *    IW = min(10*MSS, max(2*MSS, 14600)).
 *  - 4 segments: RFC 3390 section 1 (the same table as RFC 5681 section 3.1),
 *    IW = min(4*MSS, max(2*MSS, 4380)).
 *  - any other count n: exactly n*MSS, for callers that want a conservative
 *    window (RFC 5681 section 3.1 permits IW of one or two segments).
 */
export function initialWindow(mss: number, segments = 10): number {
  if (!Number.isInteger(segments) || segments < 1) throw new RangeError(`bad initial window of ${segments} segments`);
  if (segments === 10) return Math.min(10 * mss, Math.max(2 * mss, 14600));
  if (segments === 4) return Math.min(4 * mss, Math.max(2 * mss, 4380));
  return segments * mss;
}

export interface NewRenoOptions {
  /** See `initialWindow`; default 10 (RFC 6928). */
  initialWindowSegments?: number;
}

const NO_RETRANSMIT: { readonly retransmit: boolean } = Object.freeze({ retransmit: false });
const RETRANSMIT: { readonly retransmit: boolean } = Object.freeze({ retransmit: true });
const NO_FAST_RETRANSMIT: { readonly fastRetransmit: boolean } = Object.freeze({ fastRetransmit: false });
const FAST_RETRANSMIT: { readonly fastRetransmit: boolean } = Object.freeze({ fastRetransmit: true });

export class NewReno {
  /** Congestion window, bytes. */
  cwnd: number;
  /** Slow start threshold, bytes. */
  ssthresh = INITIAL_SSTHRESH;

  private readonly iw: number;
  private recovering = false;
  private dups = 0;
  /**
   * RFC 6582 section 3.2 step 1 starts `recover` at the ISS. It is
   * undefined here until the first loss instead: the only difference is that
   * losing the very first data segment can still be repaired by fast
   * retransmit. It is set on entering fast retransmit and on a timeout, and
   * dropped again once the cumulative ACK has passed it, since from then on
   * every ACK "covers more than recover"; dropping it keeps a stale value
   * from being compared across a 2^31 sequence-space distance.
   */
  private recoverSeq: number | undefined;
  /** RFC 3465 section 2.1: bytes acknowledged toward the next CA increment. */
  private bytesAcked = 0;
  /** Set by a timeout, cleared by the next ACK of new data. */
  private afterTimeout = false;
  /** Slow-starting after a timeout, until the ACKs pass `recover`. */
  private timeoutSlowStart = false;

  constructor(
    readonly mss: number,
    opts: NewRenoOptions = {},
  ) {
    if (!Number.isInteger(mss) || mss <= 0) throw new RangeError(`NewReno: bad MSS ${mss}`);
    this.iw = initialWindow(mss, opts.initialWindowSegments ?? 10);
    // RFC 5681 section 3.1: cwnd starts at IW.
    this.cwnd = this.iw;
  }

  /** Whether fast recovery (RFC 6582 section 3.2 steps 2-3) is in progress. */
  get inRecovery(): boolean {
    return this.recovering;
  }

  /** Consecutive duplicate ACKs since the last ACK of new data. */
  get dupAcks(): number {
    return this.dups;
  }

  /** RFC 6582 `recover` plus one (an SND.MAX value), while it still constrains fast retransmit. */
  get recover(): number | undefined {
    return this.recoverSeq;
  }

  /** The initial window in bytes (also the RFC 5681 section 4.1 restart bound). */
  get initialWindow(): number {
    return this.iw;
  }

  /**
   * An ACK that advanced SND.UNA. `ackedBytes` is how far it moved; `ackNum`
   * is the new SND.UNA; `flightSize` is what is outstanding after it (the
   * "presently outstanding" of RFC 6582 section 3.2 step 3).
   *
   * When `retransmit` is true (a NewReno partial ACK) the caller resends the
   * first unacknowledged segment now. The caller also restarts its
   * retransmission timer as RFC 6298 (5.3) says for any ACK of new data,
   * which for partial ACKs is the "Slow-but-Steady" choice of RFC 6582
   * section 4.
   */
  onAck(ackedBytes: number, ackNum: number, flightSize: number): { readonly retransmit: boolean } {
    this.dups = 0;
    this.afterTimeout = false;
    if (this.recovering && this.recoverSeq !== undefined) {
      // RFC 6582 section 3.2 step 3: "Response to newly acknowledged data".
      // The ACK acknowledges all data up to and including RFC 6582's recover
      // (SND.MAX - 1 at the time) when ackNum >= this.recoverSeq.
      if (seqGeq(ackNum, this.recoverSeq)) {
        // Full acknowledgment: every segment sent before the third duplicate
        // ACK has arrived. Deflate, choosing option (1) so no burst follows:
        // cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS). Exit fast
        // recovery.
        this.cwnd = Math.min(this.ssthresh, Math.max(flightSize, this.mss) + this.mss);
        this.recovering = false;
        this.bytesAcked = 0;
        this.releaseRecover(ackNum);
        return NO_RETRANSMIT;
      }
      // Partial acknowledgment: retransmit the first unacknowledged segment;
      // deflate cwnd by the amount of new data acknowledged, and if that was
      // at least one SMSS add back SMSS for the segment that left the
      // network. Stay in fast recovery. (Never below one SMSS, the RFC 5681
      // section 3.1 loss window, so the window cannot go negative.)
      this.cwnd -= ackedBytes;
      if (ackedBytes >= this.mss) this.cwnd += this.mss;
      if (this.cwnd < this.mss) this.cwnd = this.mss;
      return RETRANSMIT;
    }
    this.releaseRecover(ackNum);
    // The RFC 3465 section 2.3 limit L on growth per ACK in slow start: 2*SMSS,
    // except 1*SMSS while slow-starting after a timeout, until the ACKs pass
    // the data that was outstanding when it fired.
    const limit = this.timeoutSlowStart ? this.mss : 2 * this.mss;
    let credit = ackedBytes;
    if (this.cwnd < this.ssthresh) {
      // RFC 5681 section 3.1 slow start, with byte counting (RFC 3465 section
      // 2.2): cwnd += min(N, L). Growth stops at ssthresh; bytes beyond it
      // count toward congestion avoidance.
      const grow = Math.min(ackedBytes, limit);
      const room = this.ssthresh - this.cwnd;
      if (grow <= room) {
        this.cwnd += grow;
        return NO_RETRANSMIT;
      }
      this.cwnd = this.ssthresh;
      credit = ackedBytes - room;
    }
    // RFC 5681 section 3.1 congestion avoidance by byte counting (RFC 3465
    // section 2.1): add up the bytes acknowledged; once they reach cwnd,
    // subtract cwnd and grow cwnd by SMSS. That is one SMSS per RTT.
    this.bytesAcked += credit;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
    return NO_RETRANSMIT;
  }

  /**
   * A duplicate ACK (as defined by RFC 5681 section 2) for `ackNum` ==
   * SND.UNA; `highestSent` is SND.MAX. On `fastRetransmit` the caller
   * resends the segment starting at SND.UNA now. On the first and second
   * duplicate the caller may send new data under Limited Transmit
   * (RFC 3042); cwnd does not change for them.
   */
  onDupAck(ackNum: number, highestSent: number, flightSize: number): { readonly fastRetransmit: boolean } {
    this.dups++;
    if (this.recovering) {
      // RFC 5681 section 3.2 step 4 (RFC 6582 section 3.2 step 3 sends
      // partial-ACK repairs back here): each further duplicate means a
      // segment left the network, so inflate cwnd by SMSS.
      this.cwnd += this.mss;
      return NO_FAST_RETRANSMIT;
    }
    if (this.dups !== DUPACK_THRESHOLD) return NO_FAST_RETRANSMIT;
    // RFC 6582 section 3.2 step 2 (the "careful" check): on the third
    // duplicate, enter fast retransmit only if the Cumulative Acknowledgment
    // field covers more than recover, ackNum - 1 > (SND.MAX - 1 at the
    // time), i.e. ackNum > this.recoverSeq. Otherwise these duplicates
    // belong to a window already reduced for (by an earlier fast retransmit
    // or a timeout), and neither ssthresh nor cwnd changes.
    if (this.recoverSeq !== undefined && !seqGt(ackNum, this.recoverSeq)) return NO_FAST_RETRANSMIT;
    // RFC 6582 step 2: recover = the highest sequence number transmitted
    // (kept as SND.MAX, see the top of this file).
    this.recoverSeq = highestSent >>> 0;
    // RFC 5681 section 3.2 step 2, equation (4):
    // ssthresh = max(FlightSize / 2, 2*SMSS).
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    // RFC 5681 section 3.2 step 3: retransmit the lost segment and set
    // cwnd = ssthresh + 3*SMSS, inflating by the three segments that left.
    this.cwnd = this.ssthresh + DUPACK_THRESHOLD * this.mss;
    this.recovering = true;
    this.timeoutSlowStart = false;
    this.bytesAcked = 0;
    return FAST_RETRANSMIT;
  }

  /**
   * The retransmission timer expired (call once per expiry, before
   * retransmitting the first unacknowledged segment); `highestSent` is
   * SND.MAX.
   */
  onRetransmitTimeout(flightSize: number, highestSent: number): void {
    // RFC 5681 section 3.1: when the lost segment "has not yet been resent by
    // way of the retransmission timer", ssthresh = max(FlightSize / 2,
    // 2*SMSS) (equation (4)); a repeated timeout for the same data leaves
    // ssthresh alone, as FlightSize no longer measures the network then.
    if (!this.afterTimeout) this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    this.afterTimeout = true;
    // RFC 5681 section 3.1: cwnd = the loss window, LW = 1 SMSS.
    this.cwnd = this.mss;
    // RFC 6582 section 3.2 step 4: record the highest sequence number
    // transmitted in recover and exit fast recovery if applicable.
    this.recoverSeq = highestSent >>> 0;
    this.recovering = false;
    this.timeoutSlowStart = true;
    this.dups = 0;
    this.bytesAcked = 0;
  }

  /**
   * Before sending after a pause: RFC 5681 section 4.1 says a TCP that has
   * not sent for longer than one RTO SHOULD start again from the restart
   * window RW = min(IW, cwnd). ssthresh keeps its value.
   */
  onIdle(idleMs: number, rto: number): void {
    if (idleMs <= rto) return;
    this.cwnd = Math.min(this.iw, this.cwnd);
    this.bytesAcked = 0;
  }

  /**
   * Ends the post-timeout slow start once everything up to and including
   * `recover` is acknowledged, and forgets `recover` once the cumulative ACK
   * covers more than it.
   */
  private releaseRecover(ackNum: number): void {
    if (this.recoverSeq === undefined) return;
    if (seqGeq(ackNum, this.recoverSeq)) this.timeoutSlowStart = false;
    if (seqGt(ackNum, this.recoverSeq)) this.recoverSeq = undefined;
  }
}
