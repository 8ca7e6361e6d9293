import { adminAsk, fmAsk } from '../../../shared/runtime/admin-client.ts';
import type { RunDir } from '../../../shared/runtime/run-dir.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';
import { Perf } from '../../../shared/rclan/purpose.ts';

/**
 * Waits until RVI `id` is up at both ends: the fabric manager's reply to
 * rvi-create only says it is programmed, each end brings it up on its own
 * when its rvi-add arrives (the review's problem 10: a fixed sleep raced this).
 */
async function rviUpAtBothEnds(runDir: RunDir, id: number, ends: string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const up = async (node: string) => (await adminAsk(runDir, node, { t: 'rvis' })).rvis.some((r) => r.id === id && r.state === 'up');
  for (;;) {
    const states = await Promise.all(ends.map(up));
    if (states.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`RVI ${id} not up at ${ends.filter((_, i) => !states[i]).join(' and ')} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export default command({
  name: 'perf',
  usage: ['perf A B [--count N] [--size BYTES] [--ping N] [--json]'],
  summary: 'RVI throughput and round trips between two LPARs (over a perf RVI)',
  description: 'Creates (or reuses) a perf RVI between A and B, streams --count messages of --size bytes from A to B, checks B got them in order, exactly once, then times --ping round trips of 64 bytes. Exits 1 unless B got every message once, in order.',
  options: {
    count: { type: 'integer', arg: 'N', min: 1, help: 'messages to send (default 20000)' },
    size: { type: 'integer', arg: 'BYTES', min: 9, max: 1048576, help: 'bytes per message (default 65536)' },
    ping: { type: 'integer', arg: 'N', min: 1, help: 'round trips to time (default 1000)' },
    ...JSON_OPTION,
  },
  async run(ctx) {
    const [a, b, extra] = ctx.args;
    if (!a || !b || extra !== undefined) throw ctx.usage('perf takes two LPAR names');
    const runDir = ctx.liveRunDir();
    const size = ctx.values.size ?? 65536;
    const count = ctx.values.count ?? 20000;
    const created = (await fmAsk(runDir, { t: 'rvi-create', a, b, purpose: Perf })).rvi;
    await rviUpAtBothEnds(runDir, created.id, [a, b]);
    const sent = await adminAsk(runDir, a, { t: 'perf-send', peer: b, count, sizes: [size] }, 600_000);
    const got = await adminAsk(runDir, b, { t: 'perf-received', peer: a });
    const ping = await adminAsk(runDir, a, { t: 'perf-ping', peer: b, count: ctx.values.ping ?? 1000, size: 64 }, 600_000);
    const result = { size, count, sender: sent, receiver: got, ping };
    if (ctx.values.json) printJson(result);
    else {
      process.stdout.write(`${a} -> ${b}: ${count} x ${size} B in ${sent.elapsedMs.toFixed(0)} ms = ${sent.gbps.toFixed(2)} Gbit/s; received in order ${got.received}, missing ${got.missing}, duplicates ${got.duplicates}\n`);
      process.stdout.write(`round trip (64 B): p50 ${ping.p50Us.toFixed(0)} us, p99 ${ping.p99Us.toFixed(0)} us\n`);
    }
    // RCLAN delivers in order, exactly once: anything else is a failure to report, not a figure.
    return got.missing || got.duplicates || got.corrupt || got.received !== count ? 1 : 0;
  },
});
