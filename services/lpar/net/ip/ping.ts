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
  /** Given up without an answer (its sequence number came round again). */
  expire: () => void;
  reply: (t: number) => void;
  error: (from: number, icmp: IcmpPacket) => void;
}

export class Pinger {
  private readonly waiting = new Map<number, Waiter>();

  constructor(private readonly sendEcho: SendEcho) {}

  /** An echo reply arrived. */
  reply(id: number, seq: number, now: number): void {
    this.waiting.get(waitKey(id, seq))?.reply(now);
  }

  /** An ICMP error arrived quoting our echo request (id, seq). */
  error(id: number, seq: number, from: number, icmp: IcmpPacket): void {
    this.waiting.get(waitKey(id, seq))?.error(from, icmp);
  }

  /**
   * `count` requests `intervalMs` apart, each waiting up to `timeoutMs`. With
   * intervalMs 0 it is ping -f: the next request leaves as soon as the reply
   * to the last one is back (or an ICMP error for it). The sequence number on
   * the wire is 16 bits and wraps as ping(8)'s does (issue 11 item 13: past
   * 65535 it used to throw); the count printed with an error is the request's own.
   */
  async ping(dst: number, opts: PingOptions): Promise<PingResult> {
    const id = crypto.randomInt(1, 0xffff);
    const result: PingResult = { dst: ipToString(dst), sent: 0, received: 0, rttsMs: [], errors: [], icmpErrors: [] };
    const data = Buffer.alloc(Math.max(0, opts.size));
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    // Only the requests still waiting are held (a million finished ones are not).
    const pending = new Set<Promise<void>>();
    for (let seq = 1; seq <= opts.count; seq++) {
      const wireSeq = seq & 0xffff;
      const key = waitKey(id, wireSeq);
      const t0 = performance.now();
      // A request 65536 before this one, still waiting, is given up: its number is this one's now.
      this.waiting.get(key)?.expire();
      const wait = new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          if (this.waiting.get(key) === waiter) this.waiting.delete(key);
          resolve();
        };
        const timer = setTimeout(finish, opts.timeoutMs);
        const waiter: Waiter = {
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
          expire: finish,
        };
        this.waiting.set(key, waiter);
      });
      pending.add(wait);
      void wait.then(() => pending.delete(wait));
      const req = Buffer.allocUnsafe(8 + data.length);
      emitIcmpEcho(req, 0, { type: IcmpType.EchoRequest, id, seq: wireSeq, data });
      result.sent++;
      this.sendEcho(dst, req, { ttl: opts.ttl, df: opts.df }, (err) => {
        if (err && !result.errors.includes(err.message)) result.errors.push(err.message);
      });
      if (seq < opts.count) await (opts.intervalMs > 0 ? new Promise((r) => setTimeout(r, opts.intervalMs)) : wait);
    }
    await Promise.all(pending);
    return result;
  }
}

function waitKey(id: number, seq: number): number {
  return ((id << 16) | seq) >>> 0;
}
