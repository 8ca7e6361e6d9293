import { loadPlatformFile } from '../../../shared/platform/platform.ts';
import { processPlan } from '../../../services/supervisor/process-plan.ts';
import { command } from '../command.ts';
import { writeAdminVerifiers } from '../../../shared/control/admin-auth.ts';
import { CONFIG_WITH_SHORT } from './common.ts';

export default command({
  name: 'init',
  usage: ['init [-c FILE] [--run-dir DIR]'],
  summary: 'lay out a run directory (platform, keys) without starting it',
  description: 'What compose.yaml runs first: the containers then share the run directory.',
  options: { ...CONFIG_WITH_SHORT },
  async run(ctx) {
    if (ctx.args.length) throw ctx.usage(`unexpected argument "${ctx.args[0]}"`);
    const platform = loadPlatformFile(ctx.platformFile());
    const runDir = ctx.runDir();
    const names = processPlan(platform, runDir).map((p) => p.name);
    runDir.initialise(platform, names);
    writeAdminVerifiers(runDir, [...names, 'supervisor']);
    process.stdout.write(`run directory ${runDir.root} ready for platform ${platform.name}\n`);
    return 0;
  },
});
