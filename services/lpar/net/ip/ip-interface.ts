import type { NetDevice } from '../devices/net-device.ts';

/**
 * An IP interface (smoltcp's `iface::Interface` over one Device): a device
 * with an IPv4 address and prefix on it, and the MTU IP uses on it (the
 * device's, unless configured lower). Layer 3 lives here, layer 2 in the
 * device: a virtual Ethernet port, later a HiperSockets or QDIO device,
 * carries the same record.
 */
export interface IpInterface<D extends NetDevice = NetDevice> {
  readonly device: D;
  readonly ip: number;
  readonly prefix: number;
  /** Largest IPv4 datagram sent on this interface; TCP's MSS is this less 40. */
  readonly mtu: number;
}

export function ipInterface<D extends NetDevice>(device: D, ip: number, prefix: number, mtu = device.mtu): IpInterface<D> {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new RangeError(`bad prefix length ${prefix}`);
  // RFC 791: every host must take 68-byte datagrams; nothing smaller can carry a header and 8 bytes of fragment.
  if (!Number.isInteger(mtu) || mtu < 68) throw new RangeError(`bad MTU ${mtu}`);
  return { device, ip: ip >>> 0, prefix, mtu: Math.min(mtu, device.mtu) };
}
