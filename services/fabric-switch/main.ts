import { ControlChannel } from '../../shared/control/channel.ts';
import { authenticateTo } from '../../shared/control/auth.ts';
import { registerVerbs, switchRequests } from '../../shared/protocol/admin.ts';
import { connectLink, listenLink } from '../../shared/link/transport.ts';
import { runService, type ServiceContext } from '../../shared/runtime/service.ts';
import { FabricSwitch, type ViEntry } from './fabric-switch.ts';

/**
 * fabric-switch --id plane-a --run-dir DIR --plane a --listen URL --fm URL
 *
 * Programs its table from the fabric manager first, then opens its ports.
 */
await runService('fabric-switch', async (ctx: ServiceContext<'fabric-switch'>) => {
  const plane = ctx.option('plane');
  const listenUrl = ctx.option('listen');
  const fmUrl = ctx.option('fm');
  const sw = new FabricSwitch(plane, ctx.runDir.readKey(), ctx.log.child({ component: 'switch' }));
  const credential = ctx.secrets.credential;

  // The admin verbs, each behind its request decoder (shared/protocol/admin.ts: an unknown action is refused there).
  registerVerbs(
    switchRequests,
    {
      'switch-status': () => sw.status(),
      fault: (m) => {
        const target = sw.resolveTarget(m);
        if (m.action === 'clear') sw.faults.clear(m.port === undefined && m.rvi === undefined ? undefined : target);
        else if (m.action === 'cut') sw.faults.set(target, { cut: true });
        else if (m.action === 'restore') sw.faults.set(target, { cut: false });
        else if (m.action === 'drop') sw.faults.set(target, { dropPct: m.pct });
        else sw.faults.set(target, { delayMs: m.ms, jitterMs: m.jitter ?? 0 });
        ctx.log.warn({ fault: m.action, target }, 'fault injected');
        return { faults: sw.faults.list() };
      },
    },
    (verb, fn) => ctx.verb(verb, fn),
  );

  const joinFm = async (): Promise<void> => {
    for (let backoff = 50; ; backoff = Math.min(1000, backoff * 2)) {
      try {
        const link = await connectLink(fmUrl);
        const ch = new ControlChannel(link, ctx.log.child({ component: 'fm-client' }));
        // Changes can arrive in the same read as the welcome: held until the full table is in, then applied in order.
        let early: Array<() => void> | undefined = [];
        const apply = (change: () => void) => (early ? early.push(change) : change());
        ch.handle('vi-add', (m) => apply(() => (m.entries as ViEntry[]).forEach((e) => sw.addVi(e))));
        ch.handle('vi-del', (m) => apply(() => (m.rvis as number[]).forEach((rvi) => sw.removeVi(rvi))));
        const welcome = await authenticateTo(ch, ctx.name, credential);
        sw.loadTable(welcome.ports as Array<[string, number]>, welcome.vis as ViEntry[]);
        for (const change of early) change();
        early = undefined;
        ch.onClose(() => {
          ctx.log.warn('lost the fabric manager; forwarding on with the table as it was');
          ctx.setHealth('degraded', 'fabric manager unreachable');
          void joinFm();
        });
        ctx.setHealth('healthy', `plane ${plane}`);
        return;
      } catch (err) {
        ctx.log.debug({ err: (err as Error).message }, 'fabric manager not reachable, retrying');
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
  };
  await joinFm();
  const server = await listenLink(listenUrl, (link) => void sw.acceptPort(link));
  ctx.onShutdown(() => server.close());
  ctx.log.info({ listen: listenUrl }, 'plane open');
});
