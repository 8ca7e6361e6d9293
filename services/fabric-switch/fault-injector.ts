/**
 * Chaos on one plane: cut, drop a percentage of, or delay (with jitter, which
 * reorders) the frames of the whole plane, of one port, or of one RVI's VI.
 * Faults never look inside a frame either.
 *
 * The dice come from a random source handed in (smoltcp's FaultInjector is
 * seeded the same way): a seeded source makes a run with drops and jitter
 * repeatable frame for frame; the default is Math.random, looked up at each
 * throw.
 */

/** Uniform in [0, 1), as Math.random. */
export type RandomSource = () => number;

export interface Fault {
  cut: boolean;
  dropPct: number;
  delayMs: number;
  jitterMs: number;
}

export type FaultTarget = { kind: 'plane' } | { kind: 'port'; port: number; name: string } | { kind: 'rvi'; rvi: number };

export interface Verdict {
  drop: boolean;
  delayMs: number;
}

const PASS: Verdict = { drop: false, delayMs: 0 };

export function targetKey(t: FaultTarget): string {
  return t.kind === 'plane' ? 'plane' : t.kind === 'port' ? `port:${t.port}` : `rvi:${t.rvi}`;
}

export class FaultInjector {
  private readonly faults = new Map<string, Fault & { target: FaultTarget }>();

  constructor(private readonly random: RandomSource = () => Math.random()) {}

  get active(): boolean {
    return this.faults.size > 0;
  }

  set(target: FaultTarget, change: Partial<Fault>): void {
    const key = targetKey(target);
    const f = this.faults.get(key) ?? { cut: false, dropPct: 0, delayMs: 0, jitterMs: 0, target };
    Object.assign(f, change);
    if (!f.cut && f.dropPct === 0 && f.delayMs === 0 && f.jitterMs === 0) this.faults.delete(key);
    else this.faults.set(key, f);
  }

  clear(target?: FaultTarget): void {
    if (target) this.faults.delete(targetKey(target));
    else this.faults.clear();
  }

  list(): Array<Fault & { target: FaultTarget }> {
    return [...this.faults.values()];
  }

  /** What happens to a frame entering at `inPort`, leaving at `outPort`, on `rvi`. */
  judge(inPort: number, outPort: number, rvi: number): Verdict {
    if (this.faults.size === 0) return PASS;
    let drop = false;
    let delay = 0;
    for (const key of ['plane', `port:${inPort}`, `port:${outPort}`, `rvi:${rvi}`]) {
      const f = this.faults.get(key);
      if (!f) continue;
      if (f.cut || (f.dropPct > 0 && this.random() * 100 < f.dropPct)) drop = true;
      delay = Math.max(delay, f.delayMs + (f.jitterMs > 0 ? this.random() * f.jitterMs : 0));
    }
    return drop || delay > 0 ? { drop, delayMs: delay } : PASS;
  }
}
