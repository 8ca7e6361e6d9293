import { type LooseView, decodeLooseView } from '../../../shared/protocol/admin.ts';
import { orThrow } from '../../../shared/protocol/check.ts';
import { adminAsk } from '../../../shared/runtime/admin-client.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';

/** An SMC connection's cursors as smcss shows them: token, link (SMC-R), producer/consumer each way. */
function smcDetail(x: LooseView<'ssConnection'>['smc']): string {
  if (!x) return '';
  const link = x.link !== undefined ? ` link ${x.link}` : '';
  return `token ${x.token}${link} tx ${x.tx?.prod}/${x.tx?.cons} rx ${x.rx?.prod}/${x.rx?.cons}`;
}

/** Linux ss's table for the partition's TCP: listeners and connections, with the transport each uses. */
export default command({
  name: 'ss',
  usage: ['ss LPAR [--json]'],
  summary: "a partition's TCP sockets: state, queues, addresses, transport (TCP, SMC-D, SMC-R)",
  options: { ...JSON_OPTION },
  async run(ctx) {
    const [lpar, extra] = ctx.args;
    if (!lpar || extra !== undefined) throw ctx.usage('ss takes one LPAR name');
    const r = await adminAsk(ctx.liveRunDir(), lpar, { t: 'ss' });
    if (ctx.values.json) {
      printJson({ connections: r.connections, listening: r.listeners });
      return 0;
    }
    const rows: string[][] = [['State', 'Recv-Q', 'Send-Q', 'Local Address:Port', 'Peer Address:Port', 'Transport', 'SMC']];
    for (const l of r.listeners) rows.push(['LISTEN', String(l.pending), String(l.backlog), l.local, '*:*', l.transport, '']);
    // A connection's TCP and SMC fields are the stack's open map: checked for what the row prints.
    const connections = r.connections.map((raw, n) => ({ ...raw, ...orThrow(decodeLooseView('ssConnection', `ss reply: connection ${n}`, raw)) }));
    for (const c of connections) rows.push([c.state, String(c.recvQueue ?? 0), String(c.sendQueue ?? 0), c.local, c.remote, c.transport, smcDetail(c.smc)]);
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    process.stdout.write(`${rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n')}\n`);
    return 0;
  },
});
