import { afterEach, describe, expect, it } from 'vitest';
import { TcpFlag, seqAdd } from '../../shared/wire/tcp.ts';
import { Pair, SETTINGS } from '../helpers/tcp-pair.ts';
import { sleep, waitForFast } from '../helpers/wait.ts';

/**
 * What keeps closing connections from living for good (issue 11 item 3): an
 * orphaned FIN-WAIT-2 has a timer (Linux tcp_fin_timeout), and out-of-window
 * pure ACKs are answered at most once per 500 ms (Linux tcp_invalid_ratelimit),
 * so two ends that find each other's ACKs out of window cannot ACK each other
 * for good. Real TcpConnections over the in-memory wire of test/helpers/tcp-pair.ts.
 */
let pair: Pair | undefined;
afterEach(() => {
  pair?.dispose();
  pair = undefined;
});

describe('TcpConnection: bounded closes', () => {
  it('an orphaned connection leaves FIN-WAIT-2 after finWait2Ms; one whose socket still reads stays', async () => {
    pair = new Pair(31, { ...SETTINGS, finWait2Ms: 300 });
    const p = pair;
    await p.open();
    // The peer never closes: its FIN never comes.
    p.a.c.close(true);
    await waitForFast('a FIN-WAIT-2', () => p.a.state === 'FIN-WAIT-2');
    await waitForFast('a gone', () => p.a.state === 'CLOSED', 3000);
    expect(p.b.state).toBe('CLOSE-WAIT');

    pair.dispose();
    pair = new Pair(32, { ...SETTINGS, finWait2Ms: 300 });
    const q = pair;
    await q.open();
    q.a.close();
    await waitForFast('a FIN-WAIT-2', () => q.a.state === 'FIN-WAIT-2');
    await sleep(600);
    // A half-close: the socket may still read what the peer sends.
    expect(q.a.state).toBe('FIN-WAIT-2');
  });

  it('out-of-window pure ACKs draw at most one ACK per 500 ms (no ACK loop)', async () => {
    pair = new Pair(33);
    const p = pair;
    await p.open();
    const { rcvNxt } = p.a.info();
    const before = p.a.sent.length;
    for (let i = 0; i < 20; i++) p.inject(0, { seq: seqAdd(rcvNxt, 1_000_000), ack: p.a.info().sndNxt, flags: TcpFlag.Ack });
    expect(p.a.sent.length - before).toBe(1);
    await sleep(550);
    p.inject(0, { seq: seqAdd(rcvNxt, 1_000_000), ack: p.a.info().sndNxt, flags: TcpFlag.Ack });
    expect(p.a.sent.length - before).toBe(2);
    expect(p.a.state).toBe('ESTABLISHED');
  });
});
