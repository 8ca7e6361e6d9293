import { afterEach, describe, expect, it, vi } from 'vitest';
import { FaultInjector, targetKey, type FaultTarget } from '../../services/fabric-switch/fault-injector.ts';
import { prng } from '../helpers/prng.ts';

const plane: FaultTarget = { kind: 'plane' };
const port = (n: number): FaultTarget => ({ kind: 'port', port: n, name: `p${n}` });
const rvi = (n: number): FaultTarget => ({ kind: 'rvi', rvi: n });

function dropRate(fi: FaultInjector, samples: number, inPort = 1, outPort = 2, r = 5): number {
  let dropped = 0;
  for (let i = 0; i < samples; i++) if (fi.judge(inPort, outPort, r).drop) dropped++;
  return dropped / samples;
}

describe('FaultInjector', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('passes everything untouched when there is no fault', () => {
    const fi = new FaultInjector();
    expect(fi.active).toBe(false);
    expect(fi.judge(1, 2, 3)).toEqual({ drop: false, delayMs: 0 });
    expect(fi.list()).toEqual([]);
  });

  it('a cut port drops frames into and out of that port only', () => {
    const fi = new FaultInjector();
    fi.set(port(3), { cut: true });
    expect(fi.active).toBe(true);
    expect(fi.judge(3, 5, 1).drop).toBe(true); // entering at 3
    expect(fi.judge(5, 3, 1).drop).toBe(true); // leaving at 3
    expect(fi.judge(3, 3, 1).drop).toBe(true);
    for (const [a, b] of [
      [1, 2],
      [5, 4],
      [2, 1],
      [30, 13],
    ]) {
      expect(fi.judge(a, b, 1), `${a}->${b}`).toEqual({ drop: false, delayMs: 0 });
    }
    // Restoring it (cut: false, nothing else) removes the fault.
    fi.set(port(3), { cut: false });
    expect(fi.active).toBe(false);
    expect(fi.judge(3, 5, 1).drop).toBe(false);
  });

  it('rvi faults apply to that rvi only, whatever the ports', () => {
    const fi = new FaultInjector();
    fi.set(rvi(7), { cut: true });
    expect(fi.judge(1, 2, 7).drop).toBe(true);
    expect(fi.judge(9, 4, 7).drop).toBe(true);
    expect(fi.judge(1, 2, 8).drop).toBe(false);
    expect(fi.judge(7, 7, 6).drop).toBe(false); // port 7 is not rvi 7
    fi.set(rvi(7), { cut: false, delayMs: 10 });
    expect(fi.judge(1, 2, 7)).toEqual({ drop: false, delayMs: 10 });
    expect(fi.judge(1, 2, 8)).toEqual({ drop: false, delayMs: 0 });
  });

  it('a plane fault applies to every frame', () => {
    const fi = new FaultInjector();
    fi.set(plane, { cut: true });
    for (const [a, b, r] of [
      [1, 2, 0],
      [3, 4, 9],
    ]) {
      expect(fi.judge(a, b, r).drop).toBe(true);
    }
  });

  it('dropPct 100 drops everything, 0 nothing, 30 about 30% (10k samples)', () => {
    const fi = new FaultInjector();
    fi.set(port(1), { dropPct: 100 });
    expect(dropRate(fi, 10_000)).toBe(1);
    fi.set(port(1), { dropPct: 0 });
    expect(fi.active).toBe(false);
    expect(dropRate(fi, 10_000)).toBe(0);
    // 0 alongside another fault of the same target: still nothing dropped.
    fi.set(port(1), { dropPct: 0, delayMs: 1 });
    expect(dropRate(fi, 10_000)).toBe(0);
    fi.clear();
    fi.set(port(1), { dropPct: 30 });
    const rate = dropRate(fi, 10_000);
    // Binomial sd is 0.46%; 3% is far outside chance.
    expect(rate).toBeGreaterThan(0.27);
    expect(rate).toBeLessThan(0.33);
    // Only frames through port 1.
    expect(dropRate(fi, 2000, 4, 5)).toBe(0);
  });

  it('dropPct uses Math.random against the percentage at the edges', () => {
    const fi = new FaultInjector();
    fi.set(rvi(2), { dropPct: 30 });
    const random = vi.spyOn(Math, 'random');
    random.mockReturnValue(0.2999);
    expect(fi.judge(1, 2, 2).drop).toBe(true);
    random.mockReturnValue(0.3);
    expect(fi.judge(1, 2, 2).drop).toBe(false);
    fi.set(rvi(2), { dropPct: 100 });
    random.mockReturnValue(0.999999);
    expect(fi.judge(1, 2, 2).drop).toBe(true);
  });

  it('delay + jitter give delays in [delay, delay + jitter)', () => {
    const fi = new FaultInjector();
    fi.set(port(2), { delayMs: 50, jitterMs: 20 });
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 10_000; i++) {
      const v = fi.judge(1, 2, 0);
      expect(v.drop).toBe(false);
      min = Math.min(min, v.delayMs);
      max = Math.max(max, v.delayMs);
    }
    expect(min).toBeGreaterThanOrEqual(50);
    expect(max).toBeLessThan(70);
    // Spread over the range, not a constant.
    expect(max - min).toBeGreaterThan(15);

    const random = vi.spyOn(Math, 'random');
    random.mockReturnValue(0);
    expect(fi.judge(1, 2, 0).delayMs).toBe(50);
    random.mockReturnValue(0.9999999);
    expect(fi.judge(1, 2, 0).delayMs).toBeLessThan(70);
    random.mockRestore();

    // Delay without jitter is exact; jitter without delay is in [0, jitter).
    fi.set(port(2), { jitterMs: 0 });
    expect(fi.judge(1, 2, 0).delayMs).toBe(50);
    fi.set(port(2), { delayMs: 0, jitterMs: 5 });
    for (let i = 0; i < 1000; i++) {
      const d = fi.judge(2, 9, 0).delayMs;
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(5);
    }
    // Unaffected ports see no delay.
    expect(fi.judge(1, 3, 0)).toEqual({ drop: false, delayMs: 0 });
  });

  it('several faults on one frame: any drop drops it, the largest delay wins', () => {
    const fi = new FaultInjector();
    fi.set(plane, { delayMs: 5 });
    fi.set(port(1), { delayMs: 20 });
    fi.set(rvi(4), { delayMs: 10 });
    expect(fi.judge(1, 2, 4).delayMs).toBe(20);
    expect(fi.judge(2, 3, 4).delayMs).toBe(10);
    expect(fi.judge(2, 3, 5).delayMs).toBe(5);
    fi.set(rvi(4), { cut: true });
    expect(fi.judge(2, 3, 4).drop).toBe(true);
    expect(fi.judge(2, 3, 5).drop).toBe(false);
  });

  it('with a seeded random source the same seed gives the same verdicts, frame for frame', () => {
    const run = (seed: number) => {
      const fi = new FaultInjector(prng(seed));
      fi.set(port(1), { dropPct: 40, delayMs: 2, jitterMs: 30 });
      fi.set(rvi(9), { dropPct: 10 });
      return Array.from({ length: 2000 }, (_, i) => fi.judge(1 + (i % 3), 2, i % 2 ? 9 : 8));
    };
    const a = run(17);
    expect(run(17)).toEqual(a);
    expect(run(18)).not.toEqual(a);
    // The source drives both dice: some frames dropped, delays spread over the jitter.
    const dropped = a.filter((v) => v.drop).length;
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(a.length);
    expect(new Set(a.map((v) => v.delayMs)).size).toBeGreaterThan(100);
    // Math.random is not touched when a source is handed in.
    const random = vi.spyOn(Math, 'random');
    run(17);
    expect(random).not.toHaveBeenCalled();
  });

  it('the source is thrown against the percentage and scales the jitter', () => {
    let next = 0;
    const fi = new FaultInjector(() => next);
    fi.set(rvi(2), { dropPct: 30 });
    next = 0.2999;
    expect(fi.judge(1, 2, 2).drop).toBe(true);
    next = 0.3;
    expect(fi.judge(1, 2, 2).drop).toBe(false);
    fi.set(rvi(2), { dropPct: 0, delayMs: 10, jitterMs: 20 });
    next = 0.5;
    expect(fi.judge(1, 2, 2)).toEqual({ drop: false, delayMs: 20 });
  });

  it('set merges changes into the target fault; list shows them', () => {
    const fi = new FaultInjector();
    fi.set(port(1), { dropPct: 10 });
    fi.set(port(1), { delayMs: 3 });
    fi.set(rvi(1), { cut: true });
    const list = fi.list();
    expect(list).toHaveLength(2);
    const p1 = list.find((f) => f.target.kind === 'port')!;
    expect(p1).toMatchObject({ cut: false, dropPct: 10, delayMs: 3, jitterMs: 0 });
    expect(targetKey(p1.target)).toBe('port:1');
    expect(list.find((f) => f.target.kind === 'rvi')).toMatchObject({ cut: true, target: { kind: 'rvi', rvi: 1 } });
    // Port 1 and rvi 1 are different targets.
    expect(targetKey(port(1))).not.toBe(targetKey(rvi(1)));
    expect(targetKey(plane)).toBe('plane');
  });

  it('clear(target) removes that fault only; clear() removes all', () => {
    const fi = new FaultInjector();
    fi.set(plane, { delayMs: 1 });
    fi.set(port(3), { cut: true });
    fi.set(rvi(7), { cut: true });
    fi.clear(port(3));
    expect(fi.judge(3, 4, 0)).toEqual({ drop: false, delayMs: 1 });
    expect(fi.judge(3, 4, 7).drop).toBe(true);
    expect(fi.list().map((f) => targetKey(f.target)).sort()).toEqual(['plane', 'rvi:7']);
    // Clearing a target that has no fault is harmless.
    fi.clear(port(99));
    expect(fi.list()).toHaveLength(2);
    fi.clear();
    expect(fi.active).toBe(false);
    expect(fi.list()).toEqual([]);
    expect(fi.judge(3, 4, 7)).toEqual({ drop: false, delayMs: 0 });
  });
});
