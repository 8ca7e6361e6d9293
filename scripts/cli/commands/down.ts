import { stopPlatform } from '../../../services/supervisor/lifecycle.ts';
import { command } from '../command.ts';
import { CONFIG_WITH_SHORT } from './common.ts';

export default command({
  name: 'down',
  usage: ['down [--run-dir DIR | -c FILE]'],
  summary: 'stop a platform; no process, socket, state or key left (logs and NVRAM are kept)',
  options: { ...CONFIG_WITH_SHORT },
  async run(ctx) {
    if (ctx.args.length) throw ctx.usage(`unexpected argument "${ctx.args[0]}"`);
    const runDir = ctx.runDir();
    await stopPlatform(runDir);
    process.stdout.write(`platform in ${runDir.root} is down\n`);
    return 0;
  },
});
