import { EventEmitter } from 'node:events';
import { IpProto } from '../../../shared/wire/ipv4.ts';
import { LIMITED_BROADCAST, directedBroadcast, ipToString, isIpv4Multicast, parseIp } from '../../../shared/wire/ipv4-address.ts';
import { UDP_HEADER, UdpDatagram, emitUdpHeader } from '../../../shared/wire/udp.ts';
import { NetError, type IpLayer } from './ip/ip-layer.ts';
import type { IpInterface } from './ip/ip-interface.ts';

export interface RemoteInfo {
  address: string;
  family: 'IPv4';
  port: number;
  size: number;
}

const EPHEMERAL_LOW = 49152;
const EPHEMERAL_HIGH = 65535;

/**
 * A UDP socket of the partition's own stack with the shape of node:dgram's
 * Socket: bind, send (with an optional callback), address, setBroadcast,
 * add/dropMembership, close; events 'listening', 'message', 'error', 'close'.
 * Several sockets may bind one port (as with reuseAddr) and each gets a copy
 * of broadcast and multicast datagrams.
 */
export class UdpSocket extends EventEmitter {
  port = 0;
  address_ = 0;
  broadcast = false;
  closed = false;
  readonly memberships = new Set<string>();

  constructor(private readonly udp: Udp) {
    super();
  }

  bind(port = 0, address?: string | (() => void), cb?: () => void): this {
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    try {
      this.udp.bind(this, port, address ? parseIp(address) : 0);
    } catch (err) {
      queueMicrotask(() => this.emit('error', err));
      return this;
    }
    if (cb) this.once('listening', cb);
    queueMicrotask(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; family: 'IPv4'; port: number } {
    if (this.port === 0) throw new NetError('EACCES', 'not bound');
    return { address: ipToString(this.address_), family: 'IPv4', port: this.port };
  }

  setBroadcast(flag: boolean): void {
    this.broadcast = flag;
  }

  /** send(msg, port, address[, cb]) or send(msg, offset, length, port, address[, cb]). */
  send(msg: Buffer | string, ...args: unknown[]): void {
    let data = typeof msg === 'string' ? Buffer.from(msg) : msg;
    if (typeof args[1] === 'number') {
      data = data.subarray(args[0] as number, (args[0] as number) + (args[1] as number));
      args = args.slice(2);
    }
    const [port, address, cb] = args as [number, string, ((err: Error | null, bytes?: number) => void) | undefined];
    if (this.closed) throw new Error('Not running');
    if (this.port === 0) this.udp.bind(this, 0, 0);
    let dst: number;
    try {
      dst = parseIp(address);
    } catch (err) {
      queueMicrotask(() => (cb ? cb(err as Error) : this.emit('error', err)));
      return;
    }
    this.udp.send(this, dst, port, data, (err) => {
      if (cb) cb(err ?? null, data.length);
      else if (err) this.emit('error', err);
    });
  }

  addMembership(group: string, iface?: string): void {
    this.udp.membership(this, parseIp(group), iface ? parseIp(iface) : undefined, true);
  }

  dropMembership(group: string, iface?: string): void {
    this.udp.membership(this, parseIp(group), iface ? parseIp(iface) : undefined, false);
  }

  close(cb?: () => void): void {
    if (this.closed) return;
    this.closed = true;
    this.udp.unbind(this);
    if (cb) this.once('close', cb);
    queueMicrotask(() => this.emit('close'));
  }

  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

/** The UDP layer (RFC 768): port demultiplexing, datagrams in and out of the IP layer. */
export class Udp {
  readonly stats = { rx: 0, tx: 0, noPort: 0, malformed: 0 };
  private readonly ports = new Map<number, Set<UdpSocket>>();
  private nextEphemeral = EPHEMERAL_LOW;

  constructor(private readonly ip: IpLayer) {
    ip.onUdp = (ifc, src, dst, datagram) => this.receive(ifc, src, dst, datagram);
  }

  createSocket(): UdpSocket {
    return new UdpSocket(this);
  }

  bind(s: UdpSocket, port: number, address: number): void {
    if (s.port !== 0) throw new NetError('EACCES', 'socket already bound');
    if (port === 0) {
      for (let i = 0; i <= EPHEMERAL_HIGH - EPHEMERAL_LOW; i++) {
        const p = this.nextEphemeral;
        this.nextEphemeral = p === EPHEMERAL_HIGH ? EPHEMERAL_LOW : p + 1;
        if (!this.ports.has(p)) {
          port = p;
          break;
        }
      }
      if (port === 0) throw new NetError('ENOBUFS', 'no free UDP port');
    }
    let set = this.ports.get(port);
    if (!set) this.ports.set(port, (set = new Set()));
    s.port = port;
    s.address_ = address;
    set.add(s);
  }

  unbind(s: UdpSocket): void {
    for (const m of [...s.memberships]) {
      const slash = m.lastIndexOf('/');
      const ifc = this.ifcByName(m.slice(0, slash));
      if (ifc) this.ip.leaveGroup(ifc, Number(m.slice(slash + 1)));
    }
    s.memberships.clear();
    this.ports.get(s.port)?.delete(s);
    if (this.ports.get(s.port)?.size === 0) this.ports.delete(s.port);
  }

  private ifcByName(name: string): IpInterface | undefined {
    return this.ip.interfaces().find((ifc) => ifc.device.name === name);
  }

  membership(s: UdpSocket, group: number, iface: number | undefined, join: boolean): void {
    if (!isIpv4Multicast(group)) throw new NetError('EACCES', `${ipToString(group)} is not a multicast address`);
    // Without an interface address the first interface is used, as Linux picks one by route.
    const ifc = this.ip.interfaces().find((i) => iface === undefined || i.ip === iface);
    if (!ifc) throw new NetError('ENETUNREACH', `no interface ${iface === undefined ? '' : ipToString(iface)}`);
    const key = `${ifc.device.name}/${group}`;
    if (join && !s.memberships.has(key)) {
      s.memberships.add(key);
      this.ip.joinGroup(ifc, group);
    } else if (!join && s.memberships.delete(key)) {
      this.ip.leaveGroup(ifc, group);
    }
  }

  send(s: UdpSocket, dst: number, port: number, data: Buffer, done: (err?: Error) => void): void {
    if (!(port > 0 && port < 65536)) {
      queueMicrotask(() => done(new RangeError(`Port should be > 0 and < 65536. Received ${port}.`)));
      return;
    }
    const ifc = this.ip.route(dst);
    const isBroadcast = dst === LIMITED_BROADCAST || (ifc !== undefined && dst === directedBroadcast(ifc.ip, ifc.prefix));
    if (isBroadcast && !s.broadcast) {
      queueMicrotask(() => done(new NetError('EACCES', `send EACCES ${ipToString(dst)}:${port} (setBroadcast(true) first)`)));
      return;
    }
    if (data.length + UDP_HEADER > 65507 + UDP_HEADER) {
      queueMicrotask(() => done(new NetError('EMSGSIZE', `send EMSGSIZE ${ipToString(dst)}:${port}`)));
      return;
    }
    const header = Buffer.allocUnsafe(UDP_HEADER);
    emitUdpHeader(header, 0, { srcPort: s.port, dstPort: port, payloadLength: data.length });
    this.stats.tx++;
    this.ip.send(dst, IpProto.Udp, [header, data], {}, (err) => done(err));
  }

  private receive(ifc: IpInterface, src: number, dst: number, datagram: Buffer): void {
    const udp = UdpDatagram.tryParse(datagram, { src, dst });
    if (!udp) return void this.stats.malformed++;
    const sockets = this.ports.get(udp.dstPort);
    if (!sockets?.size) {
      this.stats.noPort++;
      return;
    }
    this.stats.rx++;
    const multicast = isIpv4Multicast(dst);
    const rinfo: RemoteInfo = { address: ipToString(src), family: 'IPv4', port: udp.srcPort, size: udp.payload.length };
    for (const s of sockets) {
      if (s.address_ !== 0 && s.address_ !== dst && s.address_ !== ifc.ip) continue;
      if (multicast && !s.memberships.has(`${ifc.device.name}/${dst}`)) continue;
      s.emit('message', udp.payload, rinfo);
    }
  }
}
