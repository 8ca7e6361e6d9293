/**
 * Where an address lives (seed 003: ask the virtualization management
 * mechanism, once per connection): the LPAR and CEC the fabric manager's
 * location service names. node and cec are null for an address no control
 * node has registered (outside the platform, or not up yet).
 */
import type { FmClient, Location } from '../../../../shared/protocol/fm.ts';
import { parseIp } from '../../../../shared/wire/ipv4-address.ts';

export type { Location };

export class LocationClient {
  constructor(private readonly fm: FmClient) {}

  async locate(ip: string, timeoutMs = 2000): Promise<Location> {
    try {
      parseIp(ip);
    } catch {
      throw new Error(`locate: "${ip}" is not an IPv4 address`);
    }
    let r;
    try {
      r = await this.fm.request({ t: 'locate', endpoint: ip }, timeoutMs);
    } catch (err) {
      throw new Error(`locate ${ip}: the fabric manager did not answer: ${(err as Error).message}`);
    }
    return { node: r.node, cec: r.cec };
  }
}
