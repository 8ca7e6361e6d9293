/**
 * Platform files for tests, built instead of pasted: the planes, control
 * nodes, CECs and LPARs every test platform has, with only what a test is
 * about spelled out.
 *
 *   platformYaml({ name: 'smcfo', rclan: { heartbeatMs: 100 }, lpars: [{ cec: 1 }, { cec: 1 }, { cec: 2 }],
 *                  apps: [{ name: 'bulk-sink', port: 9000 }], vlans: [{ name: 'blue', subnet: '10.8.0.0/24', members: ['lpar1', 'lpar2', 'lpar3'] }] })
 *
 * gives a file shared/platform's loader reads. Defaults: name `test`, planes
 * a and b, one control node (cn1, serial 1), two CECs, two LPARs spread over
 * the CECs in turn, no VLANs; a section left out is left to the platform's
 * own defaults (FAST_RCLAN is the fast-failure timing most tests ask for).
 * The builder does not validate: a test of the loader's errors builds a wrong
 * file with it on purpose. Values pass through as given, so fields the schema
 * gains later need no change here.
 *
 * The text is the hand-written style: one `key: value` per section, one flow
 * map per line in lists, plain scalars where YAML reads them back as the same
 * string (so `planes: [a, b]` and `{ name: lpar2, cec: cec2 }` appear as such).
 */
import type { RclanSettings } from '../../shared/rclan/rvi.ts';

/** Heartbeats fast enough that a test sees a failure within a fraction of a second. */
export const FAST_RCLAN: RclanSettings = { heartbeatMs: 50, deadAfterMs: 250, undeliverableAfterMs: 1000, window: 256 };

export interface LparYaml {
  /** Default `lpar<N>`, N its place in the list from 1. */
  name?: string;
  /** A CEC name, or its number (2 is `cec2`); default: the CECs in turn. */
  cec?: string | number;
  smc?: unknown;
  /** Default: the platform-wide `apps` of the spec, if any. */
  apps?: unknown;
  [field: string]: unknown;
}

export interface VlanYaml {
  name: string;
  /** One subnet; members given by name get their address in it. */
  subnet?: string;
  subnets?: string[];
  /**
   * `lpar3` alone is that LPAR at host number 3 of the (first) subnet (the
   * digits that end its name); `{ lpar, ip }` as in the file.
   */
  members: Array<string | { lpar: string; ip: string }>;
  [field: string]: unknown;
}

export interface PlatformYamlSpec {
  name?: string;
  rclan?: Partial<RclanSettings>;
  ethernet?: Record<string, unknown>;
  smc?: Record<string, unknown>;
  planes?: string[];
  /** A count (cn1.., serials 1..) or the entries. */
  controlNodes?: number | Array<{ name: string; serial: number }>;
  /** A count (cec1..) or the names. */
  cecs?: number | string[];
  /** A count (lpar1.., CECs in turn) or the entries. */
  lpars?: number | LparYaml[];
  /** Apps of every LPAR that names none of its own. */
  apps?: unknown[];
  vlans?: VlanYaml[];
  /** Any other top-level sections (transport, ws, …), after the rest. */
  extra?: Record<string, unknown>;
}

export function platformYaml(spec: PlatformYamlSpec = {}): string {
  const cecs = typeof spec.cecs === 'number' || spec.cecs === undefined ? names('cec', spec.cecs ?? 2) : spec.cecs;
  const cns = typeof spec.controlNodes === 'object' ? spec.controlNodes : names('cn', spec.controlNodes ?? 1).map((name, i) => ({ name, serial: i + 1 }));
  const lparList: LparYaml[] = typeof spec.lpars === 'object' ? spec.lpars : Array.from({ length: spec.lpars ?? 2 }, () => ({}));
  const lpars = lparList.map((l, i) => {
    const { name, cec, apps, ...rest } = l;
    const out: Record<string, unknown> = { name: name ?? `lpar${i + 1}`, cec: typeof cec === 'number' ? `cec${cec}` : (cec ?? cecs[i % cecs.length]) };
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) out[k] = v;
    const a = apps ?? spec.apps;
    if (a !== undefined) out.apps = a;
    return out;
  });
  const lines = [`name: ${scalar(spec.name ?? 'test')}`];
  for (const key of ['rclan', 'ethernet', 'smc'] as const) if (spec[key] !== undefined) lines.push(`${key}: ${flow(spec[key])}`);
  lines.push(`planes: ${flow(spec.planes ?? ['a', 'b'])}`);
  lines.push('controlNodes:', ...cns.map(item));
  lines.push('cecs:', ...cecs.map((name) => item({ name })));
  lines.push('lpars:', ...lpars.map(item));
  if (spec.vlans?.length) lines.push('vlans:', ...spec.vlans.map((v) => item(vlan(v))));
  for (const [k, v] of Object.entries(spec.extra ?? {})) lines.push(`${k}: ${flow(v)}`);
  return `\n${lines.join('\n')}\n`;
}

function names(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
}

function vlan(v: VlanYaml): Record<string, unknown> {
  const { name, subnet, subnets, members, ...rest } = v;
  const nets = subnets ?? (subnet !== undefined ? [subnet] : []);
  const out: Record<string, unknown> = { name, subnets: nets };
  out.members = members.map((m) => (typeof m === 'string' ? { lpar: m, ip: hostIn(nets[0], m) } : m));
  for (const [k, val] of Object.entries(rest)) if (val !== undefined) out[k] = val;
  return out;
}

/** `lpar3` in 10.8.0.0/24 is 10.8.0.3: the number that ends the name, added to the subnet's address. */
function hostIn(cidr: string | undefined, lpar: string): string {
  const n = /(\d+)$/.exec(lpar);
  if (!cidr || !n) throw new Error(`platformYaml: member "${lpar}" needs a subnet and a number at the end of its name, or an explicit { lpar, ip }`);
  const base = cidr.split('/')[0].split('.').map(Number);
  const v = ((base[0] << 24) | (base[1] << 16) | (base[2] << 8) | base[3]) + Number(n[1]);
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

function item(v: unknown): string {
  return `  - ${flow(v)}`;
}

/** YAML flow text for a JSON-like value. */
function flow(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(flow).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    return entries.length ? `{ ${entries.map(([k, x]) => `${scalar(k)}: ${flow(x)}`).join(', ')} }` : '{}';
  }
  return typeof v === 'string' ? scalar(v) : String(v);
}

/** A string, plain when YAML's core schema reads it back as that string, quoted otherwise. */
function scalar(s: string): string {
  return /^[A-Za-z][A-Za-z0-9._/-]*$/.test(s) && !/^(true|false|null|y|n|yes|no|on|off)$/i.test(s) ? s : JSON.stringify(s);
}
