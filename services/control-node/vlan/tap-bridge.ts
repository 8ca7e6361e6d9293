/**
 * Bridging a virtual LAN to the world outside the platform (seed 004, "5.
 * Bridging and Routing to other Domains"): the LAN's uplink is a VLAN proxy
 * whose UDP socket carries the frames of a Linux TAP device (socat on the
 * other end). One uplink per virtual LAN; attaching again replaces it.
 */
import type { Logger } from 'pino';
import { VlanProxy } from './vlan-proxy.ts';
import type { VlanServer } from './vlan-server.ts';

export class TapBridge {
  constructor(private readonly log: Logger) {}

  /** Returns the proxy's port (where socat sends the TAP's frames); `outside` is where the TAP side listens. */
  async attach(server: VlanServer, outside: { address: string; port: number }): Promise<number> {
    this.detach(server);
    const proxy = new VlanProxy(server, outside, this.log.child({ component: 'vlan-proxy', vlan: server.name }));
    const port = await proxy.open();
    server.uplink = proxy;
    this.log.info({ vlan: server.name, port, outside }, 'virtual LAN bridged outside');
    return port;
  }

  detach(server: VlanServer): void {
    server.uplink?.close();
    server.uplink = undefined;
  }
}
