import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import { routeVerb } from '../net/ip/route-admin.ts';
import type { StackPort } from './stack.ts';

/** `route`: the partition's routing table, shown, added to and deleted from at run time (net/ip/route-admin.ts). */
export function routeVerbs(stack: StackPort): LparVerbTable<'route'> {
  return {
    route: (m) => routeVerb(stack().ip, m),
  };
}
