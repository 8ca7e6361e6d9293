import { describe, expect, it } from 'vitest';
import { VI_HEADER, ViFrame } from '../../shared/link/frame.ts';
import {
  RCLAN_HEADER,
  RDMA_NAK_EXT,
  RDMA_WRITE_EXT,
  RclanKind,
  RclanPacket,
  RdmaStatus,
  emitRclanHeader,
  emitRdmaExt,
  rdmaExtLength,
  type RclanHeaderFields,
  type RdmaExtFields,
} from '../../shared/rclan/packet.ts';

const header = (kind: RclanKind): RclanHeaderFields => ({
  kind,
  flags: 0,
  epoch: 3,
  incarnation: 0x1234_5678,
  seq: 0xffff_fffe,
  next: 0xffff_ffff,
  ackEpoch: 2,
  window: 64,
  ackIncarnation: 9,
  ack: 17,
  sack: 0b101,
});

const ext = (over: Partial<RdmaExtFields>): RdmaExtFields => ({ kind: RclanKind.Data, region: 0, key: 0, offset: 0, nakSeq: 0, nakReason: 0, ...over });

/** A whole frame as the RVI sends it: header, the kind's extension, then the body inline. */
function emit(f: RdmaExtFields, body: Buffer): Buffer {
  const n = rdmaExtLength(f.kind);
  const frame = emitRclanHeader(41, header(f.kind), n, body.length, body.length);
  expect(emitRdmaExt(frame, f)).toBe(n);
  body.copy(frame, VI_HEADER + RCLAN_HEADER + n);
  return frame;
}

describe('emitRdmaExt beside its parser', () => {
  it('an RDMA WRITE round-trips region, key, offset and the data after them', () => {
    const data = Buffer.from('bytes for the remote region');
    const frame = emit(ext({ kind: RclanKind.RdmaWrite, region: 0xfeed_beef, key: 0x8000_0001, offset: 65_536 }), data);
    expect(frame.length).toBe(VI_HEADER + RCLAN_HEADER + RDMA_WRITE_EXT + data.length);
    expect(ViFrame.parse(frame).vi).toBe(41);
    const pkt = RclanPacket.parse(frame);
    expect(pkt.kind).toBe(RclanKind.RdmaWrite);
    expect([pkt.rdmaRegion, pkt.rdmaKey, pkt.rdmaOffset]).toEqual([0xfeed_beef, 0x8000_0001, 65_536]);
    expect(pkt.payload.equals(data)).toBe(true);
    expect([pkt.seq, pkt.next, pkt.ack, pkt.sack]).toEqual([0xffff_fffe, 0xffff_ffff, 17, 0b101]);
  });

  it('an RDMA NAK round-trips the refused seq and the reason', () => {
    const frame = emit(ext({ kind: RclanKind.RdmaNak, nakSeq: 0xdead_0001, nakReason: RdmaStatus.OutOfBounds }), Buffer.alloc(0));
    expect(frame.length).toBe(VI_HEADER + RCLAN_HEADER + RDMA_NAK_EXT);
    const pkt = RclanPacket.parse(frame);
    expect(pkt.kind).toBe(RclanKind.RdmaNak);
    expect(pkt.nakSeq).toBe(0xdead_0001);
    expect(pkt.nakReason).toBe(RdmaStatus.OutOfBounds);
  });

  it('kinds without an extension write nothing, and the payload starts right after the header', () => {
    for (const kind of [RclanKind.Data, RclanKind.Ack, RclanKind.Heartbeat]) {
      expect(rdmaExtLength(kind)).toBe(0);
      const body = kind === RclanKind.Data ? Buffer.from('message') : Buffer.alloc(0);
      const frame = emit(ext({ kind, region: 1, key: 2, offset: 3, nakSeq: 4, nakReason: 5 }), body);
      expect(frame.length).toBe(VI_HEADER + RCLAN_HEADER + body.length);
      expect(RclanPacket.parse(frame).payload.equals(body)).toBe(true);
    }
  });

  it('a frame cut inside the extension does not parse', () => {
    const w = emit(ext({ kind: RclanKind.RdmaWrite, region: 1, key: 2, offset: 3 }), Buffer.alloc(0));
    expect(RclanPacket.tryParse(w.subarray(0, w.length - 1))).toBeUndefined();
    const n = emit(ext({ kind: RclanKind.RdmaNak, nakSeq: 1, nakReason: 1 }), Buffer.alloc(0));
    expect(RclanPacket.tryParse(n.subarray(0, n.length - 1))).toBeUndefined();
    expect(RclanPacket.tryParse(n)).toBeDefined();
  });
});
