import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { StackPort } from './stack.ts';

/** Frames a promiscuous log keeps, by count and by bytes. */
const KEPT = 10_000;
const KEPT_BYTES = 16 * 1024 * 1024;

/** Frames seen in promiscuous mode, by virtual LAN (bounded: the oldest go first). */
export class PromiscuousLog {
  private readonly frames = new Map<string, Buffer[]>();
  private bytes = 0;

  record(vlan: string, frame: Buffer): void {
    let list = this.frames.get(vlan);
    if (!list) this.frames.set(vlan, (list = []));
    while (list.length > 0 && (list.length >= KEPT || this.bytes + frame.length > KEPT_BYTES)) this.bytes -= list.shift()!.length;
    this.bytes += frame.length;
    list.push(Buffer.from(frame));
  }

  of(vlan: string): readonly Buffer[] {
    return this.frames.get(vlan) ?? [];
  }
}

/** What the verbs need of the partition: its name, and its promiscuous switch per virtual LAN. */
export interface CaptureFacts {
  readonly name: string;
  setPromiscuous(vlan: string, on: boolean): void;
}

/**
 * Seeing a virtual LAN's frames: `capture` streams every frame this
 * partition transmits on it as `capture-frame` messages until the asker
 * closes the channel (the CLI asks every member and merges: each frame of
 * the LAN is sent by exactly one); `promisc` and `promisc-frames` switch the
 * partition's promiscuous mode and read what it saw.
 */
export function captureVerbs(stack: StackPort, lpar: CaptureFacts, log: PromiscuousLog): LparVerbTable<'capture' | 'promisc' | 'promisc-frames'> {
  return {
    capture: (m, ch) => {
      const vlan = m.vlan;
      let dropped = 0;
      // When the collector falls behind, frames are counted and dropped rather than queued without bound.
      const tap = (frame: Buffer) => {
        if (!ch.link.writable) dropped++;
        else ch.send({ t: 'capture-frame', ts: performance.timeOrigin + performance.now(), frame, dropped });
      };
      ch.onClose(stack().tap(vlan, tap));
      return { vlan, node: lpar.name };
    },
    promisc: (m) => {
      lpar.setPromiscuous(m.vlan, m.on !== false);
      return {};
    },
    'promisc-frames': (m) => {
      const frames = log.of(m.vlan);
      return { count: frames.length, frames: frames.slice(-(m.last ?? 20)) };
    },
  };
}
