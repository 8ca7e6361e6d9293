/**
 * What an RVI is for: the label the fabric manager stores with it and both
 * ends see (seed 004, "2. RVI Mapping And Management": the control node makes
 * each path for a reason). The platform's own processes give their RVIs one
 * of the purposes below; an operator may label one freely (`lparlab rvi
 * create --purpose`), so a received purpose is any string, and `purposeKind`
 * says which of the platform's kinds it is.
 *
 *   mgmt          control node ↔ LPAR: boot, configuration, registration (shared/protocol/mgmt.ts)
 *   vlan          control node ↔ LPAR: the virtual-LAN server's frames and the driver's heartbeat
 *   lan:<vlan>    LPAR ↔ LPAR: the unicast RVI of two members of virtual LAN <vlan>
 *   perf          LPAR ↔ LPAR: the raw-RVI measurement channel (`lparlab perf`)
 *   data          an operator's RVI that names no purpose (`lparlab rvi create` without --purpose)
 *   <family>-a    pinned to plane index 0 (the platform file's first plane)
 *   <family>-b    pinned to plane index 1
 *
 * A pinned RVI runs on one plane only. An ordinary RVI runs RCLAN over both
 * planes and hides a plane's failure by failing over between its legs; a
 * layer that keeps one RVI per plane and moves its traffic itself (seed 002's
 * SMC-R link group, shared/smc/link-purpose.ts) wants the opposite, so that
 * cutting a plane takes that RVI down instead of being absorbed underneath it.
 * The family names belong to the layer that uses them, not to RCLAN.
 */

export const Mgmt = 'mgmt';
export const Vlan = 'vlan';
export const Perf = 'perf';
export const Data = 'data';

export type LanPurpose = `lan:${string}`;
export type PinnedPurpose = `${string}-a` | `${string}-b`;

/** The purposes the platform's own processes use. */
export type PlatformPurpose = typeof Mgmt | typeof Vlan | typeof Perf | typeof Data | LanPurpose | PinnedPurpose;

/** An RVI's purpose: one of the platform's, or an operator's own label. */
export type Purpose = PlatformPurpose | (string & {});

/** Which of the platform's kinds a purpose is: the form a receiver dispatches on. */
export type PurposeKind =
  | { kind: 'mgmt' }
  | { kind: 'vlan' }
  | { kind: 'perf' }
  | { kind: 'lan'; vlan: string }
  | { kind: 'pinned'; family: string; plane: 0 | 1 }
  | { kind: 'other' };

const LAN_PREFIX = 'lan:';
const PLANE_SUFFIX = ['-a', '-b'] as const;

/** The unicast RVIs of virtual LAN `vlan` between two of its members. */
export function lan(vlan: string): LanPurpose {
  return `${LAN_PREFIX}${vlan}`;
}

export function isLan(purpose: string): purpose is LanPurpose {
  return purpose.startsWith(LAN_PREFIX) && purpose.length > LAN_PREFIX.length;
}

/** The virtual LAN of a `lan:<vlan>` purpose, or undefined for any other. */
export function lanOf(purpose: string): string | undefined {
  return isLan(purpose) ? purpose.slice(LAN_PREFIX.length) : undefined;
}

/** The purpose of family `family`'s RVI pinned to plane index `plane`. */
export function pinned(family: string, plane: 0 | 1): PinnedPurpose {
  return `${family}${PLANE_SUFFIX[plane]}`;
}

/**
 * The plane index an RVI of this purpose is pinned to, or undefined for an
 * ordinary RVI that uses both planes.
 */
export function pinnedPlane(purpose: string): 0 | 1 | undefined {
  if (purpose.length < 3 || isLan(purpose)) return undefined;
  if (purpose.endsWith(PLANE_SUFFIX[0])) return 0;
  if (purpose.endsWith(PLANE_SUFFIX[1])) return 1;
  return undefined;
}

export function purposeKind(purpose: string): PurposeKind {
  if (purpose === Mgmt) return { kind: 'mgmt' };
  if (purpose === Vlan) return { kind: 'vlan' };
  if (purpose === Perf) return { kind: 'perf' };
  const vlan = lanOf(purpose);
  if (vlan !== undefined) return { kind: 'lan', vlan };
  const plane = pinnedPlane(purpose);
  if (plane !== undefined) return { kind: 'pinned', family: purpose.slice(0, -2), plane };
  return { kind: 'other' };
}
