import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FabricSwitch, OUTPUT_LIMIT } from '../../services/fabric-switch/fabric-switch.ts';
import { authenticateTo, credentialFor, generateKey } from '../../shared/control/auth.ts';
import { ControlChannel } from '../../shared/control/channel.ts';
import { VI_HEADER, ViFlag, ViFrame } from '../../shared/link/frame.ts';
import type { Link, LinkServer } from '../../shared/link/link.ts';
import { connectUnix, listenUnix } from '../../shared/link/unix-link.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

/**
 * The switch plane in process, with real UNIX sockets to three nodes:
 * per-VI flow control (issue 11 item 1) and cut-through (issue 10 item 6).
 * VIs: rvi 1 n1/10 <-> n2/20, rvi 2 n1/11 <-> n3/30, rvi 3 n3/31 <-> n2/21.
 */
interface Node {
  link: Link;
  ch: ControlChannel;
  frames: Buffer[];
  flows: Array<{ vi: number; stop: boolean }>;
}

const log = pino({ level: 'silent' });

function viFrame(vi: number, payload: Buffer): Buffer {
  const f = Buffer.allocUnsafe(VI_HEADER + payload.length);
  ViFrame.emitHeader(f, vi, payload.length);
  payload.copy(f, VI_HEADER);
  return f;
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('FabricSwitch', () => {
  let dir: string;
  let sw: FabricSwitch;
  let server: LinkServer;
  let nodes: Record<string, Node>;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-sw-'));
    const key = generateKey();
    sw = new FabricSwitch('a', key, log);
    sw.loadTable(
      [
        ['n1', 1],
        ['n2', 2],
        ['n3', 3],
      ],
      [
        [1, 1, 10, 2, 20],
        [2, 1, 11, 3, 30],
        [3, 3, 31, 2, 21],
      ],
    );
    server = await listenUnix(path.join(dir, 'plane.sock'), (link) => void sw.acceptPort(link));
    nodes = {};
    for (const name of ['n1', 'n2', 'n3']) {
      const link = await connectUnix(path.join(dir, 'plane.sock'));
      const ch = new ControlChannel(link, log);
      const node: Node = { link, ch, frames: [], flows: [] };
      ch.onViFrame = (f) => {
        if (ViFrame.flagsOf(f) & ViFlag.Flow) node.flows.push({ vi: ViFrame.viOf(f), stop: (ViFrame.flagsOf(f) & ViFlag.Stop) !== 0 });
        else node.frames.push(Buffer.from(f));
      };
      await authenticateTo(ch, name, credentialFor(key, name));
      nodes[name] = node;
    }
  });

  afterEach(async () => {
    for (const n of Object.values(nodes)) n.link.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('cuts a frame larger than a read through as it arrives, byte-exact, with its VI rewritten', async () => {
    const payload = pattern(1024 * 1024, 7);
    nodes.n1.link.send(viFrame(10, payload));
    await waitFor('the frame at n2', () => nodes.n2.frames.length === 1);
    const got = nodes.n2.frames[0];
    expect(ViFrame.viOf(got)).toBe(20);
    expect(got.subarray(VI_HEADER).equals(payload)).toBe(true);
    expect(sw.stats.cutThrough).toBeGreaterThan(0);
  });

  it('holds an output for the frame being cut through to it: a frame from another input waits and follows it whole', async () => {
    const big = viFrame(10, pattern(300_000, 3));
    nodes.n1.link.send(big.subarray(0, 100_000));
    await waitFor('the frame under way', () => sw.stats.cutThrough === 1);
    nodes.n3.link.send(viFrame(31, Buffer.from('small, from n3')));
    await sleep(100);
    expect(nodes.n2.frames).toEqual([]);
    nodes.n1.link.send(big.subarray(100_000));
    await waitFor('both frames at n2', () => nodes.n2.frames.length === 2);
    expect(ViFrame.viOf(nodes.n2.frames[0])).toBe(20);
    expect(nodes.n2.frames[0].subarray(VI_HEADER).equals(big.subarray(VI_HEADER))).toBe(true);
    expect(ViFrame.viOf(nodes.n2.frames[1])).toBe(21);
    expect(nodes.n2.frames[1].subarray(VI_HEADER).toString()).toBe('small, from n3');
  });

  it('lets nothing the switch sends itself land inside a frame cut through: a control reply waits behind it', async () => {
    const big = viFrame(10, pattern(300_000, 11));
    nodes.n1.link.send(big.subarray(0, 100_000));
    await waitFor('the frame under way', () => sw.stats.cutThrough === 1);
    // n2 asks the switch something it does not know: the error reply goes to n2 while n2's output is held.
    const reply = nodes.n2.ch.request({ t: 'no-such-request' }).catch((err: Error) => err.message);
    await sleep(100);
    nodes.n1.link.send(big.subarray(100_000));
    expect(await reply).toMatch(/unknown request/);
    await waitFor('the frame at n2', () => nodes.n2.frames.length === 1);
    expect(nodes.n2.frames[0].subarray(VI_HEADER).equals(big.subarray(VI_HEADER))).toBe(true);
    expect(nodes.n2.link.closed).toBe(false);
  });

  it('lets no flow frame land inside a frame cut through to the port it is for', async () => {
    const big = viFrame(10, pattern(300_000, 13));
    nodes.n1.link.send(big.subarray(0, 100_000));
    await waitFor('the frame under way', () => sw.stats.cutThrough === 1);
    // n2 floods a reader that does not drain (n3): its stop notice goes to n2 while n2's output is held.
    nodes.n3.link.pause();
    const chunk = pattern(60_000, 2);
    for (let i = 0; i < 40 && sw.stats.flowStops === 0; i++) {
      nodes.n2.link.send(viFrame(21, chunk));
      await sleep(5);
    }
    await waitFor('a stop sent to n2', () => sw.stats.flowStops > 0);
    nodes.n1.link.send(big.subarray(100_000));
    await waitFor('the frame at n2', () => nodes.n2.frames.length === 1);
    expect(nodes.n2.frames[0].subarray(VI_HEADER).equals(big.subarray(VI_HEADER))).toBe(true);
    await waitFor('the stop for VI 21 at n2', () => nodes.n2.flows.some((f) => f.vi === 21 && f.stop));
    expect(nodes.n2.link.closed).toBe(false);
    nodes.n3.link.resume();
  });

  it('resets the output of a frame whose input closes part way (the stream behind it could not be resynchronised)', async () => {
    const big = viFrame(10, pattern(300_000, 5));
    nodes.n1.link.send(big.subarray(0, 100_000));
    await waitFor('the frame under way', () => sw.stats.cutThrough === 1);
    nodes.n1.link.close();
    await waitFor("n2's link reset", () => nodes.n2.link.closed);
    expect(sw.stats.cutThroughAborts).toBe(1);
  });

  it('tells only the VI into a reader that does not drain to stop, keeps the sender\'s other VI flowing, drops beyond the bound, and says go on once it drains', async () => {
    nodes.n2.link.pause();
    const chunk = pattern(60_000, 1);
    // Far more than the output's bound, in pieces small enough to arrive whole.
    const total = Math.ceil((OUTPUT_LIMIT * 2) / chunk.length);
    for (let i = 0; i < total; i++) {
      nodes.n1.link.send(viFrame(10, chunk));
      if (i % 16 === 15) await sleep(5);
    }
    await waitFor('a stop for VI 10', () => nodes.n1.flows.some((f) => f.vi === 10 && f.stop));
    expect(nodes.n1.flows.filter((f) => f.vi !== 10)).toEqual([]);
    // The sender's VI to n3 is not held back by n2.
    for (let i = 0; i < 20; i++) nodes.n1.link.send(viFrame(11, Buffer.from(`to n3 #${i}`)));
    await waitFor('all 20 at n3', () => nodes.n3.frames.length === 20);
    const n2 = (sw.status().ports as Array<Record<string, any>>).find((p) => p.node === 'n2')!;
    expect(n2.dropped).toBeGreaterThan(0);
    expect(sw.stats.congestionDropped).toBe(n2.dropped);
    expect(n2.queued).toBeLessThanOrEqual(OUTPUT_LIMIT + chunk.length + VI_HEADER);
    nodes.n2.link.resume();
    await waitFor('go on for VI 10', () => nodes.n1.flows.some((f) => f.vi === 10 && !f.stop), 10_000);
    await waitFor('the rest at n2', () => nodes.n2.frames.length === total - n2.dropped, 10_000);
  });

  it('stores and forwards whole frames while a fault is set, so drop and delay act on whole frames', async () => {
    const payload = pattern(1024 * 1024, 9);
    sw.faults.set({ kind: 'plane' }, { delayMs: 80 });
    const t0 = performance.now();
    nodes.n1.link.send(viFrame(10, payload));
    await waitFor('the delayed frame at n2', () => nodes.n2.frames.length === 1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
    expect(nodes.n2.frames[0].subarray(VI_HEADER).equals(payload)).toBe(true);
    sw.faults.set({ kind: 'plane' }, { delayMs: 0, dropPct: 100 });
    nodes.n1.link.send(viFrame(10, payload));
    await waitFor('the frame dropped', () => sw.stats.faultDropped === 1);
    sw.faults.clear();
    nodes.n1.link.send(viFrame(10, Buffer.from('after the faults')));
    await waitFor('the next frame at n2', () => nodes.n2.frames.length === 2);
    expect(nodes.n2.frames[1].subarray(VI_HEADER).toString()).toBe('after the faults');
    expect(sw.stats.cutThrough).toBe(0);
  });

  it('refuses a frame a node sends with flags set (only the switch sends flow frames)', async () => {
    const forged = ViFrame.emitFlow(10, true);
    nodes.n1.link.send(forged);
    nodes.n1.link.send(viFrame(10, Buffer.from('after')));
    await waitFor('the next frame at n2', () => nodes.n2.frames.length === 1);
    expect(nodes.n2.frames[0].subarray(VI_HEADER).toString()).toBe('after');
    expect(nodes.n2.flows).toEqual([]);
    expect(sw.stats.malformed).toBe(1);
  });
});
