/**
 * The messages of the RVI diagnostics (services/lpar/admin/rvi-perf.ts), in
 * the manner of InfiniBand's perftest: numbered stream messages whose
 * receiver checks order, exactly-once delivery and content, and ping/pong
 * round trips. They travel as RVI payloads (purpose "perf").
 *
 *   0  u8 type (1 stream, 2 ping, 3 pong)  1  u32 run  5  u32 index
 *   9  filler: every byte index & 0xff (stream), zeros (ping; a pong echoes it)
 *
 * `run` tells one stream from the next (a receiver restarts its counts when
 * it changes); a ping's run is 0, its index the round trip's number.
 */
import { WireError } from './wire-error.ts';

export const PerfType = { Stream: 1, Ping: 2, Pong: 3 } as const;
export type PerfType = (typeof PerfType)[keyof typeof PerfType];

export const PERF_HEADER = 9;
/** The largest message the diagnostics send (an RVI message is at most 1 MiB here). */
export const PERF_MAX = 1 << 20;

export class PerfMessage {
  private constructor(readonly buffer: Buffer) {}

  /** `parse` for untrusted input: the view, or undefined when the bytes are malformed. */
  static tryParse(buf: Buffer): PerfMessage | undefined {
    return buf.length >= PERF_HEADER && buf[0] >= PerfType.Stream && buf[0] <= PerfType.Pong ? new PerfMessage(buf) : undefined;
  }

  static parse(buf: Buffer): PerfMessage {
    if (buf.length < PERF_HEADER) throw new WireError(`perf message too short: ${buf.length} bytes`);
    const m = PerfMessage.tryParse(buf);
    if (!m) throw new WireError(`unknown perf message type ${buf[0]}`);
    return m;
  }

  get type(): PerfType {
    return this.buffer[0] as PerfType;
  }
  get run(): number {
    return this.buffer.readUInt32BE(1);
  }
  get index(): number {
    return this.buffer.readUInt32BE(5);
  }
  get length(): number {
    return this.buffer.length;
  }
  /** A stream message's filler is whole: its first and last bytes are index & 0xff (or it has none). */
  get fillerIntact(): boolean {
    const b = this.buffer;
    const want = this.index & 0xff;
    return b.length === PERF_HEADER || (b[PERF_HEADER] === want && b[b.length - 1] === want);
  }

  /** Turns a ping into its pong in place (the rest is echoed as it came). */
  setType(type: PerfType): void {
    this.buffer[0] = type;
  }
}

/**
 * Writes a whole message of `target.length - off` bytes at `target[off]`:
 * the header, then the filler (index & 0xff for a stream message, zeros
 * otherwise). Returns its length.
 */
export function emitPerf(target: Buffer, off: number, m: { type: PerfType; run: number; index: number }): number {
  const length = target.length - off;
  if (off < 0 || length < PERF_HEADER) throw new RangeError('perf message does not fit');
  if (!Number.isInteger(m.run) || m.run < 0 || m.run > 0xffffffff || !Number.isInteger(m.index) || m.index < 0 || m.index > 0xffffffff) throw new RangeError('run and index are u32');
  target[off] = m.type;
  target.writeUInt32BE(m.run, off + 1);
  target.writeUInt32BE(m.index, off + 5);
  target.fill(m.type === PerfType.Stream ? m.index & 0xff : 0, off + PERF_HEADER);
  return length;
}
