/**
 * The admin verbs of every lparlab process: requests over a process's admin
 * socket (shared/runtime/service.ts; the CLI, the tests and the benches are
 * the askers), their replies, and the messages a long-lived verb streams
 * (a capture, an nc relay, an http body).
 *
 * One MessageSet of requests per service, one checked decoder per verb
 * (shared/protocol/check.ts): the service decodes with it before it acts,
 * and a malformed request gets an error reply that names the field
 * ('ping: field "count": an integer in 1..1000000 (got "3")'). The replies
 * are typed the same way, so an asker decodes them with
 * `decodeAdminReply(verb, raw)` instead of reading `r.rttsMs as number[]`.
 *
 *   every service   status
 *   lpar            lparRequests (network diagnostics, sockets, apps, SMC, RVI perf, routes)
 *   control node    controlNodeRequests (virtual LAN membership, TAP bridging)
 *   fabric switch   switchRequests (fault injection)
 *   hypervisor      hypervisorRequests
 *   fabric manager  fabricManagerRequests
 *
 * A reply on the wire carries `t: '<verb>-ok'` and the request number too
 * (shared/control/channel.ts); the reply decoders ignore them.
 */
import type { ControlChannel, Handler } from '../control/channel.ts';
import type { BuiltinAppName } from '../platform/platform.ts';
import { hvStatusCheck } from './hv.ts';
import {
  type Check,
  type Decoded,
  type MessageBody,
  type MessageMap,
  type MessagesOf,
  MessageSet,
  anything,
  arrayOf,
  bool,
  bytes,
  cidr,
  decodeWith,
  either,
  hex,
  int,
  ipv4,
  literal,
  name,
  nullable,
  num,
  oneOf,
  openShape,
  opt,
  orThrow,
  port,
  recordOf,
  shape,
  str,
  variant,
} from './check.ts';

// ---- requests -------------------------------------------------------------

const ms = num(0, 24 * 3600 * 1000);
/** Addresses one `ping-many` takes: every other member of the largest virtual LAN a platform may have, and then some. */
export const PING_MANY_MAX = 4096;
const count = int(1, 100_000_000);
/** Text, or binary: both arrive as the bytes to send. */
const textOrBytes: Check<Buffer> = either((v, f) => Buffer.from(str(v, f)), bytes, 'text or binary data');
/** A host as node:net takes it (an address or a name the partition resolves). */
const host = name(253);
const peer = name(256);
/** An id the service handed out (a UDP socket, a held connection, a region). */
const id = int(0, 0xffffffff);
/** A route's destination: A.B.C.D/N, or `default` (0.0.0.0/0), as ip-route(8) writes it. */
const routePrefix: Check<string> = either(literal('default'), cidr, 'an IPv4 prefix (a.b.c.d/n) or "default"');

const BUILTIN_APPS = ['echo', 'discard', 'http', 'bulk-sink', 'count-sink'] as const satisfies readonly BuiltinAppName[];

const common = {
  /** Identity, health and uptime of the process (every service). */
  status: {},
};

/** The RVI list of a node's fabric (lpar and control node). */
const rvis = { rvis: {} };

export const lparRequests = new MessageSet('lpar admin request', {
  ...common,
  ...rvis,
  'lpar-status': {},
  'smc-status': {},
  // ---- network: interfaces, ARP, ICMP ----
  ip: {},
  arp: {},
  'arp-flush': {},
  /** ICMP echo as ping(8): `count` requests `intervalMs` apart, each waiting `timeoutMs`; `size` data bytes. */
  ping: { dst: ipv4, count: opt(int(1, 1_000_000)), size: opt(int(0, 65507)), intervalMs: opt(ms), timeoutMs: opt(ms), ttl: opt(int(1, 255)), df: opt(bool) },
  /**
   * One echo request to each of `dsts`, `concurrency` (default 1) waiting at
   * once, each waiting `timeoutMs` (fping's sweep): `lparlab pingall` asks each
   * partition once for all its pairs instead of once per pair.
   */
  'ping-many': { dsts: arrayOf(ipv4, PING_MANY_MAX, 1), timeoutMs: opt(ms), concurrency: opt(int(1, 256)) },
  'net-stats': {},
  /** The routing table (contract in /work/briefs/areas.md; `default` is 0.0.0.0/0 on the wire). */
  route: variant(
    'op',
    {
      show: {},
      add: { prefix: routePrefix, via: opt(ipv4), dev: opt(name(64)) },
      del: { prefix: routePrefix, via: opt(ipv4) },
    },
    (op) => `a route operation (show, add, del), not ${JSON.stringify(op)}`,
  ),
  promisc: { vlan: name(64), on: opt(bool) },
  'promisc-frames': { vlan: name(64), last: opt(int(0, 1_000_000)) },
  /** Streams `capture-frame` messages of what this partition sends on `vlan` until the asker closes. */
  capture: { vlan: name(64) },
  // ---- UDP sockets, as netcat -u ----
  'udp-open': { port: opt(port), broadcast: opt(bool), sink: opt(bool) },
  /** `count` datagrams of `data` (or `size` bytes), at most `window` unconfirmed. */
  'udp-send': { socket: id, dst: ipv4, port, data: opt(bytes), size: opt(int(0, 65507)), count: opt(count), window: opt(int(1, 1_000_000)) },
  'udp-recv': { socket: id },
  'udp-join': { socket: id, group: ipv4 },
  'udp-leave': { socket: id, group: ipv4 },
  'udp-close': { socket: id },
  // ---- TCP, nc, http ----
  'tcp-send': { dst: host, port, bytes: int(0), seed: opt(int(0, 0xffffffff)), repeat: opt(bool), hash: opt(bool) },
  'tcp-exchange': { dst: host, port, data: opt(textOrBytes), timeoutMs: opt(ms) },
  'tcp-rr': { dst: host, port: opt(port), count: opt(count), size: opt(int(1, 1 << 24)) },
  'tcp-many': { dst: host, port, count: int(1, 100_000), size: opt(int(1, 1 << 24)) },
  'tcp-hold': { dst: host, port },
  'tcp-held': { id },
  'tcp-held-write': { id, data: bytes },
  /** Connects, then relays the connection over the admin channel (nc-data, nc-end, nc-closed). */
  'nc-connect': { host, port },
  /** Takes one connection on `port`, says nc-connected, relays it. */
  'nc-listen': { port, host: opt(host) },
  ss: {},
  'http-get': { host, port, path: opt(str), count: opt(count) },
  /** One request; the body streams as `http-body` messages. */
  'http-fetch': { url: name(8192), method: opt(name(16)) },
  // ---- apps ----
  /** A built-in app ({app, port}) or a user module ({module, port?, options?}, an absolute path). */
  'app-start': { app: opt(oneOf(BUILTIN_APPS, (a) => `no built-in app ${JSON.stringify(a)} (${BUILTIN_APPS.join(', ')})`)), module: opt(name(4096)), port: opt(port), options: opt(recordOf(anything)) },
  'app-report': { port },
  apps: {},
  // ---- SMC and the location service ----
  locate: { ip: str, timeoutMs: opt(ms) },
  'smcr-links': { peer, timeoutMs: opt(ms) },
  /** Raw CLC bytes (hex) over a TCP connection with no SMC session above it (malformed-CLC tests). */
  'smc-probe': { dst: ipv4, port, clc: opt(hex), offer: opt(bool), end: opt(bool), after: opt(hex), waitMs: opt(ms) },
  // ---- RVIs ----
  /** Arbitrary bytes on one of the partition's RVIs (the receivers must cope). */
  'rvi-send-raw': { peer, purpose: name(64), data: bytes },
  'perf-send': { peer, count: int(1, 100_000_000), sizes: opt(arrayOf(int(0, 1 << 20), 1024)), stopOnFailure: opt(bool), settleMs: opt(ms) },
  'perf-received': { peer },
  'perf-ping': { peer, count: opt(int(1, 10_000_000)), size: opt(int(0, 1 << 20)) },
  'rdma-register': { peer, size: int(1, 64 << 20) },
  'rdma-read': { peer, region: id, offset: opt(int(0)), length: opt(int(0)) },
  'rdma-write': { peer, region: id, key: id, offset: opt(int(0)), data: bytes },
});

export const controlNodeRequests = new MessageSet('control node admin request', {
  ...common,
  ...rvis,
  'cn-status': {},
  nvram: {},
  'vlan-join': { vlan: name(64), lpar: name(256), ip: ipv4 },
  'vlan-leave': { vlan: name(64), lpar: name(256) },
  /** Bridges a virtual LAN to a UDP port of the host (the supervisor's socat to a TAP). */
  'tap-attach': { vlan: name(64), address: ipv4, port },
  'tap-detach': { vlan: name(64) },
});

const faultTarget = { port: opt(name(256)), rvi: opt(id) };
const FAULT_ACTIONS = 'cut, restore, drop, delay, clear';

export const switchRequests = new MessageSet('fabric switch admin request', {
  ...common,
  'switch-status': {},
  /** Faults on the plane, one port (`port`: the node's name) or one RVI's VI (`rvi`). */
  fault: variant(
    'action',
    {
      cut: faultTarget,
      restore: faultTarget,
      drop: { ...faultTarget, pct: num(0, 100) },
      delay: { ...faultTarget, ms: num(0, 60_000), jitter: opt(num(0, 60_000)) },
      clear: faultTarget,
    },
    (a) => `unknown fault action ${JSON.stringify(a)} (${FAULT_ACTIONS})`,
  ),
});

export const hypervisorRequests = new MessageSet('hypervisor admin request', { ...common, 'hv-status': {} });

export const fabricManagerRequests = new MessageSet('fabric manager admin request', { ...common, 'fm-status': {} });

export type LparRequests = MessagesOf<typeof lparRequests>;
export type LparVerb = keyof LparRequests;
export type LparAdminRequest = LparRequests[LparVerb];
export type ControlNodeRequests = MessagesOf<typeof controlNodeRequests>;
export type ControlNodeAdminRequest = ControlNodeRequests[keyof ControlNodeRequests];
export type SwitchRequests = MessagesOf<typeof switchRequests>;
export type SwitchAdminRequest = SwitchRequests[keyof SwitchRequests];
export type HypervisorRequests = MessagesOf<typeof hypervisorRequests>;
export type FabricManagerRequests = MessagesOf<typeof fabricManagerRequests>;

export type RouteRequest = LparRequests['route'];
export type FaultRequest = SwitchRequests['fault'];

// ---- replies --------------------------------------------------------------

const empty = shape({});
const nullableStr = nullable(str);
const u = int(0);

const pingReply = shape({ dst: str, sent: u, received: u, rttsMs: arrayOf(num(0)), errors: arrayOf(str) });
const routeEntry = shape({ prefix: cidr, via: opt(ipv4), dev: str, source: oneOf(['connected', 'platform', 'static']), mtu: int(0) });
const heldState = { connected: bool, error: nullableStr, code: nullableStr, closed: bool, received: u };
const appStatus = shape({
  app: str,
  module: opt(str),
  port: nullable(port),
  source: oneOf(['platform', 'admin']),
  state: oneOf(['starting', 'running', 'failed', 'stopped']),
  error: opt(str),
  report: recordOf(anything),
});
const rxStats = {
  run: u,
  expected: u,
  received: u,
  bytes: u,
  duplicates: u,
  missing: u,
  outOfOrder: u,
  corrupt: u,
  firstAt: num(),
  lastAt: num(),
};
const latency = { minUs: num(0), p50Us: num(0), p99Us: num(0), meanUs: num(0) };
const serviceStatus = shape({ name: str, role: str, pid: int(1), health: str, detail: str, uptimeMs: num(0) });
const rviList = shape({ rvis: arrayOf(recordOf(anything)) });
/** services/lpar/net/smc/smc-path.ts SmcStats. */
const smcStats = shape({
  connections: shape({ tcp: u, smcd: u, smcr: u }),
  fallbacks: recordOf(u),
  bytes: shape({ smcdOut: u, smcdIn: u, smcrOut: u, smcrIn: u }),
  ringFull: u,
  signalsSent: u,
  signalsReceived: u,
  linkFailovers: u,
  tcpFailbacks: u,
  resets: u,
  malformedClc: u,
  malformedCdc: u,
  staleCdc: u,
});
const smcStatus = shape({ enabled: bool, modes: shape({ d: bool, r: bool }), ringBytes: int(0), stats: smcStats, smcd: nullable(recordOf(anything)), linkGroups: arrayOf(recordOf(anything)) });

/** services/fabric-switch/fault-injector.ts: a fault and what it applies to. */
const faultEntry = shape({
  cut: bool,
  dropPct: num(0, 100),
  delayMs: num(0),
  jitterMs: num(0),
  target: variant('kind', { plane: {}, port: { port: u, name: str }, rvi: { rvi: id } }),
});

/** Every verb's reply, by verb (verb names are unique across services; `status` and `rvis` mean the same everywhere). */
const replies = {
  status: serviceStatus,
  rvis: rviList,
  // lpar
  'lpar-status': shape({ boot: str, config: anything, configuredBy: arrayOf(str), reachable: arrayOf(str), malformed: u, apps: arrayOf(appStatus), smc: nullable(smcStatus) }),
  'smc-status': shape({ smc: nullable(smcStatus), hypervisor: nullable(shape({ url: str, connected: bool })) }),
  ip: shape({ interfaces: arrayOf(recordOf(anything)), controlNodes: arrayOf(str), registered: recordOf(arrayOf(str)) }),
  arp: shape({ entries: arrayOf(shape({ vlan: str, ip: ipv4, mac: str, expiresInMs: num(), stale: bool })) }),
  'arp-flush': empty,
  ping: pingReply,
  'ping-many': shape({ results: arrayOf(shape({ dst: str, received: bool, rttMs: nullable(num(0)), error: nullable(str) })), elapsedMs: num(0) }),
  'net-stats': shape({ driver: anything, ip: anything, udp: anything, refusals: arrayOf(str), malformedMgmt: u }),
  /** `show` answers the routes, `add` and `del` answer ok. */
  route: shape({ routes: opt(arrayOf(routeEntry)), ok: opt(literal(true)) }),
  promisc: empty,
  'promisc-frames': shape({ count: u, frames: arrayOf(bytes) }),
  capture: shape({ vlan: str, node: str }),
  'udp-open': shape({ socket: id, port }),
  'udp-send': shape({ sent: u, errors: u, lastError: str, elapsedMs: num(0), bytes: u }),
  'udp-recv': shape({
    messages: arrayOf(shape({ from: str, port, data: bytes })),
    dropped: u,
    sink: nullable(shape({ count: u, bytes: u, firstAt: num(), lastAt: num() })),
  }),
  'udp-join': empty,
  'udp-leave': empty,
  'udp-close': empty,
  'tcp-send': shape({ bytes: u, sha256: str, answer: str, elapsedMs: num(0) }),
  'tcp-exchange': shape({ sent: u, bytes: u, data: bytes, timedOut: bool, elapsedMs: num(0) }),
  'tcp-rr': shape({ count: u, size: u, elapsedMs: num(0), rps: num(0), ...latency }),
  'tcp-many': shape({ count: u, ok: u, errors: recordOf(u), elapsedMs: num(0) }),
  'tcp-hold': shape({ id, local: opt(str), ...heldState }),
  'tcp-held': shape(heldState),
  'tcp-held-write': shape(heldState),
  'nc-connect': shape({ local: str, remote: str }),
  'nc-listen': shape({ local: str, port }),
  ss: shape({
    connections: arrayOf(openShape({ local: str, remote: str, transport: str })),
    listening: arrayOf(str),
    listeners: arrayOf(shape({ local: str, pending: u, backlog: u, transport: str })),
  }),
  'http-get': shape({ requests: u, ok: u, bytes: u, elapsedMs: num(0), lastBody: str }),
  'http-fetch': shape({ status: u, statusMessage: str, httpVersion: str, headers: recordOf(either(str, arrayOf(str), 'a header value')), bytes: u }),
  'app-start': shape({ app: str, port: nullable(port) }),
  'app-report': openShape({ app: str }),
  apps: shape({ apps: arrayOf(appStatus) }),
  locate: shape({ ip: str, node: nullableStr, cec: nullableStr }),
  'smcr-links': shape({ peer: str, links: arrayOf(shape({ id: u, purpose: str, plane: nullable(int(0, 1)), state: str, legs: anything })) }),
  'smc-probe': shape({ local: str, connected: bool, echoed: bool, received: str, bytes: u, reset: bool, closed: bool, eof: bool, code: nullableStr }),
  'rvi-send-raw': shape({ accepted: bool }),
  'perf-send': shape({ run: u, sent: u, acked: u, undeliverable: u, inFlight: u, bytes: u, elapsedMs: num(0), gbps: num(0), msgsPerSec: num(0) }),
  'perf-received': shape({ ...rxStats, elapsedMs: num(), gbps: num(0) }),
  'perf-ping': shape({ count: u, size: u, ...latency }),
  'rdma-register': shape({ region: id, key: id, size: u }),
  'rdma-read': shape({ data: bytes }),
  'rdma-write': shape({ written: u, us: num(0) }),
  // control node
  'cn-status': recordOf(anything),
  nvram: recordOf(anything),
  'vlan-join': shape({ interface: anything }),
  'vlan-leave': empty,
  'tap-attach': shape({ port }),
  'tap-detach': empty,
  // fabric switch
  'switch-status': openShape({
    plane: str,
    // queued, dropped, flowStops, stoppedVis: the output's flow control (issue 11 item 1).
    ports: arrayOf(shape({ port: u, node: str, up: bool, framesIn: u, framesOut: u, queued: u, dropped: u, flowStops: u, stoppedVis: u })),
    vis: u,
    stats: recordOf(anything),
    faults: arrayOf(faultEntry),
  }),
  fault: shape({ faults: arrayOf(faultEntry) }),
  // hypervisor
  'hv-status': hvStatusCheck,
  // fabric manager
  'fm-status': openShape({ rvis: arrayOf(recordOf(anything)) }),
} satisfies { [V in AdminVerb]: Check<object> };

/** Every admin verb of every service. */
export type AdminVerb = LparVerb | keyof ControlNodeRequests | keyof SwitchRequests | keyof HypervisorRequests | keyof FabricManagerRequests;

export type AdminReplies = { [V in AdminVerb]: ReturnType<(typeof replies)[V]> };
export type AdminReply<V extends AdminVerb> = AdminReplies[V];

export type PingReply = AdminReplies['ping'];
export type RouteEntry = ReturnType<typeof routeEntry>;
export type AppStatusReply = ReturnType<typeof appStatus>;
export type SmcStatusReply = ReturnType<typeof smcStatus>;

/** Decodes the reply to `verb` (for the CLI, tests and dashboards): the typed reply, or why it is not one. */
export function decodeAdminReply<V extends AdminVerb>(verb: V, raw: unknown): Decoded<AdminReplies[V]> {
  return decodeWith(replies[verb] as Check<AdminReplies[V]>, `${verb} reply`, raw);
}

/**
 * Every service's requests by verb (`status` and `rvis` are the same
 * everywhere). The decoded form: a hex field (smc-probe's `clc`, `after`)
 * or a text-or-binary one (tcp-exchange's `data`) is a Buffer here and what
 * the sender wrote on the wire.
 */
export type AdminRequests = LparRequests & ControlNodeRequests & SwitchRequests & HypervisorRequests & FabricManagerRequests;

/**
 * Sends `request` with `send` (an admin client's request function) and
 * decodes the reply as its verb's: the typed reply, or a MessageError that
 * names the field the reply got wrong. An error reply rejects as `send` does.
 */
export async function adminCall<V extends AdminVerb>(send: (msg: { t: string; [k: string]: unknown }) => Promise<unknown>, request: { t: V; [k: string]: unknown }): Promise<AdminReplies[V]> {
  return orThrow(decodeAdminReply(request.t, await send(request)));
}

// ---- the asker's view of loosely produced parts ---------------------------

/**
 * Parts of a reply whose producer hands back an open map (the verbs of
 * LooselyProducedVerb, the `ip` reply's interface entries, an `ss`
 * connection's TCP and SMC fields): the reply decoder passes them through
 * as `unknown`, and an asker that reads a field checks it here instead of
 * casting. Each view checks only what the CLI prints, and keeps the rest.
 */
const cursor = shape({ prod: num(), cons: num() });
export const looseViews = {
  /** An `ip` interface (services/lpar/net/net-stack.ts describe()). */
  ipInterface: openShape({ name: str, vlan: str, vlanId: num(), mac: str, ip: str, mtu: num(), promiscuous: opt(bool) }),
  /** cn-status's virtual LANs and their members (services/control-node/vlan/vlan-server.ts status()). */
  cnVlans: openShape({ vlans: arrayOf(openShape({ name: str, members: arrayOf(openShape({ lpar: str, ip: str })) })) }),
  /** An `ss` connection's TCP state and queues (services/lpar/net/tcp/tcp-connection.ts info()). */
  ssConnection: openShape({ state: str, recvQueue: opt(num()), sendQueue: opt(num()), smc: opt(openShape({ token: opt(num()), link: opt(num()), tx: opt(cursor), rx: opt(cursor) })) }),
} as const;

export type LooseView<K extends keyof typeof looseViews> = ReturnType<(typeof looseViews)[K]>;

/** Checks a loosely produced part against its view: the typed part, or why it is not one (`what` names it in the reason). */
export function decodeLooseView<K extends keyof typeof looseViews>(view: K, what: string, raw: unknown): Decoded<LooseView<K>> {
  return decodeWith(looseViews[view] as Check<LooseView<K>>, what, raw);
}

// ---- streams --------------------------------------------------------------

/**
 * Messages a long-lived verb sends on its channel after (or instead of) the
 * reply. capture: capture-frame. nc-connect / nc-listen: nc-connected (a
 * listener's connection came), nc-data and nc-end both ways, nc-closed.
 * http-fetch: http-body.
 */
export const adminStreams = new MessageSet('admin stream message', {
  'capture-frame': { ts: num(), frame: bytes, dropped: u },
  'nc-connected': { local: str, remote: str },
  'nc-data': { data: bytes },
  'nc-end': {},
  'nc-closed': { error: opt(str) },
  'http-body': { data: bytes },
});

export type AdminStreams = MessagesOf<typeof adminStreams>;
export type AdminStreamMessage = AdminStreams[keyof AdminStreams];

export function decodeAdminStream<T extends keyof AdminStreams>(t: T, raw: unknown): Decoded<AdminStreams[T]> {
  return adminStreams.decodeOf(t, raw);
}

// ---- the service side -----------------------------------------------------

/** A verb's handler: the checked request in, its typed reply out. `ch` lets a long-lived verb keep sending. */
export type VerbHandler<Req, Rep> = (req: Req, ch: ControlChannel) => Rep | Promise<Rep>;

/**
 * Verbs whose producer is not typed yet (a status assembled ad hoc in a
 * module outside this protocol's owner): the handler may return any map, and
 * the asker's `decodeAdminReply` checks the reply's fields at run time.
 */
export type LooselyProducedVerb = 'cn-status' | 'nvram' | 'switch-status' | 'fm-status';

/** What a handler of `V` returns. */
export type HandlerReply<V extends AdminVerb> = V extends LooselyProducedVerb ? Record<string, unknown> : AdminReplies[V];

/** Handlers for some verbs `V` of a service whose requests are `M`. */
export type VerbTable<M, V extends keyof M & AdminVerb> = { [K in V]: VerbHandler<M[K], HandlerReply<K>> };

/** Handlers for lpar verbs `V` (a topic module of services/lpar/admin exports one). */
export type LparVerbTable<V extends LparVerb> = VerbTable<LparRequests, V>;

/**
 * Registers each handler of `table` under its verb, behind the verb's
 * decoder: a malformed request never reaches the handler, and its error
 * reply names the field.
 */
export function registerVerbs<B extends Record<string, MessageBody>, V extends keyof B & AdminVerb & string>(
  set: MessageSet<B>,
  table: VerbTable<MessageMap<B>, V>,
  register: (verb: string, fn: Handler) => void,
): void {
  for (const verb of Object.keys(table) as V[]) {
    const handler = table[verb] as VerbHandler<MessageMap<B>[V], HandlerReply<V>>;
    register(verb, (m, ch) => handler(orThrow(set.decodeOf(verb, m)), ch));
  }
}
