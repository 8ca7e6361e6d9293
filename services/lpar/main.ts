import { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { lparRequests, registerVerbs, type LparVerb, type LparVerbTable } from '../../shared/protocol/admin.ts';
import { runService } from '../../shared/runtime/service.ts';
import type { Rvi } from '../../shared/rclan/rvi.ts';
import { purposeKind } from '../../shared/rclan/purpose.ts';
import { smcrLinkPlane } from '../../shared/smc/link-purpose.ts';
import { Workloads } from './apps/workloads.ts';
import { HypervisorClient } from './hypervisor-client.ts';
import { Smc } from './net/smc/smc.ts';
import { bootHealth } from './boot-state.ts';
import { lparHealth } from './health-report.ts';
import { Vlan } from '../../shared/rclan/purpose.ts';
import { RviState } from '../../shared/rclan/rvi.ts';
import { Lpar } from './lpar.ts';
import { appVerbs } from './admin/apps.ts';
import { PromiscuousLog, captureVerbs } from './admin/capture.ts';
import { httpVerbs } from './admin/http.ts';
import { interfaceVerbs } from './admin/interfaces.ts';
import { ncVerbs } from './admin/nc-relay.ts';
import { pingVerbs } from './admin/ping.ts';
import { routeVerbs } from './admin/route.ts';
import { RviPerf } from './admin/rvi-perf.ts';
import { rviVerbs } from './admin/rvi.ts';
import { smcProbeVerbs } from './admin/smc-probe.ts';
import { smcVerbs } from './admin/smc.ts';
import { configuredStack } from './admin/stack.ts';
import { statusVerbs } from './admin/status.ts';
import { tcpVerbs } from './admin/tcp.ts';
import { udpVerbs } from './admin/udp.ts';

/**
 * lpar --id lpar1 --run-dir DIR --fm URL
 *
 * Knows only its name, its credential and where the fabric manager is; the
 * rest comes from the control nodes at boot.
 */
await runService('lpar', async (ctx) => {
  const fabric = new NodeFabric({ name: ctx.name, credential: ctx.secrets.credential, fmUrl: ctx.option('fm'), log: ctx.log });
  const lpar = new Lpar(ctx.name, fabric, ctx.log.child({ component: 'lpar' }));
  const perf = new RviPerf(fabric);
  const workloads = new Workloads(ctx.name, ctx.log.child({ component: 'apps' }));
  const promiscuous = new PromiscuousLog();
  // The CEC's hypervisor hands out SMC-D buffers; without one (--hv absent) the partition does SMC-R only.
  const hvUrl = ctx.options.hv;
  const hv = hvUrl ? new HypervisorClient({ name: ctx.name, credential: ctx.secrets.credential, url: hvUrl, log: ctx.log }) : undefined;
  void hv?.start().catch((err: Error) => ctx.log.warn({ err: err.message }, 'no hypervisor session: SMC-D unavailable'));
  let smc: Smc | undefined;
  const links: Rvi[] = [];
  // Virtual-LAN RVIs can come before the configuration that brings up the driver.
  const waiting: Rvi[] = [];
  const attachNet = (rvi: Rvi) => {
    const driver = lpar.stack?.driver;
    if (!driver) waiting.push(rvi);
    else if (purposeKind(rvi.purpose).kind === 'vlan') driver.attachControlNode(rvi);
    else driver.attachLan(rvi);
  };
  lpar.onStack = (stack) => {
    stack.driver.onPromiscuous = (ifc, frame) => promiscuous.record(ifc.vlan, frame);
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
  // The platform file's workloads start once, the first time the network is up; a failing one is logged and shown in the health detail.
  let appsLaunched = false;
  lpar.onNetworkReady = (stack, config) => {
    if (appsLaunched) return;
    appsLaunched = true;
    void workloads.startPlatformApps(stack.net, config.apps).then(() => lpar.onChange());
  };
  // Health is reachability: management and virtual-LAN paths to the control nodes (services/lpar/health-report.ts).
  const liveVlanPaths = () => [...fabric.rclan.rvis.values()].filter((r) => r.purpose === Vlan && (r.state === RviState.Up || r.state === RviState.Degraded)).map((r) => r.peer);
  function report(): void {
    const booting = bootHealth(lpar.boot);
    if (booting) ctx.setHealth(booting.state, booting.detail);
    else if (!workloads.settled) ctx.setHealth('starting', 'starting apps');
    else {
      const h = lparHealth({ mgmt: lpar.reachable(), vlan: liveVlanPaths(), hasInterfaces: (lpar.stack?.interfaces().length ?? 0) > 0, cec: lpar.config?.cec, apps: workloads.summary() });
      ctx.setHealth(h.health, h.detail);
    }
  }
  // Every input of the health reports its changes (the management RVIs through lpar.onChange, the virtual-LAN RVIs
  // below, the apps through workloads.onChange): an idle partition does not wake to poll it (issue 10 item 2).
  lpar.onChange = report;
  workloads.onChange = report;

  fabric.onRviAdded = (rvi) => {
    const kind = purposeKind(rvi.purpose).kind;
    if (kind === 'vlan') {
      // Health counts the virtual-LAN paths that are up (liveVlanPaths): it is reported when one changes, not polled.
      const logged = rvi.onStateChange;
      rvi.onStateChange = (state, prev) => {
        logged(state, prev);
        report();
      };
    }
    if (kind === 'mgmt') lpar.attachMgmt(rvi);
    else if (kind === 'perf') perf.attach(rvi);
    else if (kind === 'vlan' || kind === 'lan') attachNet(rvi);
    else if (smcrLinkPlane(rvi.purpose) !== undefined) {
      if (smc) smc.attachLink(rvi);
      else links.push(rvi);
    }
  };
  fabric.onRviRemoved = (rvi) => {
    if (smcrLinkPlane(rvi.purpose) !== undefined) smc?.detachLink(rvi);
    else lpar.stack?.driver.detach(rvi);
    if (rvi.purpose === Vlan) report();
  };
  await fabric.start();
  report();
  ctx.onShutdown(async () => {
    await workloads.stopAll();
    lpar.stack?.close();
    hv?.stop();
    fabric.stop();
  });


  // The admin verbs (shared/protocol/admin.ts), one table per topic, each behind its request decoder.
  const stack = configuredStack(lpar);
  const hypervisor = hv && hvUrl ? { url: hvUrl, get connected() { return hv.connected; } } : undefined;
  // Every lpar verb but `status` (the service's own).
  const verbs: LparVerbTable<Exclude<LparVerb, 'status'>> = {
    ...statusVerbs(lpar, workloads, () => smc),
    ...interfaceVerbs(stack, lpar),
    ...pingVerbs(stack),
    ...routeVerbs(stack),
    ...captureVerbs(stack, lpar, promiscuous),
    ...udpVerbs(stack),
    ...tcpVerbs(stack),
    ...ncVerbs(stack),
    ...httpVerbs(stack),
    ...appVerbs(stack, workloads),
    ...smcVerbs({ smc: () => smc, hypervisor, locate: (ip, timeoutMs) => lpar.locate(ip, timeoutMs), smcrLinks: (peer, timeoutMs) => lpar.smcrLinks(peer, timeoutMs) }),
    ...smcProbeVerbs(stack),
    ...rviVerbs(fabric),
    ...perf.verbs(),
  };
  registerVerbs(lparRequests, verbs, (verb, fn) => ctx.verb(verb, fn));
});
