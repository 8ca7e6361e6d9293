import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticatePeer, authenticateTo, credentialFor, generateKey } from '../../shared/control/auth.ts';
import { ControlChannel } from '../../shared/control/channel.ts';
import { connectLink, listenLink } from '../../shared/link/transport.ts';

const log = pino({ level: 'silent' });
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A UNIX-socket link pair in a directory of its own; `onServer` gets the server side's channel. */
async function pair(onServer: (ch: ControlChannel) => void): Promise<ControlChannel> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-channel-'));
  const server = await listenLink(`unix:${path.join(dir, 's.sock')}`, (link) => onServer(new ControlChannel(link, log)));
  const ch = new ControlChannel(await connectLink(`unix:${path.join(dir, 's.sock')}`), log);
  cleanups.push(async () => {
    ch.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return ch;
}

describe('ControlChannel waits', () => {
  it('fails a wait for a notification at once when the link closes, not at its deadline', async () => {
    let serverSide!: ControlChannel;
    const ch = await pair((s) => (serverSide = s));
    const t0 = performance.now();
    const wait = ch.next('never', 60_000);
    await new Promise((r) => setTimeout(r, 20));
    serverSide.close();
    await expect(wait).rejects.toThrow(/closed/);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('ends a wait when its signal aborts, and a wait begun on a closed link fails at once', async () => {
    const ch = await pair(() => {});
    const stop = new AbortController();
    const wait = ch.next('never', 60_000, stop.signal);
    stop.abort();
    await expect(wait).rejects.toThrow(/stopped waiting for "never"/);
    ch.close();
    await new Promise((r) => setTimeout(r, 20));
    await expect(ch.next('never', 60_000)).rejects.toThrow(/closed/);
  });

  it('leaves no timer behind once a login is answered: the wait for the answer that did not come ends with it', async () => {
    const key = generateKey();
    let served: Promise<unknown> = Promise.resolve();
    const before = timers();
    const ch = await pair((s) => {
      served = authenticatePeer(s, key, () => 'mgmt').then(() => s.send({ t: 'welcome' }));
    });
    await authenticateTo(ch, 'mgmt', credentialFor(key, 'mgmt'));
    await served;
    ch.close();
    await new Promise((r) => setTimeout(r, 50));
    // Before the fix the 'refused' wait held a 5 s timer (every CLI command lingered 5 s after its reply).
    expect(timers()).toBeLessThanOrEqual(before);
  });
});
