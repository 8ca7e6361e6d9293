/**
 * Two Rvis over two in-memory planes (a LossyWire each), for the RCLAN unit
 * tests: what an Rvi sees of the fabric, with cuts, detached ports, loss,
 * delay and reordering on either plane.
 */
import pino from 'pino';
import { afterEach } from 'vitest';
import { ViFrame } from '../../shared/link/frame.ts';
import { Rclan } from '../../shared/rclan/rclan.ts';
import { Rvi, type LegPort, type RclanSettings } from '../../shared/rclan/rvi.ts';
import { LossyWire } from './lossy-wire.ts';
import { prng } from './prng.ts';
import { waitForFast } from './wait.ts';

export { prng };

export const SETTINGS: RclanSettings = { heartbeatMs: 20, deadAfterMs: 100, undeliverableAfterMs: 400, window: 64 };

/** One end of a wire: what an Rvi sees as the fabric port of one plane. */
export class WirePort implements LegPort {
  attached = true;
  writable = true;
  constructor(
    private readonly wire: Wire,
    private readonly side: 0 | 1,
  ) {}
  send(frame: Buffer): boolean {
    this.wire.carry(this.side, Buffer.concat([frame]));
    return true;
  }
  sendParts(head: Buffer, body: Buffer): boolean {
    this.wire.carry(this.side, Buffer.concat([head, body]));
    return true;
  }
}

/**
 * One plane between side 0 and side 1 (a LossyWire): a frame is lost when the
 * plane is cut or a port detached, as it is sent or while in transit.
 */
export class Wire extends LossyWire {
  readonly ports: [WirePort, WirePort];
  /** Drop everything, both ways. */
  cut = false;
  /** Sees every frame handed to the wire: (from side, frame). */
  tap: ((from: 0 | 1, frame: Buffer) => void) | undefined;

  constructor(
    readonly leg: number,
    rand: () => number,
    /** Where a frame sent from `from` goes: the current Rvi on the other side. */
    deliver: (to: 0 | 1, leg: number, frame: Buffer) => void,
  ) {
    super(rand, (to, frame) => deliver(to, leg, frame));
    this.ports = [new WirePort(this, 0), new WirePort(this, 1)];
    this.canSend = this.canReceive = () => !this.cut && this.ports[0].attached && this.ports[1].attached;
  }

  carry(from: 0 | 1, frame: Buffer): void {
    this.tap?.(from, frame);
    this.send(from, frame);
  }
}

/** Two Rvis (A = side 0, B = side 1) over two wires, ticked every 5 ms. */
export class RviPair {
  readonly wires: [Wire, Wire];
  readonly rvis: [Rvi, Rvi];
  private readonly timer: NodeJS.Timeout;
  private nextId = 1;

  constructor(
    seed: number,
    private readonly settings: RclanSettings = SETTINGS,
  ) {
    const rand = prng(seed);
    const deliver = (to: 0 | 1, leg: number, frame: Buffer): void => this.rvis[to].receive(leg, frame, performance.now());
    this.wires = [new Wire(0, rand, deliver), new Wire(1, rand, deliver)];
    this.rvis = [this.make(0), this.make(1)];
    this.timer = setInterval(() => {
      const now = performance.now();
      this.rvis[0].tick(now);
      this.rvis[1].tick(now);
    }, 5);
  }

  get a(): Rvi {
    return this.rvis[0];
  }
  get b(): Rvi {
    return this.rvis[1];
  }

  /** Ports of one side, leg 0 and leg 1. */
  ports(side: 0 | 1): [WirePort, WirePort] {
    return [this.wires[0].ports[side], this.wires[1].ports[side]];
  }

  private make(side: 0 | 1): Rvi {
    return new Rvi(
      this.nextId++,
      7,
      side === 0 ? 'b' : 'a',
      'test',
      this.ports(side),
      this.settings,
      (rvi) => setImmediate(() => rvi.flushAck()),
      performance.now(),
    );
  }

  /** Replaces B by a fresh Rvi (a new process) on the same wires. */
  restartB(): Rvi {
    this.rvis[1] = this.make(1);
    return this.rvis[1];
  }

  /** Unplugs both ends of one leg; each Rvi is told at once. */
  detach(leg: 0 | 1): void {
    const now = performance.now();
    for (const side of [0, 1] as const) {
      this.wires[leg].ports[side].attached = false;
      this.rvis[side].portDetached(leg, now);
    }
  }

  attach(leg: 0 | 1): void {
    for (const side of [0, 1] as const) this.wires[leg].ports[side].attached = true;
  }

  async bothUp(timeoutMs = 2000): Promise<void> {
    await waitForFast('both RVIs up', () => this.a.state === 'up' && this.b.state === 'up', timeoutMs);
  }

  close(): void {
    clearInterval(this.timer);
    for (const w of this.wires) w.close();
  }
}

/** Random payloads of mixed sizes; those of 4 bytes or more start with their index. */
export function makePayloads(count: number, rand: () => number, maxSize = 4096): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    // Mostly small (inline) bodies, some larger ones (sent as head + body), a few empty.
    const size = r < 0.02 ? 0 : r < 0.7 ? 4 + Math.floor(rand() * 508) : 513 + Math.floor(rand() * (maxSize - 513));
    const b = Buffer.allocUnsafe(size);
    for (let j = 0; j < size; j++) b[j] = (rand() * 256) | 0;
    if (size >= 4) b.writeUInt32BE(i, 0);
    out.push(b);
  }
  return out;
}

/** Sends every payload in order, waiting for onDrain whenever the window is full. */
export async function sendAll(rvi: Rvi, payloads: Buffer[], timeoutMs = 10_000): Promise<void> {
  for (const p of payloads) {
    while (!rvi.send(p)) await drained(rvi, timeoutMs);
  }
}

export function drained(rvi: Rvi, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('onDrain never came')), timeoutMs);
    rvi.onDrain = () => {
      clearTimeout(t);
      rvi.onDrain = () => {};
      resolve();
    };
  });
}

/** Index of the first difference between what was sent and what arrived, -1 when equal. */
export function firstMismatch(sent: Buffer[], got: Buffer[]): number {
  const n = Math.max(sent.length, got.length);
  for (let i = 0; i < n; i++) {
    if (!sent[i] || !got[i] || !sent[i].equals(got[i])) return i;
  }
  return -1;
}

/**
 * Two RCLAN layers (node A = side 0, node B = side 1) over the same two
 * in-memory planes, as NodeFabric runs them: RVIs added by `add` share the
 * nodes' peer links (shared/rclan/peer-link.ts), the layers tick themselves.
 * `hungB` drops everything to and from B (a stopped process: its sockets stay
 * open, it just says nothing); `restartB` replaces B's layer with a new one.
 */
export class RclanPair {
  readonly wires: [Wire, Wire];
  readonly nodes: [Rclan, Rclan];
  hungB = false;
  /** VI numbers whose frames are lost both ways on both planes (a switch losing one VI: `lparlab fault cut --rvi`). */
  readonly cutVis = new Set<number>();
  /** Frames handed to either wire (every send, heartbeats included). */
  frames = 0;

  constructor(
    seed: number,
    private readonly settings: RclanSettings = SETTINGS,
  ) {
    const rand = prng(seed);
    const deliver = (to: 0 | 1, leg: number, frame: Buffer): void => {
      if (this.hungB || (this.cutVis.size > 0 && this.cutVis.has(ViFrame.tryParse(frame)?.vi ?? -1))) return;
      this.nodes[to].receive(leg, frame);
    };
    this.wires = [new Wire(0, rand, deliver), new Wire(1, rand, deliver)];
    for (const w of this.wires) w.tap = () => this.frames++;
    this.nodes = [this.make(0), this.make(1)];
  }

  private make(side: 0 | 1): Rclan {
    return new Rclan([this.wires[0].ports[side], this.wires[1].ports[side]], this.settings, pino({ level: 'silent' }));
  }

  /** The RVI `id` of `purpose` between A and B (the same VI number at both ends); returns [A's end, B's end]. */
  add(id: number, purpose = 'test'): [Rvi, Rvi] {
    const a = this.nodes[0].add({ id, vi: id, peer: 'b', purpose });
    const b = this.nodes[1].add({ id, vi: id, peer: 'a', purpose });
    return [a, b];
  }

  restartB(): Rclan {
    this.nodes[1].close();
    this.nodes[1] = this.make(1);
    return this.nodes[1];
  }

  close(): void {
    for (const n of this.nodes) n.close();
    for (const w of this.wires) w.close();
  }
}

/** A pair maker for one test file: every pair it made is closed after each test. */
export function closedAfterEach<T extends { close(): void }>(make: (seed: number) => T): (seed: number) => T {
  const made: T[] = [];
  afterEach(() => {
    for (const p of made.splice(0)) p.close();
  });
  return (seed) => {
    const p = make(seed);
    made.push(p);
    return p;
  };
}
