import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { AppSpec } from '../../../shared/platform/platform.ts';
import type { Workloads } from '../apps/workloads.ts';
import type { StackPort } from './stack.ts';

/** The partition's workloads by hand: start a built-in or a user module, read an app's report, list them. */
export function appVerbs(stack: StackPort, workloads: Workloads): LparVerbTable<'app-start' | 'app-report' | 'apps'> {
  return {
    // A built-in ({app, port}) or a user module ({module, port?, options?}, an absolute path), as the platform file's apps.
    'app-start': async (m) => {
      let spec: AppSpec;
      if (m.module !== undefined) spec = { module: m.module, ...(m.port !== undefined ? { port: m.port } : {}), options: m.options ?? {} };
      else if (m.app === undefined || m.port === undefined) throw new Error('app-start: give {app, port} for a built-in or {module} for a user module');
      else spec = { name: m.app, port: m.port };
      const status = await workloads.start(stack().net, spec, 'admin');
      return { app: status.app, port: status.port };
    },
    'app-report': (m) => workloads.report(m.port),
    apps: () => ({ apps: workloads.list() }),
  };
}
