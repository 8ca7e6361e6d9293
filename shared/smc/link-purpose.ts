/**
 * The purposes of an SMC-R link group's RVIs (seed 002).
 *
 * Its link group is two links, one per plane, and it is the SMC layer that
 * moves a connection to the surviving link when one fails (Fig. 10 steps
 * 1012-1016) and falls back to TCP when none is left (steps 1018-1021). So
 * each SMC-R link is an RVI of its own pinned to a single plane
 * (shared/rclan/purpose.ts): cutting that plane's VI takes the link down
 * instead of being silently absorbed underneath it. The control node grants
 * both links of a pair together (Fig. 4 steps 407-409).
 */
import { pinned, purposeKind } from '../rclan/purpose.ts';

const SMCR_FAMILY = 'smcr';

/** SMC-R link on plane index 0 (the platform file's first plane): "smcr-a". */
export const SMCR_LINK_A = pinned(SMCR_FAMILY, 0);
/** SMC-R link on plane index 1 (the platform file's second plane): "smcr-b". */
export const SMCR_LINK_B = pinned(SMCR_FAMILY, 1);

/** The purposes of an SMC-R link group, in plane order. */
export const SMCR_LINK_PURPOSES = [SMCR_LINK_A, SMCR_LINK_B] as const;
export type SmcrLinkPurpose = (typeof SMCR_LINK_PURPOSES)[number];

/** The plane of an SMC-R link's RVI, or undefined when `purpose` is not one. */
export function smcrLinkPlane(purpose: string): 0 | 1 | undefined {
  const k = purposeKind(purpose);
  return k.kind === 'pinned' && k.family === SMCR_FAMILY ? k.plane : undefined;
}
