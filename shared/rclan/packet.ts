import { VI_HEADER, ViFrame } from '../link/frame.ts';

/**
 * RCLAN packet: the payload of a VI frame (seed 004, "RCLAN layer": sequence
 * numbers, acknowledgements and credits so that data lost on one fabric is
 * resent on the other, in order and once).
 *
 *   0  u8   kind                 (RclanKind)
 *   1  u8   flags                (RclanFlag)
 *   2  u16  epoch                sender's stream epoch (bumped after a give-up)
 *   4  u32  incarnation          sender's stream id (random per process start)
 *   8  u32  seq                  Data/RdmaWrite/RdmaNak: this message's number
 *  12  u32  next                 the sender's next unassigned seq when this left;
 *                                anything it sent before this ack is below it
 *  16  u16  ackEpoch             epoch of the stream being acknowledged
 *  18  u16  window               credits: the receiver takes seq < ack + window
 *  20  u32  ackIncarnation       incarnation of the stream being acknowledged (0: none yet)
 *  24  u32  ack                  next in-order seq expected from that stream
 *  28  u32  sack                 bit i set: seq ack+1+i is held out of order
 *  32  ...  RdmaWrite: u32 region, u32 key, u32 offset, then the data
 *           RdmaNak:   u32 failed write seq, u8 reason
 *           Data:      the message
 */
export const RclanKind = { Data: 1, Ack: 2, Heartbeat: 3, RdmaWrite: 4, RdmaNak: 5 } as const;
export type RclanKind = (typeof RclanKind)[keyof typeof RclanKind];

/**
 * Retransmit: sent again. Probe: a heartbeat that asks for an answer on the
 * same VI and plane — an awake peer link's (peer-link.ts), a new RVI's hello,
 * or one on a VI whose own traffic went unacknowledged (rvi.ts: a VI silent
 * while its peer is heard otherwise, issue 10 item 2). The answer is a plain
 * heartbeat, never answered.
 */
export const RclanFlag = { Retransmit: 1, Probe: 2 } as const;

export const RCLAN_HEADER = 32;
export const RDMA_WRITE_EXT = 12;
export const RDMA_NAK_EXT = 5;

/** Why an RDMA WRITE was refused by the region's owner. */
export const RdmaStatus = { Ok: 0, NoRegion: 1, BadKey: 2, OutOfBounds: 3 } as const;
export type RdmaStatus = (typeof RdmaStatus)[keyof typeof RdmaStatus];
export const RDMA_STATUS_NAME: Record<number, string> = {
  0: 'ok',
  1: 'no such memory region',
  2: 'bad memory key',
  3: 'write out of the region bounds',
};

export class RclanPacketError extends Error {}

/** Typed view over a received VI frame's RCLAN packet; lengths checked on parse. */
export class RclanPacket {
  private constructor(
    private readonly b: Buffer,
    private readonly o: number,
  ) {}

  /** `frame` is a whole VI frame (link prefix included). */
  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a RclanPacketError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(frame: Buffer): RclanPacket | undefined {
    try {
      return RclanPacket.parse(frame);
    } catch (err) {
      if (err instanceof RclanPacketError) return undefined;
      throw err;
    }
  }

  static parse(frame: Buffer): RclanPacket {
    const o = VI_HEADER;
    if (frame.length < o + RCLAN_HEADER) throw new RclanPacketError(`RCLAN packet too short: ${frame.length - o} bytes`);
    const kind = frame[o];
    if (kind < RclanKind.Data || kind > RclanKind.RdmaNak) throw new RclanPacketError(`unknown RCLAN kind ${kind}`);
    if (kind === RclanKind.RdmaWrite && frame.length < o + RCLAN_HEADER + RDMA_WRITE_EXT) throw new RclanPacketError('RDMA WRITE header truncated');
    if (kind === RclanKind.RdmaNak && frame.length < o + RCLAN_HEADER + RDMA_NAK_EXT) throw new RclanPacketError('RDMA NAK truncated');
    if (frame.readUInt32BE(o + 4) === 0) throw new RclanPacketError('incarnation 0 is reserved');
    return new RclanPacket(frame, o);
  }

  get kind(): RclanKind {
    return this.b[this.o] as RclanKind;
  }
  get flags(): number {
    return this.b[this.o + 1];
  }
  get epoch(): number {
    return this.b.readUInt16BE(this.o + 2);
  }
  get incarnation(): number {
    return this.b.readUInt32BE(this.o + 4);
  }
  get seq(): number {
    return this.b.readUInt32BE(this.o + 8);
  }
  get next(): number {
    return this.b.readUInt32BE(this.o + 12);
  }
  get ackEpoch(): number {
    return this.b.readUInt16BE(this.o + 16);
  }
  get window(): number {
    return this.b.readUInt16BE(this.o + 18);
  }
  get ackIncarnation(): number {
    return this.b.readUInt32BE(this.o + 20);
  }
  get ack(): number {
    return this.b.readUInt32BE(this.o + 24);
  }
  get sack(): number {
    return this.b.readUInt32BE(this.o + 28);
  }
  /** Whether this kind occupies a sequence number (is delivered in order). */
  get sequenced(): boolean {
    const k = this.kind;
    return k === RclanKind.Data || k === RclanKind.RdmaWrite || k === RclanKind.RdmaNak;
  }
  get payload(): Buffer {
    const start = this.o + RCLAN_HEADER + (this.kind === RclanKind.RdmaWrite ? RDMA_WRITE_EXT : 0);
    return this.b.subarray(start);
  }
  get rdmaRegion(): number {
    return this.b.readUInt32BE(this.o + RCLAN_HEADER);
  }
  get rdmaKey(): number {
    return this.b.readUInt32BE(this.o + RCLAN_HEADER + 4);
  }
  get rdmaOffset(): number {
    return this.b.readUInt32BE(this.o + RCLAN_HEADER + 8);
  }
  get nakSeq(): number {
    return this.b.readUInt32BE(this.o + RCLAN_HEADER);
  }
  get nakReason(): number {
    return this.b[this.o + RCLAN_HEADER + 4];
  }
}

export interface RclanHeaderFields {
  kind: RclanKind;
  flags: number;
  epoch: number;
  incarnation: number;
  seq: number;
  next: number;
  ackEpoch: number;
  window: number;
  ackIncarnation: number;
  ack: number;
  sack: number;
}

/**
 * Emits link + VI + RCLAN headers (and the kind's extension, left for the
 * caller to fill at `VI_HEADER + RCLAN_HEADER`) into a fresh buffer that has
 * `inline` extra bytes for a small body copied in place.
 */
export function emitRclanHeader(vi: number, f: RclanHeaderFields, ext: number, bodyLength: number, inline: number): Buffer {
  const head = Buffer.allocUnsafe(VI_HEADER + RCLAN_HEADER + ext + inline);
  ViFrame.emitHeader(head, vi, RCLAN_HEADER + ext + bodyLength);
  const o = VI_HEADER;
  head[o] = f.kind;
  head[o + 1] = f.flags;
  head.writeUInt16BE(f.epoch, o + 2);
  head.writeUInt32BE(f.incarnation, o + 4);
  head.writeUInt32BE(f.seq >>> 0, o + 8);
  head.writeUInt32BE(f.next >>> 0, o + 12);
  head.writeUInt16BE(f.ackEpoch, o + 16);
  head.writeUInt16BE(f.window, o + 18);
  head.writeUInt32BE(f.ackIncarnation, o + 20);
  head.writeUInt32BE(f.ack >>> 0, o + 24);
  head.writeUInt32BE(f.sack >>> 0, o + 28);
  return head;
}

/**
 * The kind's extension after the RCLAN header, as RclanPacket reads it back
 * (rdmaRegion/rdmaKey/rdmaOffset, nakSeq/nakReason). Flat rather than a union
 * so the RVI passes its queued message as it is, with no object per send.
 */
export interface RdmaExtFields {
  kind: RclanKind;
  /** RdmaWrite: the target region, its key, and the byte offset in it. */
  region: number;
  key: number;
  offset: number;
  /** RdmaNak: the refused write's seq and why (RdmaStatus). */
  nakSeq: number;
  nakReason: number;
}

/** Bytes of extension a packet of `kind` carries after the RCLAN header. */
export function rdmaExtLength(kind: RclanKind): number {
  return kind === RclanKind.RdmaWrite ? RDMA_WRITE_EXT : kind === RclanKind.RdmaNak ? RDMA_NAK_EXT : 0;
}

/**
 * Writes the extension of an RDMA WRITE or NAK into a frame from
 * emitRclanHeader (which left `rdmaExtLength(kind)` bytes for it after the
 * RCLAN header); returns the bytes written, 0 for kinds without one.
 */
export function emitRdmaExt(frame: Buffer, f: RdmaExtFields): number {
  const o = VI_HEADER + RCLAN_HEADER;
  if (f.kind === RclanKind.RdmaWrite) {
    frame.writeUInt32BE(f.region >>> 0, o);
    frame.writeUInt32BE(f.key >>> 0, o + 4);
    frame.writeUInt32BE(f.offset >>> 0, o + 8);
    return RDMA_WRITE_EXT;
  }
  if (f.kind === RclanKind.RdmaNak) {
    frame.writeUInt32BE(f.nakSeq >>> 0, o);
    frame[o + 4] = f.nakReason;
    return RDMA_NAK_EXT;
  }
  return 0;
}

/** Serial-number arithmetic on u32 sequence numbers (RFC 1982 style). */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
