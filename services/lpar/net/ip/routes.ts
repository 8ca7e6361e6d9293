/**
 * The partition's IPv4 routing table (RFC 1812 5.2.4: longest prefix match,
 * the default route 0.0.0.0/0 matching what nothing longer does).
 *
 * Three sources, as `ip route` shows them (proto kernel / static):
 * - connected: one per IP interface, its subnet on-link (added and removed
 *   with the interface);
 * - platform: the LPAR's `routes` in the platform file, from the boot
 *   configuration;
 * - static: added at run time (`lparlab route LPAR add …`).
 *
 * A route names the segment (`dev`, the LAN) and/or the next hop (`via`).
 * The egress interface is resolved at lookup (by `dev`, else the connected
 * route holding `via`), so a route survives its interface going and coming
 * back, and is simply unusable in between.
 *
 * Entries are kept sorted by prefix length, longest first: a lookup is one
 * scan that stops at the first match, with masks computed once. A partition
 * has a handful of routes; a router partition of seed 000 with thousands
 * would want a trie (its fast path, net/router/, is the place for one).
 */
import { inSubnet, ipToString, prefixMask } from '../../../../shared/wire/ipv4-address.ts';

export type RouteSource = 'connected' | 'platform' | 'static';

export interface Route {
  /** Network address (host bits clear). */
  readonly net: number;
  readonly prefix: number;
  readonly mask: number;
  /** Next hop; absent for an on-link route (the destination is its own next hop). */
  readonly via?: number;
  /** The LAN the route leaves on; absent: the one whose subnet holds `via`. */
  readonly dev?: string;
  readonly source: RouteSource;
}

export class RouteError extends Error {}

/** `A.B.C.D/N`'s network address must have its host bits clear, as `ip route` insists. */
export function makeRoute(r: { net: number; prefix: number; via?: number; dev?: string; source: RouteSource }): Route {
  const mask = prefixMask(r.prefix);
  if (((r.net & ~mask) >>> 0) !== 0) throw new RouteError(`${ipToString(r.net)}/${r.prefix} has host bits set`);
  if (r.via === undefined && r.dev === undefined) throw new RouteError(`route ${ipToString(r.net)}/${r.prefix} needs a next hop (via) or a device (dev)`);
  return { net: r.net >>> 0, prefix: r.prefix, mask, via: r.via === undefined ? undefined : r.via >>> 0, dev: r.dev, source: r.source };
}

export function routeText(r: Route): string {
  return `${ipToString(r.net)}/${r.prefix}${r.via !== undefined ? ` via ${ipToString(r.via)}` : ''}${r.dev !== undefined ? ` dev ${r.dev}` : ''}`;
}

export class RoutingTable {
  private routes: Route[] = [];

  /** Adds a route; one with the same prefix and next hop (and dev) is replaced, as `ip route replace` would. */
  add(route: Route): void {
    this.routes = this.routes.filter((r) => !(r.net === route.net && r.prefix === route.prefix && r.via === route.via && (route.via !== undefined || r.dev === route.dev)));
    // Stable: among equal prefixes the earlier-added route wins, so a connected route beats a later static one.
    let i = 0;
    while (i < this.routes.length && this.routes[i].prefix >= route.prefix) i++;
    this.routes.splice(i, 0, route);
  }

  /**
   * Removes the routes for `net/prefix` (only the one via `via` when given);
   * returns how many. Connected routes go with their interface only, unless
   * `includeConnected` (the interface itself is going).
   */
  remove(net: number, prefix: number, opts: { via?: number; dev?: string; includeConnected?: boolean } = {}): number {
    const before = this.routes.length;
    this.routes = this.routes.filter(
      (r) =>
        !(r.net === net >>> 0 && r.prefix === prefix && (opts.via === undefined || r.via === opts.via >>> 0) && (opts.dev === undefined || r.dev === opts.dev) && (opts.includeConnected || r.source !== 'connected')),
    );
    return before - this.routes.length;
  }

  /** The longest-prefix match for `dst`, or undefined (no route to host). */
  lookup(dst: number): Route | undefined {
    for (const r of this.routes) if (((dst ^ r.net) & r.mask) === 0) return r;
    return undefined;
  }

  /** The on-link (connected) route whose subnet holds `ip`: how a next hop is reached. */
  connectedFor(ip: number): Route | undefined {
    for (const r of this.routes) if (r.source === 'connected' && inSubnet(ip, r.net, r.prefix)) return r;
    return undefined;
  }

  /** Longest prefix first: the first that matches a destination (and whose egress resolves) is its route. */
  list(): readonly Route[] {
    return this.routes;
  }
}
