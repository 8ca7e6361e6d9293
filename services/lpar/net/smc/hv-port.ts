import type { SmbeGrant } from '../../../../shared/protocol/hv.ts';

/**
 * What SMC needs of the partition's session with its CEC's hypervisor
 * (shared/protocol/hv.ts; services/lpar/hypervisor-client.ts is the one
 * that speaks it): elements for its connections (seed 002, Fig. 4 step 425),
 * their release, and the doorbell (Fig. 6 step 608). The SMC code sits below
 * the partition's root and reaches the hypervisor through this port only.
 */
export interface HvPort {
  /** A doorbell from the element's other partition (or the hypervisor's, when that one's session ended). */
  onSignal: (token: number) => void;
  /** The session ended: every element this partition held is aborted towards its peer and released. */
  onSessionLost: () => void;
  /** The hypervisor removed SMB `smbId`: no element of it will be granted again. */
  onSmbGone: (smbId: number) => void;
  /** This partition maps SMB `smbId` and keeps it mapped until onSmbGone (then its file loses its name). */
  mapped(smbId: number): void;
  /** An element of the SMB shared with `peer`, for a new connection; this partition allocates it. */
  alloc(peer: string): Promise<SmbeGrant>;
  /** This partition's side of the element `token`, which its peer allocated. */
  attach(token: number): Promise<SmbeGrant>;
  /** Whether `token` was granted in the session open now (false once that session ended). */
  holds(token: number): boolean;
  /** Lets go of an element (fire-and-forget). */
  release(token: number): void;
  /** Rings the doorbell of the element's other partition. */
  signal(token: number): void;
}
