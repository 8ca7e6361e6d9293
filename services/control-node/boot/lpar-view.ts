/**
 * What a control node knows of each LPAR's boot: an explicit state machine
 * beside the health the partition reports of itself.
 *
 *   Unknown     not heard since this control node started
 *   Booted      asked for its configuration (boot) and was answered
 *   Restarting  its process restarted (RCLAN saw a new incarnation): it boots again
 */
export const LparBoot = { Unknown: 'unknown', Booted: 'booted', Restarting: 'restarting' } as const;
export type LparBoot = (typeof LparBoot)[keyof typeof LparBoot];

export type LparBootEvent = { type: 'boot' } | { type: 'peer-restart' };

/** The boot state machine: one transition per event (a boot is answered whatever came before). */
export function lparBootTransition(_state: LparBoot, e: LparBootEvent): LparBoot {
  switch (e.type) {
    case 'boot':
      return LparBoot.Booted;
    case 'peer-restart':
      return LparBoot.Restarting;
  }
}

export interface LparView {
  name: string;
  cec: string;
  boot: LparBoot;
  /** The partition's own report (`health`), 'restarting' while it reboots, 'unknown' until its first. */
  health: string;
  detail: string;
  lastHeard: number;
  /**
   * Boot requests answered since this control node started. A partition asks
   * again only when its process restarted or its session with this control
   * node is incomplete (services/lpar/lpar.ts), not each time its management
   * RVI comes back, so on a loaded box this stays put while RVIs flap.
   */
  boots: number;
}

export function newLparView(name: string, cec: string): LparView {
  return { name, cec, boot: LparBoot.Unknown, health: 'unknown', detail: '', lastHeard: 0, boots: 0 };
}

export function applyLparEvent(view: LparView, e: LparBootEvent): void {
  view.boot = lparBootTransition(view.boot, e);
  if (e.type === 'boot') view.boots++;
  if (view.boot === LparBoot.Restarting) view.health = 'restarting';
}
