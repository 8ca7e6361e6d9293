/**
 * SMC-R connection data control (CDC) messages: what one partition SENDs to
 * the other over a link of the link group, next to its RDMA WRITEs (seed 002,
 * Fig. 8A step 807: "send an alert token in a manner that defines the RMBE,
 * update the producer cursor, indicate to raise an interrupt").
 *
 *   0 u8  type    CdcType
 *   1 u8  flags   CdcFlag bits
 *   2 u8  link    Move: the link (plane index) the sender left; Rkey: the link
 *                 the sender registered its RMBE on anew; 0 otherwise
 *   3 u8  zero
 *   4 u32 token   the receiver's alert token: names its RMBE (the connection)
 *   8 u32 prod    Cursor, Move: the sender's producer cursor in the receiver's
 *                 RMBE; Rkey: the region id of the new registration
 *  12 u32 key     Rkey: the key of that registration; zero otherwise
 *
 * Sent after the RDMA WRITEs it announces on the same link, so RCLAN's
 * in-order delivery puts the data in place before the cursor says it is there.
 */
import { WireError } from './wire-error.ts';

export const CDC_BYTES = 16;

export const CdcType = {
  /** Producer cursor and flags. */
  Cursor: 1,
  /** The sender moved the connection off `link` (seed 002, Fig. 10 step 1015): stop taking RDMA WRITEs there. */
  Move: 2,
  /**
   * The sender registered its RMBE again on `link` (after the peer's Move off it had it deregistered):
   * WRITEs there go to region `prod` with `key` from now on, so the connection can move back (issue 11
   * item 2; Linux net/smc confirms a new link's rkeys the same way, with LLC CONFIRM_RKEY).
   */
  Rkey: 3,
} as const;
export type CdcType = (typeof CdcType)[keyof typeof CdcType];

export const CdcFlag = {
  /** The sender's app ended its writable side. */
  DoneWriting: 0x01,
  /** The sender closed the connection. */
  Closed: 0x02,
  /** The sender aborted: reset. */
  Abort: 0x04,
  /** The sender is blocked on a full RMBE: write back your consumer cursor and alert. */
  WantSpace: 0x08,
  /** Your consumer cursor copy was just updated by RDMA WRITE (the alert for WantSpace). */
  ConsUpdated: 0x10,
} as const;

const ALL_FLAGS = 0x1f;

export interface Cdc {
  type: CdcType;
  flags: number;
  link: number;
  token: number;
  /** Cursor, Move: the producer cursor. Rkey: the region id. */
  prod: number;
  /** Rkey: the region's key; 0 for the other types. */
  key: number;
}

export function parseCdc(buf: Buffer): Cdc {
  if (buf.length !== CDC_BYTES) throw new WireError(`CDC message of ${buf.length} bytes, not ${CDC_BYTES}`);
  const type = buf[0];
  if (type !== CdcType.Cursor && type !== CdcType.Move && type !== CdcType.Rkey) throw new WireError(`unknown CDC type ${type}`);
  const flags = buf[1];
  if ((flags & ~ALL_FLAGS) !== 0) throw new WireError(`unknown CDC flags 0x${flags.toString(16)}`);
  const link = buf[2];
  if (link > 1) throw new WireError(`CDC link ${link} is not a plane index`);
  const token = buf.readUInt32BE(4);
  if (token === 0) throw new WireError('CDC token 0 names no connection');
  const key = buf.readUInt32BE(12);
  if (type !== CdcType.Rkey && key !== 0) throw new WireError(`CDC type ${type} with a nonzero key`);
  if (type === CdcType.Rkey && buf.readUInt32BE(8) === 0) throw new WireError('CDC Rkey names region 0');
  return { type: type as CdcType, flags, link, token, prod: buf.readUInt32BE(8), key };
}

/** `parseCdc` for untrusted input: the message, or undefined when the bytes are malformed (a WireError). */
export function tryParseCdc(buf: Buffer): Cdc | undefined {
  try {
    return parseCdc(buf);
  } catch (err) {
    if (err instanceof WireError) return undefined;
    throw err;
  }
}

export function emitCdc(c: Cdc): Buffer {
  const b = Buffer.alloc(CDC_BYTES);
  b[0] = c.type;
  b[1] = c.flags;
  b[2] = c.link;
  b.writeUInt32BE(c.token >>> 0, 4);
  b.writeUInt32BE(c.prod >>> 0, 8);
  b.writeUInt32BE(c.key >>> 0, 12);
  return b;
}
