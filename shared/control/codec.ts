import { Packr } from 'msgpackr';

/**
 * Control messages are msgpack maps with a string type `t`. Records and other
 * msgpackr extensions are off so any msgpack tool can read a capture.
 */
const packr = new Packr({ useRecords: false, moreTypes: false });

export interface ControlMessage {
  t: string;
  /** Request number; a reply carries it back as `re`. Named so no payload field can collide with it. */
  rq?: number;
  re?: number;
  /** Set on an error reply. */
  err?: string;
  [key: string]: unknown;
}

export class ControlDecodeError extends Error {}

export function encodeControl(msg: ControlMessage): Buffer {
  return packr.pack(msg);
}

export function decodeControl(body: Buffer): ControlMessage {
  let msg: unknown;
  try {
    msg = packr.unpack(body);
  } catch (err) {
    throw new ControlDecodeError(`undecodable control message: ${(err as Error).message}`);
  }
  if (typeof msg !== 'object' || msg === null || typeof (msg as ControlMessage).t !== 'string') {
    throw new ControlDecodeError('control message is not a map with a string "t"');
  }
  return msg as ControlMessage;
}
