import { loadPlatformFile } from '../../../shared/platform/platform.ts';
import { HealthError, logTail } from '../../../services/supervisor/health.ts';
import { bootDetached } from '../../../services/supervisor/lifecycle.ts';
import { Supervisor } from '../../../services/supervisor/supervisor.ts';
import { command } from '../command.ts';
import { CONFIG_WITH_SHORT } from './common.ts';
import { printStatus } from './status.ts';

/**
 * Eleven Node processes loading TypeScript on two shared cores can take well
 * over 30 s under load (measured: the whole test suite beside four others);
 * only a process that stays unhealthy this long, not one that dies, waits it out.
 */
const BOOT_TIMEOUT_S = 90;

export default command({
  name: 'up',
  usage: ['up [-c FILE] [--run-dir DIR] [--detach] [--except NAME]...'],
  summary: 'boot a platform (default: the built-in one); Ctrl-C stops it',
  description: `Starts every process of the platform, each with its log in the run directory, and
prints their status once all are healthy. In the foreground it runs until Ctrl-C,
then stops everything; --detach leaves a supervisor in the background (lparlab down
stops it). --except leaves a process out for you to run (lparlab svc ... --inspect).`,
  options: {
    ...CONFIG_WITH_SHORT,
    detach: { type: 'boolean', help: 'boot under a background supervisor and return once all are healthy' },
    except: { type: 'string', multiple: true, arg: 'NAME', help: 'a process not to start' },
    timeout: { type: 'number', arg: 'S', min: 1, help: `how long every process may take to report healthy (default ${BOOT_TIMEOUT_S}; a process that dies fails the boot at once)` },
  },
  async run(ctx) {
    if (ctx.args.length) throw ctx.usage(`unexpected argument "${ctx.args[0]}"`);
    const file = ctx.platformFile();
    const platform = loadPlatformFile(file);
    const runDir = ctx.runDir();
    const except = ctx.values.except ?? [];
    const timeoutMs = (ctx.values.timeout ?? BOOT_TIMEOUT_S) * 1000;
    if (ctx.values.detach) {
      try {
        await bootDetached(platform, file, runDir, except, timeoutMs);
      } catch (err) {
        process.stderr.write(`lparlab up: ${(err as Error).message}\n`);
        return 1;
      }
      process.stdout.write(`platform ${platform.name} is up (run directory ${runDir.root})\n`);
      await printStatus(runDir, false);
      return 0;
    }
    const sup = new Supervisor(platform, runDir, { except, onEvent: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`) });
    const stop = async (code: number) => {
      await sup.stop();
      process.exit(code);
    };
    process.on('SIGINT', () => void stop(0));
    process.on('SIGTERM', () => void stop(0));
    await sup.start();
    try {
      await sup.waitHealthy(timeoutMs);
    } catch (err) {
      const name = err instanceof HealthError ? err.processName : 'fabric-manager';
      process.stderr.write(`lparlab up: ${(err as Error).message}\n--- last lines of ${name}'s log ---\n${logTail(runDir, name)}\n`);
      await stop(1);
    }
    process.stdout.write(`platform ${platform.name} is up (run directory ${runDir.root}); Ctrl-C stops it\n`);
    if (except.length) process.stdout.write(`left out for you to start: ${except.map((e) => `lparlab svc ... --id ${e} --run-dir ${runDir.root}`).join('; ')}\n`);
    await printStatus(runDir, false);
    return new Promise<number>(() => {});
  },
});
