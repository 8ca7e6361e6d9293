/**
 * TCP and the path MTU (RFC 1191 6.4): a connection whose path gets smaller
 * lowers its send MSS, resends what the router dropped in the new size at
 * once, and moves everything byte-exact; and the state machine's one
 * setter refuses changes RFC 9293's diagram does not have.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TcpState, tcpTransitionAllowed } from '../../services/lpar/net/tcp/tcp-connection.ts';
import { Pair, SETTINGS, randomBytes } from '../helpers/tcp-pair.ts';
import { waitForFast as waitFor } from '../helpers/wait.ts';

let pair: Pair | undefined;
afterEach(() => {
  pair?.dispose();
  pair = undefined;
});

describe('TcpConnection and the path MTU', () => {
  it('lowers its MSS on a smaller path MTU and resends what a small hop dropped, byte-exact, without a timeout', async () => {
    const p = (pair = new Pair(3, { ...SETTINGS, minRtoMs: 5000 }));
    await p.open();
    expect(p.a.conn!.mss).toBe(1000);
    // A router before a 540-byte hop: segments with more than 500 bytes of data are dropped, and the
    // sender is told (as IpLayer does on "fragmentation needed" with next-hop MTU 540).
    let told = false;
    p.filter = (from, seg) => {
      if (from !== 0 || seg.payload.length <= 500) return 'pass';
      if (!told) {
        told = true;
        queueMicrotask(() => p.a.conn!.pathMtuChanged(540));
      }
      return 'drop';
    };
    const data = randomBytes(40_000, 9);
    p.a.send(data);
    // The retransmission timer is 5 s: only the immediate resend can finish within 2 s.
    await waitFor('all data', () => Buffer.concat(p.b.received).length === data.length, 2000);
    expect(Buffer.concat(p.b.received).equals(data)).toBe(true);
    expect(p.a.conn!.mss).toBe(500);
    expect(p.a.conn!.stats.timeouts).toBe(0);
    // A larger MTU later is not news (RFC 1191: only lower values are acted on).
    p.a.conn!.pathMtuChanged(9000);
    expect(p.a.conn!.mss).toBe(500);
  });

  it('keeps the state changes to RFC 9293\u2019s diagram', () => {
    expect(tcpTransitionAllowed(TcpState.Closed, TcpState.SynSent)).toBe(true);
    expect(tcpTransitionAllowed(TcpState.SynSent, TcpState.Established)).toBe(true);
    expect(tcpTransitionAllowed(TcpState.Established, TcpState.CloseWait)).toBe(true);
    expect(tcpTransitionAllowed(TcpState.FinWait1, TcpState.TimeWait)).toBe(true);
    expect(tcpTransitionAllowed(TcpState.TimeWait, TcpState.Closed)).toBe(true);
    expect(tcpTransitionAllowed(TcpState.Established, TcpState.SynSent)).toBe(false);
    expect(tcpTransitionAllowed(TcpState.CloseWait, TcpState.FinWait2)).toBe(false);
    expect(tcpTransitionAllowed(TcpState.LastAck, TcpState.TimeWait)).toBe(false);
  });
});
