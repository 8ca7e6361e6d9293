import { describe, expect, it } from 'vitest';
import { HeartbeatLiveness } from '../../services/lpar/net/devices/heartbeat-liveness.ts';

describe('HeartbeatLiveness', () => {
  it('is not answering before a first answer, and is once one comes', () => {
    const h = new HeartbeatLiveness(100, 1000);
    const s = h.sent(0);
    expect(h.answering(5)).toBe(false);
    expect(h.answered(s, 5)).toBe(true);
    expect(h.answering(5)).toBe(true);
    expect(h.silentAt()).toBe(Infinity);
  });

  it('on a quiet box, finds a control node that stops within two heartbeat intervals of its last answer', () => {
    const h = new HeartbeatLiveness(100, 1000);
    // Busy: a heartbeat every 100 ms, each answered in 1 ms.
    for (let t = 0; t < 1000; t += 100) h.answered(h.sent(t), t + 1);
    expect(h.answerWithinMs).toBe(100);
    // The control node stops after answering the heartbeat of t = 900 (at 901).
    h.sent(1000);
    expect(h.answering(1100)).toBe(true);
    h.sent(1100);
    expect(h.answering(1101)).toBe(false);
    expect(h.silentAt()).toBe(1100);
  });

  it('judges by the oldest heartbeat still unanswered, not by the newest answer', () => {
    const h = new HeartbeatLiveness(100, 1000);
    h.answered(h.sent(0), 1);
    const a = h.sent(100);
    h.sent(200);
    h.sent(300);
    // The answer to the heartbeat of 100 comes at 150: those of 200 and 300 still wait, since 200.
    expect(h.answered(a, 150)).toBe(true);
    expect(h.unansweredSince).toBe(200);
    expect(h.answering(300)).toBe(true);
    expect(h.answering(301 + h.answerWithinMs - 100)).toBe(false);
  });

  it('gives a control node whose answers are slow as long as they take, up to the ceiling', () => {
    const h = new HeartbeatLiveness(100, 1000);
    // Answers that take 250–350 ms (a box with far more runnable processes than cores).
    for (let i = 0; i < 40; i++) {
      const t = i * 100;
      const rtt = 250 + ((i * 37) % 100);
      const s = h.sent(t);
      h.answered(s, t + rtt);
    }
    expect(h.answerWithinMs).toBeGreaterThan(300);
    expect(h.answerWithinMs).toBeLessThanOrEqual(1000);
    // A heartbeat 300 ms unanswered is no failover now…
    h.sent(10_000);
    expect(h.answering(10_300)).toBe(true);
    // …but past the ceiling nothing is still answering.
    expect(h.answering(11_001)).toBe(false);
    // Answers quick again bring the bound back down.
    for (let i = 0; i < 60; i++) h.answered(h.sent(20_000 + i * 100), 20_000 + i * 100 + 1);
    expect(h.answerWithinMs).toBe(100);
  });

  it('ignores an answer to a heartbeat it did not send or already counted', () => {
    const h = new HeartbeatLiveness(100, 1000);
    const s = h.sent(0);
    expect(h.answered(s + 7, 1)).toBe(false);
    expect(h.answering(1)).toBe(false);
    expect(h.answered(s, 2)).toBe(true);
    expect(h.answered(s, 3)).toBe(false);
    expect(h.lastAnswer).toBe(2);
  });

  it('remembers a bounded number of heartbeats, and still judges from the oldest sent', () => {
    const h = new HeartbeatLiveness(100, 1000);
    h.answered(h.sent(0), 1);
    const seqs: number[] = [];
    for (let i = 1; i <= 40; i++) seqs.push(h.sent(i * 100));
    // The first unanswered went at 100, though it is no longer remembered.
    expect(h.unansweredSince).toBe(100);
    expect(h.answered(seqs[0], 4001)).toBe(false);
    // An answer to the newest clears them all.
    expect(h.answered(seqs[39], 4002)).toBe(true);
    expect(h.unansweredSince).toBe(0);
  });

  it('wraps its 16-bit sequence numbers', () => {
    const h = new HeartbeatLiveness(100, 1000);
    let last = 0;
    let answered = 0;
    for (let i = 0; i < 70_000; i++) {
      last = h.sent(i);
      if (h.answered(last, i)) answered++;
    }
    expect(answered).toBe(70_000);
    expect(last).toBeLessThanOrEqual(0xffff);
    expect(last).toBe(70_000 & 0xffff);
  });

  it('refuses a ceiling below the heartbeat interval', () => {
    expect(() => new HeartbeatLiveness(100, 50)).toThrow(/heartbeatMs/);
    expect(() => new HeartbeatLiveness(0, 50)).toThrow(/heartbeatMs/);
  });
});
