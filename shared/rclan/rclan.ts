import type { Logger } from 'pino';
import { VI_HEADER, ViFlag, ViFrame } from '../link/frame.ts';
import { Rvi, type LegPort, type RclanSettings } from './rvi.ts';

/** What a node learns of one of its RVIs from the fabric manager. */
export interface RviInfo {
  id: number;
  /** This node's VI number for the RVI, the same on both planes. */
  vi: number;
  peer: string;
  purpose: string;
}

/**
 * The RCLAN layer of one node (seed 004, "RCLAN layer": redundancy,
 * fail-over and load balancing over the two interconnect NICs). It owns the
 * node's RVIs, hands each VI frame to its RVI, and runs one timer for all of
 * them; acknowledgements owed within one turn of the event loop leave together.
 */
export class Rclan {
  readonly rvis = new Map<number, Rvi>();
  /** VI frames for no known RVI, or unreadable: counted and dropped. */
  unknownVi = 0;
  malformed = 0;
  private readonly ackQueue = new Set<Rvi>();
  private ackScheduled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly ports: [LegPort, LegPort],
    readonly settings: RclanSettings,
    private readonly log: Logger,
  ) {
    const tickMs = Math.max(5, Math.min(20, settings.heartbeatMs / 4));
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const rvi of this.rvis.values()) rvi.tick(now);
    }, tickMs);
    this.timer.unref();
  }

  /** Adds an RVI (idempotent for the same VI); returns it. */
  add(info: RviInfo): Rvi {
    const existing = this.rvis.get(info.vi);
    if (existing && existing.id === info.id) return existing;
    const rvi = new Rvi(info.id, info.vi, info.peer, info.purpose, this.ports, this.settings, this.scheduleAck, performance.now());
    rvi.onStateChange = (state, prev) => this.log.info({ rvi: info.id, peer: info.peer, purpose: info.purpose, state, prev }, 'RVI state');
    this.rvis.set(info.vi, rvi);
    return rvi;
  }

  remove(vi: number): void {
    this.rvis.delete(vi);
  }

  find(peer: string, purpose: string): Rvi | undefined {
    for (const rvi of this.rvis.values()) if (rvi.peer === peer && rvi.purpose === purpose) return rvi;
    return undefined;
  }

  /** A VI frame arrived on plane `leg`. */
  receive(leg: number, frame: Buffer): void {
    // Checked without a view per frame (hot path, issue 9): the VI, or -1 for a frame that is not one.
    const vi = ViFrame.checkedVi(frame);
    if (vi < 0) {
      this.malformed++;
      return;
    }
    const rvi = this.rvis.get(vi);
    if (!rvi) {
      this.unknownVi++;
      return;
    }
    const flags = ViFrame.flagsOf(frame);
    if (flags === 0) rvi.receive(leg, frame, performance.now());
    // The plane's flow control for this VI (issue 11 item 1): stop or go on using this leg.
    else if (flags & ViFlag.Flow && frame.length === VI_HEADER) rvi.flow(leg, (flags & ViFlag.Stop) !== 0);
    else this.malformed++;
  }

  portDetached(leg: number): void {
    const now = performance.now();
    for (const rvi of this.rvis.values()) rvi.portDetached(leg, now);
  }

  portDrained(): void {
    for (const rvi of this.rvis.values()) rvi.portDrained();
  }

  private readonly scheduleAck = (rvi: Rvi): void => {
    this.ackQueue.add(rvi);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(this.flushAcks);
  };

  private readonly flushAcks = (): void => {
    this.ackScheduled = false;
    for (const rvi of this.ackQueue) rvi.flushAck();
    this.ackQueue.clear();
  };

  close(): void {
    clearInterval(this.timer);
  }
}
