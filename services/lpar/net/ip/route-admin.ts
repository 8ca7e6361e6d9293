/**
 * Routes from outside the IP layer: the boot configuration's (the platform
 * file's `forwarding` and `routes`, checked by the loader) and the `route`
 * admin verb's (`lparlab route LPAR show|add|del`, contract in
 * /work/briefs/areas.md: show → { routes: RouteEntry[] }, add/del → { ok: true },
 * a bad request an error the CLI prints).
 */
import { WireError } from '../../../../shared/wire/wire-error.ts';
import { ipToString, parseCidr, parseIp, prefixMask } from '../../../../shared/wire/ipv4-address.ts';
import type { IpLayer } from './ip-layer.ts';
import { RouteError, makeRoute, type RouteSource } from './routes.ts';

/** One route as the platform file and the admin verb spell it. */
export interface RouteSpec {
  /** `A.B.C.D/N`, or `default` for 0.0.0.0/0. */
  prefix: string;
  via?: string;
  dev?: string;
}

export interface RouteEntry {
  prefix: string;
  via?: string;
  dev: string;
  source: RouteSource;
  mtu: number;
}

function parsePrefix(text: string): { net: number; prefix: number } {
  if (text === 'default') return { net: 0, prefix: 0 };
  try {
    const c = parseCidr(text);
    return { net: c.ip, prefix: c.prefix };
  } catch (err) {
    if (err instanceof WireError) throw new RouteError(`prefix: ${err.message} (want A.B.C.D/N or "default")`);
    throw err;
  }
}

function parseVia(text: unknown): number | undefined {
  if (text === undefined || text === null) return undefined;
  if (typeof text !== 'string') throw new RouteError('via: must be an IPv4 address');
  try {
    return parseIp(text);
  } catch (err) {
    if (err instanceof WireError) throw new RouteError(`via: ${err.message}`);
    throw err;
  }
}

/** Adds one route, checked against the interfaces this partition has now. */
export function addRoute(ip: IpLayer, spec: { prefix?: unknown; via?: unknown; dev?: unknown }, source: RouteSource): void {
  if (typeof spec.prefix !== 'string') throw new RouteError('prefix: missing (want A.B.C.D/N or "default")');
  const { net, prefix } = parsePrefix(spec.prefix);
  const via = parseVia(spec.via);
  if (spec.dev !== undefined && spec.dev !== null && typeof spec.dev !== 'string') throw new RouteError('dev: must be a virtual LAN name');
  const dev = (spec.dev ?? undefined) as string | undefined;
  if (dev !== undefined && !ip.byLan(dev)) throw new RouteError(`dev: this partition has no interface on virtual LAN "${dev}"`);
  if (via !== undefined) {
    if (ip.isLocal(via)) throw new RouteError(`via: ${ipToString(via)} is this partition's own address`);
    const on = ip.routes.connectedFor(via);
    if (!on) throw new RouteError(`via: ${ipToString(via)} is not on any subnet of this partition`);
    if (dev !== undefined && on.dev !== dev) throw new RouteError(`via: ${ipToString(via)} is not on virtual LAN "${dev}"`);
  }
  if (via === undefined && dev === undefined) throw new RouteError('give a next hop (via IP) or a device (dev VLAN)');
  if (((net & ~prefixMask(prefix)) >>> 0) !== 0) throw new RouteError(`prefix: ${spec.prefix} has host bits set`);
  ip.routes.add(makeRoute({ net, prefix, via, dev, source }));
}

/** Removes the routes for a prefix (only the one via `via` when given); connected routes go only with their interface. */
export function deleteRoute(ip: IpLayer, spec: { prefix?: unknown; via?: unknown }): number {
  if (typeof spec.prefix !== 'string') throw new RouteError('prefix: missing (want A.B.C.D/N or "default")');
  const { net, prefix } = parsePrefix(spec.prefix);
  const via = parseVia(spec.via);
  const n = ip.routes.remove(net, prefix, { via });
  if (n === 0) {
    const connected = ip.routes.list().some((r) => r.source === 'connected' && r.net === net && r.prefix === prefix);
    throw new RouteError(connected ? `${spec.prefix} is a connected route: it goes with its interface` : `no route ${spec.prefix}${via !== undefined ? ` via ${ipToString(via)}` : ''}`);
  }
  return n;
}

/** The `route` admin verb: `{t: 'route', op: 'show'|'add'|'del', prefix?, via?, dev?}`. */
export function routeVerb(ip: IpLayer, m: Record<string, unknown>): { routes: RouteEntry[] } | { ok: true } {
  switch (m.op ?? 'show') {
    case 'show':
      return { routes: ip.routeEntries() as RouteEntry[] };
    case 'add':
      addRoute(ip, m, 'static');
      return { ok: true };
    case 'del':
      deleteRoute(ip, m);
      return { ok: true };
    default:
      throw new RouteError(`op: "${String(m.op)}" is not show, add or del`);
  }
}

/**
 * The boot configuration's routing: forwarding on or off, and the platform
 * routes (replacing any platform routes of an earlier configuration, so a
 * second control node's identical configuration changes nothing). Returns
 * the refused ones with their reason.
 */
export function applyRouting(ip: IpLayer, forwarding: unknown, routes: unknown): string[] {
  ip.forwarding = forwarding === true;
  for (const r of [...ip.routes.list()]) if (r.source === 'platform') ip.routes.remove(r.net, r.prefix, { via: r.via, dev: r.dev });
  const refused: string[] = [];
  if (!Array.isArray(routes)) return refused;
  for (const r of routes) {
    try {
      addRoute(ip, (r ?? {}) as RouteSpec, 'platform');
    } catch (err) {
      if (!(err instanceof RouteError)) throw err;
      refused.push(`${JSON.stringify(r)}: ${err.message}`);
    }
  }
  return refused;
}

/** The `ping` verb's IP options: `ttl` (1..255, ping -t) and `df` (ping -M do); absent ones are left out. */
export function pingIpOptions(m: Record<string, unknown>): { ttl?: number; df?: boolean } {
  const out: { ttl?: number; df?: boolean } = {};
  if (m.ttl !== undefined) {
    const ttl = Number(m.ttl);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new RouteError(`ttl: ${String(m.ttl)} is not 1..255`);
    out.ttl = ttl;
  }
  if (m.df !== undefined) out.df = m.df === true;
  return out;
}
