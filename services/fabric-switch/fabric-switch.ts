import type { Logger } from 'pino';
import { ControlChannel } from '../../shared/control/channel.ts';
import { refusals } from '../../shared/runtime/refusal-log.ts';
import { authenticatePeer } from '../../shared/control/auth.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { ViFrame } from '../../shared/link/frame.ts';
import type { Link } from '../../shared/link/link.ts';
import { VI_MAX } from '../../shared/protocol/fm.ts';
import { FaultInjector, type FaultTarget, type RandomSource } from './fault-injector.ts';

/** One VI path through this plane, as the fabric manager programs it: [rvi, portA, viA, portB, viB]. */
export type ViEntry = [number, number, number, number, number];

interface Port {
  number: number;
  name: string;
  link?: Link;
  /** Ports whose reading is paused until this one drains. */
  blocked: Set<Link>;
  framesIn: number;
  framesOut: number;
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
 * One switch plane (seed 004, "Overview": two switch fabrics with NBMA
 * semantics; all inter-node traffic crosses one). Frames are forwarded along
 * the VI paths the fabric manager programs; the payload is never parsed, only
 * the VI number rewritten. A full output pauses the input feeding it, so no
 * queue here grows without bound.
 */
export class FabricSwitch {
  readonly faults: FaultInjector;
  readonly stats = { forwarded: 0, noRoute: 0, faultDropped: 0, portDown: 0, malformed: 0, refusedAttach: 0 };
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
      const port: Port = { number, name, blocked: new Set(), framesIn: 0, framesOut: 0 };
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
    port.link = link;
    port.blocked.clear();
    ch.onViFrame = (frame) => this.forward(port, frame);
    link.onDrain = () => {
      for (const l of port.blocked) l.resume();
      port.blocked.clear();
    };
    ch.onClose(() => {
      if (port.link !== link) return;
      port.link = undefined;
      for (const l of port.blocked) l.resume();
      port.blocked.clear();
      this.log.info({ port: port.number, node: port.name }, 'port down');
    });
    ch.send({ t: 'welcome', port: port.number, plane: this.plane });
    this.log.info({ port: port.number, node: port.name }, 'port up');
  }

  private forward(inPort: Port, frame: Buffer): void {
    const key = routeKey(inPort.number, ViFrame.viOf(frame));
    if (key < 0) {
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
        setTimeout(() => this.emit(inPort, outNumber, dest, frame), verdict.delayMs);
        return;
      }
    }
    this.emit(inPort, outNumber, dest, frame);
  }

  private emit(inPort: Port, outNumber: number, dest: number, frame: Buffer): void {
    const out = this.ports.get(outNumber);
    if (!out?.link || out.link.closed) {
      this.stats.portDown++;
      return;
    }
    ViFrame.setVi(frame, dest % VI_BITS);
    out.framesOut++;
    this.stats.forwarded++;
    if (!out.link.send(frame) && inPort.link && inPort !== out) {
      inPort.link.pause();
      out.blocked.add(inPort.link);
    }
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
      ports: [...this.ports.values()].map((p) => ({ port: p.number, node: p.name, up: !!p.link && !p.link.closed, framesIn: p.framesIn, framesOut: p.framesOut })),
      vis: this.entries.size,
      stats: this.stats,
      faults: this.faults.list(),
    };
  }
}
