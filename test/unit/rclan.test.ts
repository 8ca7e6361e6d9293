import { afterEach, describe, expect, it } from 'vitest';
import { VI_HEADER } from '../../shared/link/frame.ts';
import { RCLAN_HEADER, RclanKind, RclanPacket, emitRclanHeader, type RclanHeaderFields } from '../../shared/rclan/packet.ts';
import { SMCR_LINK_A, SMCR_LINK_B, SMCR_LINK_PURPOSES, smcrLinkPlane as linkPlane } from '../../shared/smc/link-purpose.ts';
import { RdmaError, Rvi, RviState, linkUsable, rviTransition, type LegPort, type RviEvent } from '../../shared/rclan/rvi.ts';
import { RviPair, SETTINGS, Wire, closedAfterEach, firstMismatch, makePayloads, prng, sendAll } from '../helpers/rvi-pair.ts';
import { sleep, waitForFast } from '../helpers/wait.ts';

const pair = closedAfterEach((seed) => new RviPair(seed));

/** The RCLAN packet of a VI frame seen on a wire, or undefined when unreadable. */
function parse(frame: Buffer): RclanPacket | undefined {
  return RclanPacket.tryParse(frame);
}

describe('Rvi over two in-memory wires', () => {
  it('(a) delivers 5000 mixed-size messages exactly once and in order over both legs, despite jitter reordering', async () => {
    const p = pair(1);
    p.wires[0].jitterMs = 1;
    p.wires[1].delayMs = 1;
    p.wires[1].jitterMs = 3;
    let sackSeen = 0;
    for (const w of p.wires) {
      w.tap = (from, f) => {
        if (from === 1 && (parse(f)?.sack ?? 0) !== 0) sackSeen++;
      };
    }
    const got: Buffer[] = [];
    p.b.onMessage = (m) => got.push(m);
    const undeliverable: number[] = [];
    p.a.onUndeliverable = (seq) => undeliverable.push(seq);

    const payloads = makePayloads(5000, prng(11));
    // Sent before any leg is up: it waits for the first heartbeats.
    expect(p.a.state).toBe(RviState.Connecting);
    await sendAll(p.a, payloads);
    await waitForFast('all delivered and acknowledged', () => got.length >= payloads.length && p.a.inFlight === 0, 10_000);
    await sleep(20);

    expect(got.length).toBe(payloads.length);
    expect(firstMismatch(payloads, got)).toBe(-1);
    expect(undeliverable).toEqual([]);
    expect(p.a.stats.sent).toBe(5000);
    expect(p.a.stats.acked).toBe(5000);
    expect(p.a.stats.undeliverable).toBe(0);
    expect(p.b.stats.received).toBe(5000);
    expect(p.a.stats.perLegSent[0]).toBeGreaterThan(500);
    expect(p.a.stats.perLegSent[1]).toBeGreaterThan(500);
    expect(p.a.state).toBe(RviState.Up);
    expect(p.b.state).toBe(RviState.Up);
    // The jitter did reorder: B acknowledged selectively.
    expect(sackSeen).toBeGreaterThan(0);
    expect(p.a.stats.bytesSent).toBe(payloads.reduce((n, x) => n + x.length, 0));
    expect(p.b.stats.bytesReceived).toBe(p.a.stats.bytesSent);
  });

  it('(b) loses 10% of one leg: everything still arrives in order, through retransmission', async () => {
    const p = pair(2);
    p.wires[1].drop = 0.1;
    const got: Buffer[] = [];
    p.b.onMessage = (m) => got.push(m);
    await p.bothUp();
    // Kept small: each loss costs a retransmission timeout (see the RTT test below).
    const payloads = makePayloads(200, prng(12), 2000);
    await sendAll(p.a, payloads);
    await waitForFast('all acknowledged', () => p.a.inFlight === 0, 10_000);

    expect(firstMismatch(payloads, got)).toBe(-1);
    expect(p.a.stats.retransmits).toBeGreaterThan(0);
    expect(p.wires[1].dropped).toBeGreaterThan(0);
    expect(p.a.stats.acked).toBe(payloads.length);
    expect(p.a.stats.undeliverable).toBe(0);
    // Loss is not death: both legs stayed up.
    expect(p.a.legs).toEqual(['up', 'up']);
  });

  // Messages held out of order behind a loss must not feed the RTT estimate
  // (their "RTT" would be the whole recovery time), and steady loss must not
  // pin the retransmission timer at its maximum.
  it('keeps the RTT estimate near the real round trip under loss', async () => {
    const p = pair(9);
    p.wires[1].drop = 0.1;
    await p.bothUp();
    const sending = sendAll(p.a, makePayloads(2000, prng(22), 2000), 30_000);
    sending.catch(() => {});
    await sleep(1000);
    // The wire's round trip is a few event-loop turns: a few ms at most.
    expect(p.a.rttMs).toBeGreaterThan(0);
    expect(p.a.rttMs).toBeLessThan(30);
  });

  it('(c) a cut leg is declared down within deadAfterMs + a tick, traffic fails over, and it comes back', async () => {
    const p = pair(3);
    const got: Buffer[] = [];
    let cutAt = 0;
    p.b.onMessage = (m) => {
      got.push(m);
      if (got.length === 1000) {
        p.wires[0].cut = true;
        cutAt = performance.now();
      }
    };
    let degradedAt = 0;
    p.a.onStateChange = (s) => {
      if (s === RviState.Degraded && cutAt > 0 && degradedAt === 0) degradedAt = performance.now();
    };
    await p.bothUp();
    const payloads = makePayloads(3000, prng(13), 2000);
    const sending = sendAll(p.a, payloads);
    await waitForFast('leg 0 down at A', () => cutAt > 0 && p.a.legs[0] === 'down', 5000);
    expect(degradedAt).toBeGreaterThan(0);
    // Heard last before the cut, declared dead by the first tick after deadAfterMs
    // (plus a little for timers firing late under load).
    expect(degradedAt - cutAt).toBeLessThanOrEqual(SETTINGS.deadAfterMs + 5 + 40);
    const leg0AtDown = p.a.stats.perLegSent[0];
    await sending;
    await waitForFast('all acknowledged', () => p.a.inFlight === 0, 10_000);

    expect(firstMismatch(payloads, got)).toBe(-1);
    expect(p.a.state).toBe(RviState.Degraded);
    expect(p.a.legs).toEqual(['down', 'up']);
    expect(p.b.legs[0]).toBe('down');
    expect(p.b.state).toBe(RviState.Degraded);
    expect(p.a.stats.legFailovers).toBeGreaterThanOrEqual(1);
    expect(p.a.stats.undeliverable).toBe(0);
    // Nothing went to the dead leg once it was down.
    expect(p.a.stats.perLegSent[0]).toBe(leg0AtDown);

    // Restore: heartbeats bring it back, and it carries traffic again.
    p.wires[0].cut = false;
    await waitForFast('both up again', () => p.a.state === RviState.Up && p.b.state === RviState.Up, 2000);
    const before = [...p.a.stats.perLegSent];
    const more = makePayloads(500, prng(14), 2000);
    await sendAll(p.a, more);
    await waitForFast('all acknowledged', () => p.a.inFlight === 0, 10_000);
    expect(firstMismatch([...payloads, ...more], got)).toBe(-1);
    expect(p.a.stats.perLegSent[0] - before[0]).toBeGreaterThan(100);
    expect(p.a.stats.perLegSent[1] - before[1]).toBeGreaterThan(100);
  });

  it('(d) with both legs detached, every unacknowledged message comes back once after undeliverableAfterMs; a reattached RVI starts a new epoch', async () => {
    const p = pair(4);
    const got: Buffer[] = [];
    let detachedAt = 0;
    p.b.onMessage = (m) => {
      got.push(m);
      if (got.length === 100 && detachedAt === 0) {
        p.detach(0);
        p.detach(1);
        detachedAt = performance.now();
      }
    };
    const undeliverable: Buffer[] = [];
    let firstUndeliverableAt = 0;
    p.a.onUndeliverable = (_seq, payload) => {
      if (firstUndeliverableAt === 0) firstUndeliverableAt = performance.now();
      undeliverable.push(payload);
    };
    let failedAt = 0;
    p.a.onStateChange = (s) => {
      if (s === RviState.Failed && failedAt === 0) failedAt = performance.now();
    };
    await p.bothUp();
    const payloads = makePayloads(300, prng(15), 2000);
    await sendAll(p.a, payloads, 5000);
    await waitForFast('everything acknowledged or given up', () => p.a.inFlight === 0, 5000);

    expect(detachedAt).toBeGreaterThan(0);
    expect(p.a.state).toBe(RviState.Failed);
    expect(failedAt - detachedAt).toBeGreaterThanOrEqual(SETTINGS.undeliverableAfterMs);
    expect(firstUndeliverableAt - detachedAt).toBeGreaterThanOrEqual(SETTINGS.undeliverableAfterMs);
    // B had nothing of its own to give up: it only waits.
    expect(p.b.state).toBe(RviState.Down);

    const acked = p.a.stats.acked;
    expect(acked + p.a.stats.undeliverable).toBe(payloads.length);
    expect(undeliverable.length).toBe(p.a.stats.undeliverable);
    // Exactly the unacknowledged ones, each once, in order.
    expect(new Set(undeliverable).size).toBe(undeliverable.length);
    expect(undeliverable).toEqual(payloads.slice(acked));
    for (let i = 0; i < undeliverable.length; i++) expect(undeliverable[i]).toBe(payloads[acked + i]);
    // What B delivered is an in-order prefix that includes every acknowledged message.
    expect(got.length).toBeGreaterThanOrEqual(acked);
    expect(firstMismatch(payloads.slice(0, got.length), got)).toBe(-1);

    // Reattach: new messages are delivered on a new epoch, nothing old twice.
    const epochs = new Set<number>();
    for (const w of p.wires) {
      w.tap = (from, f) => {
        const pkt = parse(f);
        if (from === 0 && pkt?.kind === RclanKind.Data) epochs.add(pkt.epoch);
      };
    }
    const before = got.length;
    p.attach(0);
    p.attach(1);
    await p.bothUp();
    const fresh = makePayloads(200, prng(16), 2000);
    await sendAll(p.a, fresh);
    await waitForFast('fresh acknowledged', () => p.a.inFlight === 0, 5000);
    await sleep(30);
    expect(got.slice(before)).toEqual(fresh);
    expect(firstMismatch(fresh, got.slice(before))).toBe(-1);
    expect([...epochs].every((e) => e > 0)).toBe(true);
    expect(p.a.stats.acked - acked).toBe(200);
    expect(p.a.stats.undeliverable).toBe(undeliverable.length);
  });

  it('(e) a paused receiver exhausts the sender\'s credit without losing anything; resume delivers all in order', async () => {
    const p = pair(5);
    const got: Buffer[] = [];
    p.b.onMessage = (m) => got.push(m);
    await p.bothUp();
    p.b.pause();
    const payloads = makePayloads(1000, prng(17), 2000);
    let accepted = 0;
    let refused = 0;
    const sending = (async () => {
      while (accepted < payloads.length) {
        if (p.a.send(payloads[accepted])) {
          accepted++;
          continue;
        }
        refused++;
        await new Promise<void>((r) => (p.a.onDrain = r));
      }
    })();
    // The window fills, B acknowledges what it holds with a shrinking credit, and it stops.
    await waitForFast('sender blocked', () => refused > 0 && !p.a.writable && p.b.stats.received >= SETTINGS.window, 3000);
    await sleep(150);
    const stuckAt = accepted;
    expect(got.length).toBe(0);
    expect(p.a.writable).toBe(false);
    expect(p.b.stats.received).toBe(SETTINGS.window);
    // One window held by B (acknowledged), one queued at A with no credit to go.
    expect(stuckAt).toBe(2 * SETTINGS.window);
    expect(p.a.stats.sent).toBe(SETTINGS.window);
    await sleep(100);
    expect(accepted).toBe(stuckAt);

    p.b.resume();
    await sending;
    await waitForFast('all acknowledged', () => p.a.inFlight === 0 && got.length >= payloads.length, 10_000);
    expect(firstMismatch(payloads, got)).toBe(-1);
    expect(p.a.stats.undeliverable).toBe(0);
    expect(p.a.stats.acked).toBe(payloads.length);
  });

  it('(f) RDMA WRITE: written when key and bounds are right, refused (region unchanged) otherwise', async () => {
    const p = pair(6);
    await p.bothUp();
    const region = p.b.registerRegion(Buffer.alloc(4096));
    const refusals: Array<[string, number]> = [];
    p.b.onRdmaRefused = (reason, r) => refusals.push([reason, r]);
    const write = (r: number, key: number, offset: number, data: Buffer): Promise<Error | undefined> =>
      new Promise((resolve) => {
        expect(p.a.rdmaWrite(r, key, offset, data, (err) => resolve(err))).toBe(true);
      });

    const data = Buffer.from('written by A, straight into the memory of B');
    expect(await write(region.id, region.key, 100, data)).toBeUndefined();
    expect(region.buffer.subarray(100, 100 + data.length).equals(data)).toBe(true);
    expect(region.buffer.subarray(0, 100).every((x) => x === 0)).toBe(true);

    // Larger than an inline body (head + body on the wire), and ending on the last byte.
    const big = Buffer.alloc(1000, 0x5a);
    expect(await write(region.id, region.key, 4096 - 1000, big)).toBeUndefined();
    expect(region.buffer.subarray(3096).equals(big)).toBe(true);

    const snapshot = Buffer.from(region.buffer);
    const wrongKey = await write(region.id, (region.key ^ 0x1) >>> 0, 100, Buffer.from('evil'));
    expect(wrongKey).toBeInstanceOf(RdmaError);
    expect((wrongKey as RdmaError).code).toBe('EKEY');
    expect(region.buffer.equals(snapshot)).toBe(true);

    const range = await write(region.id, region.key, 4000, Buffer.alloc(200, 1));
    expect((range as RdmaError).code).toBe('ERANGE');
    expect(region.buffer.equals(snapshot)).toBe(true);

    const noRegion = await write(region.id + 1000, region.key, 0, Buffer.from('x'));
    expect((noRegion as RdmaError).code).toBe('ENOREGION');
    expect(region.buffer.equals(snapshot)).toBe(true);

    expect(p.b.stats.rdmaRefused).toBe(3);
    expect(p.a.stats.rdmaWrites).toBe(5);
    expect(refusals.map(([, r]) => r)).toEqual([region.id, region.id, region.id + 1000]);

    // Data messages still flow in order around RDMA traffic.
    const got: Buffer[] = [];
    p.b.onMessage = (m) => got.push(m);
    const msgs = makePayloads(50, prng(18), 1000);
    await sendAll(p.a, msgs);
    await waitForFast('messages delivered', () => got.length === 50);
    expect(firstMismatch(msgs, got)).toBe(-1);
  });

  it('(g) a restarted peer: onPeerRestart fires once, and the new peer gets what is sent afterwards, in order', async () => {
    const p = pair(7);
    const oldGot: Buffer[] = [];
    const oldB = p.b;
    oldB.onMessage = (m) => oldGot.push(m);
    await p.bothUp();
    const first = makePayloads(300, prng(19), 1000);
    await sendAll(p.a, first);
    await waitForFast('first batch acknowledged', () => p.a.inFlight === 0);
    expect(firstMismatch(first, oldGot)).toBe(-1);

    // B restarts with A's messages still in flight.
    const second = makePayloads(600, prng(20), 1000);
    const newGot: Buffer[] = [];
    let newB: Rvi | undefined;
    let restarts = 0;
    let sentIndex = 0;
    let restartIndex = -1;
    let ackedAtRestart = -1;
    p.a.onPeerRestart = () => {
      restarts++;
      restartIndex = sentIndex;
      ackedAtRestart = p.a.stats.acked;
    };
    const undeliverable: Buffer[] = [];
    p.a.onUndeliverable = (_seq, m) => undeliverable.push(m);
    oldB.onMessage = (m) => {
      oldGot.push(m);
      if (oldGot.length === 400 && !newB) {
        newB = p.restartB();
        newB.onMessage = (x) => newGot.push(x);
      }
    };
    while (sentIndex < second.length) {
      if (p.a.send(second[sentIndex])) sentIndex++;
      else await new Promise<void>((r) => (p.a.onDrain = r));
    }
    await waitForFast('all acknowledged', () => p.a.inFlight === 0, 10_000);
    await sleep(30);

    expect(newB).toBeDefined();
    expect(restarts).toBe(1);
    expect(restartIndex).toBeGreaterThanOrEqual(100);
    expect(firstMismatch([...first, ...second].slice(0, oldGot.length), oldGot)).toBe(-1);
    // The new B got exactly what A sent after it learned of the restart.
    expect(firstMismatch(second.slice(restartIndex), newGot)).toBe(-1);
    // What the old B never acknowledged came back, once each.
    expect(undeliverable).toEqual(second.slice(ackedAtRestart - first.length, restartIndex));
    expect(p.a.stats.acked + p.a.stats.undeliverable).toBe(first.length + second.length);
    expect(p.a.state).toBe(RviState.Up);
    expect(newB!.state).toBe(RviState.Up);
  });

  it('(i) malformed RCLAN packets are counted and dropped, never thrown, and do not bring a leg up', () => {
    const port = (): LegPort => ({ attached: true, writable: true, send: () => true, sendParts: () => true });
    const ports: [LegPort, LegPort] = [port(), port()];
    const rvi = new Rvi(1, 7, 'peer', 'test', ports, SETTINGS, () => {}, performance.now());
    const fields = (over: Partial<RclanHeaderFields>): RclanHeaderFields => ({
      kind: RclanKind.Heartbeat,
      flags: 0,
      epoch: 0,
      incarnation: 1234,
      seq: 0,
      next: 0,
      ackEpoch: 0,
      window: 64,
      ackIncarnation: 0,
      ack: 0,
      sack: 0,
      ...over,
    });
    const emit = (over: Partial<RclanHeaderFields>, ext = 0) => emitRclanHeader(7, fields(over), ext, 0, 0);
    const bad: Buffer[] = [
      Buffer.alloc(0),
      Buffer.alloc(VI_HEADER),
      emit({}).subarray(0, VI_HEADER + RCLAN_HEADER - 1), // too short
      emit({ kind: 0 as RclanKind }),
      emit({ kind: 6 as RclanKind }),
      emit({ kind: 255 as RclanKind }),
      emit({ incarnation: 0 }),
      emit({ kind: RclanKind.RdmaWrite }), // no room for region, key, offset
      emit({ kind: RclanKind.RdmaNak }), // no room for the failed seq and reason
      emit({ kind: RclanKind.RdmaWrite }, 11).subarray(0, VI_HEADER + RCLAN_HEADER + 11),
    ];
    let n = 0;
    for (const f of bad) {
      expect(() => rvi.receive(n & 1, f, performance.now())).not.toThrow();
      n++;
      expect(rvi.stats.malformed).toBe(n);
    }
    expect(rvi.legs).toEqual(['down', 'down']);
    expect(rvi.state).toBe(RviState.Connecting);
    expect(rvi.stats.received).toBe(0);

    // A well-formed heartbeat is not malformed, and brings its leg up.
    rvi.receive(1, emit({}), performance.now());
    expect(rvi.stats.malformed).toBe(bad.length);
    expect(rvi.legs).toEqual(['down', 'up']);
    expect(rvi.state).toBe(RviState.Degraded);
  });
});

describe('rviTransition', () => {
  const states = Object.values(RviState);

  it('(h) gives the documented state for every (state, event) pair', () => {
    const expected = (s: RviState, e: RviEvent): RviState => {
      if (e.type === 'legs') {
        if (e.up === 2) return 'up';
        if (e.up === 1) return 'degraded';
        return s === 'connecting' || s === 'failed' ? s : 'down';
      }
      return s === 'down' || s === 'connecting' || s === 'failed' ? 'failed' : s;
    };
    const table: Array<[RviState, RviEvent, RviState]> = [
      ['connecting', { type: 'legs', up: 0 }, 'connecting'],
      ['connecting', { type: 'legs', up: 1 }, 'degraded'],
      ['connecting', { type: 'legs', up: 2 }, 'up'],
      ['connecting', { type: 'give-up' }, 'failed'],
      ['up', { type: 'legs', up: 0 }, 'down'],
      ['up', { type: 'legs', up: 1 }, 'degraded'],
      ['up', { type: 'legs', up: 2 }, 'up'],
      ['up', { type: 'give-up' }, 'up'],
      ['degraded', { type: 'legs', up: 0 }, 'down'],
      ['degraded', { type: 'legs', up: 1 }, 'degraded'],
      ['degraded', { type: 'legs', up: 2 }, 'up'],
      ['degraded', { type: 'give-up' }, 'degraded'],
      ['down', { type: 'legs', up: 0 }, 'down'],
      ['down', { type: 'legs', up: 1 }, 'degraded'],
      ['down', { type: 'legs', up: 2 }, 'up'],
      ['down', { type: 'give-up' }, 'failed'],
      ['failed', { type: 'legs', up: 0 }, 'failed'],
      ['failed', { type: 'legs', up: 1 }, 'degraded'],
      ['failed', { type: 'legs', up: 2 }, 'up'],
      ['failed', { type: 'give-up' }, 'failed'],
    ];
    expect(table.length).toBe(states.length * 4);
    for (const [s, e, want] of table) {
      expect(rviTransition(s, e), `${s} + ${JSON.stringify(e)}`).toBe(want);
      expect(expected(s, e)).toBe(want);
    }
  });
});

/**
 * Frames queued per port and delivered by hand: fully deterministic ordering,
 * for the protocol corner cases below.
 */
class QueuePort implements LegPort {
  attached = true;
  writable = true;
  readonly out: Buffer[] = [];
  send(frame: Buffer): boolean {
    this.out.push(Buffer.concat([frame]));
    return true;
  }
  sendParts(head: Buffer, body: Buffer): boolean {
    this.out.push(Buffer.concat([head, body]));
    return true;
  }
}

class Node {
  readonly ports: [QueuePort, QueuePort] = [new QueuePort(), new QueuePort()];
  readonly acks = new Set<Rvi>();
  readonly rvi: Rvi;
  readonly got: Buffer[] = [];
  constructor(id: number) {
    this.rvi = new Rvi(id, 7, 'peer', 'test', this.ports, SETTINGS, (r) => this.acks.add(r), performance.now());
    this.rvi.onMessage = (m) => this.got.push(m);
  }
  flushAcks(): void {
    for (const r of this.acks) r.flushAck();
    this.acks.clear();
  }
}

/** Delivers everything queued from `from` to `to` (and back) until both are quiet. */
function exchange(x: Node, y: Node): void {
  for (let round = 0; round < 100; round++) {
    x.flushAcks();
    y.flushAcks();
    let moved = 0;
    for (const [from, to] of [
      [x, y],
      [y, x],
    ]) {
      for (let leg = 0; leg < 2; leg++) {
        for (const f of from.ports[leg].out.splice(0)) {
          to.rvi.receive(leg, f, performance.now());
          moved++;
        }
      }
    }
    if (moved === 0 && x.acks.size === 0 && y.acks.size === 0) return;
  }
  throw new Error('never quiet');
}

describe('Rvi protocol corner cases (hand-delivered frames)', () => {
  it('a peer that comes and goes between messages loses nothing acknowledged (control)', () => {
    const a = new Node(1);
    const b = new Node(2);
    a.rvi.tick(performance.now());
    b.rvi.tick(performance.now());
    exchange(a, b);
    expect(a.rvi.state).toBe(RviState.Up);
    expect(b.rvi.state).toBe(RviState.Up);
    for (let i = 0; i < 10; i++) a.rvi.send(Buffer.from(`m${i}`));
    exchange(a, b);
    expect(b.got.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    expect(a.rvi.stats.acked).toBe(10);
  });

  // A restarted process must not adopt its peer's stream mid-way: packets still
  // addressed to its predecessor (their ackIncarnation names it) are ignored,
  // so a message is either delivered or reported undeliverable, never both.
  it('a message delivered by a restarted peer is never also reported undeliverable', () => {
    const a = new Node(1);
    const b1 = new Node(2);
    a.rvi.tick(performance.now());
    b1.rvi.tick(performance.now());
    exchange(a, b1);
    expect(a.rvi.state).toBe(RviState.Up);

    // B restarts; A, not knowing yet, sends its first message.
    const b2 = new Node(3);
    const undeliverable: string[] = [];
    let restarts = 0;
    a.rvi.onUndeliverable = (_seq, m) => undeliverable.push(String(m));
    a.rvi.onPeerRestart = () => restarts++;
    expect(a.rvi.send(Buffer.from('hello'))).toBe(true);
    exchange(a, b2);
    // The new B ignores what was meant for its predecessor; its heartbeat tells A it restarted.
    b2.rvi.tick(performance.now());
    exchange(a, b2);

    expect(restarts).toBe(1);
    const delivered = b2.got.map(String);
    // Either delivered (and then not undeliverable) or undeliverable (and then not delivered).
    expect(delivered.filter((m) => undeliverable.includes(m)), 'both delivered and undeliverable').toEqual([]);
    expect(delivered.length + undeliverable.length).toBe(1);
  });

  // Messages a paused receiver accepted and acknowledged are delivered on
  // resume() even when the peer's stream changed meanwhile.
  it('messages held by a paused receiver and acknowledged survive the sender starting a new epoch', async () => {
    const p = pair(8);
    const got: Buffer[] = [];
    p.b.onMessage = (m) => got.push(m);
    await p.bothUp();
    p.b.pause();
    const payloads = makePayloads(2 * SETTINGS.window, prng(21), 1000);
    for (const m of payloads.slice(0, SETTINGS.window)) expect(p.a.send(m)).toBe(true);
    // B holds one window (acknowledged, credit 0); A queues another one for lack of credit.
    await waitForFast('one window acknowledged', () => p.a.stats.acked === SETTINGS.window, 2000);
    for (const m of payloads.slice(SETTINGS.window)) expect(p.a.send(m)).toBe(true);
    await sleep(30);
    expect(p.a.stats.sent).toBe(SETTINGS.window);
    expect(got.length).toBe(0);
    // No leg for undeliverableAfterMs: A gives up what waits and starts a new epoch.
    p.detach(0);
    p.detach(1);
    await waitForFast('A failed', () => p.a.state === RviState.Failed, 2000);
    expect(p.a.stats.undeliverable).toBe(SETTINGS.window);
    p.attach(0);
    p.attach(1);
    await p.bothUp();
    await sleep(50);
    p.b.resume();
    await sleep(20);
    // Every acknowledged message is delivered.
    expect(got.length).toBe(p.a.stats.acked);
    expect(firstMismatch(payloads.slice(0, SETTINGS.window), got)).toBe(-1);
  });
});

/**
 * Two Rvis of one pinned purpose (an SMC-R link) over the same two in-memory
 * wires as RviPair: the wire of the other plane is there and passable, so
 * anything that used it would be seen.
 */
class PinnedPair {
  readonly wires: [Wire, Wire];
  readonly rvis: [Rvi, Rvi];
  private readonly timer: NodeJS.Timeout;

  constructor(seed: number, purpose: string) {
    const rand = prng(seed);
    const deliver = (to: 0 | 1, leg: number, frame: Buffer): void => this.rvis[to].receive(leg, frame, performance.now());
    this.wires = [new Wire(0, rand, deliver), new Wire(1, rand, deliver)];
    const make = (side: 0 | 1, id: number) =>
      new Rvi(id, 9, side === 0 ? 'b' : 'a', purpose, [this.wires[0].ports[side], this.wires[1].ports[side]], SETTINGS, (rvi) => setImmediate(() => rvi.flushAck()), performance.now());
    this.rvis = [make(0, 1), make(1, 2)];
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const r of this.rvis) r.tick(now);
    }, 5);
  }

  get a(): Rvi {
    return this.rvis[0];
  }
  get b(): Rvi {
    return this.rvis[1];
  }

  close(): void {
    clearInterval(this.timer);
    for (const w of this.wires) w.close();
  }
}

describe('SMC-R links: RVIs pinned to one plane', () => {
  const pinned: PinnedPair[] = [];
  const pinnedPair = (seed: number, purpose: string) => {
    const p = new PinnedPair(seed, purpose);
    pinned.push(p);
    return p;
  };
  afterEach(() => {
    for (const p of pinned.splice(0)) p.close();
  });

  it('linkPlane maps smcr-a to plane 0, smcr-b to plane 1, and every other purpose to both', () => {
    expect(linkPlane(SMCR_LINK_A)).toBe(0);
    expect(linkPlane(SMCR_LINK_B)).toBe(1);
    expect(SMCR_LINK_PURPOSES).toEqual(['smcr-a', 'smcr-b']);
    for (const other of ['mgmt', 'vlan', 'lan:blue', 'perf', 'data', 'smcr', 'smcr-c', '']) expect(linkPlane(other)).toBeUndefined();
    expect(new Rvi(1, 1, 'x', 'mgmt', [new QueuePort(), new QueuePort()], SETTINGS, () => {}, 0).plane).toBeUndefined();
  });

  for (const [purpose, leg] of [
    [SMCR_LINK_A, 0],
    [SMCR_LINK_B, 1],
  ] as const) {
    it(`${purpose} runs on plane ${leg} only: Up with its one leg, nothing ever on the other plane`, async () => {
      const p = pinnedPair(30 + leg, purpose);
      const other = leg ^ 1;
      let onOther = 0;
      p.wires[other].tap = () => onOther++;
      const got: Buffer[] = [];
      p.b.onMessage = (m) => got.push(m);
      expect(p.a.plane).toBe(leg);
      expect(linkUsable(p.a)).toBe(false);
      const payloads = makePayloads(2000, prng(40 + leg), 2000);
      await sendAll(p.a, payloads);
      await waitForFast('all acknowledged', () => p.a.inFlight === 0 && got.length === payloads.length, 10_000);
      await sleep(3 * SETTINGS.heartbeatMs);

      expect(firstMismatch(payloads, got)).toBe(-1);
      // One leg of one is the whole link: Up, never Degraded.
      for (const r of p.rvis) {
        expect(r.state).toBe(RviState.Up);
        expect(linkUsable(r)).toBe(true);
        expect(r.legs[leg]).toBe('up');
        expect(r.legs[other]).toBe('down');
        expect(r.stats.perLegSent[other]).toBe(0);
      }
      // No data, no acks, no heartbeats on the other plane.
      expect(onOther).toBe(0);
      expect(p.a.stats.perLegSent[leg]).toBeGreaterThanOrEqual(2000);
    });
  }

  it('a cut of its plane takes an smcr-a link Down after deadAfterMs, Failed with what waited reported undeliverable, and back Up when restored', async () => {
    const p = pinnedPair(33, SMCR_LINK_A);
    const got: Buffer[] = [];
    p.b.onMessage = (m) => got.push(m);
    await waitForFast('link up', () => p.a.state === RviState.Up && p.b.state === RviState.Up, 2000);
    const states: RviState[] = [];
    p.a.onStateChange = (s) => states.push(s);

    p.wires[0].cut = true;
    const cutAt = performance.now();
    await waitForFast('A down', () => p.a.state === RviState.Down, 2000);
    const downAfter = performance.now() - cutAt;
    expect(downAfter).toBeGreaterThanOrEqual(SETTINGS.deadAfterMs - 2 * SETTINGS.heartbeatMs);
    expect(downAfter).toBeLessThanOrEqual(SETTINGS.deadAfterMs + 5 + 40);
    expect(linkUsable(p.a)).toBe(false);
    // The other plane is fine and still unused: RCLAN did not fail over underneath SMC-R.
    expect(p.a.legs).toEqual(['down', 'down']);
    expect(p.a.stats.legFailovers).toBe(0);

    const undeliverable: string[] = [];
    p.a.onUndeliverable = (_seq, m) => undeliverable.push(String(m));
    expect(p.a.send(Buffer.from('lost with the link'))).toBe(true);
    await waitForFast('A failed', () => p.a.state === RviState.Failed, 2000);
    expect(undeliverable).toEqual(['lost with the link']);
    expect(states).toEqual([RviState.Down, RviState.Failed]);
    expect(p.a.stats.perLegSent[1]).toBe(0);

    p.wires[0].cut = false;
    await waitForFast('link up again', () => p.a.state === RviState.Up && p.b.state === RviState.Up, 2000);
    expect(linkUsable(p.a)).toBe(true);
    const before = got.length;
    for (let i = 0; i < 50; i++) expect(p.a.send(Buffer.from(`after ${i}`))).toBe(true);
    await waitForFast('delivered after restore', () => got.length === before + 50 && p.a.inFlight === 0, 5000);
    expect(got.slice(before).map(String)).toEqual(Array.from({ length: 50 }, (_, i) => `after ${i}`));
    expect(got.map(String)).not.toContain('lost with the link');
    expect(p.a.stats.perLegSent[1]).toBe(0);
  });

  it('a message in flight when the link dies and comes back within undeliverableAfterMs is delivered once, on the same plane', async () => {
    const p = pinnedPair(34, SMCR_LINK_B);
    const got: string[] = [];
    p.b.onMessage = (m) => got.push(String(m));
    await waitForFast('link up', () => p.a.state === RviState.Up && p.b.state === RviState.Up, 2000);
    p.wires[1].cut = true;
    expect(p.a.send(Buffer.from('waits'))).toBe(true);
    await waitForFast('A down', () => p.a.state === RviState.Down, 2000);
    p.wires[1].cut = false;
    await waitForFast('delivered', () => got.length === 1 && p.a.inFlight === 0, 2000);
    expect(got).toEqual(['waits']);
    expect(p.a.stats.undeliverable).toBe(0);
    expect(p.a.stats.perLegSent[0]).toBe(0);
  });

  it('frames arriving on the other plane are counted and dropped: they never bring that leg up', () => {
    const ports: [QueuePort, QueuePort] = [new QueuePort(), new QueuePort()];
    const rvi = new Rvi(1, 7, 'peer', SMCR_LINK_A, ports, SETTINGS, () => {}, performance.now());
    // A peer that (wrongly) runs on both planes heartbeats on both.
    const peer = new Node(2);
    peer.rvi.tick(performance.now());
    const onB = peer.ports[1].out.splice(0);
    expect(onB.length).toBeGreaterThan(0);
    for (const f of onB) rvi.receive(1, f, performance.now());
    expect(rvi.stats.offPlane).toBe(onB.length);
    expect(rvi.stats.malformed).toBe(0);
    expect(rvi.legs).toEqual(['down', 'down']);
    expect(rvi.state).toBe(RviState.Connecting);
    // Its own plane's frames are heard as usual.
    for (const f of peer.ports[0].out.splice(0)) rvi.receive(0, f, performance.now());
    expect(rvi.legs).toEqual(['up', 'down']);
    expect(rvi.state).toBe(RviState.Up);
    // Its heartbeats and acknowledgements go to plane 0 only, even with plane 1 attached.
    rvi.tick(performance.now() + SETTINGS.heartbeatMs);
    rvi.sendAck();
    expect(ports[0].out.length).toBeGreaterThan(0);
    expect(ports[1].out.length).toBe(0);
  });

  it('rviTransition of a one-leg RVI: its leg up is Up, never Degraded', () => {
    for (const s of Object.values(RviState)) {
      expect(rviTransition(s, { type: 'legs', up: 1, of: 1 })).toBe(RviState.Up);
      expect(rviTransition(s, { type: 'legs', up: 0, of: 1 })).toBe(rviTransition(s, { type: 'legs', up: 0 }));
    }
  });
});
