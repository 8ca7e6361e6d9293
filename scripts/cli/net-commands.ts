import os from 'node:os';
import type { ControlChannel } from '../../shared/control/channel.ts';
import type { Platform } from '../../shared/platform/platform.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import { PcapWriter } from '../../shared/wire/pcap.ts';
import { PING_MANY_MAX, decodeAdminReply, decodeLooseView } from '../../shared/protocol/admin.ts';
import { orThrow } from '../../shared/protocol/check.ts';
import { adminAsk, openAdmin } from '../../shared/runtime/admin-client.ts';
import { eachAtMost } from '../../shared/runtime/at-most.ts';
import { channelAsk, onStream } from './admin-channel.ts';

/** Current membership of each virtual LAN, from a live control node (join/leave change it), else the platform file. */
export async function vlanMembers(runDir: RunDir, platform: Platform): Promise<Map<string, Array<{ lpar: string; ip: string }>>> {
  for (const cn of platform.controlNodes) {
    try {
      // cn-status is loosely produced (LooselyProducedVerb): its virtual LANs are checked against the view this reads.
      const s = orThrow(decodeLooseView('cnVlans', 'cn-status reply', await adminAsk(runDir, cn.name, { t: 'cn-status' }, 3000)));
      const out = new Map<string, Array<{ lpar: string; ip: string }>>();
      for (const v of s.vlans) out.set(v.name, v.members.map((m) => ({ lpar: m.lpar, ip: m.ip })));
      return out;
    } catch {
      /* try the other control node */
    }
  }
  return new Map(platform.vlans.map((v) => [v.name, v.members.map((m) => ({ lpar: m.lpar, ip: m.ip }))]));
}

export interface PingPair {
  from: string;
  to: string;
  ip: string;
  vlan: string;
  ok: boolean;
  rttMs: number | null;
}

/**
 * Pings in flight at once in a pingall, 16 per core. The box's throughput,
 * not the number in flight, sets a pingall's wall time (Mininet's runs one
 * ping at a time); past a few per core the rest only wait in the crowd, and
 * on 2 cores with 64 partitions 256 at once took every ping to about a
 * second, the first of each pair (ARP, and its RVI made) past its 2 s
 * (2,323 of 4,032 lost; at 32, none, in 52 s).
 */
export const PINGALL_CONCURRENCY = Math.max(8, os.availableParallelism() * 16);

/**
 * How long each pingall ping waits for its reply: ping(8)'s own wait for a
 * reply that has not come (iputils' MAXWAIT, 10 s; Mininet's pingall runs
 * `ping -c1` with it), which also covers ARP's 2 s of tries (arp-cache.ts) and
 * the pair's RVI being made on its first ping (issue 10 item 2). 5 s counted
 * as lost a reply that came: 256 partitions on two cores, p99 1.3 s, the
 * slowest replies 4-6 s, one pair of 65,280 counted lost with its reply on
 * the way (the target's echo replies numbered every request).
 */
export const PINGALL_WAIT_MS = 10_000;

/**
 * Mininet's pingall: every LPAR pings every other address on each virtual LAN
 * it is on. Each source is asked once for all its pairs (`ping-many`, as fping
 * sweeps), not once per pair: an admin connection per pair (65,280 at 256
 * partitions) cost more than the pings (issue 10). PINGALL_CONCURRENCY pings
 * are in flight at once, spread over the sources, and source i starts at the
 * member after it, so the sources running together ping different targets
 * rather than all the first one (and all make their RVI to it at once).
 */
export async function pingall(runDir: RunDir, platform: Platform): Promise<PingPair[]> {
  const members = await vlanMembers(runDir, platform);
  // Each source's pairs in the members' order (as Mininet prints them); pinged from the member after it on.
  const sweeps: Array<{ from: string; pairs: PingPair[]; order: PingPair[] }> = [];
  for (const [vlan, list] of members) {
    list.forEach((m, i) => {
      const pairs = list.filter((t) => t.lpar !== m.lpar).map((t) => ({ from: m.lpar, to: t.lpar, ip: t.ip, vlan, ok: false, rttMs: null }));
      sweeps.push({ from: m.lpar, pairs, order: [...pairs.slice(i), ...pairs.slice(0, i)] });
    });
  }
  const atOnce = Math.min(PINGALL_CONCURRENCY, sweeps.length);
  const perSource = Math.max(1, Math.floor(PINGALL_CONCURRENCY / Math.max(1, atOnce)));
  await eachAtMost(sweeps, atOnce, async (sw) => {
    for (let k = 0; k < sw.order.length; k += PING_MANY_MAX) {
      const part = sw.order.slice(k, k + PING_MANY_MAX);
      const waitMs = Math.ceil(part.length / perSource) * PINGALL_WAIT_MS + 10_000;
      try {
        // A source that fails, or whose reply does not decode, is an X for each of its pairs (as an unreachable LPAR is).
        const r = orThrow(decodeAdminReply('ping-many', await adminAsk(runDir, sw.from, { t: 'ping-many', dsts: part.map((p) => p.ip), timeoutMs: PINGALL_WAIT_MS, concurrency: perSource }, waitMs)));
        r.results.forEach((x, j) => {
          if (!part[j]) return;
          part[j].ok = x.received;
          part[j].rttMs = x.rttMs;
        });
      } catch {
        /* every pair of this part stays an X */
      }
    }
  });
  return sweeps.flatMap((sw) => sw.pairs);
}

/**
 * Records a virtual LAN's frames to a pcap file (LINKTYPE_ETHERNET). Every
 * member streams the frames it transmits on that LAN; each frame of the LAN is
 * sent by exactly one member, so the merge holds each once. Stops after
 * `count` frames, after `durationMs`, or when `stop` resolves.
 */
export async function capture(runDir: RunDir, platform: Platform, vlan: string, file: string, opts: { count?: number; durationMs?: number; stop?: Promise<void> }): Promise<{ frames: number; members: string[] }> {
  if (!platform.vlans.some((v) => v.name === vlan)) throw new Error(`no virtual LAN "${vlan}" in platform ${platform.name}`);
  const members = ((await vlanMembers(runDir, platform)).get(vlan) ?? []).map((m) => m.lpar).filter((n) => readState(runDir.stateFile(n)));
  const writer = new PcapWriter(file);
  const channels: ControlChannel[] = [];
  let malformed: string | undefined;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  try {
    for (const lpar of members) {
      const ch = await openAdmin(runDir, lpar);
      onStream(
        ch,
        'capture-frame',
        (m) => {
          if (opts.count !== undefined && writer.count >= opts.count) return;
          writer.write(m.ts, m.frame);
          if (opts.count !== undefined && writer.count >= opts.count) done();
        },
        // A malformed frame message ends the capture as a failure, naming the field.
        (reason) => {
          malformed ??= `${lpar}: ${reason}`;
          done();
        },
      );
      await channelAsk(ch, { t: 'capture', vlan });
      channels.push(ch);
    }
    const timer = opts.durationMs !== undefined ? setTimeout(done, opts.durationMs) : undefined;
    await Promise.race([finished, opts.stop ?? new Promise(() => {})]);
    if (timer) clearTimeout(timer);
    if (malformed !== undefined) throw new Error(malformed);
  } finally {
    for (const ch of channels) ch.close();
    await writer.close();
  }
  return { frames: writer.count, members };
}
