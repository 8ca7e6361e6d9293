import { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { idleHeartbeatMs } from '../../shared/platform/platform.ts';
import { controlNodeRequests, registerVerbs } from '../../shared/protocol/admin.ts';
import { runService } from '../../shared/runtime/service.ts';
import { rviStatus } from '../../shared/fabric/rvi-status.ts';
import { ControlNode } from './control-node.ts';
import { OWNED_PURPOSES } from './boot/rvi-repair.ts';
import { controlNodeHealth } from './health-report.ts';

/** control-node --id cn1 --run-dir DIR --fm URL */
await runService('control-node', async (ctx) => {
  const platform = ctx.runDir.readPlatform();
  const spec = platform.controlNodes.find((c) => c.name === ctx.name);
  if (!spec) throw new Error(`"${ctx.name}" is not a control node of platform ${platform.name}`);
  const fabric = new NodeFabric({ name: ctx.name, credential: ctx.secrets.credential, fmUrl: ctx.option('fm'), log: ctx.log });
  await fabric.start();
  const cn = new ControlNode(spec, platform, fabric, ctx.runDir.dataDir(ctx.name), ctx.runDir.runtimeFile(ctx.name, 'membership'), ctx.log.child({ component: 'control-node' }));
  ctx.onShutdown(() => fabric.stop());
  // The admin verbs, each behind its request decoder (shared/protocol/admin.ts).
  registerVerbs(
    controlNodeRequests,
    {
      'cn-status': () => cn.status(),
      rvis: () => ({ rvis: rviStatus(fabric) }),
      nvram: () => cn.nvramSnapshot(),
      'vlan-join': async (m) => ({ interface: await cn.join(m.vlan, m.lpar, m.ip) }),
      'tap-attach': async (m) => ({ port: await cn.attachTap(m.vlan, { address: m.address, port: m.port }) }),
      'tap-detach': (m) => {
        cn.detachTap(m.vlan);
        return {};
      },
      'vlan-leave': async (m) => {
        await cn.leave(m.vlan, m.lpar);
        return {};
      },
    },
    (verb, fn) => ctx.verb(verb, fn),
  );
  await cn.start();
  // Health is reachability: planes, the fabric manager and every RVI it owns (services/control-node/health-report.ts).
  const owned = new Set<string>(OWNED_PURPOSES);
  const report = () => {
    const h = controlNodeHealth({
      planes: fabric.nics.filter((n) => n.attached).map((n) => n.plane),
      fmConnected: fabric.fmConnected,
      missing: cn.repair.missing(),
      owned: [...fabric.rclan.rvis.values()].filter((r) => owned.has(r.purpose) && cn.lpars.has(r.peer)),
      // Three of the driver's idle heartbeat intervals (it heartbeats faster when busy), and no less than three RCLAN
      // dead intervals: a stall under load is not a loss.
      silent: cn.silentMembers(performance.now(), 3 * Math.max(fabric.rclan.settings.deadAfterMs, idleHeartbeatMs(platform.ethernet))),
    });
    ctx.setHealth(h.health, h.detail);
  };
  // Once a second: health is for operators and the supervisor, and at 256 members this walks every owned RVI.
  setInterval(report, 1000).unref();
  report();
});
