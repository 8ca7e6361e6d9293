/**
 * The fabric manager's channel (seed 004, "2. RVI Mapping And Management":
 * the switch manager creates and removes RVIs at the call of the control
 * nodes; seed 003: the virtualization management mechanism says where an
 * address lives). Control messages over a link (shared/control/channel.ts),
 * after the challenge/hello authentication of shared/control/auth.ts, which
 * names the caller's role.
 *
 *   node or management → fabric manager (FmRequest; the reply is `<t>-ok` with FmReplies[t], or an error)
 *     rvi-create {a, b, purpose}    privileged: the RVI (existing one for the same pair and purpose) → {rvi: RviRecord}
 *     rvi-destroy {id}              privileged → {destroyed: id}
 *     location-set {endpoint, node} privileged: an address a control node registered lives on `node` → {endpoint, node}
 *     rvi-list {}                   every RVI (privileged) or the caller's own → {rvis: RviRecord[]}
 *     locate {endpoint}             a node name or registered address → {endpoint, node, cec} (null: unknown)
 *     fm-status {}                  planes, nodes, RVIs and counters → FmStatus
 *
 *   fabric manager → node (NodeNotice)
 *     welcome {port, planes, rclan, rvis}  after authentication: fabric port, the planes' addresses
 *                                          (in the platform's plane order), RCLAN settings, its RVIs
 *     rvi-add {rvi: RviInfo}               an RVI of this node was created
 *     rvi-del {vi}                         the RVI with this node's VI number was destroyed
 *
 *   fabric manager → fabric switch (SwitchNotice)
 *     welcome {ports, vis}                 every node's port ([name, port]) and every VI entry
 *     vi-add {entries}  vi-del {rvis}      changes to the VI table: entries [rvi, portA, viA, portB, viB]
 *
 * Only control nodes and management may make paths ("the individual
 * processing nodes are not permitted to establish such paths"): the fabric
 * manager refuses and logs the rest. A request that does not decode is
 * refused with the reason, naming the field.
 */
import type { ControlMessage } from '../control/codec.ts';
import type { RclanSettings } from '../platform/platform.ts';
import type { RviInfo } from '../rclan/rclan.ts';
import { Data, type Purpose } from '../rclan/purpose.ts';
import { decodeWith, Fields, NAME_MAX, readFields, type Decoded, type DecoderTable } from './fields.ts';

/** Purposes are labels, but a bounded one: it is stored, persisted and listed. */
const PURPOSE_MAX = 64;
/** Endpoints are node names or dotted IPv4 addresses. */
const ENDPOINT_MAX = 64;
const MAX_RVIS = 1 << 20;
const ID_MAX = 0xffffff;

/** One RVI as the fabric manager keeps it: the two nodes and each one's VI number (the same on both planes). */
export interface RviRecord {
  id: number;
  a: string;
  b: string;
  purpose: Purpose;
  viA: number;
  viB: number;
}

/** Where an address lives: the LPAR and CEC (null: not a node, nor an address any control node registered). */
export interface Location {
  node: string | null;
  cec: string | null;
}

/** A switch's VI-table entry: [rvi, portA, viA, portB, viB]. */
export type ViEntry = [number, number, number, number, number];

export interface FmStatus {
  planes: Array<{ plane: string; switchConnected: boolean }>;
  nodes: Array<{ name: string; port: number; role: string; connected: boolean; cec: string | null }>;
  rvis: RviRecord[];
  stats: Record<string, number>;
}

export type FmRequest =
  | { t: 'rvi-create'; a: string; b: string; purpose: Purpose }
  | { t: 'rvi-destroy'; id: number }
  | { t: 'location-set'; endpoint: string; node: string }
  | { t: 'rvi-list' }
  | { t: 'locate'; endpoint: string }
  | { t: 'fm-status' };

export interface FmReplies {
  'rvi-create': { rvi: RviRecord };
  'rvi-destroy': { destroyed: number };
  'location-set': { endpoint: string; node: string };
  'rvi-list': { rvis: RviRecord[] };
  locate: Location & { endpoint: string };
  'fm-status': FmStatus;
}

/** A caller of the fabric manager: typed requests, checked replies (NodeFabric is one). */
export interface FmClient {
  request<R extends FmRequest>(msg: R, timeoutMs?: number): Promise<FmReplies[R['t']]>;
}

export interface NodeWelcome {
  t: 'welcome';
  port: number;
  planes: [{ name: string; url: string }, { name: string; url: string }];
  rclan: RclanSettings;
  rvis: RviInfo[];
}

export type NodeNotice = NodeWelcome | { t: 'rvi-add'; rvi: RviInfo } | { t: 'rvi-del'; vi: number };

export type SwitchNotice = { t: 'welcome'; ports: Array<[string, number]>; vis: ViEntry[] } | { t: 'vi-add'; entries: ViEntry[] } | { t: 'vi-del'; rvis: number[] };

const purpose = (f: Fields) => f.name('purpose', PURPOSE_MAX);

function readRecord(f: Fields): RviRecord {
  return { id: f.int('id', 1, ID_MAX), a: f.name('a'), b: f.name('b'), purpose: purpose(f), viA: f.int('viA', 1, ID_MAX), viB: f.int('viB', 1, ID_MAX) };
}

export function readRviInfo(f: Fields): RviInfo {
  return { id: f.int('id', 1, ID_MAX), vi: f.int('vi', 1, ID_MAX), peer: f.name('peer'), purpose: purpose(f) };
}

const isInt = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

function readEntries(f: Fields, name: string): ViEntry[] {
  return f.rows(name, MAX_RVIS, (r, bad) => (r.length === 5 && isInt(r[0], 1, ID_MAX) && [1, 2, 3, 4].every((i) => isInt(r[i], 0, ID_MAX)) ? (r as ViEntry) : bad('[rvi, portA, viA, portB, viB]')));
}

export const FM_REQUESTS = ['rvi-create', 'rvi-destroy', 'location-set', 'rvi-list', 'locate', 'fm-status'] as const satisfies ReadonlyArray<FmRequest['t']>;

const REQUESTS: DecoderTable<FmRequest> = {
  'rvi-create': (f) => ({ t: 'rvi-create', a: f.name('a'), b: f.name('b'), purpose: f.has('purpose') ? purpose(f) : Data }),
  'rvi-destroy': (f) => ({ t: 'rvi-destroy', id: f.int('id', 0, ID_MAX) }),
  'location-set': (f) => ({ t: 'location-set', endpoint: f.name('endpoint', ENDPOINT_MAX), node: f.name('node') }),
  'rvi-list': () => ({ t: 'rvi-list' }),
  locate: (f) => ({ t: 'locate', endpoint: f.name('endpoint', ENDPOINT_MAX) }),
  'fm-status': () => ({ t: 'fm-status' }),
};

type Reply<T extends FmRequest['t']> = (f: Fields) => FmReplies[T];

const REPLIES: { [T in FmRequest['t']]: Reply<T> } = {
  'rvi-create': (f) => ({ rvi: f.obj('rvi', readRecord) }),
  'rvi-destroy': (f) => ({ destroyed: f.int('destroyed', 0, ID_MAX) }),
  'location-set': (f) => ({ endpoint: f.name('endpoint', ENDPOINT_MAX), node: f.name('node') }),
  'rvi-list': (f) => ({ rvis: f.list('rvis', MAX_RVIS, readRecord) }),
  locate: (f) => ({ endpoint: f.name('endpoint', ENDPOINT_MAX), node: f.has('node') ? f.name('node') : null, cec: f.has('cec') ? f.name('cec') : null }),
  'fm-status': (f) => ({
    planes: f.list('planes', 2, (p) => ({ plane: p.name('plane'), switchConnected: p.bool('switchConnected') })),
    nodes: f.list('nodes', MAX_RVIS, (n) => ({ name: n.name('name'), port: n.int('port', 0, 0xffff), role: n.name('role'), connected: n.bool('connected'), cec: n.has('cec') ? n.name('cec') : null })),
    rvis: f.list('rvis', MAX_RVIS, readRecord),
    stats: f.counters('stats'),
  }),
};

const NODE_NOTICES: DecoderTable<NodeNotice> = {
  welcome: (f) => {
    const planes = f.list('planes', 2, (p) => ({ name: p.name('name'), url: p.name('url', 4096) }), 2);
    return {
      t: 'welcome',
      port: f.int('port', 0, 0xffff),
      planes: [planes[0], planes[1]],
      rclan: f.obj('rclan', (r) => ({ heartbeatMs: r.int('heartbeatMs', 1, 60_000), deadAfterMs: r.int('deadAfterMs', 1, 600_000), undeliverableAfterMs: r.int('undeliverableAfterMs', 1, 3_600_000), window: r.int('window', 1, 1 << 20) })),
      rvis: f.list('rvis', MAX_RVIS, readRviInfo),
    };
  },
  'rvi-add': (f) => ({ t: 'rvi-add', rvi: f.obj('rvi', readRviInfo) }),
  'rvi-del': (f) => ({ t: 'rvi-del', vi: f.int('vi', 1, ID_MAX) }),
};

/** A request to the fabric manager, checked (at the fabric manager). */
export function decodeFmRequest(msg: ControlMessage): Decoded<FmRequest> {
  return decodeWith('fabric manager', REQUESTS, msg);
}

/** The fabric manager's reply to a request of type `t`, checked (at the caller). */
export function decodeFmReply<T extends FmRequest['t']>(t: T, msg: ControlMessage): Decoded<FmReplies[T]> {
  if (msg.t !== `${t}-ok`) return { ok: false, reason: `fabric manager reply to "${t}" is "${msg.t.slice(0, NAME_MAX)}"` };
  return readFields(`fabric manager reply to "${t}"`, msg, REPLIES[t] as Reply<T>);
}

const SWITCH_NOTICES: DecoderTable<SwitchNotice> = {
  welcome: (f) => ({
    t: 'welcome',
    ports: f.rows('ports', MAX_RVIS, (r, bad) => (r.length === 2 && typeof r[0] === 'string' && r[0].length <= NAME_MAX && isInt(r[1], 0, 0xffff) ? [r[0], r[1] as number] : bad('[name, port]'))),
    vis: readEntries(f, 'vis'),
  }),
  'vi-add': (f) => ({ t: 'vi-add', entries: readEntries(f, 'entries') }),
  'vi-del': (f) => ({ t: 'vi-del', rvis: f.ints('rvis', { min: 0, max: MAX_RVIS }, 1, ID_MAX) }),
};

/** A notification from the fabric manager to a fabric switch, checked. */
export function decodeSwitchNotice(msg: ControlMessage): Decoded<SwitchNotice> {
  return decodeWith('fabric manager', SWITCH_NOTICES, msg);
}

/** A notification from the fabric manager to a node, checked. */
export function decodeNodeNotice(msg: ControlMessage): Decoded<NodeNotice> {
  return decodeWith('fabric manager', NODE_NOTICES, msg);
}

