import { describe, expect, it } from 'vitest';
import { INITIAL_SSTHRESH, NewReno, initialWindow } from '../../services/lpar/net/tcp/congestion.ts';
import { seqAdd } from '../../shared/wire/tcp.ts';

const MSS = 1000;

/**
 * A sender model: SND.UNA/SND.NXT, and a full window sent each round, so the
 * tests talk in segments and RTTs rather than raw counters.
 */
class Sender {
  una: number;
  nxt: number;
  constructor(
    readonly cc: NewReno,
    iss = 0,
  ) {
    this.una = iss;
    this.nxt = iss;
  }
  get flight(): number {
    return (this.nxt - this.una) >>> 0;
  }
  /** SND.MAX: nothing here pulls SND.NXT back. */
  get highestSent(): number {
    return this.nxt;
  }
  /** Sends whatever cwnd allows. */
  fill(): void {
    while (this.flight + MSS <= this.cc.cwnd) this.nxt = seqAdd(this.nxt, MSS);
  }
  /** ACK of `bytes` new data. */
  ack(bytes: number): { retransmit: boolean } {
    this.una = seqAdd(this.una, bytes);
    return this.cc.onAck(bytes, this.una, this.flight);
  }
  dup(): { fastRetransmit: boolean } {
    return this.cc.onDupAck(this.una, this.highestSent, this.flight);
  }
  /** One RTT: fill the window, then every segment is acknowledged one ACK each. */
  roundTrip(): void {
    this.fill();
    const segments = this.flight / MSS;
    for (let i = 0; i < segments; i++) this.ack(MSS);
  }
}

describe('initial window', () => {
  it('RFC 6928 IW10 by default', () => {
    expect(initialWindow(1000)).toBe(10_000);
    expect(initialWindow(1460)).toBe(14_600);
    expect(initialWindow(2000)).toBe(14_600);
    expect(initialWindow(9000)).toBe(18_000);
    expect(new NewReno(1460).cwnd).toBe(14_600);
    expect(new NewReno(1460).ssthresh).toBe(INITIAL_SSTHRESH);
  });

  it('RFC 3390 with 4 segments, exactly n segments otherwise', () => {
    expect(initialWindow(1000, 4)).toBe(4000);
    expect(initialWindow(1460, 4)).toBe(4380);
    expect(initialWindow(3000, 4)).toBe(6000);
    expect(initialWindow(536, 4)).toBe(2144);
    expect(initialWindow(1460, 2)).toBe(2920);
    expect(new NewReno(1000, { initialWindowSegments: 1 }).cwnd).toBe(1000);
    expect(() => initialWindow(1000, 0)).toThrow(RangeError);
    expect(() => new NewReno(0)).toThrow(RangeError);
  });
});

describe('slow start and congestion avoidance (RFC 5681 3.1, RFC 3465)', () => {
  it('slow start doubles cwnd every RTT', () => {
    const s = new Sender(new NewReno(MSS));
    expect(s.cc.cwnd).toBe(10_000);
    s.roundTrip();
    expect(s.cc.cwnd).toBe(20_000);
    s.roundTrip();
    expect(s.cc.cwnd).toBe(40_000);
  });

  it('byte counting limits growth to 2*SMSS per ACK', () => {
    const cc = new NewReno(MSS);
    cc.onAck(500, 500, 0);
    expect(cc.cwnd).toBe(10_500);
    cc.onAck(6000, 6500, 0); // a stretch ACK of six segments
    expect(cc.cwnd).toBe(12_500);
  });

  it('congestion avoidance grows about one SMSS per RTT', () => {
    const s = new Sender(new NewReno(MSS));
    s.cc.ssthresh = 20_000;
    s.cc.cwnd = 20_000;
    for (let rtt = 1; rtt <= 5; rtt++) {
      s.roundTrip();
      expect(s.cc.cwnd).toBe(20_000 + rtt * MSS);
    }
  });

  it('congestion avoidance counts bytes across ACKs of any size', () => {
    const cc = new NewReno(MSS);
    cc.ssthresh = 10_000;
    for (let i = 0; i < 99; i++) cc.onAck(100, 0, 0); // 9900 bytes
    expect(cc.cwnd).toBe(10_000);
    cc.onAck(100, 0, 0);
    expect(cc.cwnd).toBe(11_000);
  });

  it('stops slow start at ssthresh and carries the rest into congestion avoidance', () => {
    const cc = new NewReno(MSS);
    cc.ssthresh = 11_500;
    cc.onAck(1000, 1000, 0);
    expect(cc.cwnd).toBe(11_000);
    cc.onAck(1000, 2000, 0); // 500 to reach ssthresh, 500 counted for CA
    expect(cc.cwnd).toBe(11_500);
    cc.onAck(11_000, 13_000, 0); // 500 + 11000 >= 11500
    expect(cc.cwnd).toBe(12_500);
  });

  it('restarts from min(IW, cwnd) after an idle period longer than RTO (4.1)', () => {
    const cc = new NewReno(MSS);
    cc.cwnd = 30_000;
    cc.onIdle(900, 1000);
    expect(cc.cwnd).toBe(30_000);
    cc.onIdle(1000, 1000);
    expect(cc.cwnd).toBe(30_000);
    cc.onIdle(1001, 1000);
    expect(cc.cwnd).toBe(10_000);
    cc.cwnd = 4000;
    cc.onIdle(5000, 1000);
    expect(cc.cwnd).toBe(4000);
  });
});

/** A sender with 20 segments in flight and cwnd 20000 in congestion avoidance. */
function loaded(iss = 0): Sender {
  const s = new Sender(new NewReno(MSS), iss);
  s.cc.ssthresh = 20_000;
  s.cc.cwnd = 20_000;
  s.fill();
  expect(s.flight).toBe(20_000);
  return s;
}

describe('fast retransmit and NewReno fast recovery (RFC 5681 3.2, RFC 6582)', () => {
  it('the third duplicate ACK triggers one fast retransmit; later ones inflate cwnd', () => {
    const s = loaded();
    expect(s.dup().fastRetransmit).toBe(false);
    expect(s.dup().fastRetransmit).toBe(false);
    expect(s.cc.cwnd).toBe(20_000);
    expect(s.cc.inRecovery).toBe(false);
    expect(s.dup().fastRetransmit).toBe(true);
    expect(s.cc.inRecovery).toBe(true);
    expect(s.cc.ssthresh).toBe(10_000);
    expect(s.cc.cwnd).toBe(13_000);
    expect(s.cc.recover).toBe(20_000);
    for (let i = 0; i < 5; i++) expect(s.dup().fastRetransmit).toBe(false);
    expect(s.cc.cwnd).toBe(18_000);
    expect(s.cc.dupAcks).toBe(8);
  });

  it('ssthresh never drops below 2*SMSS', () => {
    const s = new Sender(new NewReno(MSS));
    s.cc.cwnd = 3000;
    s.fill();
    s.dup();
    s.dup();
    expect(s.dup().fastRetransmit).toBe(true);
    expect(s.cc.ssthresh).toBe(2000);
    expect(s.cc.cwnd).toBe(5000);
  });

  it('a partial ACK asks for a retransmission and deflates cwnd', () => {
    const s = loaded();
    for (let i = 0; i < 3; i++) s.dup();
    for (let i = 0; i < 4; i++) s.dup(); // cwnd 17000
    expect(s.cc.cwnd).toBe(17_000);
    // Segments 1-3 arrive after the first retransmission; 4 was lost too.
    expect(s.ack(3000).retransmit).toBe(true);
    // Deflate by 3000, add back one SMSS.
    expect(s.cc.cwnd).toBe(15_000);
    expect(s.cc.inRecovery).toBe(true);
    expect(s.cc.dupAcks).toBe(0);
    // Less than one SMSS acknowledged: no add-back.
    expect(s.ack(500).retransmit).toBe(true);
    expect(s.cc.cwnd).toBe(14_500);
    // Duplicates after a partial ACK inflate, and never fast-retransmit again.
    for (let i = 0; i < 3; i++) expect(s.dup().fastRetransmit).toBe(false);
    expect(s.cc.cwnd).toBe(17_500);
  });

  it('a full ACK exits recovery with cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS)', () => {
    const s = loaded();
    for (let i = 0; i < 3; i++) s.dup();
    for (let i = 0; i < 10; i++) s.dup();
    s.fill(); // inflated cwnd 23000 lets 3 new segments out
    expect(s.flight).toBe(23_000);
    expect(s.ack(20_000).retransmit).toBe(false); // through SND.MAX at the third duplicate
    expect(s.cc.inRecovery).toBe(false);
    expect(s.cc.cwnd).toBe(4000); // min(10000, 3000 + 1000)
    expect(s.cc.ssthresh).toBe(10_000);

    const idle = loaded();
    for (let i = 0; i < 3; i++) idle.dup();
    idle.ack(20_000);
    expect(idle.cc.cwnd).toBe(2000); // max(0, SMSS) + SMSS

    const busy = loaded();
    for (let i = 0; i < 3; i++) busy.dup();
    busy.cc.onAck(20_000, 20_000, 30_000);
    expect(busy.cc.cwnd).toBe(10_000); // capped by ssthresh
  });

  it('an ACK one byte short of covering recover is still partial', () => {
    const s = loaded();
    for (let i = 0; i < 3; i++) s.dup();
    expect(s.ack(19_999).retransmit).toBe(true); // byte 19999, the last one sent, not yet acknowledged
    expect(s.cc.inRecovery).toBe(true);
    expect(s.ack(1).retransmit).toBe(false);
    expect(s.cc.inRecovery).toBe(false);
  });

  it('recovery resumes congestion avoidance afterwards', () => {
    const s = loaded();
    for (let i = 0; i < 3; i++) s.dup();
    s.ack(20_000);
    s.cc.cwnd = s.cc.ssthresh;
    s.roundTrip();
    expect(s.cc.cwnd).toBe(11_000);
  });

  it('works across sequence wraparound', () => {
    const s = loaded(0xffffe000);
    for (let i = 0; i < 3; i++) expect(s.dup().fastRetransmit).toBe(i === 2);
    expect(s.cc.recover).toBe(20_000 - 0x2000);
    expect(s.ack(10_000).retransmit).toBe(true); // 0xffffe000 + 10000 wraps past zero
    expect(s.una).toBe(10_000 - 0x2000);
    expect(s.cc.inRecovery).toBe(true);
    expect(s.ack(10_000).retransmit).toBe(false);
    expect(s.cc.inRecovery).toBe(false);
  });
});

describe('retransmission timeout (RFC 5681 3.1, RFC 6582 step 4)', () => {
  it('collapses cwnd to one segment and halves ssthresh', () => {
    const s = loaded();
    s.cc.onRetransmitTimeout(s.flight, s.highestSent);
    expect(s.cc.cwnd).toBe(MSS);
    expect(s.cc.ssthresh).toBe(10_000);
    expect(s.cc.recover).toBe(20_000);
    // A second expiry for the same data keeps ssthresh, whatever FlightSize now says.
    s.cc.onRetransmitTimeout(30_000, s.highestSent);
    expect(s.cc.ssthresh).toBe(10_000);
    expect(s.cc.cwnd).toBe(MSS);
    // After an ACK of new data, the next expiry concerns other data.
    s.ack(MSS);
    s.cc.onRetransmitTimeout(s.flight, s.highestSent);
    expect(s.cc.ssthresh).toBe(9500);
  });

  it('exits fast recovery', () => {
    const s = loaded();
    for (let i = 0; i < 3; i++) s.dup();
    expect(s.cc.inRecovery).toBe(true);
    s.cc.onRetransmitTimeout(s.flight, s.highestSent);
    expect(s.cc.inRecovery).toBe(false);
    expect(s.cc.dupAcks).toBe(0);
    expect(s.cc.cwnd).toBe(MSS);
  });

  it('slow-starts with L = 1*SMSS until the data outstanding at the timeout is acknowledged', () => {
    const s = loaded();
    s.cc.onRetransmitTimeout(s.flight, s.highestSent);
    s.ack(3000); // stretch ACK within the old window
    expect(s.cc.cwnd).toBe(2000);
    s.ack(3000);
    expect(s.cc.cwnd).toBe(3000);
    s.ack(14_000); // through recover: L = 2*SMSS again
    expect(s.cc.cwnd).toBe(5000);
    s.fill();
    s.ack(3000);
    expect(s.cc.cwnd).toBe(7000);
  });
});

describe('the "careful" variant (RFC 6582 3.2 step 2)', () => {
  it('duplicates from the window in flight at a timeout do not trigger fast retransmit', () => {
    const s = loaded();
    s.cc.onRetransmitTimeout(s.flight, s.highestSent);
    // The retransmission fills the first hole; the receiver still holds
    // later segments, and the old window's data keeps arriving as duplicates.
    s.ack(MSS);
    for (let i = 0; i < 6; i++) expect(s.dup().fastRetransmit).toBe(false);
    expect(s.cc.inRecovery).toBe(false);
    expect(s.cc.ssthresh).toBe(10_000);
    expect(s.cc.cwnd).toBe(2000);
    // Once the ACKs cover more than recover, a new loss is repaired again.
    s.ack(19_000);
    s.fill();
    s.ack(MSS); // ackNum > SND.MAX at the timeout
    expect(s.cc.recover).toBeUndefined();
    s.dup();
    s.dup();
    expect(s.dup().fastRetransmit).toBe(true);
  });

  it('a timeout during recovery prevents a second fast retransmit for the same window', () => {
    const s = loaded();
    for (let i = 0; i < 3; i++) s.dup();
    expect(s.cc.inRecovery).toBe(true);
    s.cc.onRetransmitTimeout(s.flight, s.highestSent);
    for (let i = 0; i < 5; i++) expect(s.dup().fastRetransmit).toBe(false);
    s.ack(2000);
    for (let i = 0; i < 5; i++) expect(s.dup().fastRetransmit).toBe(false);
    expect(s.cc.inRecovery).toBe(false);
  });

  it('an ACK that covers exactly recover does not yet rearm fast retransmit', () => {
    const s = loaded();
    for (let i = 0; i < 3; i++) s.dup();
    s.ack(20_000); // ackNum = SND.MAX at the third duplicate: full ACK
    expect(s.cc.inRecovery).toBe(false);
    s.fill();
    for (let i = 0; i < 3; i++) expect(s.dup().fastRetransmit).toBe(false);
    s.ack(MSS);
    for (let i = 0; i < 3; i++) expect(s.dup().fastRetransmit).toBe(i === 2);
  });

  it('the first loss of a connection is repaired by fast retransmit', () => {
    const s = new Sender(new NewReno(MSS), 12345);
    s.fill();
    s.dup();
    s.dup();
    expect(s.dup().fastRetransmit).toBe(true);
  });
});
