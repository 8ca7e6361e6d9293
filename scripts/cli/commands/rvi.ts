import { fmAsk } from '../../../shared/runtime/admin-client.ts';
import { numberArg } from '../../../shared/runtime/options.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';
import { Data } from '../../../shared/rclan/purpose.ts';

export default command({
  name: 'rvi',
  usage: ['rvi list [--json] | rvi create A B [--purpose P] | rvi destroy ID'],
  summary: "the fabric manager's RVIs, as management sees them",
  description: 'list prints one RVI a line: id, each end with its VI number, purpose.',
  options: {
    purpose: { type: 'string', arg: 'P', help: 'create: the purpose (default data; perf for lparlab perf)' },
    ...JSON_OPTION,
  },
  async run(ctx) {
    const [sub = 'list', a, b, extra] = ctx.args;
    const runDir = ctx.liveRunDir();
    if (sub === 'list') {
      if (a !== undefined) throw ctx.usage(`unexpected argument "${a}"`);
      const { rvis } = await fmAsk(runDir, { t: 'rvi-list' });
      if (ctx.values.json) printJson(rvis);
      else for (const x of rvis) process.stdout.write(`${x.id}\t${x.a} (vi ${x.viA}) <-> ${x.b} (vi ${x.viB})\t${x.purpose}\n`);
      return 0;
    }
    if (sub === 'create') {
      if (!a || !b || extra !== undefined) throw ctx.usage('rvi create takes two node names');
      const r = await fmAsk(runDir, { t: 'rvi-create', a, b, purpose: ctx.values.purpose ?? Data });
      process.stdout.write(`${JSON.stringify(r.rvi)}\n`);
      return 0;
    }
    if (sub === 'destroy') {
      if (b !== undefined) throw ctx.usage(`unexpected argument "${b}"`);
      const id = numberArg('rvi destroy ID', a, { integer: true, min: 0 });
      await fmAsk(runDir, { t: 'rvi-destroy', id });
      process.stdout.write(`RVI ${id} destroyed\n`);
      return 0;
    }
    throw ctx.usage(`unknown subcommand "${sub}" (list, create, destroy)`);
  },
});
