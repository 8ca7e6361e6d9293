import net from 'node:net';
import { loadPlatformFile } from '../../../shared/platform/platform.ts';
import { emitBootLine } from '../../../shared/protocol/boot.ts';
import { RunDir } from '../../../shared/runtime/run-dir.ts';
import { required } from '../../../shared/runtime/options.ts';
import { Supervisor } from '../../../services/supervisor/supervisor.ts';
import { command } from '../command.ts';

/** The detached supervisor behind `up --detach` (services/supervisor/lifecycle.ts starts it). */
export default command({
  name: 'supervise',
  usage: ['supervise --run-dir DIR --config FILE [--except NAME]... [--progress-fd FD] [--boot-timeout MS]'],
  summary: 'the background supervisor that lparlab up --detach starts (internal)',
  hidden: true,
  options: {
    except: { type: 'string', multiple: true, arg: 'NAME', help: 'a process not to start' },
    'progress-fd': { type: 'number', arg: 'FD', min: 3, help: "a pipe to the launcher: the boot's events, one JSON line each (shared/protocol/boot.ts)" },
    'boot-timeout': { type: 'number', arg: 'MS', min: 1, help: 'how long the boot may take (default 90000)' },
  },
  async run(ctx) {
    const sup = new Supervisor(loadPlatformFile(ctx.platformFile()), new RunDir(required(ctx.values, 'run-dir')), {
      except: ctx.values.except ?? [],
      onEvent: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
    });
    const fd = ctx.values['progress-fd'];
    const progress = fd === undefined ? undefined : new net.Socket({ fd, readable: false, writable: true });
    // The launcher may be gone (Ctrl-C): the boot goes on, its events go to the log only.
    progress?.on('error', () => {});
    const stop = async () => {
      await sup.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
    await sup.start();
    sup
      .boot(ctx.values['boot-timeout'] ?? 90_000, (e) => {
        process.stdout.write(`${new Date().toISOString()} boot ${emitBootLine(e)}`);
        progress?.write(emitBootLine(e));
      })
      // Either way the launcher has the outcome; on a failure it stops this supervisor.
      .then(
        () => progress?.end(),
        () => progress?.end(),
      );
    return new Promise<number>(() => {});
  },
});
