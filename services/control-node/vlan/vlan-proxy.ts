import dgram from 'node:dgram';
import type { Logger } from 'pino';
import { ArpOp, ArpPacket } from '../../../shared/wire/arp.ts';
import { EthernetFrame, EtherType } from '../../../shared/wire/ethernet.ts';
import { isBroadcastMac, isMulticastMac, macToString } from '../../../shared/wire/mac.ts';
import { TLV_HEADER, TlvType, emitTlv } from '../../../shared/wire/tlv.ts';
import { isPromiscuous, type Uplink, type VlanMember, type VlanMembers } from './members.ts';

/**
 * The virtual LAN proxy of one virtual LAN (seed 004, "5. Bridging and
 * Routing to other Domains"), in unfiltered mode: members' virtual MACs are
 * visible outside, so traffic is switched at layer 2. The outside is a Linux
 * TAP device bridged by socat to a UDP socket: one Ethernet frame per
 * datagram. Frames from outside go to the member owning the destination MAC,
 * or to every member for broadcast (multicast: to those that joined); frames
 * of members for MACs that are not members' leave here.
 */
export class VlanProxy implements Uplink {
  readonly stats = { fromOutside: 0, toOutside: 0, dropped: 0, malformed: 0 };
  private readonly socket = dgram.createSocket('udp4');
  private readonly macs = new Set<string>();

  constructor(
    private readonly vlan: VlanMembers,
    private readonly outside: { address: string; port: number },
    private readonly log: Logger,
  ) {
    this.socket.on('message', (frame) => this.fromOutside(frame));
    this.socket.on('error', (err) => this.log.warn({ err: err.message }, 'uplink socket error'));
  }

  /** Binds the uplink socket; returns its port (socat sends the TAP's frames there). */
  open(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, '127.0.0.1', () => {
        this.socket.removeListener('error', reject);
        resolve(this.socket.address().port);
      });
    });
  }

  close(): void {
    this.socket.close();
  }

  /** Whether a MAC has been seen outside (learned, as a switch learns its ports). */
  knows(mac: Buffer): boolean {
    return this.macs.has(macToString(mac));
  }

  /** A member's frame (an Ethernet frame) leaves the platform. */
  send(frame: Buffer): void {
    this.stats.toOutside++;
    this.socket.send(frame, this.outside.port, this.outside.address);
  }

  private fromOutside(frame: Buffer): void {
    const eth = EthernetFrame.tryParse(frame);
    if (!eth) {
      this.stats.malformed++;
      return;
    }
    this.stats.fromOutside++;
    this.macs.add(macToString(eth.src));
    const type = eth.etherType === EtherType.Arp ? TlvType.Arp : isBroadcastMac(eth.dst) ? TlvType.Broadcast : isMulticastMac(eth.dst) ? TlvType.Multicast : TlvType.Unicast;
    if (isMulticastMac(eth.dst)) {
      const group = macToString(eth.dst);
      for (const m of this.vlan.registered) {
        if (isBroadcastMac(eth.dst) || m.groups.has(group) || isPromiscuous(m)) this.deliver(m, type, frame);
      }
      return;
    }
    const to = this.vlan.memberByMac(eth.dst);
    if (!to) {
      this.stats.dropped++;
      return;
    }
    // An ARP reply from outside answers a member's request: it goes to that member only.
    if (type === TlvType.Arp) {
      const arp = ArpPacket.tryParse(eth.payload);
      if (!arp) {
        this.stats.malformed++;
        return;
      }
      if (arp.op !== ArpOp.Reply) return;
    }
    this.deliver(to, type, frame);
  }

  private deliver(to: VlanMember, type: number, frame: Buffer): void {
    const buf = Buffer.allocUnsafe(TLV_HEADER + frame.length);
    emitTlv(buf, 0, { type, length: frame.length, dstDev: to.dev, vlan: this.vlan.id });
    frame.copy(buf, TLV_HEADER);
    this.vlan.send(to, buf);
  }
}
