import type { RunDir } from '../../../shared/runtime/run-dir.ts';
import { collectStatus } from '../../../services/supervisor/status.ts';
import { command } from '../command.ts';
import { JSON_OPTION } from './common.ts';

/** The status table (`lparlab status`, and after `up`). */
export async function printStatus(runDir: RunDir, json: boolean): Promise<void> {
  const s = await collectStatus(runDir);
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd([16, 15, 8, 12, 7, 6, 6][i] ?? 0)).join(' ');
  const mb = (bytes: number | null) => (bytes === null ? '-' : `${Math.round(bytes / 1048576)}M`);
  // MEM is the resident set; PRIV the part only that process holds (status.ts: ProcessStatus.privateMemory).
  const out = [line(['NAME', 'ROLE', 'PID', 'HEALTH', 'CPU%', 'MEM', 'PRIV']), ...s.processes.map((r) => line([r.name, r.role, String(r.pid ?? '-'), r.health, r.cpu === null ? '-' : String(r.cpu), mb(r.memory), mb(r.privateMemory)]) + `  ${r.detail}`)];
  for (const p of s.planes) out.push(p.up ? `plane ${p.plane}: up, ${p.portsUp}/${p.ports} ports attached, ${p.vis} VIs${p.faults?.length ? `, faults: ${JSON.stringify(p.faults)}` : ''}` : `plane ${p.plane}: DOWN`);
  out.push(`RVIs: ${s.rvis.length}`);
  for (const h of s.hypervisors) out.push(h.up ? `hypervisor of ${h.cec}: ${h.smbs} SMBs, ${h.elements} elements in use (${h.dir})` : `hypervisor of ${h.cec}: DOWN`);
  for (const m of s.smc) {
    if (!m.up || !m.stats) continue;
    const st = m.stats;
    const fb = Object.entries(st.fallbacks).map(([k, v]) => `${v} ${k}`).join('; ');
    out.push(`SMC ${m.lpar}${m.enabled ? '' : ' (off)'}: connections SMC-D ${st.connections.smcd}, SMC-R ${st.connections.smcr}, TCP ${st.connections.tcp}; bytes out/in SMC-D ${st.bytes.smcdOut}/${st.bytes.smcdIn}, SMC-R ${st.bytes.smcrOut}/${st.bytes.smcrIn}; ring full ${st.ringFull}; link failovers ${st.linkFailovers}, TCP failbacks ${st.tcpFailbacks}${fb ? `; fallbacks: ${fb}` : ''}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

export default command({
  name: 'status',
  usage: ['status [--json]'],
  summary: 'processes (role, pid, health, CPU, memory), planes, RVIs, shared memory, SMC counters',
  options: { ...JSON_OPTION },
  async run(ctx) {
    if (ctx.args.length) throw ctx.usage(`unexpected argument "${ctx.args[0]}"`);
    await printStatus(ctx.liveRunDir(), ctx.values.json === true);
    return 0;
  },
});
