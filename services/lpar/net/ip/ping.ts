/**
 * ICMP echo as ping(8) does it, over the IP layer's send: requests with an
 * identifier of their own, replies and ICMP errors matched back by (id, seq)
 * (an error quotes the request's ICMP header, RFC 792), and the result as
 * `lparlab ping` prints it.
 */
import crypto from 'node:crypto';
import { IcmpType, emitIcmpEcho, type IcmpPacket } from '../../../../shared/wire/icmpv4.ts';
import { ipToString } from '../../../../shared/wire/ipv4-address.ts';
import { UnreachableCode } from './forwarding.ts';

export interface PingResult {
  dst: string;
  sent: number;
  received: number;
  rttsMs: number[];
  errors: string[];
  /** ICMP errors that came back for the requests (as ping(8) prints "From 10.1.0.3 icmp_seq=1 Time to live exceeded"). */
  icmpErrors: Array<{ from: string; seq: number; type: number; code: number; text: string; nextHopMtu?: number }>;
}

/** `ttl` is ping -t, `df` ping -M do. */
export interface PingOptions {
  count: number;
  size: number;
  intervalMs: number;
  timeoutMs: number;
  ttl?: number;
  df?: boolean;
}

/** How a request leaves: the IP layer's send, with the IP options and a completion report. */
export type SendEcho = (dst: number, request: Buffer, opts: { ttl?: number; df?: boolean }, done: (err?: Error) => void) => void;

/** RFC 792 / RFC 1812 wording, as ping(8) prints ICMP errors. */
export function icmpErrorText(type: number, code: number): string {
  if (type === IcmpType.TimeExceeded) return code === 0 ? 'Time to live exceeded' : 'Frag reassembly time exceeded';
  if (type === IcmpType.DestUnreachable) {
    switch (code) {
      case UnreachableCode.Net:
        return 'Destination Net Unreachable';
      case UnreachableCode.Host:
        return 'Destination Host Unreachable';
      case UnreachableCode.Protocol:
        return 'Destination Protocol Unreachable';
      case UnreachableCode.Port:
        return 'Destination Port Unreachable';
      case UnreachableCode.FragmentationNeeded:
        return 'Frag needed and DF set';
      default:
        return `Destination Unreachable, code ${code}`;
    }
  }
  return `ICMP type ${type} code ${code}`;
}

interface Waiter {
  reply: (t: number) => void;
  error: (from: number, icmp: IcmpPacket) => void;
}

export class Pinger {
  private readonly waiting = new Map<number, Waiter>();

  constructor(private readonly sendEcho: SendEcho) {}

  /** An echo reply arrived. */
  reply(id: number, seq: number, now: number): void {
    this.waiting.get(((id << 16) | seq) >>> 0)?.reply(now);
  }

  /** An ICMP error arrived quoting our echo request (id, seq). */
  error(id: number, seq: number, from: number, icmp: IcmpPacket): void {
    this.waiting.get(((id << 16) | seq) >>> 0)?.error(from, icmp);
  }

  /**
   * `count` requests `intervalMs` apart, each waiting up to `timeoutMs`. With
   * intervalMs 0 it is ping -f: the next request leaves as soon as the reply
   * to the last one is back (or an ICMP error for it).
   */
  async ping(dst: number, opts: PingOptions): Promise<PingResult> {
    const id = crypto.randomInt(1, 0xffff);
    const result: PingResult = { dst: ipToString(dst), sent: 0, received: 0, rttsMs: [], errors: [], icmpErrors: [] };
    const data = Buffer.alloc(Math.max(0, opts.size));
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    const waits: Promise<void>[] = [];
    for (let seq = 1; seq <= opts.count; seq++) {
      const key = ((id << 16) | seq) >>> 0;
      const t0 = performance.now();
      waits.push(
        new Promise<void>((resolve) => {
          const finish = () => {
            clearTimeout(timer);
            this.waiting.delete(key);
            resolve();
          };
          const timer = setTimeout(finish, opts.timeoutMs);
          this.waiting.set(key, {
            reply: (t) => {
              result.received++;
              result.rttsMs.push(t - t0);
              finish();
            },
            error: (from, icmp) => {
              const text = icmpErrorText(icmp.type, icmp.code);
              const frag = icmp.type === IcmpType.DestUnreachable && icmp.code === UnreachableCode.FragmentationNeeded;
              result.icmpErrors.push({ from: ipToString(from), seq, type: icmp.type, code: icmp.code, text, ...(frag ? { nextHopMtu: icmp.nextHopMtu } : {}) });
              const line = `From ${ipToString(from)} icmp_seq=${seq} ${text}${frag ? ` (mtu = ${icmp.nextHopMtu})` : ''}`;
              if (!result.errors.includes(line)) result.errors.push(line);
              finish();
            },
          });
        }),
      );
      const req = Buffer.allocUnsafe(8 + data.length);
      emitIcmpEcho(req, 0, { type: IcmpType.EchoRequest, id, seq, data });
      result.sent++;
      this.sendEcho(dst, req, { ttl: opts.ttl, df: opts.df }, (err) => {
        if (err && !result.errors.includes(err.message)) result.errors.push(err.message);
      });
      if (seq < opts.count) await (opts.intervalMs > 0 ? new Promise((r) => setTimeout(r, opts.intervalMs)) : waits[waits.length - 1]);
    }
    await Promise.all(waits);
    return result;
  }
}
