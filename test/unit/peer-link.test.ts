import { describe, expect, it } from 'vitest';
import { RviState } from '../../shared/rclan/rvi.ts';
import { RclanPair, SETTINGS, closedAfterEach, firstMismatch, makePayloads, prng, sendAll } from '../helpers/rvi-pair.ts';
import { sleep, waitForFast } from '../helpers/wait.ts';

/**
 * Issue 10 item 2: liveness per (node, peer node, plane), shared by the RVIs
 * to that peer (shared/rclan/peer-link.ts), with data and acks counting as
 * liveness and a quiet link costing nothing. What seed 004's RCLAN layer fixes
 * still holds: a hung peer or plane is found within deadAfterMs, both legs
 * carry traffic, failover delivers exactly once.
 */
const pair = closedAfterEach((seed) => new RclanPair(seed));

/** Timers fire late on a loaded box: detection may take deadAfterMs plus a tick plus this. */
const SLACK = 60;

describe('peer links: liveness per peer and plane, not per RVI', () => {
  it('a new RVI to a peer already heard is up at once, with no handshake of its own', async () => {
    const p = pair(1);
    const [a1, b1] = p.add(1, 'mgmt');
    await waitForFast('first RVI up', () => a1.state === RviState.Up && b1.state === RviState.Up, 2000);
    const [a2, b2] = p.add(2, 'lan:x');
    expect(a2.state).toBe(RviState.Up);
    expect(b2.state).toBe(RviState.Up);
    expect(p.nodes[0].links.size).toBe(1);
  });

  it('heartbeats go per plane to the peer, whatever the number of RVIs to it', async () => {
    const p = pair(2);
    for (let i = 1; i <= 20; i++) p.add(i, `p${i}`);
    await waitForFast('all up', () => [...p.nodes[0].rvis.values()].every((r) => r.state === RviState.Up), 2000);
    const before = p.frames;
    await sleep(10 * SETTINGS.heartbeatMs);
    const perInterval = (p.frames - before) / 10;
    // Two nodes × two planes → about 4 heartbeats an interval; one per RVI and leg would be 80.
    expect(perInterval).toBeLessThan(8);
  });

  it('a hung peer is found within deadAfterMs by every RVI to it, and what was in flight fails once', async () => {
    const p = pair(3);
    const rvis = [p.add(1, 'mgmt'), p.add(2, 'vlan'), p.add(3, 'lan:x')];
    const [a] = rvis[2];
    await waitForFast('up', () => rvis.every(([x, y]) => x.state === RviState.Up && y.state === RviState.Up), 2000);
    const downAt: number[] = [];
    for (const [x] of rvis) x.onStateChange = (s) => s === RviState.Down && downAt.push(performance.now());
    const undeliverable: number[] = [];
    a.onUndeliverable = (seq) => undeliverable.push(seq);
    const got: Buffer[] = [];
    rvis[2][1].onMessage = (m) => got.push(m);
    const sending = sendAll(a, makePayloads(5000, prng(3), 1000), 20_000).catch(() => {});
    await waitForFast('stream under way', () => got.length > 100, 2000);
    p.hungB = true;
    const hungAt = performance.now();
    await waitForFast('every RVI to B down', () => downAt.length === 3, 2000);
    for (const t of downAt) expect(t - hungAt).toBeLessThanOrEqual(SETTINGS.deadAfterMs + 20 + SLACK);
    await waitForFast('A gave up on what waited', () => a.state === RviState.Failed, 5000);
    expect(undeliverable.length).toBeGreaterThan(0);
    expect(new Set(undeliverable).size).toBe(undeliverable.length);
    await sending;
  });

  it('a hung plane is found within deadAfterMs; traffic fails over to the other, exactly once and in order', async () => {
    const p = pair(4);
    const [a, b] = p.add(1, 'lan:x');
    const [m] = p.add(2, 'mgmt');
    await waitForFast('up', () => a.state === RviState.Up && b.state === RviState.Up, 2000);
    const got: Buffer[] = [];
    let cutAt = 0;
    b.onMessage = (x) => {
      got.push(x);
      if (got.length === 1000) {
        p.wires[0].cut = true;
        cutAt = performance.now();
      }
    };
    let degradedAt = 0;
    let idleDegradedAt = 0;
    a.onStateChange = (s) => s === RviState.Degraded && cutAt > 0 && (degradedAt ||= performance.now());
    // The idle RVI to the same peer learns of the plane from the shared link: it sent nothing itself.
    m.onStateChange = (s) => s === RviState.Degraded && cutAt > 0 && (idleDegradedAt ||= performance.now());
    const payloads = makePayloads(4000, prng(14), 2000);
    await sendAll(a, payloads, 20_000);
    await waitForFast('all acknowledged', () => a.inFlight === 0 && got.length === payloads.length, 10_000);
    expect(degradedAt - cutAt).toBeLessThanOrEqual(SETTINGS.deadAfterMs + 20 + SLACK);
    expect(idleDegradedAt - cutAt).toBeLessThanOrEqual(SETTINGS.deadAfterMs + 20 + SLACK);
    expect(firstMismatch(payloads, got)).toBe(-1);
    expect(a.stats.undeliverable).toBe(0);
    expect(a.stats.legFailovers).toBeGreaterThanOrEqual(1);
    // Both legs carried traffic before the cut.
    expect(a.stats.perLegSent[0]).toBeGreaterThan(200);
    expect(a.stats.perLegSent[1]).toBeGreaterThan(200);
    p.wires[0].cut = false;
    await waitForFast('both legs back', () => a.state === RviState.Up && m.state === RviState.Up, 2000);
  });

  it('a quiet link sends nothing; a plane that hung while quiet is found within deadAfterMs of the next send, and the message arrives once', async () => {
    const p = pair(5);
    const [a, b] = p.add(1, 'lan:x');
    await waitForFast('up', () => a.state === RviState.Up && b.state === RviState.Up, 2000);
    const link = p.nodes[0].links.get('b')!;
    await waitForFast('quiet', () => !link.awake && !p.nodes[1].links.get('a')!.awake, 4 * SETTINGS.deadAfterMs + 500);
    // A probe still on its way when the links went quiet is answered once; nothing after that.
    await sleep(2 * SETTINGS.heartbeatMs);
    const before = p.frames;
    await sleep(5 * SETTINGS.heartbeatMs);
    expect(p.frames - before).toBe(0);
    // Its legs keep their last state: the RVI is still usable.
    expect(a.state).toBe(RviState.Up);

    p.wires[0].cut = true;
    const got: string[] = [];
    b.onMessage = (m) => got.push(String(m));
    let degradedAt = 0;
    a.onStateChange = (s) => s === RviState.Degraded && (degradedAt ||= performance.now());
    const sentAt = performance.now();
    for (let i = 0; i < 10; i++) expect(a.send(Buffer.from(`m${i}`))).toBe(true);
    await waitForFast('delivered', () => got.length === 10 && a.inFlight === 0, 3000);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    await waitForFast('leg 0 down', () => degradedAt > 0, 2000);
    expect(degradedAt - sentAt).toBeLessThanOrEqual(SETTINGS.deadAfterMs + 20 + SLACK);
    expect(a.stats.undeliverable).toBe(0);
  });

  it('one message to a quiet peer costs its exchange and about a probe per leg: both links are quiet again within a few heartbeat intervals', async () => {
    const p = pair(9);
    const [a, b] = p.add(1, 'lan:x');
    await waitForFast('up', () => a.state === RviState.Up && b.state === RviState.Up, 2000);
    const links = [p.nodes[0].links.get('b')!, p.nodes[1].links.get('a')!];
    await waitForFast('quiet', () => links.every((l) => !l.awake), 4 * SETTINGS.deadAfterMs + 500);
    await sleep(2 * SETTINGS.heartbeatMs);
    const got: string[] = [];
    b.onMessage = (m) => got.push(String(m));
    const before = p.frames;
    const sentAt = performance.now();
    a.send(Buffer.from('hello'));
    await waitForFast('delivered and quiet again', () => got.length === 1 && links.every((l) => !l.awake), 2000);
    // Lingering for 2 x deadAfterMs, as links once did, heartbeats both legs both ways ten times over (40 frames or more).
    expect(performance.now() - sentAt).toBeLessThan(SETTINGS.deadAfterMs);
    await sleep(2 * SETTINGS.heartbeatMs);
    expect(p.frames - before).toBeLessThanOrEqual(12);
    expect(a.state).toBe(RviState.Up);
  });

  it('a hung plane is found within deadAfterMs by a quiet link too, through the links still awake (per port); back, the quiet one has the leg again without waking to probe it', async () => {
    const p = pair(7);
    const [quietA, quietB] = p.add(1, 'lan:x');
    // Node B also plays a third node "c" (its own RVI and peer name), kept busy the way the driver keeps a control node's link.
    const busyA = p.nodes[0].add({ id: 2, vi: 2, peer: 'c', purpose: 'vlan' });
    const busyC = p.nodes[1].add({ id: 2, vi: 2, peer: 'a2', purpose: 'vlan' });
    await waitForFast('up', () => [quietA, quietB, busyA, busyC].every((r) => r.state === RviState.Up), 2000);
    const keepBusy = setInterval(() => {
      busyA.send(Buffer.from('tick'));
      busyC.send(Buffer.from('tock'));
    }, SETTINGS.heartbeatMs / 2);
    try {
      await waitForFast('A-B quiet', () => !p.nodes[0].links.get('b')!.awake, 4 * SETTINGS.deadAfterMs + 500);
      let degradedAt = 0;
      quietA.onStateChange = (s) => s === RviState.Degraded && (degradedAt ||= performance.now());
      p.wires[0].cut = true;
      const cutAt = performance.now();
      await waitForFast('quiet RVI degraded', () => degradedAt > 0, 2000);
      expect(degradedAt - cutAt).toBeLessThanOrEqual(SETTINGS.deadAfterMs + 20 + SLACK);
      expect(quietA.legs).toEqual(['down', 'up']);
      const quietLink = p.nodes[0].links.get('b')!;
      const wakes = quietLink.stats.wakes;
      p.wires[0].cut = false;
      await waitForFast('quiet RVI up again', () => quietA.state === RviState.Up && quietB.state === RviState.Up, 2000);
      // The plane's verdict is undone by the plane heard again: no wake, no probe of a link nobody uses (issue 10).
      expect(quietLink.stats.wakes).toBe(wakes);
      expect(quietLink.awake).toBe(false);
      expect(quietA.legs).toEqual(['up', 'up']);
    } finally {
      clearInterval(keepBusy);
    }
  });

  it('a hung peer is not taken for a hung plane: the quiet links to others keep both legs', async () => {
    const p = pair(8);
    const [quietA] = p.add(1, 'lan:x');
    const busyA = p.nodes[0].add({ id: 2, vi: 2, peer: 'c', purpose: 'vlan' });
    p.nodes[1].add({ id: 2, vi: 2, peer: 'a2', purpose: 'vlan' });
    await waitForFast('up', () => quietA.state === RviState.Up && busyA.state === RviState.Up, 2000);
    const keepBusy = setInterval(() => busyA.send(Buffer.from('tick')), SETTINGS.heartbeatMs / 2);
    try {
      await waitForFast('A-B quiet', () => !p.nodes[0].links.get('b')!.awake, 4 * SETTINGS.deadAfterMs + 500);
      // "c" hangs (both planes silent): its own link goes down, the quiet one is not touched.
      p.hungB = true;
      await waitForFast('c down', () => busyA.state === RviState.Down, 2000);
      expect(quietA.state).toBe(RviState.Up);
    } finally {
      clearInterval(keepBusy);
    }
  });

  it('one VI lost while the peer is heard: its own data unacknowledged takes it down in 2.5 deadAfterMs, the rest stay up, and probes bring it back', async () => {
    const p = pair(9);
    const [a, b] = p.add(1, 'lan:x');
    const [other] = p.add(2, 'mgmt');
    await waitForFast('up', () => a.state === RviState.Up && b.state === RviState.Up && other.state === RviState.Up, 2000);
    const keepBusy = setInterval(() => other.send(Buffer.from('tick')), SETTINGS.heartbeatMs / 2);
    try {
      p.cutVis.add(1);
      const undeliverable: string[] = [];
      a.onUndeliverable = (_seq, m) => undeliverable.push(String(m));
      let downAt = 0;
      a.onStateChange = (s) => s === RviState.Down && (downAt ||= performance.now());
      const sentAt = performance.now();
      expect(a.send(Buffer.from('lost'))).toBe(true);
      await waitForFast('the cut RVI down', () => downAt > 0, 2000);
      // One leg after 2 x deadAfterMs, the other (which the data failed over to) half a deadAfterMs later.
      expect(downAt - sentAt).toBeLessThanOrEqual(2.5 * SETTINGS.deadAfterMs + 20 + SLACK);
      expect(other.state).toBe(RviState.Up);
      await waitForFast('reported undeliverable', () => undeliverable.length === 1, 2000);
      expect(undeliverable).toEqual(['lost']);
      p.cutVis.clear();
      await waitForFast('back up by its probes', () => a.state === RviState.Up, 2000);
      const got: string[] = [];
      b.onMessage = (m) => got.push(String(m));
      a.send(Buffer.from('after'));
      await waitForFast('delivered', () => got.length === 1 && a.inFlight === 0, 2000);
      expect(got).toEqual(['after']);
    } finally {
      clearInterval(keepBusy);
    }
  });

  it('a peer restarted while the link was quiet is noticed at the next send: onPeerRestart once, and the new peer gets what follows', async () => {
    const p = pair(6);
    const [a, b] = p.add(1, 'lan:x');
    await waitForFast('up', () => a.state === RviState.Up && b.state === RviState.Up, 2000);
    await waitForFast('quiet', () => !p.nodes[0].links.get('b')!.awake, 4 * SETTINGS.deadAfterMs + 500);
    let restarts = 0;
    a.onPeerRestart = () => restarts++;
    // The new B knows the RVI (the fabric manager's welcome) and says hello; drop that hello, as if it raced the add at A.
    p.hungB = true;
    const b2 = p.restartB().add({ id: 1, vi: 1, peer: 'a', purpose: 'lan:x' });
    p.hungB = false;
    const got: string[] = [];
    b2.onMessage = (m) => got.push(String(m));
    for (let i = 0; i < 5; i++) a.send(Buffer.from(`n${i}`));
    await waitForFast('restart seen', () => restarts === 1, 3000);
    for (let i = 5; i < 10; i++) a.send(Buffer.from(`n${i}`));
    await waitForFast('later ones delivered', () => got.includes('n9') && a.inFlight === 0, 3000);
    expect(restarts).toBe(1);
    // Each message is either delivered or reported undeliverable, in order, never both.
    expect(got.slice(-5)).toEqual(['n5', 'n6', 'n7', 'n8', 'n9']);
    expect(got.length + a.stats.undeliverable).toBe(10);
  });
});
