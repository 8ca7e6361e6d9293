import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ControlChannel } from '../../shared/control/channel.ts';
import { authenticateTo } from '../../shared/control/auth.ts';
import { MAX_FRAME } from '../../shared/link/frame.ts';
import { PRE_AUTH } from '../../shared/link/pre-auth.ts';
import { connectLink } from '../../shared/link/transport.ts';
import { processLogger } from '../../shared/runtime/log.ts';
import { fabricAddresses } from '../../services/supervisor/process-plan.ts';
import { TEST_PLATFORM, TestPlatform } from '../helpers/platform.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const log = processLogger('test', 'test');

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** A raw WebSocket to a listener, no authentication: what any local user can open. */
function rawWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(0);
    ws.once('close', () => resolve(Date.now() - t0));
    ws.on('error', () => {});
  });
}

/** A frame as the links carry it: length prefix, type byte, body. */
function frame(type: number, body: number): Buffer {
  const f = Buffer.alloc(5 + body, 0x41);
  f.writeUInt32BE(1 + body, 0);
  f[4] = type;
  return f;
}

/** Issue 11 item 10: a listener on `transport: ws` before authentication. */
describe('WebSocket listeners before authentication', () => {
  let p: TestPlatform;
  let planeUrl: string;

  beforeAll(async () => {
    const basePort = 20_000 + Math.floor(Math.random() * 20_000);
    p = await TestPlatform.boot(`${TEST_PLATFORM}\ntransport: ws\nws: { host: 127.0.0.1, basePort: ${basePort} }\n`);
    planeUrl = fabricAddresses(p.runDir.readPlatform(), p.runDir).planes[0].url;
  }, 180_000);
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('cuts off a peer that sends big messages before authenticating, without the plane growing', async () => {
    const pid = p.pid('plane-a');
    const before = rssKb(pid);
    // 10 connections, each one 20 MB message: what the plane would buffer without a pre-auth budget is 200 MB.
    const conns = await Promise.all(Array.from({ length: 10 }, () => rawWs(planeUrl)));
    const times = conns.map(closed);
    const big = frame(2, 20 * 1024 * 1024 - 5);
    for (const ws of conns) ws.send(big, { binary: true });
    await Promise.all(times);
    await sleep(500);
    expect(rssKb(pid) - before).toBeLessThan(64 * 1024);
    // Cut off for the bytes, not (only) at the authentication deadline.
    await waitFor('the plane logs the byte budget', () => new RegExp(`more than ${PRE_AUTH.budget} bytes before authentication`).test(fs.readFileSync(p.runDir.logFile('plane-a'), 'utf8')), 10_000, 100);
    expect((await p.admin('plane-a', { t: 'status' })).health).toBe('healthy');
  }, 60_000);

  it('cuts off a peer that never authenticates once the deadline passes', async () => {
    const ws = await rawWs(planeUrl);
    const took = await closed(ws);
    expect(took).toBeGreaterThan(PRE_AUTH.deadlineMs - 1000);
    // Generous: timers run late on a loaded box.
    expect(took).toBeLessThan(PRE_AUTH.deadlineMs + 10_000);
  }, 30_000);

  it('logs a flood of malformed frames at a bounded rate', async () => {
    const logFile = p.runDir.logFile('plane-a');
    const linesBefore = fs.readFileSync(logFile, 'utf8').split('\n').length;
    // 20,000 malformed frames, 100 per connection over 200 connections.
    const bad = Buffer.concat(Array.from({ length: 100 }, () => Buffer.from([0, 0, 0, 2, 2, 0xc1])));
    for (let round = 0; round < 20; round++) {
      const conns = await Promise.all(Array.from({ length: 10 }, () => rawWs(planeUrl)));
      await Promise.all(
        conns.map((ws) => {
          const c = closed(ws);
          for (let i = 0; i < 100; i++) ws.send(bad.subarray(i * 6, i * 6 + 6), { binary: true });
          ws.close();
          return c;
        }),
      );
    }
    await sleep(500);
    const lines = fs.readFileSync(logFile, 'utf8').split('\n').length - linesBefore;
    // The flood took a second or more; the refusal log writes at most ten lines a second.
    expect(lines).toBeLessThan(200);
    expect((await p.admin('plane-a', { t: 'status' })).health).toBe('healthy');
  }, 60_000);

  it('applies MAX_FRAME after authentication too', async () => {
    // lpar2 proves who it is (the real one stopped, so it does not take its port back meanwhile), then sends
    // a message one byte over the frame limit.
    await p.kill('lpar2', 'STOP');
    const link = await connectLink(planeUrl);
    const ch = new ControlChannel(link, log);
    await authenticateTo(ch, 'lpar2', p.runDir.readCredential('lpar2'));
    const gone = new Promise<void>((r) => ch.onClose(() => r()));
    link.send(frame(1, MAX_FRAME));
    const cut = await Promise.race([gone.then(() => true), sleep(10_000).then(() => false)]);
    link.close();
    await p.kill('lpar2', 'CONT');
    expect(cut).toBe(true);
    // lpar2 attaches its port again and the plane carries traffic as before.
    await waitFor('lpar2 healthy again', async () => (await p.admin('lpar2', { t: 'status' })).health === 'healthy', 30_000, 100);
  }, 60_000);
});
