import { adminAsk } from '../../../shared/runtime/admin-client.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';

export default command({
  name: 'arp',
  usage: ['arp LPAR [--json]'],
  summary: "a partition's ARP cache (internal MACs, a3:…, name the RVI to each peer)",
  options: { ...JSON_OPTION },
  async run(ctx) {
    const [lpar, extra] = ctx.args;
    if (!lpar || extra !== undefined) throw ctx.usage('arp takes one LPAR name');
    const { entries } = await adminAsk(ctx.liveRunDir(), lpar, { t: 'arp' });
    if (ctx.values.json) printJson(entries);
    else for (const e of entries) process.stdout.write(`${e.ip.padEnd(16)} ${e.mac}  ${e.vlan}  ${e.stale ? 'stale (used while confirmed)' : `expires in ${Math.round(e.expiresInMs / 1000)} s`}\n`);
    return 0;
  },
});
