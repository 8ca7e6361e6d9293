import { decodeLooseView } from '../../../shared/protocol/admin.ts';
import { orThrow } from '../../../shared/protocol/check.ts';
import { adminAsk } from '../../../shared/runtime/admin-client.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';

export default command({
  name: 'ip',
  usage: ['ip LPAR [--json]'],
  summary: "a partition's interfaces: virtual LAN, MAC, address, MTU",
  options: { ...JSON_OPTION },
  async run(ctx) {
    const [lpar, extra] = ctx.args;
    if (!lpar || extra !== undefined) throw ctx.usage('ip takes one LPAR name');
    const r = await adminAsk(ctx.liveRunDir(), lpar, { t: 'ip' });
    if (ctx.values.json) printJson(r);
    else {
      // The reply's interface entries are open maps (LooselyProducedVerb's kind): each is checked for what the line prints.
      const interfaces = r.interfaces.map((raw, n) => orThrow(decodeLooseView('ipInterface', `ip reply: interface ${n}`, raw)));
      for (const i of interfaces) process.stdout.write(`${i.name}: vlan ${i.vlan} (${i.vlanId}) link/ether ${i.mac} inet ${i.ip} mtu ${i.mtu}${i.promiscuous ? ' PROMISC' : ''}\n`);
    }
    return 0;
  },
});
