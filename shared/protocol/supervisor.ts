/**
 * The supervisor's control socket (sock/supervisor.sock in the run
 * directory): how the CLI asks the process that launched a platform
 * (`lparlab up`, or the detached `lparlab supervise` behind `up --detach`) to
 * act on it. Control messages over a link (shared/control/channel.ts); the
 * socket is mode 0700 in the run directory, so whoever can open it owns the
 * platform, as with every admin socket.
 *
 *   CLI → supervisor (each a request; the reply, or an error reply with the reason)
 *     start {name}                 start one process of the plan again (or one left out with --except)
 *                                  reply {name, pid}
 *     ps {}                        reply {children: [{name, pid}], taps: [{dev, vlan, pid}]}
 *     tap-attach {vlan, dev, cidr} bridge a virtual LAN to a new Linux TAP device (socat)
 *                                  reply {dev, vlan, pid}
 *     tap-detach {dev}             reply {dev}
 *     stop {}                      reply {}; then every child is stopped and the supervisor exits
 *
 * Both ends use the decoders below: the supervisor refuses a malformed request
 * with the reason (an error reply), and the CLI checks each reply's shape.
 */
import type { ControlMessage } from '../control/codec.ts';

export const SupervisorMsg = {
  Start: 'start',
  Ps: 'ps',
  TapAttach: 'tap-attach',
  TapDetach: 'tap-detach',
  Stop: 'stop',
} as const;

export type SupervisorRequest =
  | { t: typeof SupervisorMsg.Start; name: string }
  | { t: typeof SupervisorMsg.Ps }
  | { t: typeof SupervisorMsg.TapAttach; vlan: string; dev: string; cidr: string }
  | { t: typeof SupervisorMsg.TapDetach; dev: string }
  | { t: typeof SupervisorMsg.Stop };

export interface StartReply {
  name: string;
  pid: number;
}
export interface PsReply {
  children: Array<{ name: string; pid: number }>;
  taps: Array<{ dev: string; vlan: string; pid: number }>;
}
export interface TapAttachReply {
  dev: string;
  vlan: string;
  pid: number;
}
export interface TapDetachReply {
  dev: string;
}

/** A decoded message, or why it is not one. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

const str = (m: ControlMessage, k: string): string | undefined => (typeof m[k] === 'string' && (m[k] as string).length > 0 ? (m[k] as string) : undefined);
const int = (m: Record<string, unknown>, k: string): number | undefined => (Number.isInteger(m[k]) ? (m[k] as number) : undefined);
const bad = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

export function decodeSupervisorRequest(m: ControlMessage): Decoded<SupervisorRequest> {
  switch (m.t) {
    case SupervisorMsg.Start: {
      const name = str(m, 'name');
      return name ? { ok: true, value: { t: m.t, name } } : bad('start: "name" must be a process name');
    }
    case SupervisorMsg.Ps:
    case SupervisorMsg.Stop:
      return { ok: true, value: { t: m.t } };
    case SupervisorMsg.TapAttach: {
      const vlan = str(m, 'vlan');
      const dev = str(m, 'dev');
      const cidr = str(m, 'cidr');
      if (!vlan || !dev || !cidr) return bad('tap-attach: "vlan", "dev" and "cidr" must be strings');
      return { ok: true, value: { t: m.t, vlan, dev, cidr } };
    }
    case SupervisorMsg.TapDetach: {
      const dev = str(m, 'dev');
      return dev ? { ok: true, value: { t: m.t, dev } } : bad('tap-detach: "dev" must be a device name');
    }
    default:
      return bad(`unknown supervisor request "${String(m.t)}"`);
  }
}

export function decodeStartReply(m: ControlMessage): Decoded<StartReply> {
  const name = str(m, 'name');
  const pid = int(m, 'pid');
  return name && pid !== undefined ? { ok: true, value: { name, pid } } : bad('start reply: wants {name, pid}');
}

export function decodePsReply(m: ControlMessage): Decoded<PsReply> {
  if (!Array.isArray(m.children) || !Array.isArray(m.taps)) return bad('ps reply: wants {children, taps}');
  const children: PsReply['children'] = [];
  for (const c of m.children as unknown[]) {
    if (!c || typeof c !== 'object') return bad('ps reply: a child is not an object');
    const o = c as Record<string, unknown>;
    if (typeof o.name !== 'string' || int(o, 'pid') === undefined) return bad('ps reply: a child wants {name, pid}');
    children.push({ name: o.name, pid: o.pid as number });
  }
  const taps: PsReply['taps'] = [];
  for (const t of m.taps as unknown[]) {
    if (!t || typeof t !== 'object') return bad('ps reply: a tap is not an object');
    const o = t as Record<string, unknown>;
    if (typeof o.dev !== 'string' || typeof o.vlan !== 'string' || int(o, 'pid') === undefined) return bad('ps reply: a tap wants {dev, vlan, pid}');
    taps.push({ dev: o.dev, vlan: o.vlan, pid: o.pid as number });
  }
  return { ok: true, value: { children, taps } };
}

export function decodeTapAttachReply(m: ControlMessage): Decoded<TapAttachReply> {
  const dev = str(m, 'dev');
  const vlan = str(m, 'vlan');
  const pid = int(m, 'pid');
  return dev && vlan && pid !== undefined ? { ok: true, value: { dev, vlan, pid } } : bad('tap-attach reply: wants {dev, vlan, pid}');
}

export function decodeTapDetachReply(m: ControlMessage): Decoded<TapDetachReply> {
  const dev = str(m, 'dev');
  return dev ? { ok: true, value: { dev } } : bad('tap-detach reply: wants {dev}');
}
