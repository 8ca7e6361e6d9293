/**
 * Classic libpcap capture files, the format tshark and Wireshark read
 * everywhere (https://wiki.wireshark.org/Development/LibpcapFileFormat):
 *
 * global header (24 bytes): u32 magic 0xa1b2c3d4 (microsecond timestamps),
 *   u16 version 2, u16 minor 4, i32 thiszone 0, u32 sigfigs 0, u32 snaplen,
 *   u32 link type (1 = Ethernet)
 * per record (16 bytes + data): u32 ts_sec, u32 ts_usec, u32 incl_len, u32 orig_len
 *
 * Written little endian; readers detect the byte order from the magic.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

export const LINKTYPE_ETHERNET = 1;
export const PCAP_SNAPLEN = 262144;
const PCAP_MAGIC = 0xa1b2c3d4;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;

export function pcapHeader(linkType = LINKTYPE_ETHERNET, snaplen = PCAP_SNAPLEN): Buffer {
  const h = Buffer.alloc(GLOBAL_HEADER);
  h.writeUInt32LE(PCAP_MAGIC, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8);
  h.writeUInt32LE(0, 12);
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(linkType, 20);
  return h;
}

/**
 * A record: its header and the (possibly truncated) frame, as a view, not a
 * copy. `tsMs` is milliseconds since the epoch, fractions kept to the microsecond.
 */
export function pcapRecord(tsMs: number, frame: Buffer, snaplen = PCAP_SNAPLEN): Buffer[] {
  if (!(tsMs >= 0)) throw new RangeError(`bad pcap timestamp ${tsMs}`);
  let sec = Math.floor(tsMs / 1000);
  let usec = Math.round((tsMs - sec * 1000) * 1000);
  if (usec >= 1_000_000) {
    sec++;
    usec -= 1_000_000;
  }
  const included = Math.min(frame.length, snaplen);
  const h = Buffer.allocUnsafe(RECORD_HEADER);
  h.writeUInt32LE(sec, 0);
  h.writeUInt32LE(usec, 4);
  h.writeUInt32LE(included, 8);
  h.writeUInt32LE(frame.length, 12);
  return [h, included === frame.length ? frame : frame.subarray(0, included)];
}

/** Appends Ethernet frames to a new capture file. */
export class PcapWriter {
  count = 0;
  private readonly stream: WriteStream;
  private error: Error | undefined;
  private closed = false;

  constructor(path: string) {
    this.stream = createWriteStream(path);
    // Without a listener a write error would crash the process; report it on close().
    this.stream.on('error', (err) => {
      this.error ??= err;
    });
    this.stream.write(pcapHeader());
  }

  /**
   * The record is copied into one buffer before it is queued: the stream
   * keeps a reference until it is flushed, and callers reuse frame buffers.
   */
  write(tsMs: number, frame: Buffer): void {
    if (this.closed) throw new Error('PcapWriter is closed');
    const [h, data] = pcapRecord(tsMs, frame);
    this.stream.write(Buffer.concat([h, data], h.length + data.length));
    this.count++;
  }

  /** Flushes and closes the file; rejects if any write failed. */
  close(): Promise<void> {
    this.closed = true;
    return new Promise((resolve, reject) => {
      this.stream.end((err?: Error | null) => {
        const failure = err ?? this.error;
        if (failure) reject(failure);
        else resolve();
      });
    });
  }
}
