import { loadPlatformFile } from '../../../shared/platform/platform.ts';
import { RunDir } from '../../../shared/runtime/run-dir.ts';
import { required } from '../../../shared/runtime/options.ts';
import { Supervisor } from '../../../services/supervisor/supervisor.ts';
import { command } from '../command.ts';

/** The detached supervisor behind `up --detach` (services/supervisor/lifecycle.ts starts it). */
export default command({
  name: 'supervise',
  usage: ['supervise --run-dir DIR --config FILE [--except NAME]...'],
  summary: 'the background supervisor that lparlab up --detach starts (internal)',
  hidden: true,
  options: {
    except: { type: 'string', multiple: true, arg: 'NAME', help: 'a process not to start' },
  },
  async run(ctx) {
    const sup = new Supervisor(loadPlatformFile(ctx.platformFile()), new RunDir(required(ctx.values, 'run-dir')), {
      except: ctx.values.except ?? [],
      onEvent: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
    });
    const stop = async () => {
      await sup.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
    await sup.start();
    return new Promise<number>(() => {});
  },
});
