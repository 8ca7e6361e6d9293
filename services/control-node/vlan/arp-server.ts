import type { Logger } from 'pino';
import { ArpOp, ArpPacket } from '../../../shared/wire/arp.ts';
import { EthernetFrame } from '../../../shared/wire/ethernet.ts';
import { emitInternalMac } from '../../../shared/wire/mac.ts';
import { TLV_HEADER, Tlv, TlvFlag } from '../../../shared/wire/tlv.ts';
import type { VlanMember, VlanMembers } from './members.ts';

/**
 * The ARP server of one virtual LAN (seed 004, "3. ARP processing and IP
 * mapping to RVIs", Fig. 4B/4C steps 435-475). A request is annotated with the
 * RVI by which each receiver reaches the requester and cloned to every other
 * member; the target's driver turns that annotation into the requester's
 * internal MAC. A reply's sender MAC is replaced by the internal MAC naming
 * the RVI from the requester to the replier, so unicast then goes direct.
 */
export class ArpServer {
  readonly stats = { requests: 0, replies: 0, spoofed: 0, unanswerable: 0, malformed: 0, dropped: 0 };

  constructor(
    private readonly vlan: VlanMembers,
    private readonly log: Logger,
  ) {}

  /** `frame` is the TLV and the Ethernet frame it carries, as received from `from`. */
  handle(from: VlanMember, tlv: Tlv, frame: Buffer): void {
    const eth = EthernetFrame.tryParse(tlv.value);
    const arp = eth && ArpPacket.tryParse(eth.payload);
    if (!eth || !arp) {
      this.stats.malformed++;
      return;
    }
    // A member speaks only for its own address and MAC: no ARP spoofing across partitions.
    if (arp.spa !== from.ip || !from.mac || !arp.sha.equals(from.mac)) {
      if (this.stats.spoofed++ === 0) this.log.warn({ lpar: from.lpar, vlan: this.vlan.name }, 'ARP with a sender address not registered to it dropped (further ones counted)');
      return;
    }
    if (arp.op === ArpOp.Request) this.request(from, frame);
    else this.reply(from, arp, eth, tlv, frame);
  }

  private request(from: VlanMember, frame: Buffer): void {
    this.stats.requests++;
    // Outside the platform the request goes as it is: the members' real MACs are visible there (unfiltered mode).
    this.vlan.uplink?.send(Buffer.from(frame.subarray(TLV_HEADER)));
    for (const to of this.vlan.registeredMembers()) {
      if (to === from) continue;
      const rvi = this.vlan.lanRvi(to.lpar, from.lpar);
      if (rvi === undefined) continue;
      const copy = Buffer.from(frame);
      const t = Tlv.parse(copy);
      t.setFlags(t.flags | TlvFlag.Annotated);
      t.setSrcRvi(rvi);
      t.setSrcDev(from.dev);
      t.setDstDev(to.dev);
      // A member whose RVI is full misses the request, counted: the asker tries again (arp-cache.ts).
      if (!this.vlan.send(to, copy)) this.stats.dropped++;
    }
  }

  private reply(from: VlanMember, arp: ArpPacket, eth: EthernetFrame, tlv: Tlv, frame: Buffer): void {
    this.stats.replies++;
    const to = this.vlan.memberByIp(arp.tpa);
    const uplink = this.vlan.uplink;
    if (!to && uplink) {
      // The answer to a host outside: it learns the member's real MAC.
      uplink.send(Buffer.from(frame.subarray(TLV_HEADER)));
      return;
    }
    const rvi = to && this.vlan.lanRvi(to.lpar, from.lpar);
    if (!to || !to.mac || rvi === undefined) {
      this.stats.unanswerable++;
      return;
    }
    const mac = Buffer.allocUnsafe(6);
    emitInternalMac(mac, 0, { rvi, dev: from.dev, vlan: this.vlan.id });
    arp.setSha(mac);
    arp.setTha(to.mac);
    // The requester sees the reply as coming from the internal MAC: its stack learns the RVI.
    eth.setDst(to.mac).setSrc(mac);
    tlv.setFlags(tlv.flags | TlvFlag.LocalReply);
    tlv.setDstDev(to.dev);
    tlv.setSrcDev(from.dev);
    if (!this.vlan.send(to, frame)) this.stats.dropped++;
  }
}
