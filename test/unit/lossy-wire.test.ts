import { afterEach, describe, expect, it } from 'vitest';
import { LossyWire, type Side } from '../helpers/lossy-wire.ts';
import { prng } from '../helpers/prng.ts';
import { sleep, waitForFast } from '../helpers/wait.ts';

const wires: LossyWire[] = [];
afterEach(() => {
  for (const w of wires.splice(0)) w.close();
});

function wire(seed: number, faults: Partial<Pick<LossyWire, 'drop' | 'dup' | 'delayMs' | 'jitterMs'>>) {
  const got: Array<[Side, number]> = [];
  const scheduled: Array<[Side, number, number]> = [];
  const w = new LossyWire(prng(seed), (to, f) => got.push([to, f.readUInt32BE(0)]));
  w.onSchedule = (to, f, delayMs) => scheduled.push([to, f.readUInt32BE(0), delayMs]);
  Object.assign(w, faults);
  wires.push(w);
  return { w, got, scheduled };
}

const frame = (i: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(i, 0);
  return b;
};

/** Sends `n` numbered frames, alternating sides, and waits until nothing is in transit. */
async function run(seed: number, faults: Partial<Pick<LossyWire, 'drop' | 'dup' | 'delayMs' | 'jitterMs'>>, n = 400) {
  const { w, got, scheduled } = wire(seed, faults);
  for (let i = 0; i < n; i++) w.send((i & 1) as Side, frame(i));
  await waitForFast('wire empty', () => w.inTransit === 0);
  return { got, scheduled, carried: w.carried, dropped: w.dropped, duplicated: w.duplicated };
}

describe('LossyWire', () => {
  it('is deterministic: the same seed drops, duplicates and reorders the same frames', async () => {
    const faults = { drop: 0.2, dup: 0.1, jitterMs: 8 };
    const a = await run(5, faults);
    const b = await run(5, faults);
    // The same frames dropped and duplicated, each copy with the same delay, so the same frames arrive.
    expect(b.scheduled).toEqual(a.scheduled);
    expect([b.carried, b.dropped, b.duplicated]).toEqual([a.carried, a.dropped, a.duplicated]);
    const sorted = (g: Array<[Side, number]>) => g.map(([, i]) => i).sort((x, y) => x - y);
    expect(sorted(b.got)).toEqual(sorted(a.got));
    expect(a.scheduled.length).toBe(a.carried);
    // Every fault happened, and the counters add up.
    expect(a.dropped).toBeGreaterThan(0);
    expect(a.duplicated).toBeGreaterThan(0);
    expect(a.carried).toBe(400 - a.dropped + a.duplicated);
    expect(a.got.length).toBe(a.carried);
    const order = a.got.map(([, i]) => i);
    expect(order).not.toEqual([...order].sort((x, y) => x - y));
    // Each frame goes to the other side.
    for (const [to, i] of a.got) expect(to).toBe((i & 1) ^ 1);
    const c = await run(6, faults);
    expect(c.scheduled).not.toEqual(a.scheduled);
  });

  it('delivers in order, asynchronously, with no faults set', async () => {
    const { w, got } = wire(1, {});
    for (let i = 0; i < 50; i++) w.send(0, frame(i));
    expect(got).toEqual([]);
    await waitForFast('all delivered', () => got.length === 50);
    expect(got.map(([, i]) => i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect([w.carried, w.dropped, w.duplicated]).toEqual([50, 0, 0]);
  });

  it('a duplicate is a copy, not the same buffer', async () => {
    const seen: Buffer[] = [];
    const w = new LossyWire(prng(2), (_to, f) => seen.push(f));
    wires.push(w);
    w.dup = 1;
    const f = frame(7);
    w.send(0, f);
    await waitForFast('two copies', () => seen.length === 2);
    expect(seen[0].equals(seen[1])).toBe(true);
    expect(seen.filter((s) => s === f)).toHaveLength(1);
  });

  it('a die whose fraction is 0 is not thrown: a fixed delay leaves the drop sequence alone', async () => {
    const dropsOnly = await run(9, { drop: 0.3 });
    const withDelay = await run(9, { drop: 0.3, delayMs: 1 });
    expect(withDelay.scheduled.map(([to, i]) => [to, i])).toEqual(dropsOnly.scheduled.map(([to, i]) => [to, i]));
    expect(withDelay.dropped).toBe(dropsOnly.dropped);
    // Without jitter, what is not dropped arrives in the order sent.
    expect(dropsOnly.got.map(([, i]) => i)).toEqual(dropsOnly.scheduled.map(([, i]) => i));
  });

  it('decide comes before the dice; its pass leaves the frame to them', async () => {
    const { w, got } = wire(3, { drop: 1 });
    w.send(0, frame(1), () => 'dup');
    w.send(0, frame(2), () => 'pass');
    w.send(0, frame(3), () => 'drop');
    await waitForFast('empty', () => w.inTransit === 0);
    expect(got.map(([, i]) => i)).toEqual([1, 1]);
    expect([w.dropped, w.duplicated]).toEqual([2, 1]);
  });

  it('a side that cannot receive loses frames sent to it and frames in transit to it', async () => {
    const { w, got } = wire(4, { delayMs: 20 });
    let away = false;
    w.canReceive = (side) => !(away && side === 1);
    w.send(0, frame(1)); // in transit when side 1 goes away
    away = true;
    w.send(0, frame(2)); // refused at once
    w.send(1, frame(3)); // the other way still works
    let asked = false;
    w.send(0, frame(4), () => ((asked = true), 'pass'));
    expect(asked).toBe(false);
    await waitForFast('empty', () => w.inTransit === 0);
    expect(got).toEqual([[0, 3]]);
    expect(w.dropped).toBe(3);
  });

  it('close cancels everything in transit, and nothing is delivered after', async () => {
    const { w, got } = wire(8, { delayMs: 30, jitterMs: 30 });
    for (let i = 0; i < 20; i++) w.send(0, frame(i));
    expect(w.inTransit).toBe(20);
    w.close();
    expect(w.inTransit).toBe(0);
    w.send(0, frame(99));
    await sleep(80);
    expect(got).toEqual([]);
    expect(w.dropped).toBe(1);
  });
});
