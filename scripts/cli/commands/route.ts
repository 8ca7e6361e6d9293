import type { RouteEntry, RouteRequest } from '../../../shared/protocol/admin.ts';
import { adminAsk } from '../../../shared/runtime/admin-client.ts';
import { UsageError } from '../../../shared/runtime/options.ts';
import { ipToString, parseCidr, parseIp, prefixMask } from '../../../shared/wire/ipv4-address.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';

/**
 * A partition's routing table (the lpar's `route` admin verb), with ip-route's
 * word syntax: `route LPAR show`, `route LPAR add PREFIX [via IP] [dev VLAN]`,
 * `route LPAR del PREFIX [via IP]`; `default` is 0.0.0.0/0 and a bare
 * address is a /32 host route, as in `ip route`. The request and the reply's
 * entries are the admin protocol's (shared/protocol/admin.ts).
 */
export type { RouteEntry, RouteRequest };

/** `default`, `A.B.C.D/N` or `A.B.C.D` (a /32) as a canonical prefix; host bits set is an error, as ip route says "Invalid prefix". */
export function routePrefix(word: string): string {
  if (word === 'default') return '0.0.0.0/0';
  let net: { ip: number; prefix: number };
  try {
    net = word.includes('/') ? parseCidr(word) : { ip: parseIp(word), prefix: 32 };
  } catch {
    throw new UsageError(`route: "${word}" is not a prefix (A.B.C.D/N, A.B.C.D or default)`);
  }
  if ((net.ip & ~prefixMask(net.prefix)) >>> 0 !== 0) throw new UsageError(`route: "${word}" has host bits set: did you mean ${ipToString((net.ip & prefixMask(net.prefix)) >>> 0)}/${net.prefix}?`);
  return `${ipToString(net.ip)}/${net.prefix}`;
}

function gateway(word: string | undefined): string {
  if (word === undefined) throw new UsageError('route: "via" needs an address');
  try {
    return ipToString(parseIp(word));
  } catch {
    throw new UsageError(`route: via "${word}" is not an IPv4 address`);
  }
}

/** The words after `route LPAR` as the admin request; a UsageError names what does not fit. */
export function parseRouteWords(words: readonly string[]): RouteRequest {
  const [op = 'show', ...rest] = words;
  if (op === 'show' || op === 'list') {
    if (rest.length) throw new UsageError(`route show: unexpected "${rest[0]}"`);
    return { t: 'route', op: 'show' };
  }
  if (op !== 'add' && op !== 'del' && op !== 'delete') throw new UsageError(`route: unknown operation "${op}" (show, add, del)`);
  const [prefixWord, ...tail] = rest;
  if (prefixWord === undefined) throw new UsageError(`route ${op}: needs a prefix (A.B.C.D/N or default)`);
  const prefix = routePrefix(prefixWord);
  let via: string | undefined;
  let dev: string | undefined;
  for (let i = 0; i < tail.length; i += 2) {
    const key = tail[i];
    if (key === 'via' && via === undefined) via = gateway(tail[i + 1]);
    else if (key === 'dev' && dev === undefined && op === 'add') {
      dev = tail[i + 1];
      if (dev === undefined) throw new UsageError('route: "dev" needs a virtual LAN name');
    } else throw new UsageError(`route ${op}: unexpected "${key}"${op === 'add' ? ' (via IP, dev VLAN)' : ' (via IP)'}`);
  }
  if (op === 'add') {
    if (via === undefined && dev === undefined) throw new UsageError('route add: needs "via IP" or "dev VLAN" (or both)');
    return { t: 'route', op: 'add', prefix, ...(via !== undefined ? { via } : {}), ...(dev !== undefined ? { dev } : {}) };
  }
  return { t: 'route', op: 'del', prefix, ...(via !== undefined ? { via } : {}) };
}

/** One route as `ip route` prints it. */
export function formatRoute(r: RouteEntry): string {
  const dst = r.prefix === '0.0.0.0/0' ? 'default' : r.prefix;
  return `${dst}${r.via ? ` via ${r.via}` : ''} dev ${r.dev} proto ${r.source} mtu ${r.mtu}`;
}

export default command({
  name: 'route',
  usage: ['route LPAR [show] [--json]', 'route LPAR add PREFIX [via IP] [dev VLAN]', 'route LPAR del PREFIX [via IP]'],
  summary: "a partition's routing table: show it, add or delete a route at run time",
  description: `PREFIX is A.B.C.D/N, A.B.C.D (a host route) or default (0.0.0.0/0). Routes come from
the interfaces (connected), the platform file (platform) and this command (static).`,
  options: { ...JSON_OPTION },
  async run(ctx) {
    const [lpar, ...words] = ctx.args;
    if (!lpar) throw ctx.usage('route needs an LPAR name');
    const rq = parseRouteWords(words);
    const r = await adminAsk(ctx.liveRunDir(), lpar, rq);
    if (rq.op !== 'show') return 0;
    const routes = r.routes ?? [];
    if (ctx.values.json) printJson(routes);
    else for (const e of routes) process.stdout.write(`${formatRoute(e)}\n`);
    return 0;
  },
});
