/**
 * What the partition's IP layer needs of a network device, on smoltcp's
 * `phy::Device` + `DeviceCapabilities` model. One NetDevice is one
 * attachment to one layer-2 segment: the virtual Ethernet driver makes one
 * per virtual LAN (veth1, veth2, …); a HiperSockets (iQDIO) device will be one
 * per internal LAN of its CEC, a QDIO device one per adapter port. The IP
 * layer sees only this interface, so a new device kind is a new file next to
 * virtual-ethernet.ts and nothing in net/ip/ changes:
 *
 * - **headroom**: bytes the device writes in front of the Ethernet header
 *   (the virtual Ethernet TLV header, a QDIO buffer element header, …). The
 *   IP layer allocates each frame with that much space free at the start, so
 *   the device frames it in place (zero copy, as the TLV path always was).
 * - **mtu**: the largest IPv4 datagram (Ethernet payload) the segment
 *   carries. The IP interface takes it as its MTU; TCP's MSS follows it.
 * - **checksums**: smoltcp's ChecksumCapabilities, decided by the device and
 *   not by IP. Inside the platform every hop detects errors and delivers
 *   reliably (seed 004, "IP Stack"), so IPv4/TCP/UDP checksums may stay zero;
 *   a frame that may leave the platform (a bridged LAN, an OSA port) must
 *   carry real ones. `needsChecksums(neighbour)` answers per next-hop MAC
 *   because on one virtual LAN both kinds of neighbour exist.
 * - **transmit(frame, kind, sent?)**: `frame` is headroom + Ethernet frame;
 *   `kind` is what IP already knows about it (ARP request/reply, unicast,
 *   broadcast, multicast) so no device reads the EtherType or the ARP op back
 *   out of the bytes. `sent` runs once the frame is in the device's hands (at
 *   once, or after it waited for credit); false means dropped.
 * - **receive**: the device calls `receiver(eth)` with the Ethernet view it
 *   parsed (and checked) once; IP never parses the Ethernet header again.
 * - **neighboursLost**: the device lost a path that may have swallowed
 *   address resolution (a control node died with ARP requests in it); IP asks
 *   again at once instead of waiting for the retry timer.
 * - **taps**: every frame the device transmits is offered to its PacketTaps
 *   (what `lparlab capture` records), without anyone editing the device's maps.
 *
 * Adding a device kind (HiperSockets next, QDIO after it): a file
 * net/devices/<kind>.ts whose class implements NetDevice — its own headroom
 * (0 when the queue element carries the frame bare), its MTU (an IQD chpid's
 * frame size less the Ethernet header), `needsChecksums` (false for a
 * HiperSockets LAN, which never leaves the CEC; true towards an OSA port),
 * and `transmit` putting the frame on its queue (shared/ring's frame ring).
 * The composition root (net-stack.ts) then makes the IP interface with
 * `ipInterface(device, ip, prefix)` and hands it to `IpLayer.addInterface`;
 * routing, forwarding, ARP, fragmentation and TCP's MSS work on it unchanged.
 * IP resolves neighbours by ARP on every device today; a device that has
 * no ARP (HiperSockets in layer-3 mode) will need a neighbour-resolution
 * capability here (smoltcp's `Medium::Ip`), the one foreseeable addition.
 */
import type { EthernetFrame } from '../../../../shared/wire/ethernet.ts';
import type { PacketTaps } from './packet-tap.ts';

/** What the IP layer knows about a frame it hands down (smoltcp passes the same knowledge as the packet's Repr). */
export const FrameKind = {
  /** An IPv4 datagram for one neighbour (the frame's destination MAC). */
  Unicast: 1,
  /** An IPv4 datagram for every station of the segment. */
  Broadcast: 2,
  /** An IPv4 datagram for a multicast group's MAC. */
  Multicast: 3,
  ArpRequest: 4,
  ArpReply: 5,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface NetDevice {
  /** The interface name (`veth1`, later `hsi0`, `osa0`): what `lparlab ip` shows. */
  readonly name: string;
  /** The layer-2 segment it is attached to (the virtual LAN's name): what routes name as `dev`. */
  readonly lan: string;
  /** This attachment's own MAC. */
  readonly mac: Buffer;
  /** Largest IPv4 datagram the segment carries. */
  readonly mtu: number;
  /** Bytes free before the Ethernet header in every frame handed to transmit. */
  readonly headroom: number;
  /** Whether a frame to `neighbour` (its destination MAC) must carry computed IPv4/TCP/UDP checksums. */
  needsChecksums(neighbour: Buffer): boolean;
  /** Sends headroom + Ethernet frame; false when it had to be dropped (no path, queue full). */
  transmit(frame: Buffer, kind: FrameKind, sent?: () => void): boolean;
  /** Frames for this station, the Ethernet header parsed once by the device. Set by the IP layer. */
  receiver: (eth: EthernetFrame) => void;
  /** A path that may have swallowed address resolution failed: resolve again now. Set by the IP layer. */
  neighboursLost: () => void;
  /** Capture: each transmitted frame (Ethernet frame only, no headroom) goes to these. */
  readonly taps: PacketTaps;
}
