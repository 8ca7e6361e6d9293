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
import { decodeWith, Fields, TEXT_MAX, type Decoded, type DecoderTable } from './fields.ts';

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

const ip = (f: Fields, name: string) => f.parsed(name, IP_MAX, parseIp, 'a dotted IPv4 address');
const mac = (f: Fields, name: string) => f.parsed(name, MAC_MAX, parseMac, 'a MAC address');

export function readInterface(f: Fields): MgmtInterface {
  return {
    vlan: f.name('vlan'),
    vlanId: f.int('vlanId', 1, 255),
    dev: f.int('dev', 0, 255),
    ip: ip(f, 'ip'),
    prefix: f.int('prefix', 0, 32),
    mac: mac(f, 'mac'),
    mtu: f.int('mtu', 68, 65535),
    promiscuousAllowed: f.bool('promiscuousAllowed'),
  };
}

function readLanPeer(f: Fields): LanPeer {
  return { rvi: f.int('rvi', 0, 0xffffff), ip: ip(f, 'ip'), mac: f.has('mac') ? mac(f, 'mac') : null, forwarding: f.optBool('forwarding') ?? false };
}

function readRoute(f: Fields): RouteSpec {
  const via = f.has('via') ? ip(f, 'via') : undefined;
  const dev = f.has('dev') ? f.name('dev') : undefined;
  return { prefix: f.str('prefix', 64), ...(via !== undefined ? { via } : {}), ...(dev !== undefined ? { dev } : {}) };
}

function readApp(f: Fields): AppSpec {
  if (f.has('module')) return { module: f.str('module', 4096), ...(f.has('port') ? { port: f.int('port', 1, 65535) } : {}), options: f.record('options') };
  return { name: f.oneOf('name', BUILTIN_APP_NAMES), port: f.int('port', 1, 65535) };
}

/** The SMC grant: each setting that is present, of its type and within its bounds; the others are left to the partition's defaults. */
export function readSmcGrant(f: Fields): Partial<SmcGrant> {
  const g: Partial<SmcGrant> = {};
  const enabled = f.maybeBool('enabled');
  const d = f.maybeBool('d');
  const r = f.maybeBool('r');
  const ringBytes = f.maybeInt('ringBytes', ...SMC_BOUNDS.ringBytes);
  const pollUs = f.maybeInt('pollUs', ...SMC_BOUNDS.pollUs);
  const clcTimeoutMs = f.maybeInt('clcTimeoutMs', ...SMC_BOUNDS.clcTimeoutMs);
  if (enabled !== undefined) g.enabled = enabled;
  if (d !== undefined) g.d = d;
  if (r !== undefined) g.r = r;
  // A ring cursor counts bytes mod 2^32 (shared/smc/smb.ts): only a power of two divides it.
  if (ringBytes !== undefined && (ringBytes & (ringBytes - 1)) === 0) g.ringBytes = ringBytes;
  if (pollUs !== undefined) g.pollUs = pollUs;
  if (clcTimeoutMs !== undefined) g.clcTimeoutMs = clcTimeoutMs;
  return g;
}

const TO_CONTROL_NODE: DecoderTable<ToControlNode> = {
  boot: (f) => ({ t: 'boot', name: f.name('name') }),
  health: (f) => ({ t: 'health', state: f.str('state', 32), detail: f.optStr('detail', TEXT_MAX) ?? '' }),
  'vlan-register': (f) => ({ t: 'vlan-register', vlan: f.name('vlan'), dev: f.int('dev', 0, 255), ip: ip(f, 'ip'), mac: mac(f, 'mac') }),
  mcast: (f) => ({ t: 'mcast', vlan: f.name('vlan'), group: mac(f, 'group'), join: f.bool('join') }),
  promisc: (f) => ({ t: 'promisc', vlan: f.name('vlan'), on: f.bool('on') }),
  'smcr-links': (f) => ({ t: 'smcr-links', peer: f.name('peer') }),
};

const TO_LPAR: DecoderTable<ToLpar> = {
  config: (f) => ({
    t: 'config',
    name: f.name('name'),
    cec: f.name('cec'),
    controlNode: f.name('controlNode'),
    serial: f.int('serial', 1, 0xffff),
    platform: f.name('platform'),
    ethernet: f.obj('ethernet', (e) => ({ heartbeatMs: e.int('heartbeatMs', 1, 3_600_000), arpCacheSeconds: e.int('arpCacheSeconds', 1, 86_400 * 365) })),
    interfaces: f.list('interfaces', 255, readInterface),
    apps: f.list('apps', MAX_LIST, readApp),
    forwarding: f.optBool('forwarding') ?? false,
    routes: f.has('routes') ? f.list('routes', MAX_LIST, readRoute) : [],
    smc: f.has('smc') ? f.obj('smc', readSmcGrant) : {},
  }),
  'vlan-registered': (f) => ({ t: 'vlan-registered', vlan: f.name('vlan'), ok: f.bool('ok'), ...(f.has('reason') ? { reason: f.str('reason', 4 * TEXT_MAX) } : {}) }),
  'lan-peers': (f) => ({ t: 'lan-peers', vlan: f.name('vlan'), peers: f.list('peers', MAX_LIST, readLanPeer) }),
  'promisc-listeners': (f) => ({ t: 'promisc-listeners', vlan: f.name('vlan'), listeners: f.list('listeners', MAX_LIST, (l) => ({ node: l.name('node'), dev: l.int('dev', 0, 255) })) }),
  'vlan-added': (f) => ({ t: 'vlan-added', interface: f.obj('interface', readInterface) }),
  'vlan-removed': (f) => ({ t: 'vlan-removed', vlan: f.name('vlan') }),
  'smcr-links': (f) => {
    const peer = f.name('peer');
    if (f.bool('ok')) {
      const [a, b] = f.ints('rvis', { min: 2, max: 2 }, 0, 0xffffff);
      return { t: 'smcr-links', peer, ok: true, rvis: [a, b] };
    }
    return { t: 'smcr-links', peer, ok: false, reason: f.optStr('reason', 4 * TEXT_MAX) ?? 'no reason given' };
  },
};

function decodeBody<U extends { t: string }>(channel: string, table: DecoderTable<U>, payload: Buffer): Decoded<U> {
  let msg: ControlMessage;
  try {
    msg = decodeControl(payload);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  return decodeWith(channel, table, msg);
}

/** A management message from an LPAR, checked (at a control node). */
export function decodeToControlNode(payload: Buffer): Decoded<ToControlNode> {
  return decodeBody('management', TO_CONTROL_NODE, payload);
}

/** A management message from a control node, checked (at an LPAR). */
export function decodeToLpar(payload: Buffer): Decoded<ToLpar> {
  return decodeBody('management', TO_LPAR, payload);
}

/** Sends one management message; false when the RVI's send queue is full. */
export function sendMgmt(rvi: Pick<Rvi, 'send'>, msg: ToControlNode | ToLpar | ConfigSent): boolean {
  return rvi.send(encodeControl(msg as unknown as ControlMessage));
}

