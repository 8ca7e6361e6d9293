import { adminAsk } from '../../../shared/runtime/admin-client.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';

export default command({
  name: 'ping',
  usage: ['ping LPAR IP [-c N] [-s BYTES] [-i SECONDS] [-W SECONDS] [--json]'],
  summary: "ICMP echo from inside a partition's own stack",
  description: 'As ping(8), run by the LPAR: N requests, one every -i seconds, each waiting up to -W for its reply. Exits 1 when no reply came.',
  options: {
    count: { type: 'integer', short: 'c', arg: 'N', min: 1, max: 100_000, help: 'requests to send (default 4)' },
    size: { type: 'integer', short: 's', arg: 'BYTES', min: 0, max: 65507, help: 'data bytes per request (default 56)' },
    interval: { type: 'number', short: 'i', arg: 'SECONDS', min: 0, help: 'between requests (default 0.2; 0: the next once the reply is in)' },
    timeout: { type: 'number', short: 'W', arg: 'SECONDS', min: 0.001, help: 'wait for each reply (default 1)' },
    ...JSON_OPTION,
  },
  async run(ctx) {
    const [lpar, dst, extra] = ctx.args;
    if (!lpar || !dst || extra !== undefined) throw ctx.usage('ping takes an LPAR and an IP address');
    const count = ctx.values.count ?? 4;
    const intervalMs = Math.round((ctx.values.interval ?? 0.2) * 1000);
    const timeoutMs = Math.round((ctx.values.timeout ?? 1) * 1000);
    const r = await adminAsk(ctx.liveRunDir(), lpar, { t: 'ping', dst, count, size: ctx.values.size ?? 56, intervalMs, timeoutMs }, count * (intervalMs + timeoutMs) + 10_000);
    if (ctx.values.json) printJson(r);
    else {
      const rtts = r.rttsMs;
      const loss = Math.round((1 - r.received / r.sent) * 100);
      for (const e of r.errors) process.stdout.write(`${lpar}: ${e}\n`);
      process.stdout.write(`--- ${dst} ping statistics from ${lpar} ---\n${r.sent} packets transmitted, ${r.received} received, ${loss}% packet loss\n`);
      if (rtts.length) process.stdout.write(`rtt min/avg/max = ${Math.min(...rtts).toFixed(3)}/${(rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(3)}/${Math.max(...rtts).toFixed(3)} ms\n`);
    }
    return r.received > 0 ? 0 : 1;
  },
});
