import type { Logger } from 'pino';
import { RviState, type Rvi } from '../../../../shared/rclan/rvi.ts';
import { ArpPacket, ArpOp } from '../../../../shared/wire/arp.ts';
import { ETHERNET_HEADER, EthernetFrame, EtherType } from '../../../../shared/wire/ethernet.ts';
import { emitInternalMac, isInternalMac, parseInternalMac } from '../../../../shared/wire/mac.ts';
import { TLV_HEADER, Tlv, TlvFlag, TlvType, emitTlv } from '../../../../shared/wire/tlv.ts';
import { Ipv4Packet } from '../../../../shared/wire/ipv4.ts';
import { parseIp } from '../../../../shared/wire/ipv4-address.ts';
import { FrameKind, type NetDevice } from './net-device.ts';
import { PacketTaps } from './packet-tap.ts';
import { Vlan, lan } from '../../../../shared/rclan/purpose.ts';
import { HeartbeatLiveness } from './heartbeat-liveness.ts';

/** What a control node says about one virtual Ethernet attachment in the boot configuration (layer 2 only). */
export interface VethPortConfig {
  dev: number;
  vlan: string;
  vlanId: number;
  mac: Buffer;
  mtu: number;
  promiscuousAllowed: boolean;
}

/**
 * One virtual Ethernet interface: the LPAR's attachment to one virtual LAN,
 * a NetDevice of its own (veth<dev>). Its address is not here: the IP
 * interface above it holds that (net/ip/ip-interface.ts).
 */
export class VethPort implements NetDevice {
  readonly name: string;
  readonly lan: string;
  /** The purpose of this LAN's unicast RVIs (`lan:<vlan>`), made once: every frame sent and received is checked against it. */
  readonly rviPurpose: string;
  readonly headroom = TLV_HEADER;
  readonly taps = new PacketTaps();
  promiscuous = false;
  receiver: (eth: EthernetFrame) => void = () => {};
  neighboursLost: () => void = () => {};

  constructor(
    private readonly driver: VirtualEthernet,
    readonly dev: number,
    readonly vlan: string,
    readonly vlanId: number,
    readonly mac: Buffer,
    readonly mtu: number,
    readonly promiscuousAllowed: boolean,
  ) {
    this.name = `veth${dev}`;
    this.lan = vlan;
    this.rviPurpose = lan(vlan);
  }

  /**
   * An internal-format MAC names an RVI inside the platform, whose hops check
   * and deliver reliably (seed 004, "IP Stack"): no checksums needed. Any
   * other MAC may be outside (a bridged LAN, seed 004 "5. Bridging"): it gets them.
   */
  needsChecksums(neighbour: Buffer): boolean {
    return !isInternalMac(neighbour);
  }

  transmit(frame: Buffer, kind: FrameKind, sent?: () => void): boolean {
    return this.driver.transmit(this, frame, kind, sent);
  }
}

/**
 * A control node's link as the driver sees it: Unheard until its first
 * heartbeat answer, then Answering or Silent (a heartbeat unanswered for
 * longer than its answers take, heartbeat-liveness.ts, or its RVI is down). Traffic goes to Answering ones; the move to
 * Silent triggers the ARP retry and the failover log, the move back the
 * recovery log (seed 004, RCLAN layer: balance and fail over between the
 * control nodes).
 */
export const ControlNodeState = { Unheard: 'unheard', Answering: 'answering', Silent: 'silent' } as const;
export type ControlNodeState = (typeof ControlNodeState)[keyof typeof ControlNodeState];

/** The control-node link state machine: `answering` is what the latest look found. */
export function controlNodeTransition(state: ControlNodeState, answering: boolean): ControlNodeState {
  if (answering) return ControlNodeState.Answering;
  return state === ControlNodeState.Unheard ? ControlNodeState.Unheard : ControlNodeState.Silent;
}

interface ControlNodeLink {
  name: string;
  rvi: Rvi;
  state: ControlNodeState;
  /** Its heartbeat TLVs and their answers. */
  hb: HeartbeatLiveness;
  bytesSent: number;
}

/** What the driver says of one control node link (`net-stats`). */
export interface ControlNodeView {
  name: string;
  state: ControlNodeState;
  /** How long a heartbeat may wait for its answer now (heartbeatMs on a quiet box, more when answers are slow). */
  answerWithinMs: number;
  /** The answers' smoothed round trip, ms (null before the first). */
  srttMs: number | null;
}

/** A member the control nodes told us of: the RVI to it, the address bound to it, and whether it routes (so may send others' addresses). */
export interface LanPeer {
  rvi: number;
  ip: string;
  forwarding?: boolean;
}

/** Frames waiting for an RVI's credit; bounded like a NIC's transmit queue. */
const TX_QUEUE = 512;
/** Frames held per unicast RVI while its binding is on its way (`unbound`), and for how long. */
const UNBOUND_HOLD_FRAMES = 16;
const UNBOUND_HOLD_MS = 2000;
/** Requesters remembered for reply affinity (see arpAnsweredBy); the oldest goes first past this. */
const ARP_AFFINITY = 4096;
/** Offset of the ARP target protocol address in a TLV frame (TLV, Ethernet, then ARP's tpa at 24). */
const ARP_TPA = TLV_HEADER + ETHERNET_HEADER + 24;

/**
 * The virtual Ethernet driver (seed 004, "Virtual Ethernet Driver", Fig. 4A):
 * one VethPort (a NetDevice) per virtual LAN, all sharing the driver's RVIs.
 * The IP layer hands a port whole Ethernet frames with TLV_HEADER bytes of
 * headroom and the frame's kind; the driver decides the path once and writes
 * the TLV header once:
 *
 * - an internal-format MAC names the RVI to the peer: sent direct; if that RVI
 *   is not working, relayed through a control node (relay of last resort);
 * - ARP, broadcast and multicast go to a control node's virtual LAN server;
 * - any other unicast MAC goes to a control node.
 *
 * It heartbeats each control node with TLVs, balances traffic towards them by
 * bytes sent, fails over when one stops answering (within two heartbeat
 * intervals on a quiet box, heartbeat-liveness.ts), and clones unicast to the promiscuous listeners it was told of.
 */
export class VirtualEthernet {
  readonly ports = new Map<number, VethPort>();
  readonly stats = {
    txDirect: 0,
    txRelayed: 0,
    txControlNode: 0,
    txDropped: 0,
    txPromiscuous: 0,
    rxFrames: 0,
    malformed: 0,
    foreign: 0,
    heldUnbound: 0,
    notForUs: 0,
    promiscuousCopies: 0,
    noControlNode: 0,
    /** Heartbeat TLVs sent to the control nodes (every heartbeatMs while busy, every idleHeartbeatMs while idle). */
    heartbeats: 0,
  };
  /** Copies of others' unicast traffic for a port in promiscuous mode. */
  onPromiscuous: (port: VethPort, frame: Buffer) => void = () => {};

  private readonly controlNodes = new Map<string, ControlNodeLink>();
  private readonly lans = new Map<number, Rvi>();
  private readonly listeners = new Map<string, Array<{ node: string; dev: number }>>();
  /** The IP bound to the peer at the far end of each unicast RVI (told by the control nodes). */
  private readonly peerIps = new Map<number, number>();
  /**
   * Frames that came on a unicast RVI before the address bound to it (issue
   * 10 item 2): a path made just now is told to each end on other RVIs (the
   * ARP server's annotated request or reply, lan-peers), and the peer, told
   * first, may send on it first — both ends of a pair often ask at once. A
   * few are held, copied, for UNBOUND_HOLD_MS and checked like any frame once
   * the binding comes; the rest, and what waited too long, count as foreign.
   */
  private readonly unbound = new Map<number, { rvi: Rvi; since: number; frames: Buffer[] }>();
  /** RVIs whose peer forwards for others (`forwarding: true` in the platform file): any IPv4 source is theirs to send. */
  private readonly forwarders = new Set<number>();
  private readonly queues = new Map<Rvi, Array<{ buf: Buffer; sent?: () => void }>>();
  /**
   * The control node each ARP request came through, by requester address: our
   * reply goes back through the same one (issue 10 item 2). That control node
   * made (or learnt) the unicast RVI to annotate the request, so it can name it
   * in the reply at once; the other would have to ask the fabric manager first.
   */
  private readonly arpAnsweredBy = new Map<number, ControlNodeLink>();
  private timer: NodeJS.Timeout | undefined;
  /** When a frame last went through a control node (not a heartbeat): the driver is busy for busyForMs after it. */
  private lastControlNodeTraffic = -Infinity;
  private busy = false;
  /**
   * How long a frame through a control node keeps the driver heartbeating every
   * heartbeatMs: two intervals, so a stream of frames keeps it busy and one
   * frame (an ARP reply, a lone broadcast) costs two heartbeats to each control
   * node, not an idle interval's ten. With busy lasting an idle interval, a
   * 256-partition pingall kept every partition busy all the time (each target
   * answers ARP through a control node), 20 heartbeats a second each: most of
   * the box (issue 10; docs/BENCHMARKS.md).
   */
  private readonly busyForMs: number;

  /**
   * Heartbeats go every heartbeatMs while the driver sends through the control
   * nodes and every idleHeartbeatMs otherwise (shared/platform: idleHeartbeatMs).
   * A control node is silent (seed 004: failure of heartbeat TLVs) once a
   * heartbeat stayed unanswered for longer than its answers take
   * (heartbeat-liveness.ts: heartbeatMs on a quiet box, at most
   * idleHeartbeatMs). So a control node that died while a partition was idle
   * is found within two heartbeatMs of the partition's first frame through it
   * on a quiet box, and one that dies while it is busy within two heartbeatMs
   * of its last answer.
   */
  constructor(
    private readonly heartbeatMs: number,
    private readonly idleHeartbeatMs: number,
    private readonly log: Logger,
  ) {
    this.busyForMs = 2 * heartbeatMs;
    this.arm();
  }

  /**
   * One timer, woken only when something is due (liveness is judged at every
   * send; the timer makes the failover log and ARP retry prompt): the next
   * heartbeat (every heartbeatMs busy, every idleHeartbeatMs idle), the moment
   * a heartbeat left unanswered makes its control node silent, the end of
   * busy, a held frame's expiry. An idle partition wakes for it once an
   * idleHeartbeatMs (issue 10 item 2), a busy one about twice a heartbeatMs.
   */
  private arm(now = performance.now()): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), Math.max(5, this.due(now) - now));
    this.timer.unref();
  }

  /** When the driver next has something to do (see arm). */
  private due(now: number): number {
    const every = this.busy ? this.heartbeatMs : this.idleHeartbeatMs;
    let due = this.busy ? this.lastControlNodeTraffic + this.busyForMs : now + this.idleHeartbeatMs;
    for (const c of this.controlNodes.values()) {
      due = Math.min(due, c.hb.lastSent + every);
      // Just past the instant alive() turns false for it, so the watch logs the failover then.
      const silent = c.hb.silentAt();
      if (silent !== Infinity) due = Math.min(due, Math.max(now, silent + 1));
    }
    for (const held of this.unbound.values()) due = Math.min(due, Math.max(now, held.since + UNBOUND_HOLD_MS + 1));
    return due;
  }

  private tick(): void {
    const now = performance.now();
    this.busy = now - this.lastControlNodeTraffic < this.busyForMs;
    // Idle, a heartbeat due within the next heartbeatMs goes with the one due now: both control nodes' exchanges then
    // share one wake-up of this process (and of RCLAN's timer after it) instead of drifting apart. A millisecond
    // early counts as due: a timer may fire a hair before its mark.
    const every = (this.busy ? this.heartbeatMs : this.idleHeartbeatMs - this.heartbeatMs) - 1;
    for (const c of this.controlNodes.values()) if (now - c.hb.lastSent >= every) this.sendHeartbeat(c, now);
    this.watchControlNodes(now);
    this.arm(now);
  }

  /**
   * A frame goes through a control node: from idle, heartbeat both at once, so
   * one that died meanwhile is found within two heartbeatMs (one heartbeated
   * less than a heartbeatMs ago has its answer on the way already).
   */
  private controlNodeTraffic(now: number): void {
    this.lastControlNodeTraffic = now;
    if (this.busy) return;
    this.busy = true;
    for (const c of this.controlNodes.values()) if (now - c.hb.lastSent >= this.heartbeatMs) this.sendHeartbeat(c, now);
    this.arm(now);
  }

  addPort(c: VethPortConfig): VethPort {
    const port = new VethPort(this, c.dev, c.vlan, c.vlanId, c.mac, c.mtu, c.promiscuousAllowed);
    this.ports.set(c.dev, port);
    return port;
  }

  removePort(vlan: string): VethPort | undefined {
    for (const [dev, port] of this.ports) {
      if (port.vlan !== vlan) continue;
      this.ports.delete(dev);
      return port;
    }
    return undefined;
  }

  byVlan(vlan: string): VethPort | undefined {
    for (const port of this.ports.values()) if (port.vlan === vlan) return port;
    return undefined;
  }

  private byVlanId(id: number): VethPort | undefined {
    for (const port of this.ports.values()) if (port.vlanId === id) return port;
    return undefined;
  }

  /** The virtual-LAN RVI to a control node. */
  attachControlNode(rvi: Rvi): void {
    const c: ControlNodeLink = { name: rvi.peer, rvi, state: ControlNodeState.Unheard, hb: new HeartbeatLiveness(this.heartbeatMs, this.idleHeartbeatMs), bytesSent: 0 };
    this.controlNodes.set(rvi.peer, c);
    rvi.onMessage = (p) => this.receive(rvi, p);
    rvi.onDrain = () => this.flush(rvi);
    const now = performance.now();
    this.sendHeartbeat(c, now);
    // The timer's next wake-up includes this heartbeat's answer check.
    if (!this.busy) this.arm(now);
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
      const tlv = Tlv.tryParse(payload);
      if (tlv?.type !== TlvType.Unicast) return;
      tlv.setType(TlvType.Relayed);
      this.stats.txRelayed++;
      this.toControlNode(payload);
    };
  }

  detach(rvi: Rvi): void {
    this.lans.delete(rvi.id);
    this.queues.delete(rvi);
    this.unbound.delete(rvi.id);
  }

  setListeners(vlan: string, listeners: Array<{ node: string; dev: number }>): void {
    this.listeners.set(vlan, listeners);
  }

  /**
   * Which address may speak on each unicast RVI: a peer cannot pass for
   * another member (seed 004: IP bound to the RVI). A forwarding peer (a
   * router partition) sends datagrams of other hosts, so any source is its.
   */
  setPeers(peers: LanPeer[]): void {
    for (const p of peers) {
      this.peerIps.set(p.rvi, parseIp(p.ip));
      if (p.forwarding === true) this.forwarders.add(p.rvi);
      else this.forwarders.delete(p.rvi);
    }
    for (const p of peers) this.releaseUnbound(p.rvi);
  }

  /** Holds a frame that came on `rvi` before its peer's address (`unbound`); false when there is no room or time left. */
  private holdUnbound(rvi: Rvi, payload: Buffer): boolean {
    const now = performance.now();
    let held = this.unbound.get(rvi.id);
    if (!held) {
      this.unbound.set(rvi.id, (held = { rvi, since: now, frames: [] }));
      // Idle, the timer sleeps until the next heartbeat: wake it for this hold's expiry too.
      if (!this.busy) this.arm(now);
    }
    if (held.frames.length >= UNBOUND_HOLD_FRAMES || now - held.since > UNBOUND_HOLD_MS) return false;
    held.frames.push(Buffer.from(payload));
    this.stats.heldUnbound++;
    return true;
  }

  /** `id` has its binding now: what came before it is received (and checked) as it would have been then. */
  private releaseUnbound(id: number): void {
    const held = this.unbound.get(id);
    if (!held) return;
    this.unbound.delete(id);
    for (const f of held.frames) this.receive(held.rvi, f);
  }

  /** Held frames whose binding never came are foreign. */
  private expireUnbound(now: number): void {
    for (const [id, held] of this.unbound) {
      if (now - held.since <= UNBOUND_HOLD_MS) continue;
      this.unbound.delete(id);
      this.stats.foreign += held.frames.length;
    }
  }

  /** Control nodes answering heartbeats now, in the order traffic would prefer them. */
  liveControlNodes(): string[] {
    const now = performance.now();
    return [...this.controlNodes.values()]
      .filter((c) => this.alive(c, now))
      .sort((a, b) => a.bytesSent - b.bytesSent)
      .map((c) => c.name);
  }

  /** Each control node link: its state and how its heartbeats are judged now. */
  describeControlNodes(): ControlNodeView[] {
    return [...this.controlNodes.values()].map((c) => ({ name: c.name, state: c.state, answerWithinMs: Math.round(c.hb.answerWithinMs), srttMs: c.hb.srttMs === undefined ? null : Math.round(c.hb.srttMs * 10) / 10 }));
  }

  private alive(c: ControlNodeLink, now: number): boolean {
    const s = c.rvi.state;
    return (s === RviState.Up || s === RviState.Degraded) && c.hb.answering(now);
  }

  private watchControlNodes(now: number): void {
    if (this.unbound.size > 0) this.expireUnbound(now);
    for (const c of this.controlNodes.values()) {
      const next = controlNodeTransition(c.state, this.alive(c, now));
      if (next === c.state) continue;
      c.state = next;
      if (next === ControlNodeState.Answering) this.log.info({ controlNode: c.name }, 'control node answering heartbeats: balancing over it again');
      else {
        const waitedMs = c.hb.unansweredSince === 0 ? 0 : Math.round(now - c.hb.unansweredSince);
        this.log.warn({ controlNode: c.name, rvi: c.rvi.state, waitedMs, answerWithinMs: Math.round(c.hb.answerWithinMs) }, 'control node silent (its RVI down, or a heartbeat unanswered for longer than its answers take): traffic goes to the others');
        for (const port of this.ports.values()) port.neighboursLost();
      }
      // Both control nodes start even again, so balancing resumes at once.
      for (const o of this.controlNodes.values()) o.bytesSent = 0;
    }
  }

  private sendHeartbeat(c: ControlNodeLink, now: number): void {
    const hb = Buffer.allocUnsafe(TLV_HEADER);
    emitTlv(hb, 0, { type: TlvType.Heartbeat, length: 0, vlan: 0, seq: c.hb.sent(now) });
    this.stats.heartbeats++;
    c.rvi.send(hb);
  }

  /** The live control node a flow hashes to (falls back like pickControlNode when none answers). */
  private pickByFlow(flow: number, now: number): ControlNodeLink | undefined {
    const live = [...this.controlNodes.values()].filter((c) => this.alive(c, now));
    if (live.length === 0) return this.pickControlNode(now);
    return live[(flow >>> 0) % live.length];
  }

  /**
   * Fewest bytes sent first (seed 004, RCLAN layer: balance between the
   * control nodes). When none answered a heartbeat in time — this process may
   * itself have stalled — any whose RVI is still up is better than dropping.
   */
  private pickControlNode(now: number): ControlNodeLink | undefined {
    let best: ControlNodeLink | undefined;
    for (const c of this.controlNodes.values()) if (this.alive(c, now) && (!best || c.bytesSent < best.bytesSent)) best = c;
    if (best) return best;
    for (const c of this.controlNodes.values()) {
      const s = c.rvi.state;
      if ((s === RviState.Up || s === RviState.Degraded) && (!best || c.hb.lastAnswer > best.hb.lastAnswer)) best = c;
    }
    return best;
  }

  /**
   * Sends `buf` (TLV_HEADER bytes of headroom, then an Ethernet frame) of
   * `kind` on `port`. The path is decided once — TLV type, flags, destination
   * device, and the RVI or the control node — and the TLV header written
   * once. Returns false when the frame had to be dropped (no path, or the
   * queue is full). `sent` runs once the frame is in the RVI's hands, at once
   * or after it waited in the queue: what a socket's send buffer gives its writer.
   */
  transmit(port: VethPort, buf: Buffer, kind: FrameKind, sent?: () => void): boolean {
    const length = buf.length - TLV_HEADER;
    if (length < ETHERNET_HEADER) throw new RangeError('frame shorter than an Ethernet header');
    if (port.taps.active) port.taps.offer(buf.subarray(TLV_HEADER));
    const dst = buf.subarray(TLV_HEADER, TLV_HEADER + 6);
    let type: TlvType = TlvType.Unicast;
    let flags = 0;
    let dstDev = 0;
    let rvi: Rvi | undefined;
    // Per-destination affinity for what goes through control nodes: one flow (or one multicast
    // group's stream) keeps one control node, so the two cannot reorder it.
    let flow: number | undefined;
    switch (kind) {
      case FrameKind.ArpRequest:
        type = TlvType.Arp;
        break;
      case FrameKind.ArpReply: {
        type = TlvType.Arp;
        flags = TlvFlag.LocalReply;
        if (buf.length < ARP_TPA + 4) break;
        const tpa = buf.readUInt32BE(ARP_TPA);
        const via = this.arpAnsweredBy.get(tpa);
        this.arpAnsweredBy.delete(tpa);
        const now = performance.now();
        if (via && this.alive(via, now)) {
          this.controlNodeTraffic(now);
          emitTlv(buf, 0, { type, flags, length, srcDev: port.dev, dstDev: 0, vlan: port.vlanId });
          via.bytesSent += buf.length;
          this.stats.txControlNode++;
          return this.enqueue(via.rvi, buf, sent);
        }
        break;
      }
      case FrameKind.Broadcast:
        type = TlvType.Broadcast;
        break;
      case FrameKind.Multicast:
        type = TlvType.Multicast;
        flow = dst.readUInt32BE(2);
        break;
      default:
        if (!isInternalMac(dst)) {
          flow = dst.readUInt32BE(2);
          break;
        }
        // The internal MAC names the peer's RVI and device. Not a path of this LAN (an ARP entry that
        // outlived a membership change) or not working: the control node relays (last resort).
        {
          const to = parseInternalMac(dst);
          dstDev = to.dev;
          const direct = this.lans.get(to.rvi);
          if (direct && direct.purpose === port.rviPurpose && to.vlan === port.vlanId) {
            this.clonePromiscuous(port, buf, direct.peer);
            if (direct.state === RviState.Up || direct.state === RviState.Degraded) rvi = direct;
          }
          if (!rvi) type = TlvType.Relayed;
        }
    }
    emitTlv(buf, 0, { type, flags, length, srcDev: port.dev, dstDev, vlan: port.vlanId });
    if (rvi) {
      this.stats.txDirect++;
      return this.enqueue(rvi, buf, sent);
    }
    if (type === TlvType.Relayed) this.stats.txRelayed++;
    return this.toControlNode(buf, sent, flow);
  }

  /** Seed 004, promiscuous mode: unicast to anyone but the listener is cloned to it, with a header of its own. */
  private clonePromiscuous(port: VethPort, buf: Buffer, dstNode: string): void {
    const listeners = this.listeners.get(port.vlan);
    if (!listeners?.length) return;
    for (const l of listeners) {
      if (l.node === dstNode) continue;
      let path: Rvi | undefined;
      for (const r of this.lans.values()) if (r.peer === l.node && r.purpose === port.rviPurpose) path = r;
      if (!path) continue;
      const copy = Buffer.from(buf);
      emitTlv(copy, 0, { type: TlvType.Promiscuous, length: buf.length - TLV_HEADER, srcDev: port.dev, dstDev: l.dev, vlan: port.vlanId });
      this.stats.txPromiscuous++;
      this.enqueue(path, copy);
    }
  }

  private toControlNode(buf: Buffer, sent?: () => void, flow?: number): boolean {
    const now = performance.now();
    this.controlNodeTraffic(now);
    const c = flow === undefined ? this.pickControlNode(now) : this.pickByFlow(flow, now);
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

  /** A TLV frame from a control node (purpose "vlan") or a peer member (purpose "lan:<vlan>"). */
  private receive(rvi: Rvi, payload: Buffer): void {
    const tlv = Tlv.tryParse(payload);
    if (!tlv) return void this.stats.malformed++;
    const fromControlNode = rvi.purpose === Vlan;
    if (tlv.type === TlvType.HeartbeatAck) {
      const c = fromControlNode ? this.controlNodes.get(rvi.peer) : undefined;
      // The timer was set for this heartbeat's deadline: set it again for what is due now.
      if (c?.hb.answered(tlv.seq, performance.now())) this.arm();
      return;
    }
    const port = this.byVlanId(tlv.vlan);
    if (!port || tlv.dstDev !== port.dev || (!fromControlNode && rvi.purpose !== port.rviPurpose)) {
      this.stats.foreign++;
      return;
    }
    // Only a virtual LAN server reflects ARP, broadcast and multicast; a peer may send only unicast (or its promiscuous copy).
    const type = tlv.type;
    if (!fromControlNode && type !== TlvType.Unicast && type !== TlvType.Promiscuous) {
      this.stats.foreign++;
      return;
    }
    const frame = tlv.value;
    const eth = EthernetFrame.tryParse(frame);
    if (!eth) return void this.stats.malformed++;
    if (fromControlNode) {
      // ARP comes only as ARP TLVs, from the ARP server: other paths could poison the cache.
      if ((eth.etherType === EtherType.Arp) !== (type === TlvType.Arp)) {
        this.stats.foreign++;
        return;
      }
    } else if (!this.fromBoundPeer(rvi, eth)) {
      if (!this.peerIps.has(rvi.id) && eth.etherType === EtherType.Ipv4 && this.holdUnbound(rvi, payload)) return;
      this.stats.foreign++;
      return;
    }
    this.stats.rxFrames++;
    switch (type) {
      case TlvType.Promiscuous:
        if (port.promiscuous) {
          this.stats.promiscuousCopies++;
          this.onPromiscuous(port, frame);
        } else this.stats.notForUs++;
        return;
      case TlvType.Arp:
        if (tlv.flags & TlvFlag.Annotated) this.annotateArpRequest(port, tlv, eth);
        this.rememberArpFrom(rvi, eth);
        port.receiver(eth);
        return;
      case TlvType.Broadcast:
      case TlvType.Multicast:
        // A promiscuous listener sees these by the normal reflection (seed 004), in its capture too.
        if (port.promiscuous) this.onPromiscuous(port, frame);
        port.receiver(eth);
        return;
      case TlvType.Unicast:
      case TlvType.Relayed:
        // Seed 004 Fig. 4C step 460: a local MAC header is made from the TLV: the frame is for this interface.
        if (isInternalMac(eth.dst) || eth.dst.equals(port.mac)) {
          port.mac.copy(frame, 0);
          port.receiver(eth);
        } else this.stats.notForUs++;
        return;
      default:
        this.stats.malformed++;
    }
  }

  /** A peer's frame on its unicast RVI: IPv4, from the address bound to that RVI (any, for a forwarding peer), and nothing else. */
  private fromBoundPeer(rvi: Rvi, eth: EthernetFrame): boolean {
    if (eth.etherType !== EtherType.Ipv4) return false;
    const bound = this.peerIps.get(rvi.id);
    if (bound === undefined) return false;
    if (this.forwarders.has(rvi.id)) return true;
    return Ipv4Packet.tryParse(eth.payload)?.src === bound;
  }

  /**
   * ARP from a control node's ARP server: the reply to a request goes back the
   * same way (arpAnsweredBy); and the RVI it names is bound to the sender's
   * address now (seed 004: RVIs "associated with IP addresses during the
   * virtual LAN server's handling of ARP traffic"), since the lan-peers message
   * for a path made just now travels on another RVI and may come after the
   * first frame on it (issue 10 item 2).
   */
  private rememberArpFrom(rvi: Rvi, eth: EthernetFrame): void {
    const c = this.controlNodes.get(rvi.peer);
    const arp = c && ArpPacket.tryParse(eth.payload);
    if (!arp) return;
    if (isInternalMac(arp.sha)) {
      const named = parseInternalMac(arp.sha).rvi;
      if (!this.peerIps.has(named)) {
        this.peerIps.set(named, arp.spa);
        this.releaseUnbound(named);
      }
    }
    if (arp.op !== ArpOp.Request) return;
    if (this.arpAnsweredBy.size >= ARP_AFFINITY) this.arpAnsweredBy.delete(this.arpAnsweredBy.keys().next().value!);
    this.arpAnsweredBy.set(arp.spa, c);
  }

  /**
   * Fig. 4C steps 445-465: the ARP server told us which RVI leads back to the
   * requester; its sender MAC becomes the internal MAC naming that RVI, so our
   * stack's ARP entry for the requester sends direct.
   */
  private annotateArpRequest(port: VethPort, tlv: Tlv, eth: EthernetFrame): void {
    const arp = ArpPacket.tryParse(eth.payload);
    if (!arp || arp.op !== ArpOp.Request || tlv.srcRvi === 0) return;
    const mac = Buffer.allocUnsafe(6);
    emitInternalMac(mac, 0, { rvi: tlv.srcRvi, dev: tlv.srcDev, vlan: port.vlanId });
    arp.setSha(mac);
    mac.copy(eth.src);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
