/**
 * A token bucket: `burst` tokens, refilled at `perSecond`; `take(now, n)`
 * spends n when there are that many. For rate limits that must cost nothing
 * per message beyond arithmetic (the control node's per-member limits, issue
 * 10 item 5). services/lpar/net/ip/forwarding.ts's IcmpRateLimit is the same
 * idea for one token at a time.
 */
export class TokenBucket {
  private tokens: number;
  private last = -Infinity;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(now: number, n = 1): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}
