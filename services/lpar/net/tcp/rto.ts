/**
 * TCP retransmission timeout (RFC 6298), as pure state: the caller measures
 * round trips, feeds them in, and asks for the current RTO when it arms its
 * own retransmission timer (RFC 6298 section 5 stays with the caller).
 *
 * Karn's algorithm (RFC 6298 section 3, after Karn and Partridge 1987): an
 * RTT sample MUST NOT be taken from a segment that was retransmitted, since
 * the ACK cannot say which transmission it answers. `RttSampler` enforces
 * that for a sender without timestamps: it times one segment at a time and
 * forgets it when the caller reports a retransmission. The other half of
 * Karn's rule, keeping the backed-off RTO until a valid sample arrives, is
 * how `RtoEstimator` behaves: only `sample()` (or an explicit
 * `resetBackoff()`) brings the RTO back down.
 */
import { seqGt } from '../../../../shared/wire/tcp.ts';

/** RFC 6298 section 2: alpha = 1/8, beta = 1/4, K = 4. */
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;

export interface RtoOptions {
  /**
   * Floor for every computed RTO. RFC 6298 (2.4) says 1 s; the default of
   * 200 ms is the common host-stack choice for low-latency paths, which the
   * RFC permits as a deliberate departure.
   */
  minMs?: number;
  /** Ceiling, also for backoff: RFC 6298 (2.5) allows one of at least 60 s. */
  maxMs?: number;
  /** RTO before the first sample: RFC 6298 (2.1) says 1 s. */
  initialMs?: number;
  /** Clock granularity G of RFC 6298 (2.2)/(2.3). */
  granularityMs?: number;
}

export class RtoEstimator {
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly granularityMs: number;
  private srttMs: number | undefined;
  private rttvarMs: number | undefined;
  /** The RTO the estimator last computed, before any backoff. */
  private baseMs: number;
  /** `baseMs` after backoff doublings. */
  private currentMs: number;

  constructor(opts: RtoOptions = {}) {
    this.minMs = opts.minMs ?? 200;
    this.maxMs = opts.maxMs ?? 60_000;
    this.granularityMs = opts.granularityMs ?? 1;
    const initialMs = opts.initialMs ?? 1000;
    for (const [name, v] of [['minMs', this.minMs], ['maxMs', this.maxMs], ['initialMs', initialMs], ['granularityMs', this.granularityMs]] as const) {
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`RtoEstimator: bad ${name} ${v}`);
    }
    if (this.minMs > this.maxMs) throw new RangeError(`RtoEstimator: minMs ${this.minMs} exceeds maxMs ${this.maxMs}`);
    // RFC 6298 (2.1): until a measurement is made, RTO is the initial value.
    this.baseMs = this.clamp(initialMs);
    this.currentMs = this.baseMs;
  }

  /**
   * Folds in one round-trip measurement. The caller must have followed Karn's
   * rule (see `RttSampler`).
   */
  sample(rttMs: number): void {
    if (!Number.isFinite(rttMs) || rttMs < 0) throw new RangeError(`RtoEstimator: bad RTT sample ${rttMs}`);
    if (this.srttMs === undefined || this.rttvarMs === undefined) {
      // RFC 6298 (2.2): first measurement R: SRTT <- R, RTTVAR <- R/2.
      this.srttMs = rttMs;
      this.rttvarMs = rttMs / 2;
    } else {
      // RFC 6298 (2.3): RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
      // with the SRTT from before this sample, then
      // SRTT <- (1 - alpha) * SRTT + alpha * R'.
      this.rttvarMs = (1 - BETA) * this.rttvarMs + BETA * Math.abs(this.srttMs - rttMs);
      this.srttMs = (1 - ALPHA) * this.srttMs + ALPHA * rttMs;
    }
    // RFC 6298 (2.2)/(2.3): RTO <- SRTT + max(G, K * RTTVAR), bounded per
    // (2.4) and (2.5).
    this.baseMs = this.clamp(this.srttMs + Math.max(this.granularityMs, K * this.rttvarMs));
    // RFC 6298 section 5, after (5.7): a new measurement after retransmitting
    // recomputes RTO per section 2, "collapsing" a backed-off value.
    this.currentMs = this.baseMs;
  }

  /** The RTO to arm the retransmission timer with, backoff included. */
  get rto(): number {
    return this.currentMs;
  }

  /** RFC 6298 (5.5): on expiry, RTO <- RTO * 2, capped by the (2.5) maximum. */
  backoff(): void {
    this.currentMs = Math.min(this.maxMs, this.currentMs * 2);
  }

  /** Drops the backoff, back to the last computed (or initial) RTO. */
  resetBackoff(): void {
    this.currentMs = this.baseMs;
  }

  get srtt(): number | undefined {
    return this.srttMs;
  }

  get rttvar(): number | undefined {
    return this.rttvarMs;
  }

  private clamp(ms: number): number {
    return Math.min(this.maxMs, Math.max(this.minMs, ms));
  }
}

/**
 * Times one segment at a time (RFC 6298 section 3: at least one sample per
 * RTT is enough) and applies Karn's rule.
 *
 * The timed sequence number is the first one the segment occupies (its SEG.SEQ;
 * a SYN or FIN counts). An ACK covers it once ackNum > seq, that is once the
 * peer has acknowledged that sequence number, as in the BSD stacks.
 */
export class RttSampler {
  private seq = 0;
  private sentAt = 0;
  private active = false;

  /** Whether a segment is being timed. */
  get timing(): boolean {
    return this.active;
  }

  /**
   * Starts timing the segment beginning at `seq`, sent (for the first time)
   * at `now`. Returns false and changes nothing when a segment is already
   * being timed, so the caller may offer every new segment.
   */
  start(seq: number, now: number): boolean {
    if (this.active) return false;
    this.seq = seq >>> 0;
    this.sentAt = now;
    this.active = true;
    return true;
  }

  /**
   * Feeds an acceptable ACK. Returns the round-trip time in ms (and stops
   * timing) when `ackNum` covers the timed sequence number; otherwise
   * undefined.
   */
  ack(ackNum: number, now: number): number | undefined {
    if (!this.active || !seqGt(ackNum >>> 0, this.seq)) return undefined;
    this.active = false;
    return Math.max(0, now - this.sentAt);
  }

  /**
   * Karn's rule (RFC 6298 section 3): call on any retransmission that could
   * resend the timed segment (a retransmission timeout, fast retransmit or a
   * NewReno partial-ACK retransmission); the measurement is abandoned.
   */
  invalidate(): void {
    this.active = false;
  }
}
