import { loadPlatformFile } from '../../../shared/platform/platform.ts';
import { processPlan } from '../../../services/supervisor/process-plan.ts';
import { command } from '../command.ts';
import { handOutKeys, writeAdminVerifiers } from '../../../shared/control/admin-auth.ts';
import { CONFIG_WITH_SHORT } from './common.ts';

export default command({
  name: 'init',
  usage: ['init [-c FILE] [--run-dir DIR] [--hand-out-keys DIR]'],
  summary: 'lay out a run directory (platform, keys) without starting it',
  description: `What compose.yaml runs first: the containers then share the run directory. With
--hand-out-keys, each process's own key files are also put in DIR/<name>/ (its
credential and admin verifier, and the platform key for the fabric manager, the
switches and the hypervisors), one volume per container, so that a container
mounts only its own keys.`,
  options: { ...CONFIG_WITH_SHORT, 'hand-out-keys': { type: 'string', arg: 'DIR', help: 'also copy each process’s own keys into DIR/<name>/' } },
  async run(ctx) {
    if (ctx.args.length) throw ctx.usage(`unexpected argument "${ctx.args[0]}"`);
    const platform = loadPlatformFile(ctx.platformFile());
    const runDir = ctx.runDir();
    const names = processPlan(platform, runDir).map((p) => p.name);
    runDir.initialise(platform, names);
    writeAdminVerifiers(runDir, [...names, 'supervisor']);
    const out = ctx.values['hand-out-keys'];
    if (out !== undefined) handOutKeys(runDir, processPlan(platform, runDir), out);
    process.stdout.write(`run directory ${runDir.root} ready for platform ${platform.name}\n`);
    return 0;
  },
});
