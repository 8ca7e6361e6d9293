import { describe, expect, it } from 'vitest';
import { BootState, bootHealth, bootTransition, type BootEvent } from '../../services/lpar/boot-state.ts';

const run = (events: BootEvent[], from: BootState = BootState.WaitingForControlNode) => events.reduce(bootTransition, from);

describe('a partition\'s boot state machine', () => {
  it('goes WaitingForControlNode → Configured → Registering → Ready', () => {
    let s: BootState = BootState.WaitingForControlNode;
    s = bootTransition(s, { type: 'configured' });
    expect(s).toBe(BootState.Configured);
    s = bootTransition(s, { type: 'registering' });
    expect(s).toBe(BootState.Registering);
    s = bootTransition(s, { type: 'registrations', complete: false });
    expect(s).toBe(BootState.Registering);
    s = bootTransition(s, { type: 'registrations', complete: true });
    expect(s).toBe(BootState.Ready);
  });

  it('is Ready at once for a partition on no virtual LAN (nothing to register)', () => {
    expect(run([{ type: 'configured' }, { type: 'registering' }, { type: 'registrations', complete: true }])).toBe(BootState.Ready);
  });

  it('ignores registrations and a registering before any configuration', () => {
    expect(run([{ type: 'registrations', complete: true }, { type: 'registering' }])).toBe(BootState.WaitingForControlNode);
  });

  it('does not restart the boot on a second control node\'s configuration', () => {
    expect(run([{ type: 'configured' }], BootState.Ready)).toBe(BootState.Ready);
    expect(run([{ type: 'configured' }], BootState.Registering)).toBe(BootState.Registering);
  });

  it('falls back from Ready to Registering when an interface is not accepted any more, and recovers', () => {
    expect(run([{ type: 'registrations', complete: false }], BootState.Ready)).toBe(BootState.Registering);
    expect(run([{ type: 'registrations', complete: false }, { type: 'registrations', complete: true }], BootState.Ready)).toBe(BootState.Ready);
  });

  it('stays Configured on incomplete registrations until they are sent', () => {
    expect(run([{ type: 'registrations', complete: false }], BootState.Configured)).toBe(BootState.Configured);
  });

  it('reports starting while it boots and leaves the health to the rest once Ready', () => {
    expect(bootHealth(BootState.WaitingForControlNode)).toEqual({ state: 'starting', detail: 'waiting for a control node' });
    expect(bootHealth(BootState.Configured)?.detail).toBe('registering interfaces');
    expect(bootHealth(BootState.Registering)?.detail).toBe('registering interfaces');
    expect(bootHealth(BootState.Ready)).toBeUndefined();
  });
});
