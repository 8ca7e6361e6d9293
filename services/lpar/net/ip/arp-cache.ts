/**
 * One interface's ARP cache (RFC 826, with the expiry and retry behaviour of
 * a host stack): packets wait, bounded, while a request is outstanding;
 * after the last unanswered try they are dropped and their senders told.
 *
 * An entry past its time goes stale rather than away (RFC 1122 2.3.2.1, as
 * Linux's STALE/PROBE states): it is still used while a request confirms it,
 * and only an unanswered confirmation drops it. Deleting it at once put every
 * packet to a busy neighbour behind an ARP round trip through the control
 * node once per expiry, and under load (a second for the last try) dropped
 * them: an SMC-R fallback sync lost so (issue 11 item 4). A stale entry not
 * used for another expiry time is forgotten.
 */
interface Pending {
  waiters: Array<{ resolve: (mac: Buffer) => void; fail: () => void }>;
  tries: number;
  nextAt: number;
}

const RETRY_MS = 250;
/**
 * Three seconds of tries, as Linux gives (three of one second): the first
 * resolution of a pair also has its unicast RVI made through the fabric
 * manager (issue 10 item 2), and a loaded box stretches that round trip; at
 * 64 partitions with both cores also busy elsewhere, 2 s left 18 of 4,032
 * first pings with "no ARP answer".
 */
const TRIES = 12;
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
      if (this.forgotten(e, now)) {
        this.entries.delete(ip);
        return undefined;
      }
      // Stale: used while confirmed.
      this.ask(ip, now);
    }
    return e.mac;
  }

  /** Calls `resolve` with the MAC once known (asks now if nobody has), or `fail` after the last try. */
  resolve(ip: number, now: number, resolve: (mac: Buffer) => void, fail: () => void): void {
    const p = this.ask(ip, now);
    if (p.waiters.length >= WAITERS_PER_ADDRESS) {
      this.stats.queueDrops++;
      fail();
      return;
    }
    p.waiters.push({ resolve, fail });
  }

  /** The outstanding request for `ip`, sent now if there was none. */
  private ask(ip: number, now: number): Pending {
    let p = this.pending.get(ip);
    if (!p) {
      p = { waiters: [], tries: 1, nextAt: now + RETRY_MS };
      this.pending.set(ip, p);
      this.stats.requests++;
      this.sendRequest(ip);
    }
    return p;
  }

  learn(ip: number, mac: Buffer, now: number): void {
    if (!this.entries.has(ip) && this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(ip, { mac: Buffer.from(mac), expiresAt: now + this.ttlMs });
    const p = this.pending.get(ip);
    if (!p) return;
    this.pending.delete(ip);
    for (const w of p.waiters) w.resolve(mac);
  }

  /** Requests outstanding: while any is, someone must call tick. */
  get waiting(): number {
    return this.pending.size;
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
        // A stale entry nobody confirmed is gone: the neighbour left, or moved.
        this.entries.delete(ip);
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

  /** Unused for a whole expiry time after going stale (seed 004 gives no ARP ageing; Linux's gc_stale_time plays this part). */
  private forgotten(e: { expiresAt: number }, now: number): boolean {
    return e.expiresAt + this.ttlMs <= now;
  }

  flush(): void {
    this.entries.clear();
  }

  /** Entries in use: reachable ones with the time they have left, stale ones (0 left) until confirmed or forgotten. */
  list(now: number): Array<{ ip: number; mac: Buffer; expiresInMs: number; stale: boolean }> {
    return [...this.entries]
      .filter(([, e]) => !this.forgotten(e, now))
      .map(([ip, e]) => ({ ip, mac: e.mac, expiresInMs: Math.max(0, Math.round(e.expiresAt - now)), stale: e.expiresAt <= now }));
  }
}
