import type { Logger } from 'pino';
import { ControlChannel } from '../../shared/control/channel.ts';
import { refusals } from '../../shared/runtime/refusal-log.ts';
import { authenticatePeer } from '../../shared/control/auth.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { ViFrame } from '../../shared/link/frame.ts';
import { HIGH_WATER, type Link } from '../../shared/link/link.ts';
import { VI_MAX } from '../../shared/protocol/fm.ts';
import { FaultInjector, type FaultTarget, type RandomSource } from './fault-injector.ts';

/** One VI path through this plane, as the fabric manager programs it: [rvi, portA, viA, portB, viB]. */
export type ViEntry = [number, number, number, number, number];

interface Port {
  number: number;
  name: string;
  link?: Link;
  /**
   * VIs told to stop because this output was over its high-water mark, as
   * (input port, VI at that port) packed port * 2^20 + vi: each gets a go-on
   * when this output drains (or goes away).
   */
  stopped: Set<number>;
  framesIn: number;
  framesOut: number;
  /** Frames for this output refused because it held OUTPUT_LIMIT bytes unsent. */
  dropped: number;
  /** Stop notices sent on account of this output. */
  flowStops: number;
  // As an output: the input whose frame is being cut through to it. Whole
  // frames sent meanwhile (forwarded, flow frames, control replies) wait
  // behind it inside the link (Link.sendStart), counted in its `queued`.
  heldBy: Port | undefined;
  /** When the holder last passed on a piece. */
  heldSince: number;
  // As an input: where its frame being cut through goes (null: discarded; undefined: none under way), and its VI.
  cutTo: Port | null | undefined;
  cutVi: number;
}

const VI_BITS = VI_MAX + 1;

/**
 * The key of (port, VI) in the route table, port * 2^20 + VI, or -1 when the
 * VI does not fit in 20 bits: VI 2^20 + k of port p would be port p+1's VI k
 * (issue 11 item 13), so a frame or an entry with one is refused.
 */
export function routeKey(port: number, vi: number): number {
  return Number.isInteger(vi) && vi >= 0 && vi <= VI_MAX ? port * VI_BITS + vi : -1;
}

/**
 * Bytes an output may hold unsent before frames for it are dropped. Far above
 * the link's high-water mark (where stop notices go out), so that only a
 * sender ignoring them, retransmissions and heartbeats to a reader that does
 * not drain, or many senders converging at once reach it.
 */
export const OUTPUT_LIMIT = 4 * HIGH_WATER;

/**
 * A frame being cut through whose input passes nothing on for this long while
 * other frames wait for its output has stalled (its sender stopped mid-frame):
 * the output is reset rather than held for the others indefinitely.
 */
export const HOLD_STALL_MS = 500;

/**
 * One switch plane (seed 004, "Overview": two switch fabrics with NBMA
 * semantics; all inter-node traffic crosses one). Frames are forwarded along
 * the VI paths the fabric manager programs; the payload is never parsed, only
 * the VI number rewritten.
 *
 * Flow control is per VI, never per input port (issue 11 item 1). Pausing an
 * input whose frame found its output full, as this switch once did, let one
 * receiver that stops reading (SIGSTOP, a debugger) stall every flow of each
 * sender talking to it, on both planes, until RCLAN declared all of that
 * sender's RVIs dead. Instead every input is always read, and:
 *
 *  - a frame that leaves its output over the link's high-water mark sends a
 *    flow frame "stop" (shared/link/frame.ts) back on the VI it came in on;
 *    the sender's RVI stops using this plane's leg for that VI only (its other
 *    VIs, and the other plane, go on), and gets "go on" once the output
 *    drains. This is the credit/backpressure variant rather than drop-only:
 *    a slow but live receiver loses nothing, as with the old port pause, so
 *    throughput does not pay for retransmissions; RCLAN's own end-to-end
 *    window (seed 004, "RCLAN layer": credits) already bounds each RVI;
 *  - an output holding OUTPUT_LIMIT bytes unsent takes no more: frames for it
 *    are dropped and counted (`dropped` per port, `congestionDropped` in
 *    stats). RCLAN retransmits them once the reader drains, on either plane.
 *
 * So no queue here grows without bound, and a reader that stops stalls only
 * what is addressed to it.
 *
 * Cut-through (issue 10 item 6): a VI frame larger than one socket read is
 * passed on piece by piece as it arrives (shared/link/frame.ts,
 * CutThroughSink), not copied together first. Its output is held for it
 * until its last byte: every whole frame sent to a held output meanwhile
 * waits behind it inside the link (Link.sendStart; counted in its `queued`,
 * so against OUTPUT_LIMIT). That covers what the switch itself sends there:
 * a flow frame or a control reply written into the middle of a frame cut
 * through would be bytes of that frame on the wire, and RCLAN payloads carry
 * no checksum inside the platform (a TCP stream arrived with a wrong digest
 * while flow frames went out between the pieces). The limit and
 * the stop notices are applied when a frame starts; once started, a frame is
 * always finished (at most one frame over the limit). A frame is stored and
 * forwarded as before when a fault is set on the plane (drop and delay act on
 * whole frames) or its output is held by another. A frame that cannot finish
 * (its input closed part way, or passed nothing on for HOLD_STALL_MS while
 * others wait) leaves a byte stream nobody can resynchronise: the output's
 * link is closed (`cutThroughAborts`), its node reattaches, and RCLAN resends
 * on the other plane meanwhile.
 */
export class FabricSwitch {
  readonly faults: FaultInjector;
  readonly stats = {
    forwarded: 0,
    noRoute: 0,
    faultDropped: 0,
    portDown: 0,
    malformed: 0,
    refusedAttach: 0,
    congestionDropped: 0,
    flowStops: 0,
    flowResumes: 0,
    cutThrough: 0,
    cutThroughAborts: 0,
  };
  private readonly ports = new Map<number, Port>();
  private readonly portByName = new Map<string, Port>();
  /** (port, vi) → (port, vi), both packed as port * 2^20 + vi. */
  private readonly routes = new Map<number, number>();
  private readonly rviOfRoute = new Map<number, number>();
  private readonly entries = new Map<number, ViEntry>();

  constructor(
    readonly plane: string,
    private readonly key: Buffer,
    private readonly log: Logger,
    /** The fault injector's random source; a seeded one makes a chaos run repeatable. */
    faultRandom?: RandomSource,
  ) {
    this.faults = new FaultInjector(faultRandom);
  }

  get programmed(): boolean {
    return this.ports.size > 0;
  }

  /** Full table from the fabric manager (at connect, and again after it restarts). */
  loadTable(ports: Array<[string, number]>, vis: ViEntry[]): void {
    for (const [name, number] of ports) {
      if (this.portByName.has(name)) continue;
      const port: Port = {
        number,
        name,
        stopped: new Set(),
        framesIn: 0,
        framesOut: 0,
        dropped: 0,
        flowStops: 0,
        heldBy: undefined,
        heldSince: 0,
        cutTo: undefined,
        cutVi: 0,
      };
      this.ports.set(number, port);
      this.portByName.set(name, port);
    }
    this.routes.clear();
    this.rviOfRoute.clear();
    this.entries.clear();
    for (const e of vis) this.addVi(e);
  }

  addVi(e: ViEntry): void {
    const [rvi, pa, va, pb, vb] = e;
    const a = routeKey(pa, va);
    const b = routeKey(pb, vb);
    if (a < 0 || b < 0) {
      this.stats.malformed++;
      this.log.warn({ entry: e }, `VI entry refused: VI numbers are 0..${VI_MAX}`);
      return;
    }
    this.routes.set(a, b);
    this.routes.set(b, a);
    this.rviOfRoute.set(a, rvi);
    this.rviOfRoute.set(b, rvi);
    this.entries.set(rvi, e);
  }

  removeVi(rvi: number): void {
    const e = this.entries.get(rvi);
    if (!e) return;
    for (const k of [routeKey(e[1], e[2]), routeKey(e[3], e[4])]) {
      this.routes.delete(k);
      this.rviOfRoute.delete(k);
    }
    this.entries.delete(rvi);
  }

  /** A node connected to the plane: it must prove its name, then it gets that name's port. */
  async acceptPort(link: Link): Promise<void> {
    const ch = new ControlChannel(link, this.log);
    let port: Port;
    try {
      const peer = await authenticatePeer(ch, this.key, (name) => (this.portByName.has(name) ? 'lpar' : undefined));
      port = this.portByName.get(peer.name)!;
    } catch (err) {
      this.stats.refusedAttach++;
      refusals.warn(this.log, { remote: link.remote, err: (err as Error).message.slice(0, 200) }, 'port attach refused');
      ch.send({ t: 'refused', reason: (err as Error).message });
      setTimeout(() => link.close(), 50);
      return;
    }
    if (port.link && !port.link.closed) port.link.close();
    this.linkGone(port);
    port.link = link;
    // The node starts with no VI stopped: forget the notices its previous link got.
    this.forgetStops(port);
    ch.onViFrame = (frame) => this.forward(port, frame);
    link.setCutThrough?.({ begin: (head) => this.begin(port, head), part: (bytes, last) => this.part(port, bytes, last) });
    link.onDrain = () => this.resumeStopped(port);
    ch.onClose(() => {
      if (port.link !== link) return;
      this.linkGone(port);
      port.link = undefined;
      // Senders to a node that went away go on (and find it gone by RCLAN's heartbeats).
      this.resumeStopped(port);
      this.forgetStops(port);
      this.log.info({ port: port.number, node: port.name }, 'port down');
    });
    ch.send({ t: 'welcome', port: port.number, plane: this.plane });
    this.log.info({ port: port.number, node: port.name }, 'port up');
  }

  /** `port`'s link is going: a frame it was cutting through cannot finish, and nothing held for it is sent. */
  private linkGone(port: Port): void {
    const out = port.cutTo;
    port.cutTo = undefined;
    if (out && out.heldBy === port) this.abortCut(out);
    port.heldBy = undefined;
  }

  /** The frame cut through to `out` cannot finish: reset `out`'s link (see the class comment). */
  private abortCut(out: Port): void {
    const holder = out.heldBy;
    if (holder) holder.cutTo = null;
    out.heldBy = undefined;
    this.stats.cutThroughAborts++;
    this.log.warn({ port: out.number, node: out.name, from: holder?.name }, 'frame cut through could not finish: output link reset');
    // What waited behind the frame in the link goes with it; RCLAN resends it.
    out.link?.close();
  }

  /**
   * A VI frame from `inPort` spans reads; `head` is its first bytes. True:
   * the rest comes to `part` (sent on, or discarded when the frame goes
   * nowhere); false: it is assembled and comes whole to `forward`.
   */
  private begin(inPort: Port, head: Buffer): boolean {
    if (this.faults.active) return false;
    const vi = ViFrame.viOf(head);
    const key = routeKey(inPort.number, vi);
    const dest = key < 0 ? undefined : this.routes.get(key);
    const out = dest === undefined ? undefined : this.ports.get(Math.floor(dest / VI_BITS));
    // Another frame is under way to this output: this one is stored and waits its turn (forward, emit).
    if (out?.heldBy !== undefined) return false;
    // From here the frame is passed on or discarded piece by piece, never assembled.
    inPort.cutTo = null;
    // A VI past 20 bits would alias the next port's (issue 11 item 13); flags are the switch's to set.
    if (key < 0 || ViFrame.flagsOf(head) !== 0) {
      this.stats.malformed++;
      return true;
    }
    inPort.framesIn++;
    if (dest === undefined) {
      this.stats.noRoute++;
      return true;
    }
    const link = out?.link;
    if (!out || !link || link.closed) {
      this.stats.portDown++;
      return true;
    }
    // Pieces can go on only as bytes of a stream (a WebSocket sends messages; a plane listens on one transport anyway).
    if (!link.sendStart) {
      inPort.cutTo = undefined;
      inPort.framesIn--;
      return false;
    }
    if (link.queued > OUTPUT_LIMIT) {
      out.dropped++;
      this.stats.congestionDropped++;
      return true;
    }
    ViFrame.setVi(head, dest % VI_BITS);
    out.framesOut++;
    this.stats.forwarded++;
    this.stats.cutThrough++;
    out.heldBy = inPort;
    out.heldSince = performance.now();
    inPort.cutTo = out;
    inPort.cutVi = vi;
    if (!link.sendStart(head)) this.stop(inPort, vi, out);
    return true;
  }

  /** More of `inPort`'s frame being cut through. */
  private part(inPort: Port, bytes: Buffer, last: boolean): void {
    const out = inPort.cutTo;
    if (last) inPort.cutTo = undefined;
    if (!out || out.heldBy !== inPort) return;
    // The link sends what waited behind the frame once its last piece is in.
    if (!out.link!.sendPiece!(bytes, last)) this.stop(inPort, inPort.cutVi, out);
    if (last) out.heldBy = undefined;
    else out.heldSince = performance.now();
  }

  /** `out` drained (or went away): every VI stopped on its account may send again. */
  private resumeStopped(out: Port): void {
    if (out.stopped.size === 0) return;
    for (const key of out.stopped) {
      const link = this.ports.get(Math.floor(key / VI_BITS))?.link;
      if (link && !link.closed) {
        link.send(ViFrame.emitFlow(key % VI_BITS, false));
        this.stats.flowResumes++;
      }
    }
    out.stopped.clear();
  }

  /** Drops every stop notice `inPort`'s VIs hold at any output. */
  private forgetStops(inPort: Port): void {
    const lo = inPort.number * VI_BITS;
    for (const out of this.ports.values()) {
      if (out.stopped.size === 0) continue;
      for (const key of out.stopped) if (key >= lo && key < lo + VI_BITS) out.stopped.delete(key);
    }
  }

  private forward(inPort: Port, frame: Buffer): void {
    const vi = ViFrame.viOf(frame);
    const key = routeKey(inPort.number, vi);
    // Flags are the switch's to set (flow frames): a node's frame carrying any is refused.
    if (key < 0 || ViFrame.flagsOf(frame) !== 0) {
      this.stats.malformed++;
      return;
    }
    inPort.framesIn++;
    const dest = this.routes.get(key);
    if (dest === undefined) {
      this.stats.noRoute++;
      return;
    }
    const outNumber = Math.floor(dest / VI_BITS);
    if (this.faults.active) {
      const verdict = this.faults.judge(inPort.number, outNumber, this.rviOfRoute.get(dest) ?? 0);
      if (verdict.drop) {
        this.stats.faultDropped++;
        return;
      }
      if (verdict.delayMs > 0) {
        setTimeout(() => this.emit(inPort, vi, outNumber, dest, frame), verdict.delayMs);
        return;
      }
    }
    this.emit(inPort, vi, outNumber, dest, frame);
  }

  /** Sends `frame` (from `inPort`'s VI `vi`) to output `outNumber` as VI `dest`, within the output's bounds. */
  private emit(inPort: Port, vi: number, outNumber: number, dest: number, frame: Buffer): void {
    const out = this.ports.get(outNumber);
    const link = out?.link;
    if (!link || link.closed) {
      this.stats.portDown++;
      return;
    }
    if (link.queued > OUTPUT_LIMIT) {
      out!.dropped++;
      this.stats.congestionDropped++;
      return;
    }
    // A frame is being cut through to this output: this one waits behind it in the link, unless the holder stalled.
    if (out!.heldBy !== undefined && performance.now() - out!.heldSince > HOLD_STALL_MS) {
      this.abortCut(out!);
      out!.dropped++;
      return;
    }
    ViFrame.setVi(frame, dest % VI_BITS);
    out!.framesOut++;
    this.stats.forwarded++;
    if (!link.send(frame)) this.stop(inPort, vi, out!);
  }

  /** `out` is over its high-water mark: `inPort`'s VI `vi`, which fed it, is told to stop (once until it drains). */
  private stop(inPort: Port, vi: number, out: Port): void {
    const key = routeKey(inPort.number, vi);
    if (out.stopped.has(key) || !inPort.link || inPort.link.closed) return;
    out.stopped.add(key);
    out.flowStops++;
    this.stats.flowStops++;
    inPort.link.send(ViFrame.emitFlow(vi, true));
  }

  resolveTarget(spec: ControlMessage): FaultTarget {
    if (typeof spec.port === 'string') {
      const port = this.portByName.get(spec.port);
      if (!port) throw new Error(`no port for node "${spec.port}" on plane ${this.plane}`);
      return { kind: 'port', port: port.number, name: port.name };
    }
    if (typeof spec.rvi === 'number') {
      if (!this.entries.has(spec.rvi)) throw new Error(`RVI ${spec.rvi} has no VI on plane ${this.plane}`);
      return { kind: 'rvi', rvi: spec.rvi };
    }
    return { kind: 'plane' };
  }

  status(): Record<string, unknown> {
    return {
      plane: this.plane,
      ports: [...this.ports.values()].map((p) => ({
        port: p.number,
        node: p.name,
        up: !!p.link && !p.link.closed,
        framesIn: p.framesIn,
        framesOut: p.framesOut,
        queued: p.link?.queued ?? 0,
        dropped: p.dropped,
        flowStops: p.flowStops,
        stoppedVis: p.stopped.size,
      })),
      vis: this.entries.size,
      stats: this.stats,
      faults: this.faults.list(),
    };
  }
}
