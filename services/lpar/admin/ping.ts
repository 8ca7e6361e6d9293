import { parseIp } from '../../../shared/wire/ipv4-address.ts';
import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { StackPort } from './stack.ts';
import { eachAtMost } from '../../../shared/runtime/at-most.ts';

/** `ping`: ICMP echo as ping(8), through the partition's IP layer; the defaults are ping's (one request of 56 bytes). */
export function pingVerbs(stack: StackPort): LparVerbTable<'ping' | 'ping-many'> {
  return {
    'ping-many': async (m) => {
      const t0 = performance.now();
      const ip = stack().ip;
      const timeoutMs = m.timeoutMs ?? 1000;
      const results = m.dsts.map((dst) => ({ dst, received: false, rttMs: null as number | null, error: null as string | null }));
      await eachAtMost(results, m.concurrency ?? 1, async (r) => {
        const got = await ip.ping(parseIp(r.dst), { count: 1, size: 56, intervalMs: 0, timeoutMs });
        r.received = got.received === 1;
        r.rttMs = got.rttsMs[0] ?? null;
        r.error = got.errors[0] ?? null;
      });
      return { results, elapsedMs: performance.now() - t0 };
    },
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
