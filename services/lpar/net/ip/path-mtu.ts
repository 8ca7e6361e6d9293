/**
 * Path MTU per destination (RFC 1191 for IPv4, with the aging of RFC 8201
 * 5.3): an ICMP "fragmentation needed and DF set" lowers the estimate for
 * its destination to the next-hop MTU it names; the estimate never goes
 * below 68 (RFC 1191 3, RFC 791's minimum) nor rises from a message (only a
 * lower value is news: RFC 1191 6.3, "a host MUST not increase its estimate
 * of the Path MTU in response to the contents of a Datagram Too Big
 * message"). After `agingMs` (10 minutes, RFC 1191 6.3's suggestion) an
 * entry is forgotten, so the path is probed again at the interface MTU.
 *
 * Bounded: a flood of forged ICMP messages for random destinations evicts
 * the oldest entries, it cannot grow the table.
 */
export const MIN_PATH_MTU = 68;
const MAX_ENTRIES = 4096;

export class PathMtuCache {
  private readonly entries = new Map<number, { mtu: number; expiresAt: number }>();
  readonly stats = { lowered: 0, ignored: 0, expired: 0 };

  constructor(readonly agingMs = 10 * 60_000) {
    if (!(agingMs > 0)) throw new RangeError('PMTU aging must be positive');
  }

  /** The estimate for `dst`, or undefined when the interface MTU applies. */
  get(dst: number, now: number): number | undefined {
    const e = this.entries.get(dst);
    if (!e) return undefined;
    if (e.expiresAt <= now) {
      this.entries.delete(dst);
      this.stats.expired++;
      return undefined;
    }
    return e.mtu;
  }

  /**
   * A Datagram Too Big for `dst` naming `mtu`, when the current estimate is
   * `current` (the cache's or the interface's). Returns the new estimate
   * when it went down, undefined when the message changed nothing.
   */
  report(dst: number, mtu: number, current: number, now: number): number | undefined {
    const cached = this.get(dst, now);
    const estimate = cached === undefined ? current : Math.min(cached, current);
    const next = Math.max(MIN_PATH_MTU, Math.floor(mtu));
    if (!Number.isFinite(mtu) || next >= estimate) {
      this.stats.ignored++;
      return undefined;
    }
    if (!this.entries.has(dst) && this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.delete(dst);
    this.entries.set(dst, { mtu: next, expiresAt: now + this.agingMs });
    this.stats.lowered++;
    return next;
  }

  list(now: number): Array<{ dst: number; mtu: number; expiresInMs: number }> {
    const out = [];
    for (const [dst, e] of this.entries) if (e.expiresAt > now) out.push({ dst, mtu: e.mtu, expiresInMs: Math.round(e.expiresAt - now) });
    return out;
  }

  flush(): void {
    this.entries.clear();
  }
}

/** RFC 1191 7, Table 7-1: the MTU plateaus a host steps down when a router's message names no next-hop MTU. */
const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/** The largest plateau below `length` (the rejected datagram's total length). */
export function plateauBelow(length: number): number {
  for (const p of PLATEAUS) if (p < length) return p;
  return MIN_PATH_MTU;
}
