import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type * as Yaml from 'yaml';
import { REPO_ROOT } from '../runtime/build-paths.ts';
import { platformSchema } from './schema.ts';
import { DEFAULT_SMC, type SmcSettings } from './smc-settings.ts';
import type { RclanSettings } from '../rclan/rvi.ts';
import { DEFAULT_VLAN_MTU } from './mtu.ts';
import { hostAddressProblem, inSubnet, isIpv4Loopback, isIpv4Multicast, parseCidr, parseIp, prefixMask, subnetsOverlap } from '../wire/ipv4-address.ts';
import { smbBytes } from '../smc/smb.ts';

export { DEFAULT_SMC, type SmcSettings };

// yaml and ajv are loaded on the first parse, not with this module: every
// service imports it (names, types) but reads the checked platform.json, and
// the two cost ~6 MB of RSS in each of hundreds of processes (issue 10 item 3).
// Both are CommonJS, so require() loads them synchronously.
const requireLazily = createRequire(import.meta.url);
function ajvClass(): typeof AjvModule.default {
  // module.exports is the class, and its `default` property too.
  const m = requireLazily('ajv') as { default?: typeof AjvModule.default };
  return m.default ?? (m as unknown as typeof AjvModule.default);
}
const yaml = (): typeof Yaml => requireLazily('yaml') as typeof Yaml;

export type Transport = 'unix' | 'ws';

export interface WsSettings {
  host: string;
  basePort: number;
}

/** The `rclan` section is the RCLAN layer's own settings type (one definition, in shared/rclan). */
export type { RclanSettings };

export interface ControlNodeSpec {
  name: string;
  serial: number;
}

export interface CecSpec {
  name: string;
}

/** The workloads built into every partition (services/lpar/apps/builtin.ts); the schema lists the same. */
export const BUILTIN_APP_NAMES = ['echo', 'discard', 'http', 'bulk-sink', 'count-sink'] as const;
export type BuiltinAppName = (typeof BUILTIN_APP_NAMES)[number];

/**
 * A workload an LPAR starts once its network is up: a built-in on a port, or
 * a user ES module (see services/lpar/apps/user-module.ts) whose path is made
 * absolute at load (relative paths are relative to the platform file).
 */
export type AppSpec =
  | { name: BuiltinAppName; port: number }
  | { module: string; port?: number; options: Record<string, unknown> };

export interface LparSmc {
  /** SMC-D: shared memory with partitions of its own CEC. */
  d: boolean;
  /** SMC-R: RDMA over the fabric to partitions of any CEC. */
  r: boolean;
}

export interface LparSpec {
  name: string;
  cec: string;
  /**
   * SMC for this partition: which variants it is capable of (seed 002, Fig. 4
   * steps 403, 415-419: "SMC capable and enabled", "SMC-local capable"). Both
   * off: it neither offers nor accepts SMC, its connections stay plain TCP.
   */
  smc: LparSmc;
  /** Workloads, in the order the platform file lists them (empty when none). */
  apps: AppSpec[];
  /**
   * Whether it routes IPv4 between its virtual LANs (RFC 1812); its peers then
   * accept others' sources from it. Present only when the file says so (read it as `?? false`).
   */
  forwarding?: boolean;
  /** Static routes, as written (checked: each via on one of its subnets, each dev one of its LANs). Present only when given. */
  routes?: RouteSpec[];
}

/** One static route of an LPAR: `prefix` (A.B.C.D/N or "default") via a next hop and/or out of a virtual LAN. */
export interface RouteSpec {
  prefix: string;
  via?: string;
  dev?: string;
}

export interface EthernetSettings {
  /** The virtual Ethernet driver's heartbeat TLV interval while it sends through the control nodes. */
  heartbeatMs: number;
  arpCacheSeconds: number;
}

/**
 * The heartbeat TLV interval of a driver that sent nothing through the
 * control nodes for that long: seed 004 has the driver test end-to-end
 * connectivity "periodically", and an idle partition needs no 100 ms answer
 * (issue 10 item 2: at 256 partitions, 10 heartbeats a second each to two
 * control nodes, with their acks through the planes, was most of the idle
 * platform's work). Traffic starting heartbeats at once at heartbeatMs.
 */
export function idleHeartbeatMs(e: EthernetSettings): number {
  return 10 * e.heartbeatMs;
}

export interface VlanMemberSpec {
  lpar: string;
  ip: string;
}

export interface VlanSpec {
  name: string;
  /** Virtual LAN number (1..255), carried in internal MACs and TLV headers. */
  id: number;
  subnets: string[];
  mtu: number;
  members: VlanMemberSpec[];
  promiscuous: string[];
}

export interface Platform {
  name: string;
  transport: Transport;
  ws: WsSettings;
  rclan: RclanSettings;
  planes: [string, string];
  controlNodes: ControlNodeSpec[];
  cecs: CecSpec[];
  lpars: LparSpec[];
  ethernet: EthernetSettings;
  vlans: VlanSpec[];
  /** Complete: defaults filled in. The control node hands each LPAR its share at boot, with the LPAR's own `smc` as `enabled`. */
  smc: SmcSettings;
}

export interface PlatformNode {
  name: string;
  role: 'control-node' | 'lpar';
  /** 1-based fabric port, stable for a given file. */
  port: number;
  cec?: string;
}

export class PlatformError extends Error {
  readonly source: string;
  readonly path: string;
  readonly reason: string;

  constructor(source: string, path: string, reason: string) {
    super(`${source}: ${path || '/'}: ${reason}`);
    this.name = 'PlatformError';
    this.source = source;
    this.path = path;
    this.reason = reason;
  }
}

const DEFAULT_TRANSPORT: Transport = 'unix';
const DEFAULT_WS: WsSettings = { host: '127.0.0.1', basePort: 7400 };
const DEFAULT_RCLAN: RclanSettings = {
  heartbeatMs: 100,
  deadAfterMs: 400,
  undeliverableAfterMs: 1500,
  window: 256,
};

/**
 * The largest shared memory buffer a platform may ask for (issue 11 item 13):
 * each is RAM in /dev/shm, one per pair of partitions of a CEC, and 1 GiB is
 * 16 times the default (32 elements of 2 x 1 MiB) — past it a few pairs fill
 * a lab machine's memory.
 */
export const MAX_SMB_BYTES = 1 << 30;

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(bytes % 1048576 === 0 ? 0 : 1);
}

// Names taken by infrastructure processes that share the node namespace.
const RESERVED_NAMES = ['fabric-manager', 'supervisor', 'mgmt'];

/** Process names of the CECs' hypervisors start with this; no node or CEC may. */
export const HYPERVISOR_PREFIX = 'hypervisor-';

/** The process name of CEC `cec`'s hypervisor. */
export function hypervisorName(cec: string): string {
  return `${HYPERVISOR_PREFIX}${cec}`;
}

// Shape the schema guarantees once validation has passed.
interface RawPlatform {
  name: string;
  transport?: Transport;
  ws?: Partial<WsSettings>;
  rclan?: Partial<RclanSettings>;
  planes: [string, string];
  controlNodes: ControlNodeSpec[];
  cecs: CecSpec[];
  lpars: Array<{ name: string; cec: string; smc?: boolean | Partial<LparSmc>; apps?: RawApp[]; forwarding?: boolean; routes?: RouteSpec[] }>;
  ethernet?: Partial<EthernetSettings>;
  smc?: Partial<SmcSettings>;
  vlans?: Array<{ name: string; id?: number; subnets: string[]; mtu?: number; members: VlanMemberSpec[]; promiscuous?: string[] }>;
}

interface RawApp {
  name?: BuiltinAppName;
  module?: string;
  port?: number;
  options?: Record<string, unknown>;
}

let validator: ValidateFunction | undefined;

function validate(doc: unknown): ErrorObject | undefined {
  validator ??= new (ajvClass())({ allErrors: true, strict: false }).compile(platformSchema);
  if (validator(doc)) return undefined;
  return validator.errors?.[0];
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function valueAt(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function ajvErrorToPlatformError(err: ErrorObject, doc: unknown, source: string): PlatformError {
  const at = err.instancePath;
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return new PlatformError(source, `${at}/${escapePointer(key)}`, `unknown key "${key}"`);
    }
    case 'required': {
      const key = String(params.missingProperty);
      return new PlatformError(source, `${at}/${escapePointer(key)}`, `missing required field "${key}"`);
    }
    case 'type':
      return new PlatformError(
        source,
        at,
        `must be ${String(params.type)}, got ${describeType(valueAt(doc, at))}`,
      );
    case 'enum':
      return new PlatformError(
        source,
        at,
        `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      );
    case 'pattern':
      return new PlatformError(
        source,
        at,
        `${JSON.stringify(valueAt(doc, at))} does not match ${String(params.pattern)}`,
      );
    default:
      return new PlatformError(source, at, err.message ?? `failed schema check "${err.keyword}"`);
  }
}

// Shape only; checkApps rejects what does not fit before anyone uses it.
function appDefaults(a: RawApp): AppSpec {
  if (a.module !== undefined) return { module: a.module, ...(a.port !== undefined ? { port: a.port } : {}), options: { ...a.options } };
  return { name: a.name as BuiltinAppName, port: a.port as number };
}

function applyDefaults(raw: RawPlatform): Platform {
  return {
    name: raw.name,
    transport: raw.transport ?? DEFAULT_TRANSPORT,
    ws: { ...DEFAULT_WS, ...raw.ws },
    rclan: { ...DEFAULT_RCLAN, ...raw.rclan },
    planes: [raw.planes[0], raw.planes[1]],
    controlNodes: raw.controlNodes.map((c) => ({ name: c.name, serial: c.serial })),
    cecs: raw.cecs.map((c) => ({ name: c.name })),
    lpars: raw.lpars.map((l) => ({
      name: l.name,
      cec: l.cec,
      smc: lparSmc(l.smc),
      apps: (l.apps ?? []).map(appDefaults),
      ...(l.forwarding !== undefined ? { forwarding: l.forwarding } : {}),
      ...(l.routes !== undefined ? { routes: l.routes.map((r) => ({ prefix: r.prefix, ...(r.via !== undefined ? { via: r.via } : {}), ...(r.dev !== undefined ? { dev: r.dev } : {}) })) } : {}),
    })),
    ethernet: { heartbeatMs: 100, arpCacheSeconds: 60, ...raw.ethernet },
    smc: { ...DEFAULT_SMC, ...raw.smc },
    // A virtual LAN without an explicit number takes the lowest one no other uses.
    vlans: (() => {
      const taken = new Set((raw.vlans ?? []).map((v) => v.id).filter((id): id is number => id !== undefined));
      let next = 1;
      return (raw.vlans ?? []).map((v) => {
        let id = v.id;
        if (id === undefined) {
          while (taken.has(next)) next++;
          id = next;
          taken.add(id);
        }
        return { name: v.name, id, subnets: [...v.subnets], mtu: v.mtu ?? DEFAULT_VLAN_MTU, members: v.members.map((m) => ({ lpar: m.lpar, ip: m.ip })), promiscuous: [...(v.promiscuous ?? [])] };
      });
    })(),
  };
}

/** The schema's patterns admit only what ipv4-address.ts parses; a throw here would be a schema bug. */
function inCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  return inSubnet(parseIp(ip), c.ip, c.prefix);
}

function hostBitsSet(cidr: string): boolean {
  const c = parseCidr(cidr);
  return ((c.ip & ~prefixMask(c.prefix)) >>> 0) !== 0;
}

function checkVlans(p: Platform, source: string): void {
  const lpars = new Set(p.lpars.map((l) => l.name));
  const names = new Map<string, string>();
  const ids = new Map<number, string>();
  p.vlans.forEach((v, i) => {
    const at = `/vlans/${i}`;
    const firstName = names.get(v.name);
    if (firstName !== undefined) throw new PlatformError(source, `${at}/name`, `duplicate virtual LAN "${v.name}" (also at ${firstName})`);
    names.set(v.name, `${at}/name`);
    const firstId = ids.get(v.id);
    if (firstId !== undefined) throw new PlatformError(source, `${at}/id`, `duplicate virtual LAN number ${v.id} (also used by ${firstId})`);
    ids.set(v.id, `${at}`);
    v.subnets.forEach((cidr, j) => {
      if (hostBitsSet(cidr)) throw new PlatformError(source, `${at}/subnets/${j}`, `"${cidr}" has host bits set`);
      const c = parseCidr(cidr);
      if (c.prefix < 8 || c.ip >>> 24 === 0 || isIpv4Loopback(c.ip) || isIpv4Multicast(c.ip) || c.ip >>> 28 === 0xf) {
        throw new PlatformError(source, `${at}/subnets/${j}`, `"${cidr}" is not a subnet hosts can be on (shorter than /8, or in 0/8, loopback 127/8, multicast 224/4 or reserved 240/4)`);
      }
      // issue 11 item 13: overlapping subnets on one LAN make the connected route of an address ambiguous.
      const k = v.subnets.slice(0, j).findIndex((other) => subnetsOverlap(parseCidr(other), c));
      if (k >= 0) throw new PlatformError(source, `${at}/subnets/${j}`, `"${cidr}" overlaps "${v.subnets[k]}" (at ${at}/subnets/${k})`);
    });
    const members = new Map<string, string>();
    const ips = new Map<string, string>();
    v.members.forEach((m, j) => {
      const mat = `${at}/members/${j}`;
      if (!lpars.has(m.lpar)) throw new PlatformError(source, `${mat}/lpar`, `LPAR "${m.lpar}" does not exist`);
      const dup = members.get(m.lpar);
      if (dup !== undefined) throw new PlatformError(source, `${mat}/lpar`, `"${m.lpar}" is already a member (at ${dup})`);
      members.set(m.lpar, mat);
      const problem = memberAddressProblem(v, m.ip);
      if (problem) throw new PlatformError(source, `${mat}/ip`, problem);
      const dupIp = ips.get(m.ip);
      if (dupIp !== undefined) throw new PlatformError(source, `${mat}/ip`, `${m.ip} is already used (at ${dupIp})`);
      ips.set(m.ip, `${mat}/ip`);
    });
    v.promiscuous.forEach((name, j) => {
      if (!members.has(name)) throw new PlatformError(source, `${at}/promiscuous/${j}`, `"${name}" is not a member of virtual LAN "${v.name}"`);
    });
  });
  p.vlans.forEach((v, i) => {
    v.members.forEach((m, j) => {
      const problem = lanOverlapProblem(p.vlans.slice(0, i).filter((o) => o.members.some((x) => x.lpar === m.lpar)), v, m.lpar);
      if (problem) throw new PlatformError(source, `/vlans/${i}/members/${j}/lpar`, problem);
    });
  });
}

/**
 * Why `ip` cannot be a member's address on virtual LAN `vlan`, or undefined:
 * it must be a host address (not network, broadcast, loopback, multicast...)
 * of one of the LAN's subnets (issue 11 item 13). The loader and a control
 * node's `vlan join` ask the same question.
 */
export function memberAddressProblem(vlan: Pick<VlanSpec, 'name' | 'subnets'>, ipText: string): string | undefined {
  let ip: number;
  try {
    ip = parseIp(ipText);
  } catch {
    return `"${ipText}" is not an IPv4 address`;
  }
  const subnet = vlan.subnets.map(parseCidr).find((c) => inSubnet(ip, c.ip, c.prefix));
  if (!subnet) return hostAddressProblem(ip, 0, 0) ?? `${ipText} is in none of ${vlan.name}'s subnets ${vlan.subnets.join(', ')}`;
  return hostAddressProblem(ip, subnet.ip, subnet.prefix);
}

/**
 * Why `lpar` cannot be on `vlan` beside its other virtual LANs `others`, or
 * undefined: two of its LANs with overlapping subnets would give one address
 * two connected routes (issue 11 item 13).
 */
export function lanOverlapProblem(others: ReadonlyArray<Pick<VlanSpec, 'name' | 'subnets'>>, vlan: Pick<VlanSpec, 'name' | 'subnets'>, lpar: string): string | undefined {
  for (const o of others) {
    if (o.name === vlan.name) continue;
    for (const a of o.subnets) {
      for (const b of vlan.subnets) {
        if (subnetsOverlap(parseCidr(a), parseCidr(b))) return `${lpar} would be on "${o.name}" (${a}) and "${vlan.name}" (${b}), whose subnets overlap`;
      }
    }
  }
  return undefined;
}

/**
 * Each LPAR's routes: a prefix without host bits, a next hop (via) on one
 * of the subnets of the LPAR's virtual LANs and not its own address, a dev
 * that is one of its LANs (and holds the via when both are given), and at
 * least one of via and dev. `forwarding` needs two interfaces to mean anything,
 * but one is not refused (a router with its second LAN joined at run time).
 */
function checkRoutes(p: Platform, source: string): void {
  p.lpars.forEach((l, i) => {
    const ifcs = lparInterfaces(p, l.name);
    (l.routes ?? []).forEach((r, j) => {
      const at = `/lpars/${i}/routes/${j}`;
      if (r.prefix !== 'default' && hostBitsSet(r.prefix)) throw new PlatformError(source, `${at}/prefix`, `"${r.prefix}" has host bits set`);
      if (r.via === undefined && r.dev === undefined) throw new PlatformError(source, at, 'give a next hop ("via") or a virtual LAN ("dev"), or both');
      let lans = ifcs;
      if (r.dev !== undefined) {
        lans = ifcs.filter((x) => x.vlan.name === r.dev);
        if (lans.length === 0) throw new PlatformError(source, `${at}/dev`, `${l.name} is not on virtual LAN "${r.dev}"${ifcs.length ? ` (it is on ${ifcs.map((x) => x.vlan.name).join(', ')})` : ''}`);
      }
      if (r.via !== undefined) {
        const via = r.via;
        if (ifcs.some((x) => x.ip === via)) throw new PlatformError(source, `${at}/via`, `${via} is ${l.name}'s own address`);
        if (!lans.some((x) => x.vlan.subnets.some((cidr) => inCidr(via, cidr)))) {
          const where = r.dev !== undefined ? `virtual LAN "${r.dev}"` : l.name;
          throw new PlatformError(source, `${at}/via`, `${via} is not on any subnet of ${where}`);
        }
      }
    });
  });
}

/**
 * Each LPAR's apps: exactly one of name and module, a port for a built-in,
 * options only for a module, one app per port, and a module file that exists.
 * Module paths become absolute (relative ones are taken from `baseDir`, the
 * platform file's directory), so the run directory's copy works from anywhere.
 */
function checkApps(p: Platform, raw: RawPlatform, source: string, baseDir: string): void {
  raw.lpars.forEach((l, i) => {
    const ports = new Map<number, string>();
    (l.apps ?? []).forEach((a, j) => {
      const at = `/lpars/${i}/apps/${j}`;
      if (a.name !== undefined && a.module !== undefined) throw new PlatformError(source, at, 'give exactly one of "name" (a built-in) and "module" (a user module), not both');
      if (a.name === undefined && a.module === undefined) throw new PlatformError(source, at, 'missing "name" (echo, discard, http, bulk-sink, count-sink) or "module" (path to an ES module)');
      if (a.name !== undefined && a.port === undefined) throw new PlatformError(source, `${at}/port`, `missing required field "port" (built-in app "${a.name}")`);
      if (a.name !== undefined && a.options !== undefined) throw new PlatformError(source, `${at}/options`, `built-in app "${a.name}" takes no options (options are for user modules)`);
      if (a.port !== undefined) {
        const first = ports.get(a.port);
        if (first !== undefined) throw new PlatformError(source, `${at}/port`, `port ${a.port} is already used by ${first}`);
        ports.set(a.port, at);
      }
      if (a.module !== undefined) {
        const file = isAbsolute(a.module) ? a.module : resolve(baseDir, a.module);
        let isFile = false;
        try {
          isFile = existsSync(file) && statSync(file).isFile();
        } catch {
          /* unreadable: reported below */
        }
        if (!isFile) throw new PlatformError(source, `${at}/module`, `module file ${file} does not exist`);
        const spec = p.lpars[i].apps[j];
        if ('module' in spec) spec.module = file;
      }
    });
  });
}

/**
 * The interfaces of one LPAR, numbered from 1 in the order of the virtual
 * LANs in the platform file: the "device number" TLV headers carry. Control
 * nodes and the LPAR compute the same numbers from the same file.
 */
export function lparInterfaces(p: Platform, lpar: string): Array<{ dev: number; vlan: VlanSpec; ip: string }> {
  const out: Array<{ dev: number; vlan: VlanSpec; ip: string }> = [];
  for (const v of p.vlans) {
    const m = v.members.find((x) => x.lpar === lpar);
    if (m) out.push({ dev: out.length + 1, vlan: v, ip: m.ip });
  }
  return out;
}

function checkSemantics(p: Platform, raw: RawPlatform, source: string, baseDir: string): void {
  if (p.planes[0] === p.planes[1]) {
    throw new PlatformError(source, '/planes/1', `duplicate plane "${p.planes[1]}" (also at /planes/0)`);
  }

  const reserved = new Set([...RESERVED_NAMES, ...p.planes.map((pl) => `plane-${pl}`)]);
  const seen = new Map<string, string>();
  const named: [string, { name: string }[]][] = [
    ['controlNodes', p.controlNodes],
    ['cecs', p.cecs],
    ['lpars', p.lpars],
  ];
  for (const [section, items] of named) {
    items.forEach((item, i) => {
      const path = `/${section}/${i}/name`;
      if (reserved.has(item.name)) {
        throw new PlatformError(source, path, `name "${item.name}" is reserved`);
      }
      if (item.name.startsWith(HYPERVISOR_PREFIX)) {
        throw new PlatformError(source, path, `name "${item.name}" is reserved: names starting with "${HYPERVISOR_PREFIX}" are the CECs' hypervisor processes`);
      }
      const first = seen.get(item.name);
      if (first !== undefined) {
        throw new PlatformError(source, path, `duplicate name "${item.name}" (also at ${first})`);
      }
      seen.set(item.name, path);
    });
  }

  const serials = new Map<number, string>();
  p.controlNodes.forEach((cn, i) => {
    const path = `/controlNodes/${i}/serial`;
    const first = serials.get(cn.serial);
    if (first !== undefined) {
      throw new PlatformError(source, path, `duplicate serial ${cn.serial} (also at ${first})`);
    }
    serials.set(cn.serial, path);
  });

  const cecs = new Set(p.cecs.map((c) => c.name));
  p.lpars.forEach((lpar, i) => {
    if (!cecs.has(lpar.cec)) {
      throw new PlatformError(source, `/lpars/${i}/cec`, `CEC "${lpar.cec}" does not exist`);
    }
  });

  checkVlans(p, source);
  checkRoutes(p, source);
  checkApps(p, raw, source, baseDir);

  // A ring cursor is one 32-bit word counting bytes mod 2^32 (shared/smc/smb.ts): a ring's length must divide 2^32.
  const ring = p.smc.ringBytes;
  if ((ring & (ring - 1)) !== 0) {
    throw new PlatformError(source, '/smc/ringBytes', `${ring} is not a power of two (4096, 8192, ... 16777216)`);
  }
  // An SMB is one tmpfs file (RAM) per pair of partitions of a CEC (issue 11 item 13): the schema's
  // bounds alone allow 1024 elements of 2 x 16 MiB rings, 32 GiB per pair.
  const smb = smbBytes({ elements: p.smc.elementsPerSmb, ringBytes: ring });
  if (smb > MAX_SMB_BYTES) {
    const field = raw.smc?.elementsPerSmb !== undefined ? '/smc/elementsPerSmb' : '/smc/ringBytes';
    throw new PlatformError(source, field, `an SMB of ${p.smc.elementsPerSmb} elements with ${ring}-byte rings is ${mib(smb)} MiB of shared memory per pair of partitions, more than ${mib(MAX_SMB_BYTES)} MiB (lower elementsPerSmb or ringBytes)`);
  }

  // Blame a field the user actually wrote: when the later timing was left at
  // its default, the earlier one is what pushed it out of order.
  const r = p.rclan;
  const given = raw.rclan ?? {};
  const label = (key: keyof RclanSettings): string =>
    given[key] === undefined ? `${key} (${r[key]}, default)` : `${key} (${r[key]})`;
  if (r.deadAfterMs <= r.heartbeatMs) {
    const path = given.deadAfterMs === undefined ? '/rclan/heartbeatMs' : '/rclan/deadAfterMs';
    throw new PlatformError(
      source,
      path,
      `${label('deadAfterMs')} must be greater than ${label('heartbeatMs')}`,
    );
  }
  if (r.undeliverableAfterMs <= r.deadAfterMs) {
    const path = given.undeliverableAfterMs === undefined
      ? '/rclan/deadAfterMs'
      : '/rclan/undeliverableAfterMs';
    throw new PlatformError(
      source,
      path,
      `${label('undeliverableAfterMs')} must be greater than ${label('deadAfterMs')}`,
    );
  }
}

/**
 * Parses and checks a platform file's text. `baseDir` is where relative app
 * module paths start (loadPlatformFile passes the file's directory; the
 * default is the current directory).
 */
export function parsePlatform(text: string, source = '<string>', baseDir = process.cwd()): Platform {
  const doc = yaml().parseDocument(text);
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = yamlError.linePos?.[0];
    const what = yamlError.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    throw new PlatformError(source, '', `YAML syntax error${where}: ${what}`);
  }

  const data: unknown = doc.toJS();
  const schemaError = validate(data);
  if (schemaError) throw ajvErrorToPlatformError(schemaError, data, source);

  const raw = data as RawPlatform;
  const platform = applyDefaults(raw);
  checkSemantics(platform, raw, source, baseDir);
  return platform;
}

export function loadPlatformFile(file: string): Platform {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlatformError(file, '', `cannot read file: ${(err as Error).message}`);
  }
  return parsePlatform(text, file, dirname(resolve(file)));
}

/** The built-in platform file, in the sources (this module also runs from build/, where there is no copy: issue 10 item 1). */
export function defaultPlatformFile(): string {
  return join(REPO_ROOT, 'shared', 'platform', 'default.yaml');
}

export function platformNodes(p: Platform): PlatformNode[] {
  const nodes: PlatformNode[] = [];
  for (const cn of p.controlNodes) {
    nodes.push({ name: cn.name, role: 'control-node', port: nodes.length + 1 });
  }
  for (const lpar of p.lpars) {
    nodes.push({ name: lpar.name, role: 'lpar', port: nodes.length + 1, cec: lpar.cec });
  }
  return nodes;
}

/** An LPAR's `smc` as written (true, false, or {d, r}) made complete: true is both variants, false neither. */
export function lparSmc(v: boolean | Partial<LparSmc> | undefined): LparSmc {
  if (v === undefined || v === true) return { d: true, r: true };
  if (v === false) return { d: false, r: false };
  return { d: v.d ?? true, r: v.r ?? true };
}
