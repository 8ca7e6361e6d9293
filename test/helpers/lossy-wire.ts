/**
 * One in-memory wire between side 0 and side 1, for the unit tests' pairs
 * (rvi-pair.ts: an RVI's plane; tcp-pair.ts: the path between two TCP
 * connections). Frames are delivered to the other side asynchronously, and
 * the wire can drop, duplicate, delay and (with jitter) reorder them, from a
 * seeded random source so a failing run can be run again.
 *
 * What each die decides, in the order thrown per frame: dropped (when `drop`
 * > 0), else duplicated (when `dup` > 0); then one delay of `delayMs` plus
 * [0, jitterMs) for each copy that travels. A die whose fraction is 0 is not
 * thrown, so setting one fault does not shift the others' sequence.
 *
 * A frame is lost, not queued, when a side cannot send or receive as it is put
 * on the wire, and again when the receiver cannot take it as it arrives: a
 * frame in transit when the wire is cut or a port detached is lost, as on a
 * real socket. `close` cancels every frame still in transit.
 */
export type Side = 0 | 1;
export type Verdict = 'pass' | 'drop' | 'dup';

export class LossyWire {
  /** Fraction of frames dropped, and of those not dropped, duplicated. */
  drop = 0;
  dup = 0;
  delayMs = 0;
  /** Extra random delay in [0, jitterMs): reorders frames. */
  jitterMs = 0;
  /** Copies delivered, frames lost (by a fault or a side that was away), frames sent twice. */
  carried = 0;
  dropped = 0;
  duplicated = 0;
  /**
   * Sees every copy put in transit with the delay it was given, in the order
   * decided: with a seed, the same from run to run (arrival order under jitter
   * also depends on the timers' clock, so compare this, not arrivals).
   */
  onSchedule: ((to: Side, frame: Buffer, delayMs: number) => void) | undefined;
  /** Whether a side can put a frame on the wire now. */
  canSend: (side: Side) => boolean = () => true;
  /** Whether a side can take a frame now (checked on sending and on arrival). */
  canReceive: (side: Side) => boolean = () => true;
  private readonly timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();
  private closed = false;

  constructor(
    private readonly rand: () => number,
    /** Hands a frame that arrived to side `to`. */
    private readonly deliver: (to: Side, frame: Buffer) => void,
  ) {}

  /** The random faults' verdict for one frame. */
  judge(): Verdict {
    if (this.drop > 0 && this.rand() < this.drop) return 'drop';
    if (this.dup > 0 && this.rand() < this.dup) return 'dup';
    return 'pass';
  }

  /**
   * Puts `frame` from side `from` on the wire. `decide`, when given, is asked
   * first (once the sides are known to be there) and its `pass` leaves the
   * frame to the random faults.
   */
  send(from: Side, frame: Buffer, decide?: () => Verdict): void {
    const to = (from ^ 1) as Side;
    if (this.closed || !this.canSend(from) || !this.canReceive(to)) {
      this.dropped++;
      return;
    }
    let verdict = decide?.() ?? 'pass';
    if (verdict === 'pass') verdict = this.judge();
    if (verdict === 'drop') {
      this.dropped++;
      return;
    }
    this.schedule(to, frame);
    if (verdict === 'dup') {
      this.duplicated++;
      this.schedule(to, Buffer.from(frame));
    }
  }

  private schedule(to: Side, frame: Buffer): void {
    const arrive = (): void => {
      this.timers.delete(handle);
      if (this.closed || !this.canReceive(to)) {
        this.dropped++;
        return;
      }
      this.carried++;
      this.deliver(to, frame);
    };
    const delay = this.delayMs + (this.jitterMs > 0 ? this.rand() * this.jitterMs : 0);
    this.onSchedule?.(to, frame, delay);
    const handle = delay > 0 ? setTimeout(arrive, delay) : setImmediate(arrive);
    this.timers.add(handle);
  }

  /** Frames still in transit. */
  get inTransit(): number {
    return this.timers.size;
  }

  /** Cancels everything in transit; the wire carries nothing more. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t as NodeJS.Timeout);
      clearImmediate(t as NodeJS.Immediate);
    }
    this.timers.clear();
  }
}
