import type { Logger } from 'pino';
import { RviState, type Rvi } from '../../../shared/rclan/rvi.ts';
import { ArpPacket, ArpOp } from '../../../shared/wire/arp.ts';
import { ETHERNET_HEADER, EthernetFrame, EtherType } from '../../../shared/wire/ethernet.ts';
import { emitInternalMac, isBroadcastMac, isInternalMac, isMulticastMac, parseInternalMac } from '../../../shared/wire/mac.ts';
import { TLV_HEADER, Tlv, TlvFlag, TlvType, emitTlv } from '../../../shared/wire/tlv.ts';
import { Ipv4Packet } from '../../../shared/wire/ipv4.ts';
import { parseIp } from '../../../shared/wire/ipv4-address.ts';

/** One virtual Ethernet interface: the LPAR's attachment to one virtual LAN. */
export interface Interface {
  dev: number;
  vlan: string;
  vlanId: number;
  mac: Buffer;
  ip: number;
  prefix: number;
  mtu: number;
  promiscuousAllowed: boolean;
  promiscuous: boolean;
}

interface ControlNodeLink {
  name: string;
  rvi: Rvi;
  /** Whether it was answering at the last heartbeat (to log failover and recovery once). */
  wasAlive: boolean;
  /** When the control node last answered a heartbeat TLV. */
  lastAck: number;
  bytesSent: number;
  hbSeq: number;
}

/** Frames waiting for an RVI's credit; bounded like a NIC's transmit queue. */
const TX_QUEUE = 512;

/**
 * The virtual Ethernet driver (seed 004, "Virtual Ethernet Driver", Fig. 4A).
 * The IP layer hands it whole Ethernet frames with TLV_HEADER bytes of
 * headroom; it picks the path from the destination MAC alone:
 *
 * - an internal-format MAC names the RVI to the peer: sent direct; if that RVI
 *   is not working, relayed through a control node (relay of last resort);
 * - ARP, broadcast and multicast go to a control node's virtual LAN server;
 * - any other unicast MAC goes to a control node.
 *
 * It heartbeats each control node with TLVs, balances traffic towards them by
 * bytes sent, fails over when one stops answering within two heartbeat
 * intervals, and clones unicast to the promiscuous listeners it was told of.
 */
export class VirtualEthernet {
  readonly interfaces = new Map<number, Interface>();
  readonly stats = {
    txDirect: 0,
    txRelayed: 0,
    txControlNode: 0,
    txDropped: 0,
    txPromiscuous: 0,
    rxFrames: 0,
    malformed: 0,
    foreign: 0,
    notForUs: 0,
    promiscuousCopies: 0,
    noControlNode: 0,
  };
  /** Frames for the IP layer (an Ethernet frame, destination already our MAC). */
  onReceive: (ifc: Interface, frame: Buffer) => void = () => {};
  /** Copies of others' unicast traffic for an interface in promiscuous mode. */
  onPromiscuous: (ifc: Interface, frame: Buffer) => void = () => {};
  /** A control node stopped answering: what it may have swallowed (ARP requests) should be asked again. */
  onControlNodeDown: (name: string) => void = () => {};
  /** Every frame this node transmits, by virtual LAN (what `lparlab capture` records). */
  readonly taps = new Map<string, Set<(frame: Buffer) => void>>();

  private readonly controlNodes = new Map<string, ControlNodeLink>();
  private readonly lans = new Map<number, Rvi>();
  private readonly listeners = new Map<string, Array<{ node: string; dev: number }>>();
  /** The IP bound to the peer at the far end of each unicast RVI (told by the control nodes). */
  private readonly peerIps = new Map<number, number>();
  private readonly queues = new Map<Rvi, Array<{ buf: Buffer; sent?: () => void }>>();
  private readonly timer: NodeJS.Timeout;
  private readonly watch: NodeJS.Timeout;

  constructor(
    private readonly heartbeatMs: number,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => this.heartbeat(), heartbeatMs);
    // Liveness is judged at every send; this finer check only makes the failover log and ARP retry prompt.
    this.watch = setInterval(() => this.watchControlNodes(), Math.max(5, heartbeatMs / 5));
    this.watch.unref();
    this.timer.unref();
  }

  addInterface(ifc: Interface): void {
    this.interfaces.set(ifc.dev, ifc);
  }

  removeInterface(vlan: string): void {
    for (const [dev, ifc] of this.interfaces) if (ifc.vlan === vlan) this.interfaces.delete(dev);
  }

  byVlan(vlan: string): Interface | undefined {
    for (const ifc of this.interfaces.values()) if (ifc.vlan === vlan) return ifc;
    return undefined;
  }

  private byVlanId(id: number): Interface | undefined {
    for (const ifc of this.interfaces.values()) if (ifc.vlanId === id) return ifc;
    return undefined;
  }

  /** The virtual-LAN RVI to a control node. */
  attachControlNode(rvi: Rvi): void {
    this.controlNodes.set(rvi.peer, { name: rvi.peer, rvi, wasAlive: false, lastAck: 0, bytesSent: 0, hbSeq: 0 });
    rvi.onMessage = (p) => this.receive(rvi, p);
    rvi.onDrain = () => this.flush(rvi);
    this.sendHeartbeat(this.controlNodes.get(rvi.peer)!);
  }

  /**
   * A unicast RVI of a virtual LAN to another member. What it could not
   * deliver goes again through a control node (seed 004, "Virtual Ethernet
   * Driver": failure signalled by RCLAN → relay via the control node).
   */
  attachLan(rvi: Rvi): void {
    this.lans.set(rvi.id, rvi);
    rvi.onMessage = (p) => this.receive(rvi, p);
    rvi.onDrain = () => this.flush(rvi);
    rvi.onUndeliverable = (_seq, payload) => {
      let tlv: Tlv;
      try {
        tlv = Tlv.parse(payload);
      } catch {
        return;
      }
      if (tlv.type !== TlvType.Unicast) return;
      tlv.setType(TlvType.Relayed);
      this.stats.txRelayed++;
      this.toControlNode(payload);
    };
  }

  detach(rvi: Rvi): void {
    this.lans.delete(rvi.id);
    this.queues.delete(rvi);
  }

  setListeners(vlan: string, listeners: Array<{ node: string; dev: number }>): void {
    this.listeners.set(vlan, listeners);
  }

  /** Which address may speak on each unicast RVI: a peer cannot pass for another member (seed 004: IP bound to the RVI). */
  setPeers(peers: Array<{ rvi: number; ip: string }>): void {
    for (const p of peers) this.peerIps.set(p.rvi, parseIp(p.ip));
  }

  /** Control nodes answering heartbeats now, in the order traffic would prefer them. */
  liveControlNodes(): string[] {
    const now = performance.now();
    return [...this.controlNodes.values()]
      .filter((c) => this.alive(c, now))
      .sort((a, b) => a.bytesSent - b.bytesSent)
      .map((c) => c.name);
  }

  private alive(c: ControlNodeLink, now: number): boolean {
    const s = c.rvi.state;
    return (s === RviState.Up || s === RviState.Degraded) && now - c.lastAck <= 2 * this.heartbeatMs;
  }

  private heartbeat(): void {
    for (const c of this.controlNodes.values()) this.sendHeartbeat(c);
  }

  private watchControlNodes(): void {
    const now = performance.now();
    for (const c of this.controlNodes.values()) {
      const alive = this.alive(c, now);
      if (alive !== c.wasAlive) {
        c.wasAlive = alive;
        if (alive) this.log.info({ controlNode: c.name }, 'control node answering heartbeats: balancing over it again');
        else {
          this.log.warn({ controlNode: c.name }, 'control node silent for two heartbeat intervals: traffic goes to the others');
          this.onControlNodeDown(c.name);
        }
        // Both control nodes start even again, so balancing resumes at once.
        for (const o of this.controlNodes.values()) o.bytesSent = 0;
      }
    }
  }

  private sendHeartbeat(c: ControlNodeLink): void {
    const hb = Buffer.allocUnsafe(TLV_HEADER);
    emitTlv(hb, 0, { type: TlvType.Heartbeat, length: 0, vlan: 0, seq: (c.hbSeq = (c.hbSeq + 1) & 0xffff) });
    c.rvi.send(hb);
  }

  /** The live control node a flow hashes to (falls back like pickControlNode when none answers). */
  private pickByFlow(flow: number): ControlNodeLink | undefined {
    const now = performance.now();
    const live = [...this.controlNodes.values()].filter((c) => this.alive(c, now));
    if (live.length === 0) return this.pickControlNode();
    return live[(flow >>> 0) % live.length];
  }

  /**
   * Fewest bytes sent first (seed 004, RCLAN layer: balance between the
   * control nodes). When none answered a heartbeat in time — this process may
   * itself have stalled — any whose RVI is still up is better than dropping.
   */
  private pickControlNode(): ControlNodeLink | undefined {
    const now = performance.now();
    let best: ControlNodeLink | undefined;
    for (const c of this.controlNodes.values()) if (this.alive(c, now) && (!best || c.bytesSent < best.bytesSent)) best = c;
    if (best) return best;
    for (const c of this.controlNodes.values()) {
      const s = c.rvi.state;
      if ((s === RviState.Up || s === RviState.Degraded) && (!best || c.lastAck > best.lastAck)) best = c;
    }
    return best;
  }

  /**
   * Sends `buf`: TLV_HEADER bytes of headroom, then an Ethernet frame. Returns
   * false when the frame had to be dropped (no path, or the queue is full).
   * `sent` runs once the frame is in the RVI's hands, at once or after it
   * waited in the queue: what a socket's send buffer gives its writer.
   */
  transmit(ifc: Interface, buf: Buffer, sent?: () => void): boolean {
    const frameLength = buf.length - TLV_HEADER;
    if (frameLength < ETHERNET_HEADER) throw new RangeError('frame shorter than an Ethernet header');
    const dst = buf.subarray(TLV_HEADER, TLV_HEADER + 6);
    this.tap(ifc, buf);
    if (buf.readUInt16BE(TLV_HEADER + 12) === EtherType.Arp) {
      const reply = buf.length >= TLV_HEADER + ETHERNET_HEADER + 8 && buf.readUInt16BE(TLV_HEADER + ETHERNET_HEADER + 6) === ArpOp.Reply;
      emitTlv(buf, 0, { type: TlvType.Arp, flags: reply ? TlvFlag.LocalReply : 0, length: frameLength, srcDev: ifc.dev, vlan: ifc.vlanId });
      return this.toControlNode(buf, sent);
    }
    if (isInternalMac(dst)) return this.direct(ifc, buf, parseInternalMac(dst), sent);
    if (isBroadcastMac(dst)) {
      emitTlv(buf, 0, { type: TlvType.Broadcast, length: frameLength, srcDev: ifc.dev, vlan: ifc.vlanId });
      return this.toControlNode(buf, sent);
    }
    if (isMulticastMac(dst)) {
      emitTlv(buf, 0, { type: TlvType.Multicast, length: frameLength, srcDev: ifc.dev, vlan: ifc.vlanId });
      // One group's stream keeps one control node, so its datagrams arrive in the order sent.
      return this.toControlNode(buf, sent, dst.readUInt32BE(2));
    }
    emitTlv(buf, 0, { type: TlvType.Unicast, length: frameLength, srcDev: ifc.dev, vlan: ifc.vlanId });
    // Per-destination affinity: one flow keeps one path, so the two control nodes cannot reorder it.
    return this.toControlNode(buf, sent, dst.readUInt32BE(2));
  }

  private direct(ifc: Interface, buf: Buffer, to: { rvi: number; dev: number; vlan: number }, sent?: () => void): boolean {
    const frameLength = buf.length - TLV_HEADER;
    const rvi = this.lans.get(to.rvi);
    if (!rvi || rvi.purpose !== `lan:${ifc.vlan}` || to.vlan !== ifc.vlanId) {
      // Not a path of this LAN: an ARP entry that outlived a membership change. Ask the control node.
      emitTlv(buf, 0, { type: TlvType.Relayed, length: frameLength, srcDev: ifc.dev, dstDev: to.dev, vlan: ifc.vlanId });
      this.stats.txRelayed++;
      return this.toControlNode(buf, sent);
    }
    this.clonePromiscuous(ifc, buf, rvi.peer);
    if (rvi.state !== RviState.Up && rvi.state !== RviState.Degraded) {
      emitTlv(buf, 0, { type: TlvType.Relayed, length: frameLength, srcDev: ifc.dev, dstDev: to.dev, vlan: ifc.vlanId });
      this.stats.txRelayed++;
      return this.toControlNode(buf, sent);
    }
    emitTlv(buf, 0, { type: TlvType.Unicast, length: frameLength, srcDev: ifc.dev, dstDev: to.dev, vlan: ifc.vlanId });
    this.stats.txDirect++;
    return this.enqueue(rvi, buf, sent);
  }

  /** Seed 004, promiscuous mode: unicast to anyone but the listener is cloned to it, with a header of its own. */
  private clonePromiscuous(ifc: Interface, buf: Buffer, dstNode: string): void {
    const listeners = this.listeners.get(ifc.vlan);
    if (!listeners?.length) return;
    for (const l of listeners) {
      if (l.node === dstNode) continue;
      let path: Rvi | undefined;
      for (const r of this.lans.values()) if (r.peer === l.node && r.purpose === `lan:${ifc.vlan}`) path = r;
      if (!path) continue;
      const copy = Buffer.from(buf);
      emitTlv(copy, 0, { type: TlvType.Promiscuous, length: buf.length - TLV_HEADER, srcDev: ifc.dev, dstDev: l.dev, vlan: ifc.vlanId });
      this.stats.txPromiscuous++;
      this.enqueue(path, copy);
    }
  }

  private toControlNode(buf: Buffer, sent?: () => void, flow?: number): boolean {
    const c = flow === undefined ? this.pickControlNode() : this.pickByFlow(flow);
    if (!c) {
      this.stats.noControlNode++;
      this.stats.txDropped++;
      return false;
    }
    c.bytesSent += buf.length;
    this.stats.txControlNode++;
    return this.enqueue(c.rvi, buf, sent);
  }

  private enqueue(rvi: Rvi, buf: Buffer, sent?: () => void): boolean {
    const q = this.queues.get(rvi);
    if (!q?.length && rvi.send(buf)) {
      sent?.();
      return true;
    }
    const queue = q ?? [];
    if (queue.length >= TX_QUEUE) {
      this.stats.txDropped++;
      return false;
    }
    queue.push({ buf, sent });
    this.queues.set(rvi, queue);
    return true;
  }

  private flush(rvi: Rvi): void {
    const q = this.queues.get(rvi);
    while (q?.length && rvi.send(q[0].buf)) q.shift()!.sent?.();
  }

  private tap(ifc: Interface, buf: Buffer): void {
    const taps = this.taps.get(ifc.vlan);
    if (!taps?.size) return;
    const frame = Buffer.from(buf.subarray(TLV_HEADER));
    for (const t of taps) t(frame);
  }

  /** A TLV frame from a control node (purpose "vlan") or a peer member (purpose "lan:<vlan>"). */
  private receive(rvi: Rvi, payload: Buffer): void {
    let tlv: Tlv;
    try {
      tlv = Tlv.parse(payload);
    } catch {
      this.stats.malformed++;
      return;
    }
    const fromControlNode = rvi.purpose === 'vlan';
    if (tlv.type === TlvType.HeartbeatAck) {
      const c = fromControlNode ? this.controlNodes.get(rvi.peer) : undefined;
      if (c) c.lastAck = performance.now();
      return;
    }
    const ifc = this.byVlanId(tlv.vlan);
    if (!ifc || tlv.dstDev !== ifc.dev || (!fromControlNode && rvi.purpose !== `lan:${ifc.vlan}`)) {
      this.stats.foreign++;
      return;
    }
    // Only a virtual LAN server reflects ARP, broadcast and multicast; a peer may send only unicast (or its promiscuous copy).
    const type = tlv.type;
    if (!fromControlNode && type !== TlvType.Unicast && type !== TlvType.Promiscuous) {
      this.stats.foreign++;
      return;
    }
    let eth: EthernetFrame;
    try {
      eth = EthernetFrame.parse(tlv.value);
    } catch {
      this.stats.malformed++;
      return;
    }
    if (fromControlNode) {
      // ARP comes only as ARP TLVs, from the ARP server: other paths could poison the cache.
      if ((eth.etherType === EtherType.Arp) !== (type === TlvType.Arp)) {
        this.stats.foreign++;
        return;
      }
    } else if (!this.fromBoundPeer(rvi, eth)) {
      this.stats.foreign++;
      return;
    }
    this.stats.rxFrames++;
    const frame = tlv.value;
    switch (type) {
      case TlvType.Promiscuous:
        if (ifc.promiscuous) {
          this.stats.promiscuousCopies++;
          this.onPromiscuous(ifc, frame);
        } else this.stats.notForUs++;
        return;
      case TlvType.Arp:
        if (tlv.flags & TlvFlag.Annotated) this.annotateArpRequest(ifc, tlv, eth);
        this.onReceive(ifc, frame);
        return;
      case TlvType.Broadcast:
      case TlvType.Multicast:
        // A promiscuous listener sees these by the normal reflection (seed 004), in its capture too.
        if (ifc.promiscuous) this.onPromiscuous(ifc, frame);
        this.onReceive(ifc, frame);
        return;
      case TlvType.Unicast:
      case TlvType.Relayed:
        // Seed 004 Fig. 4C step 460: a local MAC header is made from the TLV: the frame is for this interface.
        if (isInternalMac(eth.dst) || eth.dst.equals(ifc.mac)) {
          ifc.mac.copy(frame, 0);
          this.onReceive(ifc, frame);
        } else this.stats.notForUs++;
        return;
      default:
        this.stats.malformed++;
    }
  }

  /** A peer's frame on its unicast RVI: IPv4, from the address bound to that RVI, and nothing else. */
  private fromBoundPeer(rvi: Rvi, eth: EthernetFrame): boolean {
    if (eth.etherType !== EtherType.Ipv4) return false;
    const bound = this.peerIps.get(rvi.id);
    if (bound === undefined) return false;
    try {
      return Ipv4Packet.parse(eth.payload).src === bound;
    } catch {
      return false;
    }
  }

  /**
   * Fig. 4C steps 445-465: the ARP server told us which RVI leads back to the
   * requester; its sender MAC becomes the internal MAC naming that RVI, so our
   * stack's ARP entry for the requester sends direct.
   */
  private annotateArpRequest(ifc: Interface, tlv: Tlv, eth: EthernetFrame): void {
    let arp: ArpPacket;
    try {
      arp = ArpPacket.parse(eth.payload);
    } catch {
      return;
    }
    if (arp.op !== ArpOp.Request || tlv.srcRvi === 0) return;
    const mac = Buffer.allocUnsafe(6);
    emitInternalMac(mac, 0, { rvi: tlv.srcRvi, dev: tlv.srcDev, vlan: ifc.vlanId });
    arp.setSha(mac);
    mac.copy(eth.src);
  }

  close(): void {
    clearInterval(this.timer);
    clearInterval(this.watch);
  }
}
