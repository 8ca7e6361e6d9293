/**
 * A partition's boot as an explicit state machine (seed 004, "Network
 * Architecture": as each processor boots it establishes a VI to the control
 * node logic, obtains its identity and data link configuration, and
 * registers each interface with the virtual LAN servers).
 *
 *   WaitingForControlNode  no control node has answered its boot request yet
 *   Configured             a configuration is in and the interfaces are up; nothing registered yet
 *   Registering            registrations sent; some interface not yet accepted by any control node
 *   Ready                  every interface accepted by at least one control node
 *
 * Ready falls back to Registering when an interface joins at run time, or
 * when the control nodes that had accepted one forget it (a control node
 * restarted); registration with the others goes on meanwhile. A processor
 * failover (a standby partition taking over another's identity) will add
 * Standby and TakingOver between WaitingForControlNode and Configured.
 */
export const BootState = {
  WaitingForControlNode: 'waiting-for-control-node',
  Configured: 'configured',
  Registering: 'registering',
  Ready: 'ready',
} as const;
export type BootState = (typeof BootState)[keyof typeof BootState];

/**
 * configured: a control node's configuration was accepted.
 * registering: registrations went out (to one control node or more).
 * registrations: what the control nodes have accepted changed; `complete` says whether every interface is now accepted by one.
 */
export type BootEvent = { type: 'configured' } | { type: 'registering' } | { type: 'registrations'; complete: boolean };

/** The boot state machine: one transition per event. */
export function bootTransition(state: BootState, e: BootEvent): BootState {
  switch (e.type) {
    case 'configured':
      // A second control node's configuration only adds what is missing: it does not restart the boot.
      return state === BootState.WaitingForControlNode ? BootState.Configured : state;
    case 'registering':
      return state === BootState.Configured ? BootState.Registering : state;
    case 'registrations':
      if (state === BootState.WaitingForControlNode) return state;
      if (e.complete) return BootState.Ready;
      return state === BootState.Configured ? state : BootState.Registering;
  }
}

/** What the partition's health says while it boots, or undefined once Ready (then apps and reachability decide). */
export function bootHealth(state: BootState): { state: 'starting'; detail: string } | undefined {
  switch (state) {
    case BootState.WaitingForControlNode:
      return { state: 'starting', detail: 'waiting for a control node' };
    case BootState.Configured:
    case BootState.Registering:
      return { state: 'starting', detail: 'registering interfaces' };
    case BootState.Ready:
      return undefined;
  }
}
