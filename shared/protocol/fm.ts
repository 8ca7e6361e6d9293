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
 *     location-set {endpoint, node, vlan?} privileged: an address a control node registered on `vlan` lives on `node` → {endpoint, node}
 *     rvi-list {}                   every RVI (privileged) or the caller's own → {rvis: RviRecord[]}
 *     locate {endpoint}             a node name or registered address → {endpoint, node, cec} (null: unknown,
 *                                   or, to a partition, not on a virtual LAN it is on: issue 11 item 11)
 *     fm-status {}                  planes, nodes, RVIs and counters → FmStatus (a partition sees only its own RVIs)
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
import { opt, type Check, type Decoded, FieldError, type MessageBody, MessageSet, NAME_MAX, arrayOf, bool, decodeWith, int, name, nullable, num, recordOf, shape, withDefault } from './check.ts';

/** Purposes are labels, but a bounded one: it is stored, persisted and listed. */
const PURPOSE_MAX = 64;
/** Endpoints are node names or dotted IPv4 addresses. */
const ENDPOINT_MAX = 64;
const MAX_RVIS = 1 << 20;
const ID_MAX = 0xffffff;
/** The largest RVI number: decoders refuse more, so the fabric manager hands out no more. */
export const RVI_ID_MAX = ID_MAX;
/**
 * A VI number is 20 bits: a switch keys its routes by port * 2^20 + VI, so a
 * larger one would alias the next port's VIs (issue 11 item 13). The fabric
 * manager allocates within this, and every decoder of VI numbers refuses more.
 */
export const VI_BITS = 20;
export const VI_MAX = (1 << VI_BITS) - 1;

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
  | { t: 'location-set'; endpoint: string; node: string; vlan?: string }
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

const purpose = name(PURPOSE_MAX);
const rviId = int(1, ID_MAX);
const node = name(NAME_MAX);
const endpoint = name(ENDPOINT_MAX);

const viNumber = int(1, VI_MAX);

/** An RVI record as the fabric manager keeps and sends it (also the check of its persisted tables). */
export const rviRecord: Check<RviRecord> = shape({ id: rviId, a: node, b: node, purpose, viA: viNumber, viB: viNumber });

export const rviInfo: Check<RviInfo> = shape({ id: rviId, vi: viNumber, peer: node, purpose });

const isInt = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** A row of a list (a tuple): refused whole, naming the row, when `ok` says it is not one. */
function row<T>(ok: (r: unknown[]) => boolean, want: string): Check<T> {
  return (v, f) => {
    if (!Array.isArray(v) || !ok(v)) throw new FieldError(f, want, v);
    return v as T;
  };
}

const viEntry = row<ViEntry>((r) => r.length === 5 && isInt(r[0], 1, ID_MAX) && isInt(r[1], 0, 0xffff) && isInt(r[2], 1, VI_MAX) && isInt(r[3], 0, 0xffff) && isInt(r[4], 1, VI_MAX), `[rvi, portA, viA, portB, viB] (VIs 1..${VI_MAX})`);
const viEntries = arrayOf(viEntry, MAX_RVIS);
const portRow = row<[string, number]>((r) => r.length === 2 && typeof r[0] === 'string' && r[0].length <= NAME_MAX && isInt(r[1], 0, 0xffff), '[name, port]');

export const FM_REQUESTS = ['rvi-create', 'rvi-destroy', 'location-set', 'rvi-list', 'locate', 'fm-status'] as const satisfies ReadonlyArray<FmRequest['t']>;

const requests = new MessageSet('fabric manager', {
  'rvi-create': { a: node, b: node, purpose: withDefault(purpose, Data) },
  'rvi-destroy': { id: int(0, ID_MAX) },
  'location-set': { endpoint, node, vlan: opt(node) },
  'rvi-list': {},
  locate: { endpoint },
  'fm-status': {},
} satisfies { [T in FmRequest['t']]: MessageBody });

const replies: { [T in FmRequest['t']]: Check<FmReplies[T]> } = {
  'rvi-create': shape({ rvi: rviRecord }),
  'rvi-destroy': shape({ destroyed: int(0, ID_MAX) }),
  'location-set': shape({ endpoint, node }),
  'rvi-list': shape({ rvis: arrayOf(rviRecord, MAX_RVIS) }),
  locate: shape({ endpoint, node: nullable(node), cec: nullable(node) }),
  'fm-status': shape({
    planes: arrayOf(shape({ plane: node, switchConnected: bool }), 2),
    nodes: arrayOf(shape({ name: node, port: int(0, 0xffff), role: node, connected: bool, cec: nullable(node) }), MAX_RVIS),
    rvis: arrayOf(rviRecord, MAX_RVIS),
    stats: recordOf(num()),
  }),
};

const plane = shape({ name: node, url: name(4096) });
const nodeNotices = new MessageSet('fabric manager', {
  welcome: {
    port: int(0, 0xffff),
    planes: (v: unknown, f: string): NodeWelcome['planes'] => {
      const [a, b] = arrayOf(plane, 2, 2)(v, f);
      return [a, b];
    },
    rclan: shape({ heartbeatMs: int(1, 60_000), deadAfterMs: int(1, 600_000), undeliverableAfterMs: int(1, 3_600_000), window: int(1, 1 << 20) }),
    rvis: arrayOf(rviInfo, MAX_RVIS),
  },
  'rvi-add': { rvi: rviInfo },
  'rvi-del': { vi: viNumber },
} satisfies { [T in NodeNotice['t']]: MessageBody });

const switchNotices = new MessageSet('fabric manager', {
  welcome: { ports: arrayOf(portRow, MAX_RVIS), vis: viEntries },
  'vi-add': { entries: viEntries },
  'vi-del': { rvis: arrayOf(rviId, MAX_RVIS) },
} satisfies { [T in SwitchNotice['t']]: MessageBody });

/** A request to the fabric manager, checked (at the fabric manager). */
export function decodeFmRequest(msg: ControlMessage): Decoded<FmRequest> {
  return requests.decode(msg);
}

/** The fabric manager's reply to a request of type `t`, checked (at the caller). */
export function decodeFmReply<T extends FmRequest['t']>(t: T, msg: ControlMessage): Decoded<FmReplies[T]> {
  if (msg.t !== `${t}-ok`) return { ok: false, reason: `fabric manager reply to "${t}" is "${msg.t.slice(0, NAME_MAX)}"` };
  return decodeWith(replies[t], `fabric manager reply to "${t}"`, msg);
}

/** A notification from the fabric manager to a fabric switch, checked. */
export function decodeSwitchNotice(msg: ControlMessage): Decoded<SwitchNotice> {
  return switchNotices.decode(msg);
}

/** A notification from the fabric manager to a node, checked. */
export function decodeNodeNotice(msg: ControlMessage): Decoded<NodeNotice> {
  return nodeNotices.decode(msg);
}

