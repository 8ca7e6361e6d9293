import { listenLink } from '../../shared/link/transport.ts';
import { fabricManagerRequests, registerVerbs } from '../../shared/protocol/admin.ts';
import { runService } from '../../shared/runtime/service.ts';
import { FabricManager } from './fabric-manager.ts';

/**
 * fabric-manager --id fabric-manager --run-dir DIR --listen URL --plane a=URL --plane b=URL
 */
await runService('fabric-manager', async (ctx) => {
  const platform = ctx.runDir.readPlatform();
  const listenUrl = ctx.option('listen');
  const planeUrls = (ctx.options.plane ?? []).map((spec) => {
    const eq = spec.indexOf('=');
    if (eq < 1) throw new Error(`--plane wants NAME=URL, got "${spec}"`);
    return { name: spec.slice(0, eq), url: spec.slice(eq + 1) };
  });
  const names = planeUrls.map((p) => p.name).join(',');
  if (names !== platform.planes.join(',')) throw new Error(`--plane must give the platform's planes ${platform.planes.join(', ')} in order, got "${names}"`);
  const fm = new FabricManager(platform, ctx.runDir.readKey(), planeUrls, ctx.runDir.dataDir(ctx.name), ctx.log.child({ component: 'fabric-manager' }));
  registerVerbs(fabricManagerRequests, { 'fm-status': () => ({ ...fm.status() }) }, (verb, fn) => ctx.verb(verb, fn));
  const server = await listenLink(listenUrl, (link) => void fm.accept(link));
  // Hooks run in reverse: this one after the server's close, so nothing made is left unwritten (persistSoon).
  ctx.onShutdown(() => fm.flush());
  ctx.onShutdown(() => server.close());
  ctx.setHealth('healthy', `listening on ${listenUrl}`);
});
