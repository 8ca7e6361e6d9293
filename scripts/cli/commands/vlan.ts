import { memberAddressProblem } from '../../../shared/platform/platform.ts';
import { adminAsk } from '../../../shared/runtime/admin-client.ts';
import { command } from '../command.ts';

export default command({
  name: 'vlan',
  usage: ['vlan join VLAN LPAR IP | vlan leave VLAN LPAR'],
  summary: 'change virtual LAN membership at run time (on every control node)',
  options: {},
  async run(ctx) {
    const [sub, vlan, lpar, ip, extra] = ctx.args;
    if (sub === 'join' ? !vlan || !lpar || !ip || extra !== undefined : sub === 'leave' ? !vlan || !lpar || ip !== undefined : true) throw ctx.usage('vlan join VLAN LPAR IP, or vlan leave VLAN LPAR');
    const runDir = ctx.liveRunDir();
    const platform = runDir.readPlatform();
    if (sub === 'join') {
      // Refused here before any control node is asked (each refuses it too, with the same words): issue 11 item 13.
      const spec = platform.vlans.find((v) => v.name === vlan);
      if (!spec) throw ctx.usage(`no virtual LAN "${vlan}" (${platform.vlans.map((v) => v.name).join(', ')})`);
      const problem = memberAddressProblem(spec, ip);
      if (problem) throw ctx.usage(problem);
    }
    // Every control node serves every virtual LAN: each is told.
    for (const cn of platform.controlNodes) {
      if (sub === 'join') {
        const r = await adminAsk(runDir, cn.name, { t: 'vlan-join', vlan, lpar, ip });
        process.stdout.write(`${cn.name}: ${lpar} joined ${vlan} (${JSON.stringify(r.interface)})\n`);
      } else {
        await adminAsk(runDir, cn.name, { t: 'vlan-leave', vlan, lpar });
        process.stdout.write(`${cn.name}: ${lpar} left ${vlan}\n`);
      }
    }
    return 0;
  },
});
