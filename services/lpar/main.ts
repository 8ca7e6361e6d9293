import { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { runService } from '../../shared/runtime/service.ts';
import { rviStatus } from '../../shared/rclan/rvi-status.ts';
import type { Rvi } from '../../shared/rclan/rvi.ts';
import { linkPlane } from '../../shared/rclan/link-purpose.ts';
import { Workloads } from './apps/workloads.ts';
import { HypervisorClient } from './hypervisor-client.ts';
import { Smc } from './net/smc/smc.ts';
import { Lpar } from './lpar.ts';
import { NetDiagnostics } from './net-diagnostics.ts';
import { RviPerf } from './rvi-perf.ts';

/**
 * lpar --id lpar1 --run-dir DIR --fm URL
 *
 * Knows only its name, its credential and where the fabric manager is; the
 * rest comes from the control nodes at boot.
 */
await runService('lpar', async (ctx) => {
  const fabric = new NodeFabric({ name: ctx.name, credential: ctx.runDir.readCredential(ctx.name), fmUrl: ctx.option('fm'), log: ctx.log });
  const lpar = new Lpar(ctx.name, fabric, ctx.log.child({ component: 'lpar' }));
  const perf = new RviPerf(fabric);
  const workloads = new Workloads(ctx.name, ctx.log.child({ component: 'apps' }));
  const diagnostics = new NetDiagnostics(lpar, fabric, workloads);
  // The CEC's hypervisor hands out SMC-D buffers; without one (--hv absent) the partition does SMC-R only.
  const hvUrl = ctx.options.hv;
  const hv = hvUrl ? new HypervisorClient({ name: ctx.name, credential: ctx.runDir.readCredential(ctx.name), url: hvUrl, log: ctx.log }) : undefined;
  void hv?.start().catch((err: Error) => ctx.log.warn({ err: err.message }, 'no hypervisor session: SMC-D unavailable'));
  let smc: Smc | undefined;
  const links: Rvi[] = [];
  // Virtual-LAN RVIs can come before the configuration that brings up the driver.
  const waiting: Rvi[] = [];
  const attachNet = (rvi: Rvi) => {
    const driver = lpar.stack?.driver;
    if (!driver) waiting.push(rvi);
    else if (rvi.purpose === 'vlan') driver.attachControlNode(rvi);
    else driver.attachLan(rvi);
  };
  lpar.onStack = (stack) => {
    stack.driver.onPromiscuous = (ifc, frame) => diagnostics.recordPromiscuous(ifc.vlan, frame);
    const config = lpar.config!;
    smc = new Smc({
      lpar: ctx.name,
      cec: config.cec,
      config: config.smc,
      hv,
      locate: (ip) => lpar.locate(ip),
      smcrLinks: (peer) => lpar.smcrLinks(peer),
      log: ctx.log.child({ component: 'smc' }),
    });
    stack.net.smc = smc;
    for (const rvi of links.splice(0)) smc.attachLink(rvi);
    for (const rvi of waiting.splice(0)) attachNet(rvi);
  };
  // The platform file's workloads start once, when the network is up; a failing one is logged and shown in the health detail.
  lpar.onNetworkReady = (stack, config) => {
    void workloads.startPlatformApps(stack.net, config.apps).then(() => lpar.onChange());
  };
  fabric.onRviAdded = (rvi) => {
    if (rvi.purpose === 'mgmt') lpar.attachMgmt(rvi);
    else if (rvi.purpose === 'perf') perf.attach(rvi);
    else if (rvi.purpose === 'vlan' || rvi.purpose.startsWith('lan:')) attachNet(rvi);
    else if (linkPlane(rvi.purpose) !== undefined) {
      if (smc) smc.attachLink(rvi);
      else links.push(rvi);
    }
  };
  fabric.onRviRemoved = (rvi) => {
    if (linkPlane(rvi.purpose) !== undefined) smc?.detachLink(rvi);
    else lpar.stack?.driver.detach(rvi);
  };
  await fabric.start();
  ctx.onShutdown(async () => {
    await workloads.stopAll();
    lpar.stack?.close();
    hv?.stop();
    fabric.stop();
  });

  const apps = () => (workloads.summary() ? `; ${workloads.summary()}` : '');
  const report = () => {
    const reach = lpar.reachable();
    if (!lpar.config) ctx.setHealth('starting', 'waiting for a control node');
    else if (!lpar.networkReady()) ctx.setHealth('starting', 'registering interfaces');
    else if (!workloads.settled) ctx.setHealth('starting', 'starting apps');
    else if (reach.length === 0) ctx.setHealth('degraded', `no control node reachable${apps()}`);
    else ctx.setHealth('healthy', `cec ${lpar.config.cec}; control nodes ${reach.join(',')}${apps()}`);
  };
  lpar.onChange = report;
  workloads.onChange = report;
  setInterval(report, 200).unref();

  ctx.verb('lpar-status', () => ({ config: lpar.config ?? null, configuredBy: [...lpar.configuredBy], reachable: lpar.reachable(), malformed: lpar.malformed, apps: workloads.list(), smc: smc?.status() ?? null }));
  ctx.verb('smc-status', () => ({ smc: smc?.status() ?? null, hypervisor: hv ? { url: hvUrl, connected: hv.connected } : null }));
  ctx.verb('rvis', () => ({ rvis: rviStatus(fabric) }));
  ctx.verb('perf-send', (m) => perf.send(m));
  ctx.verb('perf-received', (m) => perf.received(m));
  ctx.verb('perf-ping', (m) => perf.ping(m));
  ctx.verb('rdma-register', (m) => perf.registerRegion(m));
  ctx.verb('rdma-read', (m) => perf.readRegion(m));
  ctx.verb('rdma-write', (m) => perf.rdmaWrite(m));
  for (const [name, fn] of Object.entries(diagnostics.verbs())) ctx.verb(name, fn);
});
