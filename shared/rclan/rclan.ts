import type { Logger } from 'pino';
import { VI_HEADER, ViFlag, ViFrame } from '../link/frame.ts';
import { PeerLink } from './peer-link.ts';
import { LegState, Rvi, type LegPort, type RclanSettings } from './rvi.ts';

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
 * node's RVIs, hands each VI frame to its RVI, and keeps one PeerLink per
 * peer node for the liveness of every RVI to it (peer-link.ts, issue 10 item
 * 2). One timer serves them all, and it visits only what has work: peer links
 * that are awake and RVIs with something in flight; with nothing of either it
 * is not armed at all. Acknowledgements owed within one turn of the event loop
 * leave together.
 */
export class Rclan {
  readonly rvis = new Map<number, Rvi>();
  /** Peer node → its liveness and its RVIs by purpose. */
  readonly links = new Map<string, PeerLink>();
  private readonly byPurpose = new Map<string, Map<string, Rvi>>();
  /** VI frames for no known RVI, or unreadable: counted and dropped. */
  unknownVi = 0;
  malformed = 0;
  private readonly ackQueue = new Set<Rvi>();
  private ackScheduled = false;
  private readonly awake = new Set<PeerLink>();
  private readonly busy = new Set<Rvi>();
  private timer: NodeJS.Timeout | undefined;
  /** Ticks while an RVI has something in flight (retransmission needs the finer clock), and while only links are awake. */
  private readonly tickMs: number;
  private readonly idleTickMs: number;
  private timerMs = 0;
  private closed = false;
  /** Planes judged down because every awake link lost them (peer-link.ts: the per-port judgement). */
  private readonly planeDown: [boolean, boolean] = [false, false];
  /** A plane verdict (down, or heard again) is being applied to every link of the port: RVI state lines go to debug. */
  private inPlaneVerdict = false;
  /** When each plane became suspect (0: not). */
  private readonly planeSuspect: [number, number] = [0, 0];

  constructor(
    readonly ports: [LegPort, LegPort],
    readonly settings: RclanSettings,
    private readonly log: Logger,
  ) {
    this.tickMs = Math.max(5, Math.min(20, settings.heartbeatMs / 4));
    // Heartbeats and liveness need no finer clock than half a heartbeat interval: at 64 partitions and more,
    // every wake-up of every process counts (issue 10 item 2).
    this.idleTickMs = Math.max(this.tickMs, settings.heartbeatMs / 2);
  }

  private arm(): void {
    if (this.closed) return;
    const ms = this.busy.size > 0 ? this.tickMs : this.idleTickMs;
    if (this.timer && this.timerMs === ms) return;
    clearInterval(this.timer);
    this.timerMs = ms;
    this.timer = setInterval(this.tick, ms);
    this.timer.unref();
  }

  private lastTickAt = 0;

  private readonly tick = (): void => {
    const now = performance.now();
    // A late tick means this process stalled: what arrived meanwhile is still unread in the sockets (timers run
    // before I/O in the event loop), so judging silence now would blame the peer for our stall. Judge next tick.
    const late = this.lastTickAt > 0 && now - this.lastTickAt > 3 * this.timerMs + 20;
    this.lastTickAt = now;
    if (late) return;
    for (const link of this.awake) if (!link.tick(now)) this.awake.delete(link);
    if (this.planeSuspect[0] > 0 || this.planeSuspect[1] > 0) this.judgePlanes(now);
    for (const rvi of this.busy) {
      rvi.tick(now);
      if (!rvi.busy) this.busy.delete(rvi);
    }
    if (this.awake.size === 0 && this.busy.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.lastTickAt = 0;
    } else if (this.busy.size === 0 && this.timerMs !== this.idleTickMs) this.arm();
  };

  private readonly onWake = (link: PeerLink): void => {
    this.awake.add(link);
    this.arm();
  };

  private readonly onBusy = (rvi: Rvi): void => {
    this.busy.add(rvi);
    this.arm();
  };

  /**
   * Per port: a leg lost by an awake link while no awake link still hears
   * that plane makes the plane suspect; it is down once some awake link hears
   * the other plane after that (so it is the plane, not a peer that died, nor
   * this process stalled), and so is that leg of every quiet link, which
   * judges nothing itself. The plane heard again wakes the links that lost it.
   */
  private readonly onLeg = (link: PeerLink, leg: number, state: LegState): void => {
    const now = performance.now();
    if (state === LegState.Up) {
      this.planeSuspect[leg] = 0;
      if (!this.planeDown[leg]) return;
      this.planeDown[leg] = false;
      this.planeVerdict((l) => l.planeBack(leg, now));
      this.log.info({ plane: leg }, 'plane heard again: its leg is back for every RVI');
      return;
    }
    if (this.planeDown[leg] || this.planeSuspect[leg] > 0 || !link.awake) return;
    for (const l of this.awake) if (l.heardRecently(leg, now)) return;
    this.planeSuspect[leg] = now;
  };

  /** A suspect plane is down once the other plane is heard after it became suspect (see onLeg). */
  private judgePlanes(now: number): void {
    for (let leg = 0; leg < 2; leg++) {
      const since = this.planeSuspect[leg];
      if (since === 0) continue;
      let otherHeard = false;
      for (const l of this.awake) {
        if (l.heardRecently(leg, now)) {
          this.planeSuspect[leg] = 0;
          otherHeard = false;
          break;
        }
        if (l.heardAt(leg ^ 1) > since) otherHeard = true;
      }
      if (!otherHeard) {
        // A suspicion nobody confirms within deadAfterMs was a peer or this process, not the plane.
        if (now - since > this.settings.deadAfterMs) this.planeSuspect[leg] = 0;
        continue;
      }
      this.planeSuspect[leg] = 0;
      this.planeDown[leg] = true;
      this.log.warn({ plane: leg }, 'no peer heard on this plane while the other works: its leg is down for every RVI');
      this.planeVerdict((l) => {
        if (!l.awake) l.planeDown(leg, now);
      });
    }
  }

  /** Applies a plane's verdict to every link; the RVI state changes it makes are logged at debug (see add). */
  private planeVerdict(apply: (link: PeerLink) => void): void {
    this.inPlaneVerdict = true;
    try {
      for (const l of this.links.values()) apply(l);
    } finally {
      this.inPlaneVerdict = false;
    }
  }

  private link(peer: string, now: number): PeerLink {
    let link = this.links.get(peer);
    if (!link) {
      link = new PeerLink(peer, this.ports, this.settings, now, this.onWake, this.onLeg);
      this.links.set(peer, link);
      this.onWake(link);
    }
    return link;
  }

  /** Adds an RVI (idempotent for the same VI); returns it. Cheap: it shares its peer's liveness and says hello once. */
  add(info: RviInfo): Rvi {
    const existing = this.rvis.get(info.vi);
    if (existing && existing.id === info.id) return existing;
    if (existing) this.remove(info.vi);
    const now = performance.now();
    const link = this.link(info.peer, now);
    const rvi = new Rvi(info.id, info.vi, info.peer, info.purpose, this.ports, this.settings, this.scheduleAck, now, link, this.onBusy);
    // A plane's verdict changes every RVI of the port at once: its own line says so, each RVI's only at debug (at 256
    // partitions a flap was 255 lines per partition, the bulk of the platform's logging under load, issue 10).
    rvi.onStateChange = (state, prev) => (this.inPlaneVerdict ? this.log.debug : this.log.info).call(this.log, { rvi: info.id, peer: info.peer, purpose: info.purpose, state, prev }, 'RVI state');
    this.rvis.set(info.vi, rvi);
    let purposes = this.byPurpose.get(info.peer);
    if (!purposes) this.byPurpose.set(info.peer, (purposes = new Map()));
    purposes.set(info.purpose, rvi);
    link.add(rvi, now);
    rvi.hello();
    return rvi;
  }

  remove(vi: number): void {
    const rvi = this.rvis.get(vi);
    if (!rvi) return;
    this.rvis.delete(vi);
    this.busy.delete(rvi);
    this.ackQueue.delete(rvi);
    const purposes = this.byPurpose.get(rvi.peer);
    if (purposes?.get(rvi.purpose) === rvi) purposes.delete(rvi.purpose);
    const link = this.links.get(rvi.peer);
    link?.remove(rvi);
    if (link && link.rvis.size === 0) {
      this.links.delete(rvi.peer);
      this.awake.delete(link);
      this.byPurpose.delete(rvi.peer);
    }
  }

  /** The RVI to `peer` for `purpose`: a map look-up, it is on the per-frame path of the control node. */
  find(peer: string, purpose: string): Rvi | undefined {
    return this.byPurpose.get(peer)?.get(purpose);
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
    for (const link of this.links.values()) link.portDetached(leg, now);
  }

  /** A plane's port attached (again): every peer link heartbeats on it to bring its leg up. */
  portAttached(leg: number): void {
    const now = performance.now();
    for (const link of this.links.values()) link.portAttached(leg, now);
    this.portDrained();
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
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
