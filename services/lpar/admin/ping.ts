import { parseIp } from '../../../shared/wire/ipv4-address.ts';
import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { StackPort } from './stack.ts';

/** `ping`: ICMP echo as ping(8), through the partition's IP layer; the defaults are ping's (one request of 56 bytes). */
export function pingVerbs(stack: StackPort): LparVerbTable<'ping'> {
  return {
    ping: (m) =>
      stack().ip.ping(parseIp(m.dst), {
        count: m.count ?? 1,
        size: m.size ?? 56,
        intervalMs: m.intervalMs ?? 0,
        timeoutMs: m.timeoutMs ?? 1000,
        // ping -t TTL and ping -M do (Don't Fragment): absent, the IP layer's defaults.
        ...(m.ttl !== undefined ? { ttl: m.ttl } : {}),
        ...(m.df !== undefined ? { df: m.df } : {}),
      }),
  };
}
