import { LegState, type LegPort, type RclanSettings, type Rvi } from './rvi.ts';

/**
 * Liveness of one peer node through each switch plane, shared by every RVI
 * this node has to that peer (issue 10 item 2: idle cost that grows with
 * nodes, not with RVIs). Seed 004's RCLAN layer detects a failed interconnect
 * path by heartbeats; a path is a (peer, plane) pair, so that is where the
 * heartbeat lives, not in each RVI:
 *
 * - Anything heard from the peer on a plane (data, acks, heartbeats, on any
 *   of its RVIs) proves that plane alive for all of them; anything sent to it
 *   there counts as this side's heartbeat. A heartbeat goes out on a plane
 *   only when nothing else went to the peer on it for heartbeatMs, carried by
 *   one of the peer's RVIs that runs on that plane.
 * - A plane not heard from for deadAfterMs is down for every RVI to the peer
 *   at once (each fails over as before: seed 004's RCLAN failover, exactly
 *   once by its sequence numbers).
 * - Quiet: with nothing in flight, no data or acks either way for
 *   quietAfterMs (one heartbeat interval), and every leg heard since the link
 *   woke, the link stops heartbeating and stops judging; its legs keep their
 *   last state. A pair of partitions that talked once costs nothing
 *   afterwards, so idle work is bounded by the pairs that are talking instead
 *   of growing with every RVI made. The first send, or data or an ack heard,
 *   wakes it (a heartbeat is answered if it is a probe, and wakes nothing); a
 *   leg then has deadAfterMs from the wake to be heard, so a peer or plane
 *   that hung while quiet is found within deadAfterMs of the first message
 *   that needs it, and that message is retransmitted on the other leg
 *   meanwhile (the RTO, well below deadAfterMs). While quiet nothing is
 *   waiting, so nothing can be late.
 * - A wake is settled by hearing each leg once (the exchange that woke it,
 *   or one probe and its answer), not by heartbeating for a while after: an
 *   idle partition's heartbeat TLV to a control node (seed 004 "Virtual
 *   Ethernet Driver", every idleHeartbeatMs) costs that exchange and about
 *   one probe, where lingering for 2 × deadAfterMs cost some sixty frames
 *   (issue 10's 64-LPAR idle profile). A leg that is never heard keeps the
 *   link awake until deadAfterMs takes it down, so a hung leg is still found,
 *   however briefly the link was needed.
 * - A plane itself is judged per port (rclan.ts): when every awake link has
 *   lost it, the plane is down, and so is that leg of every quiet link, within
 *   the same deadAfterMs; when it is heard again, the quiet links that lost it
 *   to that verdict have it back without a probe (planeBack). Every node wakes its control nodes' links
 *   at least every idleHeartbeatMs (the driver's heartbeat TLVs), so a hung
 *   plane is found for all its RVIs, busy or not, within deadAfterMs of the
 *   next of those (or of any send); a hung peer that nothing is being sent to
 *   is found at the next send to it.
 * - A link with a leg down keeps heartbeating it, quiet or not, so the path
 *   comes back by itself (nothing is sent on a down RVI: the driver relays).
 * - A leg coming up (first frame heard, a plane back) answers at once with a
 *   heartbeat on it, so the peer's side of a new path is up within a round
 *   trip rather than a heartbeat interval.
 */
export class PeerLink {
  readonly legs: [LegState, LegState] = [LegState.Down, LegState.Down];
  /** RVIs to this peer, the heartbeat carriers among them. */
  readonly rvis = new Set<Rvi>();
  readonly stats = { heartbeats: 0, quiets: 0, wakes: 0, legDowns: 0 };
  private readonly lastHeard: [number, number] = [0, 0];
  private readonly lastSent: [number, number] = [0, 0];
  /** The leg is down by the plane's verdict while quiet (planeDown), not by this link's own. */
  private readonly lostToPlane: [boolean, boolean] = [false, false];
  /** Data or acks last moved, an RVI was added, or the link woke. */
  private lastActivity: number;
  /** Per leg: heard since the link last woke (a wake is settled once each leg it may use has been). */
  private readonly heardSinceWake: [boolean, boolean] = [false, false];
  awake = true;

  constructor(
    readonly peer: string,
    private readonly ports: readonly [LegPort, LegPort],
    private readonly settings: RclanSettings,
    now: number,
    /** Called when the link wakes: whoever ticks links must tick this one. */
    private readonly onWake: (link: PeerLink) => void,
    /** A leg changed state (the per-port judgement, rclan.ts). */
    private readonly onLeg: (link: PeerLink, leg: number, state: LegState) => void = () => {},
  ) {
    this.lastActivity = now;
  }

  /** How long without data or acks (and nothing in flight, every leg heard since the wake) before heartbeats stop. */
  get quietAfterMs(): number {
    return this.settings.heartbeatMs;
  }

  /** A new RVI to the peer: it takes the link's legs as they are (cheap creation: no handshake of its own). */
  add(rvi: Rvi, now: number): void {
    this.rvis.add(rvi);
    for (let leg = 0; leg < 2; leg++) if (this.legs[leg] === LegState.Up) rvi.applyLeg(leg, LegState.Up, now);
    this.activity(now);
  }

  remove(rvi: Rvi): void {
    this.rvis.delete(rvi);
  }

  /**
   * A frame from the peer arrived on `leg`; `activity`: data or an ack, not a
   * bare heartbeat. A heartbeat does not wake a quiet link: the RVI answers
   * a probe (what an awake link sends) on its VI, and an answer asks nothing.
   * Waking for it, as this once did, let two links that went quiet with a
   * heartbeat in flight wake each other for good, one heartbeat each per
   * round trip (seen in peer-link.test under load).
   */
  heard(leg: number, now: number, activity: boolean): void {
    // Wake first: what woke the link is heard since the wake.
    if (activity) this.activity(now);
    this.lastHeard[leg] = now;
    this.heardSinceWake[leg] = true;
    if (this.legs[leg] === LegState.Down && this.ports[leg].attached) {
      this.setLeg(leg, LegState.Up, now);
      this.heartbeat(leg, now);
    }
  }

  /** Something went to the peer on `leg`. */
  sent(leg: number, now: number, activity: boolean): void {
    this.lastSent[leg] = now;
    if (activity) this.activity(now);
  }

  /** An RVI to the peer has something in flight: judge the legs from now on. */
  busy(now: number): void {
    this.activity(now);
  }

  private activity(now: number): void {
    this.lastActivity = now;
    if (!this.awake) this.wake(now);
  }

  /** Wakes the link (a plane came back: re-judge a leg it lost while quiet). */
  wake(now: number): void {
    if (this.awake) return;
    this.awake = true;
    this.stats.wakes++;
    this.heardSinceWake[0] = this.heardSinceWake[1] = false;
    // A leg believed up has deadAfterMs from now to be heard: what it did while quiet is unknown, not dead.
    for (let leg = 0; leg < 2; leg++) if (this.legs[leg] === LegState.Up) this.lastHeard[leg] = Math.max(this.lastHeard[leg], now);
    this.onWake(this);
  }

  /** Periodic work while awake; returns false once the link has gone quiet (no more ticks needed). */
  tick(now: number): boolean {
    const s = this.settings;
    for (let leg = 0; leg < 2; leg++) {
      if (this.legs[leg] === LegState.Up && now - this.lastHeard[leg] > s.deadAfterMs) this.setLeg(leg, LegState.Down, now);
    }
    // Quiet before heartbeating: a settled link that lingers sends nothing more.
    if (now - this.lastActivity >= this.quietAfterMs && this.settled() && !this.anyBusy() && !this.probing()) {
      this.awake = false;
      this.stats.quiets++;
      return false;
    }
    for (let leg = 0; leg < 2; leg++) {
      if (this.ports[leg].attached && now - this.lastSent[leg] >= s.heartbeatMs) this.heartbeat(leg, now);
    }
    return true;
  }

  /** Every leg that is up, on an attached port, with an RVI that runs on it, has been heard since the link woke. */
  private settled(): boolean {
    for (let leg = 0; leg < 2; leg++) {
      if (this.heardSinceWake[leg] || this.legs[leg] !== LegState.Up || !this.ports[leg].attached) continue;
      for (const rvi of this.rvis) if (rvi.runsOnPlane(leg)) return false;
    }
    return true;
  }

  /**
   * A leg that is down, on an attached port, with an RVI that runs on it: the
   * link keeps heartbeating it (a probe) instead of going quiet, since the
   * driver sends nothing on a down RVI (it relays) and nothing else would
   * find the path back.
   */
  private probing(): boolean {
    for (let leg = 0; leg < 2; leg++) {
      if (this.legs[leg] !== LegState.Down || !this.ports[leg].attached) continue;
      for (const rvi of this.rvis) if (rvi.runsOnPlane(leg)) return true;
    }
    return false;
  }

  private anyBusy(): boolean {
    for (const rvi of this.rvis) if (rvi.busy) return true;
    return false;
  }

  /** One heartbeat on `leg`, carried by an RVI to the peer that runs on that plane. */
  private heartbeat(leg: number, now: number): void {
    for (const rvi of this.rvis) {
      if (!rvi.runsOnPlane(leg)) continue;
      rvi.sendHeartbeat(leg, true);
      this.stats.heartbeats++;
      this.lastSent[leg] = now;
      return;
    }
  }

  /** The plane's port closed: its leg is down for every RVI now, not after deadAfterMs. */
  portDetached(leg: number, now: number): void {
    this.setLeg(leg, LegState.Down, now);
  }

  /**
   * The plane was judged down while this link was quiet (rclan.ts): its leg
   * is down for every RVI now, and it was the plane's verdict, not this
   * link's (planeBack undoes it).
   */
  planeDown(leg: number, now: number): void {
    if (this.legs[leg] !== LegState.Up) return;
    this.setLeg(leg, LegState.Down, now);
    this.lostToPlane[leg] = true;
  }

  /**
   * The plane is heard again. A quiet link that lost the leg only to the
   * plane's verdict has it back as it was before (believed up, judged at the
   * next wake like any quiet leg), with no probe: waking every such link to
   * probe cost each of 256 partitions some 255 wakes and a thousand frames per
   * flap of a loaded plane, enough to make the next flap (issue 10). A link
   * that lost the leg itself wakes to probe it, as before.
   */
  planeBack(leg: number, now: number): void {
    if (this.legs[leg] !== LegState.Down) return;
    if (this.lostToPlane[leg] && !this.awake && this.ports[leg].attached) this.setLeg(leg, LegState.Up, now);
    else this.wake(now);
  }

  heardAt(leg: number): number {
    return this.lastHeard[leg];
  }

  /** Whether the leg is up and was heard within deadAfterMs (what the per-port judgement counts). */
  heardRecently(leg: number, now: number): boolean {
    return this.legs[leg] === LegState.Up && now - this.lastHeard[leg] <= this.settings.deadAfterMs;
  }

  /** A plane's port is (re)attached: heartbeat on it at once so the peer and we bring the leg up. */
  portAttached(leg: number, now: number): void {
    if (!this.awake) this.wake(now);
    this.heartbeat(leg, now);
  }

  private setLeg(leg: number, state: LegState, now: number): void {
    if (this.legs[leg] === state) return;
    this.legs[leg] = state;
    this.lostToPlane[leg] = false;
    if (state === LegState.Down) {
      this.lastHeard[leg] = 0;
      this.stats.legDowns++;
    }
    for (const rvi of this.rvis) rvi.applyLeg(leg, state, now);
    this.onLeg(this, leg, state);
  }
}
