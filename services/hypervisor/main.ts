import { listenLink } from '../../shared/link/transport.ts';
import { hypervisorName } from '../../shared/platform/platform.ts';
import { hypervisorRequests, registerVerbs } from '../../shared/protocol/admin.ts';
import { runService } from '../../shared/runtime/service.ts';
import { claimPool, poolDir, removePool } from '../../shared/shm/pool-dir.ts';
import { Hypervisor } from './hypervisor.ts';

/**
 * hypervisor --id hypervisor-<cec> --cec CEC --run-dir DIR --listen URL
 *
 * One per CEC. Owns /dev/shm/lparlab/<platform>/<cec>/ from start to
 * shutdown: created empty at start (seed 002, Fig. 3 step 303), removed whole
 * at shutdown. Partitions of the CEC find it with their --hv flag.
 */
await runService('hypervisor', async (ctx) => {
  const platform = ctx.runDir.readPlatform();
  const cec = ctx.option('cec');
  if (!platform.cecs.some((c) => c.name === cec)) throw new Error(`"${cec}" is not a CEC of platform ${platform.name}`);
  if (ctx.name !== hypervisorName(cec)) throw new Error(`--id must be ${hypervisorName(cec)} for --cec ${cec}, got "${ctx.name}"`);
  const listenUrl = ctx.option('listen');
  const log = ctx.log.child({ component: 'hypervisor' });
  const dir = poolDir(platform.name, cec);
  const { stale } = claimPool(dir, { pid: process.pid, runDir: ctx.runDir.root, name: ctx.name });
  if (stale.length) log.warn({ dir, stale }, 'removed buffers a dead earlier run left behind');
  ctx.onShutdown(() => removePool(dir));
  const hv = new Hypervisor({ platform, cec, key: ctx.runDir.readKey(), dir, seqFile: ctx.runDir.runtimeFile(ctx.name, 'smb-seq'), log });
  registerVerbs(hypervisorRequests, { 'hv-status': () => hv.status() }, (verb, fn) => ctx.verb(verb, fn));
  const server = await listenLink(listenUrl, (link) => void hv.accept(link));
  // Runs before the pool directory goes (hooks run in reverse): no session may create a file after it.
  ctx.onShutdown(async () => {
    hv.close();
    await server.close();
  });
  // The partitions it counts are those with a live session, not the platform file's (issue 11 item 12: it counted one that died).
  const lpars = platform.lpars.filter((l) => l.cec === cec).map((l) => l.name);
  const g = hv.pool.geometry;
  const report = () => {
    const attached = lpars.filter((l) => hv.status().sessions?.includes(l));
    ctx.setHealth('healthy', `pool ${dir}; ${attached.length} of ${lpars.length} partitions attached${attached.length ? ` (${attached.join(',')})` : ''}; ${g.elements} elements x ${g.ringBytes} B rings per SMB`);
  };
  report();
  setInterval(report, 500).unref();
});
