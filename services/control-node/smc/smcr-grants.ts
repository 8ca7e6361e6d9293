/**
 * SMC-R link grants (seed 002, Fig. 4 steps 407-409: the RDMA environment
 * and the queue pairs the connection will use). Only a control node may make
 * paths, and only between partitions the configuration lets talk at all:
 * both LPARs of this platform, two of them, on a common virtual LAN, with
 * SMC-R on for both. The two links run on different planes (smcr-a, smcr-b)
 * so the group survives either plane (Fig. 10 step 1015). The fabric manager
 * returns the existing RVIs when they were made before, so asking again is
 * harmless.
 */
import type { Logger } from 'pino';
import type { Platform } from '../../../shared/platform/platform.ts';
import type { SmcrLinksAnswer } from '../../../shared/protocol/mgmt.ts';
import { SMCR_LINK_PURPOSES, smcrLinkPlane } from '../../../shared/smc/link-purpose.ts';
import type { FmClient } from '../../../shared/protocol/fm.ts';
import { forLog, type LogOnce } from '../untrusted.ts';

/** Why a pair may not have links: `cause` is a short key to log once by. */
export interface Refusal {
  cause: string;
  reason: string;
}

/** Whether `lpar` may have SMC-R links to `peer` under this configuration: undefined when it may. */
export function linkRefusal(platform: Platform, sharesLan: (a: string, b: string) => boolean, lpar: string, peer: string): Refusal | undefined {
  if (!platform.lpars.some((l) => l.name === peer)) return { cause: 'unknown-peer', reason: `"${forLog(peer)}" is not an LPAR of this platform` };
  if (peer === lpar) return { cause: 'self', reason: 'an LPAR needs no SMC-R links to itself' };
  for (const name of [lpar, peer]) {
    if (platform.lpars.find((l) => l.name === name)?.smc.r === false) return { cause: `smc-off/${name}`, reason: `SMC-R is off for ${name} in the platform file` };
  }
  if (!sharesLan(lpar, peer)) return { cause: `no-lan/${peer}`, reason: `${lpar} and ${peer} share no virtual LAN` };
  return undefined;
}

export class SmcrGrants {
  readonly stats = { smcrGranted: 0, smcrRefused: 0 };

  constructor(
    private readonly platform: Platform,
    private readonly membership: { sharesLan(a: string, b: string): boolean },
    private readonly fm: FmClient,
    private readonly warn: LogOnce,
    private readonly log: Logger,
  ) {}

  private refusal(lpar: string, peer: string): Refusal | undefined {
    return linkRefusal(this.platform, (a, b) => this.membership.sharesLan(a, b), lpar, peer);
  }

  /** The answer to `lpar`'s request for links to `peer`: the two RVIs, or why not. */
  async grant(lpar: string, peer: string): Promise<SmcrLinksAnswer> {
    const refusal = this.refusal(lpar, peer);
    if (refusal) {
      this.stats.smcrRefused++;
      this.warn.warn(`${lpar}/smcr/${refusal.cause}`, { lpar, peer: forLog(peer), reason: refusal.reason }, 'SMC-R links refused');
      return { t: 'smcr-links', peer, ok: false, reason: refusal.reason };
    }
    try {
      const [a, b] = SMCR_LINK_PURPOSES;
      const ra = await this.fm.request({ t: 'rvi-create', a: lpar, b: peer, purpose: a });
      const rb = await this.fm.request({ t: 'rvi-create', a: lpar, b: peer, purpose: b });
      const rvis: [number, number] = [ra.rvi.id, rb.rvi.id];
      this.stats.smcrGranted++;
      this.log.debug({ lpar, peer, rvis }, 'SMC-R links granted');
      return { t: 'smcr-links', peer, ok: true, rvis };
    } catch (err) {
      this.stats.smcrRefused++;
      this.warn.warn(`${lpar}/smcr/fabric`, { lpar, peer, err: (err as Error).message }, 'SMC-R links failed');
      return { t: 'smcr-links', peer, ok: false, reason: `the fabric manager could not make the links: ${(err as Error).message}` };
    }
  }

  /**
   * SMC-R links join only partitions on a common virtual LAN: when a member
   * leaves one, its links to LPARs it now shares none with are torn down. The
   * SMC layer at both ends sees them go as a link failure (seed 002, Fig. 10
   * steps 1012-1020: another link, else back to TCP).
   */
  async revoke(lpar: string): Promise<void> {
    let list;
    try {
      list = (await this.fm.request({ t: 'rvi-list' })).rvis;
    } catch (err) {
      this.log.warn({ lpar, err: (err as Error).message }, 'SMC-R links of a departed member not checked: fabric manager unreachable');
      return;
    }
    for (const r of list) {
      if (smcrLinkPlane(r.purpose) === undefined || (r.a !== lpar && r.b !== lpar)) continue;
      const other = r.a === lpar ? r.b : r.a;
      if (!this.refusal(lpar, other)) continue;
      // The other control node may have torn it down already.
      await this.fm.request({ t: 'rvi-destroy', id: r.id }).catch(() => undefined);
      this.log.info({ rvi: r.id, a: r.a, b: r.b, purpose: r.purpose }, 'SMC-R link revoked: no common virtual LAN any more');
    }
  }
}
