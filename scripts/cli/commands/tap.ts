import { supervisorRequest } from '../../../shared/runtime/admin-client.ts';
import { required } from '../../../shared/runtime/options.ts';
import { decodeTapAttachReply, decodeTapDetachReply } from '../../../shared/protocol/supervisor.ts';
import { command } from '../command.ts';

export default command({
  name: 'tap',
  usage: ['tap attach VLAN --dev NAME --ip CIDR | tap detach --dev NAME'],
  summary: 'bridge a virtual LAN to a Linux TAP device (root; socat)',
  description: "The host's kernel becomes a member of the LAN at the given address. down detaches every TAP.",
  options: {
    dev: { type: 'string', arg: 'NAME', help: 'the TAP device (at most 15 characters)' },
    ip: { type: 'string', arg: 'CIDR', help: "attach: the host's address on the LAN, e.g. 10.1.0.100/24" },
  },
  async run(ctx) {
    const [sub, vlan, extra] = ctx.args;
    if (sub === 'attach') {
      if (!vlan || extra !== undefined) throw ctx.usage('tap attach takes one virtual LAN name');
      const dev = required(ctx.values, 'dev');
      const r = decodeTapAttachReply(await supervisorRequest(ctx.liveRunDir(), { t: 'tap-attach', vlan, dev, cidr: required(ctx.values, 'ip') }));
      if (!r.ok) throw new Error(r.reason);
      process.stdout.write(`virtual LAN ${vlan} bridged to ${dev} (socat pid ${r.value.pid})\n`);
      return 0;
    }
    if (sub === 'detach') {
      if (vlan !== undefined) throw ctx.usage(`unexpected argument "${vlan}"`);
      const dev = required(ctx.values, 'dev');
      const r = decodeTapDetachReply(await supervisorRequest(ctx.liveRunDir(), { t: 'tap-detach', dev }));
      if (!r.ok) throw new Error(r.reason);
      process.stdout.write(`${dev} detached\n`);
      return 0;
    }
    throw ctx.usage(sub === undefined ? 'tap needs attach or detach' : `unknown subcommand "${sub}" (attach, detach)`);
  },
});
