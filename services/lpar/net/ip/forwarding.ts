/**
 * IPv4 forwarding decisions of a partition that routes (`forwarding: true`),
 * as pure functions of the datagram's header and the route found, so they
 * test without a stack (RFC 1812, "Requirements for IP Version 4 Routers").
 * The IP layer acts on the verdict: forward (whole or fragmented), answer
 * with an ICMP error, or drop silently.
 */
import { IcmpType } from '../../../../shared/wire/icmpv4.ts';
import { IpProto } from '../../../../shared/wire/ipv4.ts';
import { LIMITED_BROADCAST, isIpv4Multicast } from '../../../../shared/wire/ipv4-address.ts';

/** ICMP codes used here (RFC 792, RFC 1812 5.2.7.1). */
export const UnreachableCode = { Net: 0, Host: 1, Protocol: 2, Port: 3, FragmentationNeeded: 4 } as const;
export const TimeExceededCode = { InTransit: 0, Reassembly: 1 } as const;

/** What a router needs of a datagram it did not address to itself. */
export interface TransitHeader {
  src: number;
  dst: number;
  ttl: number;
  dontFragment: boolean;
  /** Whole datagram length (header included). */
  totalLength: number;
}

export type ForwardVerdict =
  | { action: 'forward'; fragment: boolean }
  | { action: 'icmp'; type: number; code: number; nextHopMtu?: number; why: string }
  | { action: 'drop'; why: string };

/**
 * RFC 1812: 5.3.7 (martian sources and limited-broadcast or multicast
 * destinations are not forwarded), 5.3.1 (TTL: a datagram whose TTL would
 * reach 0 is discarded with time exceeded), 5.2.7.1 (no route: destination
 * unreachable, net), 5.2.6 / RFC 1191 (too big with DF: fragmentation needed,
 * carrying the next-hop MTU; too big without DF: fragmented).
 * `egressMtu` is undefined when there is no route.
 */
export function forwardVerdict(h: TransitHeader, egressMtu: number | undefined): ForwardVerdict {
  if (h.src === 0 || h.src === LIMITED_BROADCAST || isIpv4Multicast(h.src) || h.src >>> 24 === 127) return { action: 'drop', why: 'martian source' };
  if (h.dst === LIMITED_BROADCAST || isIpv4Multicast(h.dst) || h.dst === 0) return { action: 'drop', why: 'not forwarded: broadcast or multicast destination' };
  if (h.ttl <= 1) return { action: 'icmp', type: IcmpType.TimeExceeded, code: TimeExceededCode.InTransit, why: 'TTL exceeded in transit' };
  if (egressMtu === undefined) return { action: 'icmp', type: IcmpType.DestUnreachable, code: UnreachableCode.Net, why: 'no route to network' };
  if (h.totalLength > egressMtu) {
    if (h.dontFragment) return { action: 'icmp', type: IcmpType.DestUnreachable, code: UnreachableCode.FragmentationNeeded, nextHopMtu: egressMtu, why: 'fragmentation needed and DF set' };
    return { action: 'forward', fragment: true };
  }
  return { action: 'forward', fragment: false };
}

/** What RFC 1122 3.2.2 and RFC 1812 4.3.2.7 say an ICMP error must never answer. */
export interface OffendingDatagram {
  src: number;
  dst: number;
  protocol: number;
  /** Fragment offset in bytes (non-initial fragments are never answered). */
  fragmentOffset: number;
  /** The first byte of its payload: for ICMP the type. */
  firstPayloadByte: number | undefined;
  /** Whether it arrived as link-layer broadcast or multicast. */
  linkBroadcast: boolean;
}

/**
 * Whether an ICMP error may be sent about this datagram: not about an ICMP
 * error (only queries, RFC 1122 3.2.2), not about a non-initial fragment,
 * nor about one sent to or from a broadcast or multicast address, nor one
 * whose source is no single host.
 */
export function mayAnswerWithError(d: OffendingDatagram, isBroadcastAddress: (ip: number) => boolean): boolean {
  if (d.fragmentOffset !== 0 || d.linkBroadcast) return false;
  if (d.src === 0 || d.src === LIMITED_BROADCAST || isIpv4Multicast(d.src) || isBroadcastAddress(d.src)) return false;
  if (d.dst === LIMITED_BROADCAST || isIpv4Multicast(d.dst) || isBroadcastAddress(d.dst)) return false;
  if (d.protocol === IpProto.Icmp) {
    const t = d.firstPayloadByte;
    // Echo, timestamp, information and address-mask requests and replies are queries; anything else is an error.
    if (t === undefined || !(t === 0 || t === 8 || t === 13 || t === 14 || t === 15 || t === 16 || t === 17 || t === 18)) return false;
  }
  return true;
}

/**
 * RFC 1812 4.3.2.3: the error quotes as much of the datagram as fits in 576
 * bytes with the error's own IP (20) and ICMP (8) headers; at least the
 * header and 8 bytes (RFC 792).
 */
export function quoteLength(totalLength: number, headerLength: number): number {
  return Math.min(totalLength, Math.max(headerLength + 8, 576 - 20 - 8));
}

/**
 * A token bucket for ICMP errors (RFC 1812 4.3.2.8: a router SHOULD limit
 * the rate; a flood of undeliverable packets must not become a flood of
 * errors). `burst` tokens, refilled at `perSecond`.
 */
export class IcmpRateLimit {
  private tokens: number;
  private last = 0;

  constructor(
    private readonly perSecond = 100,
    private readonly burst = 50,
  ) {
    this.tokens = burst;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
