import { required } from '../../../shared/runtime/options.ts';
import { command } from '../command.ts';
import { capture } from '../net-commands.ts';

export default command({
  name: 'capture',
  usage: ['capture VLAN -w FILE [-c N] [--duration S]'],
  summary: "a virtual LAN's frames to a pcap file (then: tshark -r FILE)",
  description: 'Every member of the LAN streams the frames it sends on it; each frame is written once. Stops after -c frames, after --duration seconds, or at Ctrl-C.',
  options: {
    write: { type: 'string', short: 'w', arg: 'FILE', help: 'the pcap file to write' },
    count: { type: 'integer', short: 'c', arg: 'N', min: 1, help: 'stop after N frames' },
    duration: { type: 'number', arg: 'S', min: 0, help: 'stop after S seconds' },
  },
  async run(ctx) {
    const [vlan, extra] = ctx.args;
    if (!vlan || extra !== undefined) throw ctx.usage('capture takes one virtual LAN name');
    const file = required(ctx.values, 'write');
    const runDir = ctx.liveRunDir();
    const count = ctx.values.count;
    const durationMs = ctx.values.duration === undefined ? undefined : ctx.values.duration * 1000;
    const stop = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    if (count === undefined && durationMs === undefined) process.stderr.write('capturing until Ctrl-C\n');
    const r = await capture(runDir, runDir.readPlatform(), vlan, file, { count, durationMs, stop });
    process.stdout.write(`${r.frames} frames of ${vlan} (from ${r.members.join(', ')}) written to ${file}\n`);
    return 0;
  },
});
