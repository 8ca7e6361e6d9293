/**
 * Self-repair of the paths a control node owns (issue 11 item 12: an operator
 * `rvi destroy` of a partition's virtual-LAN RVI left it without ARP for
 * good). Seed 004, "2. RVI Mapping And Management": the control node makes
 * the management and virtual-LAN RVI to every LPAR through the fabric
 * manager; so when one vanishes — destroyed by hand, lost with the fabric
 * manager's tables — it is the control node that makes it again. It hears of
 * a removal from the fabric manager (rvi-del), and checks the whole set
 * whenever its fabric-manager session comes back and every few seconds, so a
 * removal it missed is repaired too. The fabric manager returns an RVI that
 * exists, so asking for one that is there costs one request and changes
 * nothing.
 */
import type { Logger } from 'pino';
import type { FmClient } from '../../../shared/protocol/fm.ts';
import { Mgmt, Vlan, type Purpose } from '../../../shared/rclan/purpose.ts';

/** The purposes of the RVIs a control node owns to each LPAR. */
export const OWNED_PURPOSES: readonly Purpose[] = [Mgmt, Vlan];

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;
const RECONCILE_MS = 5000;

export class RviRepair {
  readonly stats = { repaired: 0, repairFailures: 0 };
  /** Pairs being re-made: `${peer}/${purpose}` → retry timer. */
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly self: string,
    private readonly lpars: readonly string[],
    private readonly fm: FmClient & { readonly fmConnected: boolean },
    /** Whether this node holds the RVI to `peer` for `purpose` now. */
    private readonly has: (peer: string, purpose: Purpose) => boolean,
    private readonly log: Logger,
  ) {}

  /** The owned RVIs not held now, as `peer purpose` (for the health detail). */
  missing(): string[] {
    return this.lpars.flatMap((l) => OWNED_PURPOSES.filter((p) => !this.has(l, p)).map((p) => `${l} ${p}`));
  }

  /** Checks the whole set every RECONCILE_MS from now on. */
  start(): void {
    this.timer = setInterval(() => this.reconcile(), RECONCILE_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  /** One of this node's RVIs went away: if it is one it owns, make it again. */
  removed(peer: string, purpose: Purpose): void {
    if (!this.lpars.includes(peer) || !OWNED_PURPOSES.includes(purpose)) return;
    this.log.warn({ peer, purpose }, 'owned RVI vanished: re-creating it');
    this.schedule(peer, purpose, FIRST_RETRY_MS);
  }

  /** Re-makes every owned RVI not held now. */
  reconcile(): void {
    if (this.stopped || !this.fm.fmConnected) return;
    for (const l of this.lpars) for (const p of OWNED_PURPOSES) if (!this.has(l, p)) this.schedule(l, p, 0);
  }

  private schedule(peer: string, purpose: Purpose, delayMs: number): void {
    const key = `${peer}/${purpose}`;
    if (this.stopped || this.pending.has(key)) return;
    this.pending.set(
      key,
      setTimeout(() => void this.attempt(peer, purpose, key, delayMs), delayMs),
    );
  }

  private async attempt(peer: string, purpose: Purpose, key: string, lastDelay: number): Promise<void> {
    try {
      const r = await this.fm.request({ t: 'rvi-create', a: this.self, b: peer, purpose });
      this.pending.delete(key);
      this.stats.repaired++;
      this.log.info({ peer, purpose, rvi: r.rvi.id }, 'owned RVI re-created');
    } catch (err) {
      this.pending.delete(key);
      this.stats.repairFailures++;
      const next = Math.min(MAX_RETRY_MS, Math.max(FIRST_RETRY_MS, lastDelay * 2));
      this.log.warn({ peer, purpose, err: (err as Error).message, retryMs: next }, 'owned RVI not re-created yet');
      this.schedule(peer, purpose, next);
    }
  }
}
