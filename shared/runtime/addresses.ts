import { hypervisorName, type Platform } from '../platform/platform.ts';
import type { RunDir } from './run-dir.ts';

/**
 * Where each listener of a platform is: UNIX sockets in the run directory, or
 * WebSocket ports from ws.basePort (fabric manager, then one per plane, then
 * one per CEC's hypervisor). The launcher passes these to the services; the
 * admin client and tests dial them.
 */
export function fabricAddresses(platform: Platform, runDir: RunDir): { fm: string; planes: Array<{ name: string; url: string }> } {
  if (platform.transport === 'ws') {
    const { host, basePort } = platform.ws;
    return { fm: `ws://${host}:${basePort}`, planes: platform.planes.map((p, i) => ({ name: p, url: `ws://${host}:${basePort + 1 + i}` })) };
  }
  return { fm: `unix:${runDir.socket('fm')}`, planes: platform.planes.map((p) => ({ name: p, url: `unix:${runDir.socket(`plane-${p}`)}` })) };
}

/**
 * Where each CEC's hypervisor listens for its partitions: a UNIX socket, or
 * the WebSocket ports right after the fabric manager's and the planes'.
 */
export function hypervisorAddresses(platform: Platform, runDir: RunDir): Map<string, string> {
  const out = new Map<string, string>();
  platform.cecs.forEach((c, i) => {
    const name = hypervisorName(c.name);
    if (platform.transport === 'ws') out.set(c.name, `ws://${platform.ws.host}:${platform.ws.basePort + 1 + platform.planes.length + i}`);
    else out.set(c.name, `unix:${runDir.socket(name)}`);
  });
  return out;
}
