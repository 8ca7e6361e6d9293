/**
 * One interface's ARP cache (RFC 826, with the expiry and retry behaviour of
 * a host stack): entries expire after the configured time and are resolved
 * again on next use; packets wait, bounded, while a request is outstanding;
 * after the last unanswered try they are dropped and their senders told.
 */
interface Pending {
  waiters: Array<{ resolve: (mac: Buffer) => void; fail: () => void }>;
  tries: number;
  nextAt: number;
}

const RETRY_MS = 250;
const TRIES = 4;
const WAITERS_PER_ADDRESS = 64;
/** A /16 of neighbours at most; past it the oldest entry makes room. */
const MAX_ENTRIES = 65536;

export class ArpCache {
  private readonly entries = new Map<number, { mac: Buffer; expiresAt: number }>();
  private readonly pending = new Map<number, Pending>();
  readonly stats = { requests: 0, unresolved: 0, queueDrops: 0 };

  constructor(
    private readonly ttlMs: number,
    private readonly sendRequest: (ip: number) => void,
  ) {}

  lookup(ip: number, now: number): Buffer | undefined {
    const e = this.entries.get(ip);
    if (!e) return undefined;
    if (e.expiresAt <= now) {
      this.entries.delete(ip);
      return undefined;
    }
    return e.mac;
  }

  /** Calls `resolve` with the MAC once known (asks now if nobody has), or `fail` after the last try. */
  resolve(ip: number, now: number, resolve: (mac: Buffer) => void, fail: () => void): void {
    let p = this.pending.get(ip);
    if (!p) {
      p = { waiters: [], tries: 1, nextAt: now + RETRY_MS };
      this.pending.set(ip, p);
      this.stats.requests++;
      this.sendRequest(ip);
    }
    if (p.waiters.length >= WAITERS_PER_ADDRESS) {
      this.stats.queueDrops++;
      fail();
      return;
    }
    p.waiters.push({ resolve, fail });
  }

  learn(ip: number, mac: Buffer, now: number): void {
    if (!this.entries.has(ip) && this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(ip, { mac: Buffer.from(mac), expiresAt: now + this.ttlMs });
    const p = this.pending.get(ip);
    if (!p) return;
    this.pending.delete(ip);
    for (const w of p.waiters) w.resolve(mac);
  }

  /** Whether a request for `ip` is outstanding (so an unsolicited reply is still welcome). */
  wanted(ip: number): boolean {
    return this.pending.has(ip);
  }

  tick(now: number): void {
    for (const [ip, p] of this.pending) {
      if (p.nextAt > now) continue;
      if (p.tries >= TRIES) {
        this.pending.delete(ip);
        this.stats.unresolved++;
        for (const w of p.waiters) w.fail();
        continue;
      }
      p.tries++;
      p.nextAt = now + RETRY_MS;
      this.stats.requests++;
      this.sendRequest(ip);
    }
  }

  /** Asks again at once for every address still waiting (the control node that had the request died). */
  retryNow(now: number): void {
    for (const p of this.pending.values()) p.nextAt = now;
    this.tick(now);
  }

  flush(): void {
    this.entries.clear();
  }

  list(now: number): Array<{ ip: number; mac: Buffer; expiresInMs: number }> {
    return [...this.entries].filter(([, e]) => e.expiresAt > now).map(([ip, e]) => ({ ip, mac: e.mac, expiresInMs: Math.round(e.expiresAt - now) }));
  }
}
