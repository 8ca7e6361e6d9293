/**
 * The management RVI between an LPAR and a control node (seed 004, "Network
 * Architecture": as each processor boots it establishes a VI to the control
 * node logic and obtains its identity and data link configuration; "Virtual
 * LAN Server" 1-4: registration, multicast and promiscuous mode). One msgpack
 * control message per RVI message (shared/control/codec.ts), no request ids:
 * every exchange is a notification, answered by another.
 *
 *   lpar → control node (ToControlNode)
 *     boot {name}                         asks for its configuration (again after the RVI or the peer restarts)
 *     health {state, detail}              reported after configuration and on change
 *     vlan-register {vlan, dev, ip, mac}  binds an interface's IP and MAC to this RVI; answered by vlan-registered
 *     mcast {vlan, group, join}           first join / last leave of a multicast group MAC
 *     promisc {vlan, on}                  promiscuous mode on or off (granted only where the platform file permits)
 *     smcr-links {peer}                   asks for an SMC-R link group to another LPAR (seed 002, Fig. 4 steps 407-409)
 *
 *   control node → lpar (ToLpar)
 *     config {name, cec, controlNode, serial, platform, ethernet, interfaces, apps, forwarding, routes, smc}
 *                                         identity, one interface per virtual LAN (MACs from NVRAM),
 *                                         workloads, and the SMC grant (shared/platform/smc-settings.ts)
 *     vlan-registered {vlan, ok, reason?} the answer to vlan-register
 *     lan-peers {vlan, peers}             which IP (and MAC) is behind each unicast RVI of the LAN, and whether it forwards
 *     promisc-listeners {vlan, listeners} the members that clone unicast traffic (node, dev)
 *     vlan-added {interface}              a membership joined at run time
 *     vlan-removed {vlan}                 a membership left at run time
 *     smcr-links {peer, ok: true, rvis: [idA, idB]}   RVIs of purposes smcr-a and smcr-b (shared/smc/link-purpose.ts)
 *     smcr-links {peer, ok: false, reason}           refused (no common virtual LAN, SMC-R off, ...)
 *
 * A message that does not decode (unknown `t`, a field missing, of the wrong
 * type or out of bounds) is counted and dropped by the receiver; the reason
 * names the field. New fields go into the interfaces below and their
 * decoders; an optional one (read with `opt…`) keeps older peers working.
 */
import { decodeControl, encodeControl, type ControlMessage } from '../control/codec.ts';
import { BUILTIN_APP_NAMES, type AppSpec, type EthernetSettings, type RouteSpec } from '../platform/platform.ts';
import { SMC_BOUNDS, type SmcGrant } from '../platform/smc-settings.ts';
import type { Rvi } from '../rclan/rvi.ts';
import { parseIp } from '../wire/ipv4-address.ts';
import { parseMac } from '../wire/mac.ts';
import { type Check, type Decoded, type MessageBody, MessageSet, NAME_MAX, TEXT_MAX, anything, arrayOf, bool, bounded, int, lenient, name, nullable, oneOf, opt, parsed, recordOf, shape, withDefault } from './check.ts';

/** Interfaces, peers, groups and apps a message may carry at most: far above any platform, low enough to bound memory. */
const MAX_LIST = 4096;
const IP_MAX = 15;
const MAC_MAX = 17;

/** One virtual Ethernet interface as a control node configures it. */
export interface MgmtInterface {
  vlan: string;
  /** Virtual LAN number (1..255), carried in internal MACs and TLV headers. */
  vlanId: number;
  /** Device number on the LPAR (the TLV's device fields). */
  dev: number;
  ip: string;
  prefix: number;
  mac: string;
  mtu: number;
  promiscuousAllowed: boolean;
}

/** The member behind one unicast RVI of a virtual LAN. */
export interface LanPeer {
  rvi: number;
  ip: string;
  /** The MAC it registered, null until it has. */
  mac: string | null;
  /** It routes for others (`forwarding: true`): its datagrams may carry any IPv4 source. */
  forwarding: boolean;
}

export interface PromiscListener {
  node: string;
  dev: number;
}

export type ToControlNode =
  | { t: 'boot'; name: string }
  | { t: 'health'; state: string; detail: string }
  | { t: 'vlan-register'; vlan: string; dev: number; ip: string; mac: string }
  | { t: 'mcast'; vlan: string; group: string; join: boolean }
  | { t: 'promisc'; vlan: string; on: boolean }
  | { t: 'smcr-links'; peer: string };

export interface ConfigMessage {
  t: 'config';
  name: string;
  cec: string;
  controlNode: string;
  serial: number;
  platform: string;
  ethernet: EthernetSettings;
  interfaces: MgmtInterface[];
  /** The workloads the platform file names for this LPAR (module paths already absolute). */
  apps: AppSpec[];
  /** Whether it routes IPv4 between its virtual LANs (RFC 1812). */
  forwarding: boolean;
  /** Its static routes from the platform file (the loader checked them). */
  routes: RouteSpec[];
  /**
   * Shared Memory Communications for this LPAR (seed 002, Fig. 4 steps
   * 403/415: SMC capable and enabled). Partial on receipt: a control node of
   * another build may leave out or bound a setting differently, and the
   * partition takes its default for it (services/lpar/net/smc/smc-config.ts).
   */
  smc: Partial<SmcGrant>;
}

/** What a control node sends: its grant is always complete. */
export type ConfigSent = Omit<ConfigMessage, 'smc'> & { smc: SmcGrant };

export type SmcrLinksAnswer = { t: 'smcr-links'; peer: string; ok: true; rvis: [number, number] } | { t: 'smcr-links'; peer: string; ok: false; reason: string };

export type ToLpar =
  | ConfigMessage
  | { t: 'vlan-registered'; vlan: string; ok: boolean; reason?: string }
  | { t: 'lan-peers'; vlan: string; peers: LanPeer[] }
  | { t: 'promisc-listeners'; vlan: string; listeners: PromiscListener[] }
  | { t: 'vlan-added'; interface: MgmtInterface }
  | { t: 'vlan-removed'; vlan: string }
  | SmcrLinksAnswer;

const ip = parsed(IP_MAX, parseIp, 'a dotted IPv4 address');
const mac = parsed(MAC_MAX, parseMac, 'a MAC address');
const vlan = name(NAME_MAX);
const dev = int(0, 255);
const rviId = int(0, 0xffffff);

export const mgmtInterface: Check<MgmtInterface> = shape({
  vlan,
  vlanId: int(1, 255),
  dev,
  ip,
  prefix: int(0, 32),
  mac,
  mtu: int(68, 65535),
  promiscuousAllowed: bool,
});

const lanPeer: Check<LanPeer> = shape({ rvi: rviId, ip, mac: nullable(mac), forwarding: withDefault(bool, false) });

const route: Check<RouteSpec> = shape({ prefix: bounded(64), via: opt(ip), dev: opt(name(NAME_MAX)) });

const builtinApp = shape({ name: oneOf(BUILTIN_APP_NAMES), port: int(1, 65535) });
const moduleApp = shape({ module: bounded(4096), port: opt(int(1, 65535)), options: recordOf(anything) });
/** A user module when it names one, else a built-in app. */
const app: Check<AppSpec> = (v, f) => (typeof v === 'object' && v !== null && (v as { module?: unknown }).module != null ? moduleApp(v, f) : builtinApp(v, f));

/** The SMC grant: each setting that is present, of its type and within its bounds; the others are left to the partition's defaults. */
const smcGrantFields = shape({
  enabled: lenient(bool),
  d: lenient(bool),
  r: lenient(bool),
  ringBytes: lenient(int(...SMC_BOUNDS.ringBytes)),
  pollUs: lenient(int(...SMC_BOUNDS.pollUs)),
  clcTimeoutMs: lenient(int(...SMC_BOUNDS.clcTimeoutMs)),
});
export const smcGrant: Check<Partial<SmcGrant>> = (v, f) => {
  const g: Partial<SmcGrant> = smcGrantFields(v, f);
  // A ring cursor counts bytes mod 2^32 (shared/smc/smb.ts): only a power of two divides it.
  if (g.ringBytes !== undefined && (g.ringBytes & (g.ringBytes - 1)) !== 0) delete g.ringBytes;
  return g;
};

const toControlNode = new MessageSet('management', {
  boot: { name: vlan },
  health: { state: bounded(32), detail: withDefault(bounded(TEXT_MAX), '') },
  'vlan-register': { vlan, dev, ip, mac },
  mcast: { vlan, group: mac, join: bool },
  promisc: { vlan, on: bool },
  'smcr-links': { peer: vlan },
} satisfies { [T in ToControlNode['t']]: MessageBody });

type Untagged<U> = U extends unknown ? Omit<U, 't'> : never;

/** ok selects the answer's other field: the two RVIs, or why not. */
const smcrLinksAnswer: Check<Untagged<SmcrLinksAnswer>> = (v, f) => {
  const { peer, ok } = shape({ peer: name(NAME_MAX), ok: bool })(v, f);
  if (ok) {
    const [a, b] = shape({ rvis: arrayOf(rviId, 2, 2) })(v, f).rvis;
    return { peer, ok: true, rvis: [a, b] };
  }
  return { peer, ok: false, reason: withDefault(bounded(4 * TEXT_MAX), 'no reason given')((v as Record<string, unknown>).reason, 'reason') };
};

const toLpar = new MessageSet('management', {
  config: {
    name: vlan,
    cec: vlan,
    controlNode: vlan,
    serial: int(1, 0xffff),
    platform: vlan,
    ethernet: shape({ heartbeatMs: int(1, 3_600_000), arpCacheSeconds: int(1, 86_400 * 365) }),
    interfaces: arrayOf(mgmtInterface, 255),
    apps: arrayOf(app, MAX_LIST),
    forwarding: withDefault(bool, false),
    routes: withDefault(arrayOf(route, MAX_LIST), []),
    smc: withDefault(smcGrant, {}),
  },
  'vlan-registered': { vlan, ok: bool, reason: opt(bounded(4 * TEXT_MAX)) },
  'lan-peers': { vlan, peers: arrayOf(lanPeer, MAX_LIST) },
  'promisc-listeners': { vlan, listeners: arrayOf(shape({ node: vlan, dev }), MAX_LIST) },
  'vlan-added': { interface: mgmtInterface },
  'vlan-removed': { vlan },
  'smcr-links': smcrLinksAnswer,
} satisfies { [T in ToLpar['t']]: MessageBody });

function decodeBody<T>(set: { decode(raw: unknown): Decoded<T> }, payload: Buffer): Decoded<T> {
  let msg: ControlMessage;
  try {
    msg = decodeControl(payload);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  return set.decode(msg);
}

/** A management message from an LPAR, checked (at a control node). */
export function decodeToControlNode(payload: Buffer): Decoded<ToControlNode> {
  return decodeBody<ToControlNode>(toControlNode, payload);
}

/** A management message from a control node, checked (at an LPAR). */
export function decodeToLpar(payload: Buffer): Decoded<ToLpar> {
  return decodeBody<ToLpar>(toLpar, payload);
}

/** Sends one management message; false when the RVI's send queue is full. */
export function sendMgmt(rvi: Pick<Rvi, 'send'>, msg: ToControlNode | ToLpar | ConfigSent): boolean {
  return rvi.send(encodeControl(msg as unknown as ControlMessage));
}

