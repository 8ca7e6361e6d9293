import { describe, expect, it } from 'vitest';
import { RtoEstimator, RttSampler } from '../../services/lpar/net/tcp/rto.ts';

describe('RtoEstimator (RFC 6298)', () => {
  it('starts at the initial RTO with no estimates (2.1)', () => {
    const e = new RtoEstimator();
    expect(e.rto).toBe(1000);
    expect(e.srtt).toBeUndefined();
    expect(e.rttvar).toBeUndefined();
    expect(new RtoEstimator({ initialMs: 3000 }).rto).toBe(3000);
  });

  it('first sample: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR) (2.2)', () => {
    const e = new RtoEstimator();
    e.sample(100);
    expect(e.srtt).toBe(100);
    expect(e.rttvar).toBe(50);
    expect(e.rto).toBe(300);
  });

  it('later samples: RTTVAR from the old SRTT, then SRTT, alpha 1/8 beta 1/4 (2.3)', () => {
    const e = new RtoEstimator();
    e.sample(100);
    // RTTVAR = 3/4*50 + 1/4*|100 - 200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
    e.sample(200);
    expect(e.rttvar).toBe(62.5);
    expect(e.srtt).toBe(112.5);
    expect(e.rto).toBe(112.5 + 4 * 62.5);
    // RTTVAR = 3/4*62.5 + 1/4*|112.5 - 50| = 62.5; SRTT = 7/8*112.5 + 1/8*50 = 104.6875
    e.sample(50);
    expect(e.rttvar).toBe(62.5);
    expect(e.srtt).toBe(104.6875);
    expect(e.rto).toBe(354.6875);
    // RTTVAR = 3/4*62.5 + 1/4*|104.6875 - 104.6875| = 46.875; SRTT unchanged
    e.sample(104.6875);
    expect(e.rttvar).toBe(46.875);
    expect(e.srtt).toBe(104.6875);
    expect(e.rto).toBe(104.6875 + 187.5);
  });

  it('a steady RTT converges RTO toward SRTT, floored by the granularity', () => {
    const e = new RtoEstimator({ minMs: 0, granularityMs: 10 });
    for (let i = 0; i < 200; i++) e.sample(40);
    expect(e.srtt).toBe(40);
    expect(e.rttvar).toBeLessThan(1e-6);
    // RTO = SRTT + max(G, K*RTTVAR) = 40 + 10
    expect(e.rto).toBe(50);
    const g = new RtoEstimator({ minMs: 0, granularityMs: 100 });
    g.sample(0);
    expect(g.rto).toBe(100);
  });

  it('clamps to the minimum (2.4) and the maximum (2.5)', () => {
    const e = new RtoEstimator();
    e.sample(10); // 10 + 4*5 = 30
    expect(e.rto).toBe(200);
    const rfc = new RtoEstimator({ minMs: 1000 });
    rfc.sample(10);
    expect(rfc.rto).toBe(1000);
    const capped = new RtoEstimator({ maxMs: 2000 });
    capped.sample(1000); // 1000 + 4*500 = 3000
    expect(capped.rto).toBe(2000);
    expect(new RtoEstimator({ initialMs: 90_000 }).rto).toBe(60_000);
  });

  it('backoff doubles up to the maximum (5.5); resetBackoff returns to the computed RTO', () => {
    const e = new RtoEstimator();
    e.sample(100); // RTO 300
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      e.backoff();
      seen.push(e.rto);
    }
    expect(seen).toEqual([600, 1200, 2400, 4800, 9600, 19200, 38400, 60000, 60000, 60000]);
    e.resetBackoff();
    expect(e.rto).toBe(300);
  });

  it('backs off before any sample too (2.1), and never past a custom maximum', () => {
    const e = new RtoEstimator({ maxMs: 5000 });
    e.backoff();
    expect(e.rto).toBe(2000);
    e.backoff();
    e.backoff();
    expect(e.rto).toBe(5000);
    e.resetBackoff();
    expect(e.rto).toBe(1000);
  });

  it('a new sample after backoff collapses the RTO (section 5)', () => {
    const e = new RtoEstimator();
    e.sample(100);
    e.backoff();
    e.backoff();
    expect(e.rto).toBe(1200);
    e.sample(100); // RTTVAR 37.5, SRTT 100
    expect(e.rto).toBe(250);
  });

  it('rejects nonsense', () => {
    const e = new RtoEstimator();
    expect(() => e.sample(-1)).toThrow(RangeError);
    expect(() => e.sample(Number.NaN)).toThrow(RangeError);
    expect(() => new RtoEstimator({ minMs: 500, maxMs: 100 })).toThrow(RangeError);
  });
});

describe('RttSampler (Karn)', () => {
  it('times one segment at a time and reports when an ACK covers it', () => {
    const s = new RttSampler();
    expect(s.timing).toBe(false);
    expect(s.start(1000, 5)).toBe(true);
    expect(s.start(2000, 6)).toBe(false);
    expect(s.ack(1000, 20)).toBeUndefined(); // acknowledges up to 999 only
    expect(s.ack(1001, 47)).toBe(42);
    expect(s.timing).toBe(false);
    expect(s.ack(5000, 60)).toBeUndefined();
    expect(s.start(2000, 70)).toBe(true);
    expect(s.ack(9000, 75)).toBe(5);
  });

  it('takes no sample across a retransmission', () => {
    const s = new RttSampler();
    s.start(1000, 0);
    s.invalidate();
    expect(s.timing).toBe(false);
    expect(s.ack(3000, 900)).toBeUndefined();
    s.start(3000, 1000);
    expect(s.ack(3100, 1030)).toBe(30);
  });

  it('compares sequence numbers modulo 2^32', () => {
    const s = new RttSampler();
    s.start(0xfffffff0, 100);
    expect(s.ack(0xffffffe0, 110)).toBeUndefined(); // older ACK
    expect(s.ack(0xfffffff0, 115)).toBeUndefined();
    expect(s.ack(0x10, 130)).toBe(30); // wrapped past zero
    s.start(0x5, 200);
    expect(s.ack(0xfffffff0, 210)).toBeUndefined(); // before the wrap: old
    expect(s.ack(0x6, 260)).toBe(60);
  });

  it('feeds the estimator', () => {
    const e = new RtoEstimator();
    const s = new RttSampler();
    s.start(1, 0);
    e.sample(s.ack(1461, 100) ?? Number.NaN);
    expect(e.rto).toBe(300);
  });
});
