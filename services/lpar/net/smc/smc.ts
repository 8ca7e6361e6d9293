import type { Logger } from 'pino';
import { smcrLinkPlane as linkPlane } from '../../../../shared/smc/link-purpose.ts';
import type { PartitionSmc } from '../../../../shared/platform/smc-settings.ts';
import type { Rvi } from '../../../../shared/rclan/rvi.ts';
import type { SmcStatusReply } from '../../../../shared/protocol/admin.ts';
import type { HvPort } from './hv-port.ts';
import { SmcdDevice } from './smc-d.ts';
import { newSmcStats, type SmcStats } from './smc-path.ts';
import { LinkGroup } from './smc-r.ts';
import type { SmcContext, SmcLocation, SmcSession } from './smc-session.ts';

/** A partition's SMC settings: the platform file's `smc` section and its own switch (one definition, shared/platform/smc-settings.ts). */
export type SmcConfig = PartitionSmc;

export interface SmcOptions {
  lpar: string;
  cec: string;
  config: SmcConfig;
  /** The CEC's hypervisor session (SMC-D); absent, the partition does SMC-R only. */
  hv?: HvPort;
  /** Seed 003's virtualization management mechanism: where an address lives. */
  locate(ip: string): Promise<SmcLocation>;
  /** The control node grants the two link RVIs to a peer (seed 002, Fig. 4 step 409). */
  smcrLinks(peer: string): Promise<[Rvi, Rvi]>;
  log: Logger;
}

/**
 * The partition's SMC component (seed 002: "a software component that
 * enhances the operation of the TCP/IP layer"): its SMC-D device, its SMC-R
 * link groups, the sessions of its sockets, and its statistics.
 */
export class Smc implements SmcContext {
  readonly stats: SmcStats = newSmcStats();
  readonly smcd?: SmcdDevice;
  readonly sessions = new Set<SmcSession>();
  private readonly groups = new Map<string, LinkGroup>();
  readonly lpar: string;
  readonly cec: string;
  readonly config: SmcConfig;
  readonly log: Logger;

  constructor(private readonly opts: SmcOptions) {
    this.lpar = opts.lpar;
    this.cec = opts.cec;
    this.config = opts.config;
    this.log = opts.log;
    if (opts.hv) this.smcd = new SmcdDevice(opts.hv, opts.config.pollUs, this.stats, opts.log.child({ component: 'smc-d' }));
  }

  locate(ip: string): Promise<SmcLocation> {
    return this.opts.locate(ip);
  }

  /** A link RVI of the fabric (purpose smcr-a / smcr-b) joins the group of its peer. */
  attachLink(rvi: Rvi): boolean {
    const plane = linkPlane(rvi.purpose);
    if (plane === undefined) return false;
    this.group(rvi.peer).attach(rvi, plane);
    return true;
  }

  detachLink(rvi: Rvi): void {
    this.groups.get(rvi.peer)?.detach(rvi);
  }

  private group(peer: string): LinkGroup {
    let g = this.groups.get(peer);
    if (!g) {
      g = new LinkGroup(peer, this.stats, this.log.child({ component: 'smc-r', peer }));
      this.groups.set(peer, g);
    }
    return g;
  }

  /** The link group to `peer`, asking the control node for its links if they are not here yet; undefined if none can be had. */
  async linkGroup(peer: string): Promise<LinkGroup | undefined> {
    const g = this.group(peer);
    if (g.complete && g.pick() >= 0) return g;
    try {
      const [a, b] = await this.opts.smcrLinks(peer);
      if (g.links[0] !== a) g.attach(a, 0);
      if (g.links[1] !== b) g.attach(b, 1);
    } catch (err) {
      this.log.warn({ peer, err: (err as Error).message }, 'no SMC-R link group');
      return undefined;
    }
    // A link just made has not heard its peer yet: give it a heartbeat or two.
    for (let i = 0; i < 20 && g.pick() < 0; i++) await new Promise((r) => setTimeout(r, 25));
    return g.pick() >= 0 ? g : undefined;
  }

  countFallback(reason: string): void {
    this.stats.fallbacks[reason] = (this.stats.fallbacks[reason] ?? 0) + 1;
  }

  status(): SmcStatusReply {
    return {
      enabled: this.config.enabled,
      modes: { d: this.config.d && this.smcd !== undefined, r: this.config.r },
      ringBytes: this.config.ringBytes,
      stats: this.stats,
      smcd: this.smcd?.info() ?? null,
      linkGroups: [...this.groups.values()].map((g) => g.info()),
    };
  }
}
