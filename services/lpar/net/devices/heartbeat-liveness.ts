import { RtoEstimator } from '../tcp/rto.ts';

/**
 * Heartbeats remembered by sequence number until answered, for the answer's
 * round trip. Past this many unanswered, the oldest is forgotten (its send
 * time still counts in `unansweredSince`): a control node that far behind is
 * silent by any bound.
 */
const REMEMBERED = 16;

/**
 * Whether one control node answers the virtual Ethernet driver's heartbeat
 * TLVs (seed 004, "Virtual Ethernet Driver": "determine if a node has stopped
 * responding or whether a stopped node has started to respond again"), as pure
 * state: the driver says when it sent heartbeat `seq` and when an answer to one
 * came, and asks whether the control node is answering at a given instant.
 *
 * The seed fixes no timing. A control node is silent once a heartbeat has gone
 * unanswered for longer than `answerWithinMs`: heartbeatMs on a quiet box, so
 * a control node that stops is passed over within two heartbeat intervals of
 * its last answer while traffic flows (a heartbeat goes every heartbeatMs
 * then). On a box where answers are slow the bound follows them, as TCP's
 * retransmission timeout follows round trips (RFC 6298: smoothed round trip
 * plus four deviations, `RtoEstimator`), up to `maxWaitMs`. A fixed bound there
 * judged control nodes silent that were only waiting for the CPU: with 256
 * partitions on two cores, answers take hundreds of milliseconds, and every
 * false failover retried ARP and added work (issue 10; docs/BENCHMARKS.md,
 * "Heartbeat answers judged by their own round trips"). Each heartbeat has a
 * sequence number of its own and is never sent again, so every answer is a
 * clean sample (Karn's rule does not arise).
 *
 * Answers come in order (an RVI delivers in order), so an answer to `seq`
 * answers every heartbeat before it too.
 */
export class HeartbeatLiveness {
  /** When the control node last answered (0: never). */
  lastAnswer = 0;
  /** When the oldest heartbeat not yet answered went (0: all answered): the evidence the judgement is made from. */
  unansweredSince = 0;
  /** When the latest heartbeat went (0: none yet). */
  lastSent = 0;
  private seq = 0;
  private readonly pending: Array<{ seq: number; at: number }> = [];
  private readonly rtt: RtoEstimator;

  constructor(
    readonly heartbeatMs: number,
    readonly maxWaitMs: number,
  ) {
    if (!(heartbeatMs > 0) || !(maxWaitMs >= heartbeatMs)) throw new RangeError(`HeartbeatLiveness: need 0 < heartbeatMs (${heartbeatMs}) <= maxWaitMs (${maxWaitMs})`);
    this.rtt = new RtoEstimator({ minMs: heartbeatMs, maxMs: maxWaitMs, initialMs: heartbeatMs, granularityMs: 1 });
  }

  /** A heartbeat goes now: returns its sequence number (16 bits, as the TLV carries it). */
  sent(now: number): number {
    this.seq = (this.seq + 1) & 0xffff;
    this.pending.push({ seq: this.seq, at: now });
    if (this.pending.length > REMEMBERED) this.pending.shift();
    if (this.unansweredSince === 0) this.unansweredSince = now;
    this.lastSent = now;
    return this.seq;
  }

  /** The answer to heartbeat `seq` came now. One not sent, or already answered, changes nothing. */
  answered(seq: number, now: number): boolean {
    const k = this.pending.findIndex((p) => p.seq === seq);
    if (k < 0) return false;
    this.rtt.sample(Math.max(0, now - this.pending[k].at));
    this.pending.splice(0, k + 1);
    this.lastAnswer = now;
    this.unansweredSince = this.pending.length > 0 ? this.pending[0].at : 0;
    return true;
  }

  /** How long a heartbeat may wait for its answer before the control node counts as silent. */
  get answerWithinMs(): number {
    return this.rtt.rto;
  }

  /** The smoothed round trip of the answers (undefined before the first). */
  get srttMs(): number | undefined {
    return this.rtt.srtt;
  }

  /** Answered at least once, and no heartbeat waiting longer than answerWithinMs. */
  answering(now: number): boolean {
    return this.lastAnswer !== 0 && (this.unansweredSince === 0 || now - this.unansweredSince <= this.answerWithinMs);
  }

  /** The instant `answering` turns false if no answer comes first (Infinity when nothing waits). */
  silentAt(): number {
    return this.unansweredSince === 0 ? Infinity : this.unansweredSince + this.answerWithinMs;
  }
}
