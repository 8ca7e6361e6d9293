import { readState } from '../../../shared/runtime/state-file.ts';
import { isAlive } from '../../../services/supervisor/health.ts';
import { command } from '../command.ts';

const SIGNALS = ['TERM', 'KILL', 'STOP', 'CONT', 'INT'];

export default command({
  name: 'kill',
  usage: ['kill NAME [--signal TERM|KILL|STOP|CONT]'],
  summary: 'signal one process of the platform (default TERM)',
  options: {
    signal: { type: 'string', arg: 'SIG', help: 'TERM, KILL, STOP (a hung box), CONT or INT' },
  },
  async run(ctx) {
    const [name, extra] = ctx.args;
    if (!name || extra !== undefined) throw ctx.usage('kill takes one process name');
    const signal = (ctx.values.signal ?? 'TERM').toUpperCase().replace(/^SIG/, '');
    if (!SIGNALS.includes(signal)) throw ctx.usage(`--signal must be TERM, KILL, STOP or CONT, not "${ctx.values.signal}"`);
    const runDir = ctx.liveRunDir();
    const st = readState(runDir.stateFile(name));
    if (!st || !isAlive(st.pid)) throw new Error(`${name} is not running`);
    const sig = `SIG${signal}` as NodeJS.Signals;
    process.kill(st.pid, sig);
    process.stdout.write(`${sig} sent to ${name} (pid ${st.pid})\n`);
    return 0;
  },
});
