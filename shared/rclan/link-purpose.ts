/**
 * RVI purposes that pin an RVI to one fabric plane.
 *
 * An ordinary RVI runs RCLAN over both planes and hides a plane's failure by
 * failing over between its legs. SMC-R wants the opposite: its link group is
 * two links, one per plane, and it is the SMC layer that moves a connection
 * to the surviving link when one fails (seed 002, Fig. 10 steps 1012-1016) and
 * falls back to TCP when none is left (steps 1018-1021). So each SMC-R link is
 * an RVI of its own that runs on a single plane: cutting that plane's VI takes
 * the link down instead of being silently absorbed underneath it. The control
 * node grants both links of a pair together (seed 002, Fig. 4 steps 407-409).
 */

/** SMC-R link on plane index 0 (the platform file's first plane). */
export const SMCR_LINK_A = 'smcr-a';
/** SMC-R link on plane index 1 (the platform file's second plane). */
export const SMCR_LINK_B = 'smcr-b';

/** The purposes of an SMC-R link group, in plane order. */
export const SMCR_LINK_PURPOSES = [SMCR_LINK_A, SMCR_LINK_B] as const;
export type SmcrLinkPurpose = (typeof SMCR_LINK_PURPOSES)[number];

/**
 * The plane index an RVI of this purpose is pinned to, or undefined for an
 * ordinary RVI that uses both planes.
 */
export function linkPlane(purpose: string): 0 | 1 | undefined {
  if (purpose === SMCR_LINK_A) return 0;
  if (purpose === SMCR_LINK_B) return 1;
  return undefined;
}
