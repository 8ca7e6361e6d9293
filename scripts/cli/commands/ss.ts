import { adminRequest } from '../../../shared/runtime/admin-client.ts';
import { command } from '../command.ts';
import { JSON_OPTION, printJson } from './common.ts';

/** An SMC connection's cursors as smcss shows them: token, link (SMC-R), producer/consumer each way. */
function smcDetail(smc: unknown): string {
  if (!smc || typeof smc !== 'object') return '';
  const x = smc as { token?: number; link?: number; tx?: { prod: number; cons: number }; rx?: { prod: number; cons: number } };
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
    const r = await adminRequest(ctx.liveRunDir(), lpar, { t: 'ss' });
    if (ctx.values.json) {
      printJson({ connections: r.connections, listening: r.listeners ?? r.listening });
      return 0;
    }
    const rows: string[][] = [['State', 'Recv-Q', 'Send-Q', 'Local Address:Port', 'Peer Address:Port', 'Transport', 'SMC']];
    const listeners = (r.listeners as Array<Record<string, unknown>> | undefined) ?? (r.listening as string[]).map((local) => ({ local, pending: 0, backlog: 0, transport: 'tcp' }));
    for (const l of listeners) rows.push(['LISTEN', String(l.pending), String(l.backlog), String(l.local), '*:*', String(l.transport), '']);
    for (const c of r.connections as Array<Record<string, unknown>>) rows.push([String(c.state), String(c.recvQueue ?? 0), String(c.sendQueue ?? 0), String(c.local), String(c.remote), String(c.transport ?? 'TCP'), smcDetail(c.smc)]);
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    process.stdout.write(`${rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n')}\n`);
    return 0;
  },
});
