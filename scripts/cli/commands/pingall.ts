import { command } from '../command.ts';
import { pingall, type PingPair } from '../net-commands.ts';
import { JSON_OPTION, printJson } from './common.ts';

export default command({
  name: 'pingall',
  usage: ['pingall [--json]'],
  summary: 'every LPAR to every other address on its virtual LANs (Mininet’s pingall)',
  options: { ...JSON_OPTION },
  async run(ctx) {
    if (ctx.args.length) throw ctx.usage(`unexpected argument "${ctx.args[0]}"`);
    const runDir = ctx.liveRunDir();
    const pairs = await pingall(runDir, runDir.readPlatform());
    const received = pairs.filter((p) => p.ok).length;
    if (ctx.values.json) printJson({ pairs, sent: pairs.length, received });
    else {
      process.stdout.write('*** Ping: testing ping reachability\n');
      const byFrom = new Map<string, PingPair[]>();
      for (const p of pairs) byFrom.set(p.from, [...(byFrom.get(p.from) ?? []), p]);
      for (const [from, list] of byFrom) process.stdout.write(`${from} -> ${list.map((p) => (p.ok ? `${p.to}(${p.ip})` : 'X')).join(' ')}\n`);
      const dropped = pairs.length ? Math.round(((pairs.length - received) / pairs.length) * 100) : 0;
      process.stdout.write(`*** Results: ${dropped}% dropped (${received}/${pairs.length} received)\n`);
    }
    return received === pairs.length ? 0 : 1;
  },
});
