import { supervisorRequest } from '../../../shared/runtime/admin-client.ts';
import { decodeStartReply } from '../../../shared/protocol/supervisor.ts';
import { command } from '../command.ts';

export default command({
  name: 'start',
  usage: ['start NAME'],
  summary: 'start one process again (or one left out with --except), under the supervisor',
  options: {},
  async run(ctx) {
    const [name, extra] = ctx.args;
    if (!name || extra !== undefined) throw ctx.usage('start takes one process name');
    const r = decodeStartReply(await supervisorRequest(ctx.liveRunDir(), { t: 'start', name }));
    if (!r.ok) throw new Error(r.reason);
    process.stdout.write(`${r.value.name} started (pid ${r.value.pid})\n`);
    return 0;
  },
});
