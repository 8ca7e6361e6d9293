import { loadPlatformFile } from '../../../shared/platform/platform.ts';
import { BootProgress } from '../../../services/supervisor/boot-progress.ts';
import { HealthError, logTail } from '../../../services/supervisor/health.ts';
import { bootDetached } from '../../../services/supervisor/lifecycle.ts';
import { processPlan } from '../../../services/supervisor/process-plan.ts';
import { Supervisor } from '../../../services/supervisor/supervisor.ts';
import { command } from '../command.ts';
import { CONFIG_WITH_SHORT, JSON_OPTION } from './common.ts';
import { printStatus } from './status.ts';

/**
 * A platform of a few dozen processes on two shared cores can take well over
 * 30 s under load (measured: the whole test suite beside four others); only a
 * process that stays unhealthy this long, not one that dies, waits it out.
 */
const BOOT_TIMEOUT_S = 90;

export default command({
  name: 'up',
  usage: ['up [-c FILE] [--run-dir DIR] [--detach] [--except NAME]... [--json]'],
  summary: 'boot a platform (default: the built-in one); Ctrl-C stops it',
  description: `Starts every process of the platform, each with its log in the run directory, as
many at a time as the machine can take, and prints their status once all are
healthy. Meanwhile a terminal shows a live line (how many are up, which are
starting, which are slow); elsewhere each step is a plain line; a process that
fails to start is named with the end of its log. --json prints only the final
status as JSON. In the foreground it runs until Ctrl-C, then stops everything;
--detach leaves a supervisor in the background (lparlab down stops it). --except
leaves a process out for you to run (lparlab svc ... --inspect).`,
  options: {
    ...CONFIG_WITH_SHORT,
    ...JSON_OPTION,
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
    const json = ctx.values.json === true;
    // With --json stdout carries the final status only; other lines go to stderr.
    const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
    const total = processPlan(platform, runDir).length - except.length;
    const progress = new BootProgress(total, process.stdout, BootProgress.modeFor(process.stdout, json));
    if (ctx.values.detach) {
      try {
        await bootDetached(platform, file, runDir, except, timeoutMs, (e) => progress.event(e));
      } catch (err) {
        progress.done();
        process.stderr.write(`lparlab up: ${(err as Error).message}\n`);
        return 1;
      }
      progress.done();
      if (!json) say(`platform ${platform.name} is up (run directory ${runDir.root})`);
      await printStatus(runDir, json);
      return 0;
    }
    const sup = new Supervisor(platform, runDir, { except, onEvent: (line) => say(`${new Date().toISOString()} ${line}`) });
    const stop = async (code: number) => {
      await sup.stop();
      process.exit(code);
    };
    process.on('SIGINT', () => void stop(0));
    process.on('SIGTERM', () => void stop(0));
    await sup.start();
    try {
      await sup.boot(timeoutMs, (e) => progress.event(e));
    } catch (err) {
      progress.done();
      const name = err instanceof HealthError ? err.processName : 'fabric-manager';
      process.stderr.write(`lparlab up: ${(err as Error).message}\n--- last lines of ${name}'s log ---\n${logTail(runDir, name)}\n`);
      await stop(1);
    }
    progress.done();
    if (!json) say(`platform ${platform.name} is up (run directory ${runDir.root}); Ctrl-C stops it`);
    if (except.length) say(`left out for you to start: ${except.map((e) => `lparlab svc ... --id ${e} --run-dir ${runDir.root}`).join('; ')}`);
    await printStatus(runDir, json);
    return new Promise<number>(() => {});
  },
});
