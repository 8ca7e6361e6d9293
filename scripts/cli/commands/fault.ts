import { switchRequests } from '../../../shared/protocol/admin.ts';
import { orThrow } from '../../../shared/protocol/check.ts';
import { adminAsk } from '../../../shared/runtime/admin-client.ts';
import { numberArg } from '../../../shared/runtime/options.ts';
import { command } from '../command.ts';

export default command({
  name: 'fault',
  usage: ['fault PLANE cut|restore|drop PCT|delay MS|clear [--port NODE | --rvi ID] [--jitter MS]'],
  summary: 'inject or clear a fault on a plane, for the whole plane, one port or one RVI',
  description: `cut drops everything, restore undoes a cut, drop PCT loses that share of frames at
random, delay MS holds each frame (with --jitter, by MS ± jitter: frames reorder),
clear removes the faults of the target (all of the plane's without --port or --rvi).`,
  options: {
    port: { type: 'string', arg: 'NODE', help: "only the frames through this node's port" },
    rvi: { type: 'integer', arg: 'ID', min: 0, help: 'only the frames of this RVI (lparlab rvi list)' },
    jitter: { type: 'number', arg: 'MS', min: 0, help: 'with delay: a random extra delay up to MS' },
  },
  async run(ctx) {
    const [plane, action, value, extra] = ctx.args;
    if (!plane || !action) throw ctx.usage('fault needs a plane and an action');
    const msg: Record<string, unknown> = { t: 'fault', action };
    // The switch knows the actions (and refuses an unknown one); the CLI checks the numbers it sends.
    if (action === 'drop') msg.pct = numberArg('drop PCT', value, { min: 0, max: 100 });
    else if (action === 'delay') {
      msg.ms = numberArg('delay MS', value, { min: 0 });
      msg.jitter = ctx.values.jitter ?? 0;
    } else if (value !== undefined) throw ctx.usage(`unexpected argument "${value}"`);
    if (extra !== undefined) throw ctx.usage(`unexpected argument "${extra}"`);
    if (ctx.values.port !== undefined) msg.port = ctx.values.port;
    if (ctx.values.rvi !== undefined) msg.rvi = ctx.values.rvi;
    // The request as the switch's decoder takes it: an unknown action is refused here with the switch's own words.
    const r = await adminAsk(ctx.liveRunDir(), `plane-${plane}`, orThrow(switchRequests.decodeOf('fault', msg)));
    process.stdout.write(`plane ${plane} faults: ${JSON.stringify(r.faults)}\n`);
    return 0;
  },
});
