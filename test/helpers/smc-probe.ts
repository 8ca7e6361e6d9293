import { expect } from 'vitest';
import type { TestPlatform } from './platform.ts';

type Rec = Record<string, any>;

/**
 * What the SMC integration tests ask a running platform: an LPAR's SMC
 * counters and connections, a bulk send to the bulk-sink app (port 9000),
 * and whether it arrived byte-exact. `ip` names each LPAR's address.
 */
export function smcProbe(platform: () => TestPlatform, ip: Record<string, string>) {
  return {
    stats: async (lpar: string) => ((await platform().admin(lpar, { t: 'smc-status' })) as Rec).smc.stats as Rec,
    conns: async (lpar: string) => ((await platform().admin(lpar, { t: 'ss' })) as Rec).connections as Rec[],
    send: (from: string, to: string, bytes: number, seed: number) => platform().admin(from, { t: 'tcp-send', dst: ip[to], port: 9000, bytes, seed }, 300_000) as Promise<Rec>,
    byteExact: (r: Rec, bytes: number) => {
      expect(r.bytes).toBe(bytes);
      expect(r.answer).toBe(r.sha256);
    },
  };
}
