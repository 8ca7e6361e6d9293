/**
 * The receive path of a control node's virtual-LAN RVIs: one TLV frame per
 * message from an LPAR. The driver's end-to-end heartbeat (seed 004,
 * "Virtual Ethernet Driver") is answered at once; any other frame goes to the
 * virtual LAN server it names, and only from a registered member of it.
 */
import { TLV_HEADER, Tlv, TlvType, emitTlv } from '../../../shared/wire/tlv.ts';
import type { LogOnce } from '../untrusted.ts';
import { isRegistered } from './members.ts';
import type { VlanServer } from './vlan-server.ts';

export class FrameIntake {
  readonly stats = { malformedFrames: 0, notMember: 0, heartbeats: 0 };
  /**
   * When each LPAR's driver heartbeat last came. With RCLAN liveness per peer
   * (issue 10 item 2) the control node hears an LPAR on its management RVI
   * while its virtual-LAN RVI is lost, and sends nothing on that one but the
   * acks, so RCLAN never finds it; the heartbeats stopping does (seed 004:
   * heartbeat TLVs test end-to-end connectivity).
   */
  private readonly lastHeartbeat = new Map<string, number>();

  constructor(
    private readonly serverById: (id: number) => VlanServer | undefined,
    private readonly warn: LogOnce,
  ) {}

  /** The LPARs whose heartbeats came and then stopped for more than `ms`. */
  silent(now: number, ms: number): string[] {
    const out: string[] = [];
    for (const [lpar, at] of this.lastHeartbeat) if (now - at > ms) out.push(lpar);
    return out;
  }

  /** A frame from `lpar`; `reply` sends on the RVI it came by. */
  receive(lpar: string, payload: Buffer, reply: (frame: Buffer) => void): void {
    const tlv = Tlv.tryParse(payload);
    if (!tlv) {
      this.stats.malformedFrames++;
      return;
    }
    if (tlv.type === TlvType.Heartbeat) {
      this.stats.heartbeats++;
      this.lastHeartbeat.set(lpar, performance.now());
      const ack = Buffer.allocUnsafe(TLV_HEADER);
      emitTlv(ack, 0, { type: TlvType.HeartbeatAck, length: 0, vlan: 0, seq: tlv.seq });
      reply(ack);
      return;
    }
    const server = this.serverById(tlv.vlan);
    const member = server?.members.get(lpar);
    if (!server || !member || !isRegistered(member)) {
      this.stats.notMember++;
      this.warn.warn(`${lpar}/frame/${tlv.vlan}`, { lpar, vlan: tlv.vlan }, 'frame for a virtual LAN the sender is not a registered member of dropped');
      return;
    }
    try {
      server.handleFrame(member, tlv, payload);
    } catch (err) {
      // Whatever a partition sends, the control node stays up: counted, logged once.
      this.stats.malformedFrames++;
      this.warn.warn(`${lpar}/frame-error`, { lpar, err: (err as Error).message }, 'frame rejected');
    }
  }
}
