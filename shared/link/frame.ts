/**
 * Link frames: the unit every fabric link carries, on a UNIX socket or a
 * WebSocket alike (ARCHITECTURE "Links": both carry the same frames).
 *
 *   0  u32  length of what follows (big endian)
 *   4  u8   frame type
 *   5  ...  type-specific
 *
 * A VI frame is what a switch forwards: it reads and rewrites only `vi`, never
 * the payload (seed 004, "Giganet Driver": a VI is a path between ports and the
 * switch keeps VIs separate without looking inside them).
 *
 *   4  u8   type = FrameType.Vi
 *   5  u8   flags    (ViFlag; zero on every frame a node sends)
 *   6  u16  reserved
 *   8  u32  vi       (the VI number at the port the frame is travelling to/from)
 *  12  ...  payload  (an RCLAN packet)
 *
 * A flow frame is a VI header with no payload and ViFlag.Flow set, sent only
 * by a switch to the port a VI enters at: "stop sending on this VI" (with
 * ViFlag.Stop) or "go on" (without). It is per VI, so a receiver that does
 * not drain holds back only what is addressed to it (issue 11 item 1; see
 * services/fabric-switch/fabric-switch.ts). The switch forwards no frame with
 * flags set, so a node cannot forge one.
 *
 * A control frame carries one msgpack-encoded message after the type byte.
 */

export const FrameType = { Vi: 1, Control: 2 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Bits of a VI frame's flags byte. */
export const ViFlag = { Flow: 0x01, Stop: 0x02 } as const;

export const LENGTH_PREFIX = 4;
export const VI_HEADER = 12;
/** Where a VI frame's `vi` and `flags` fields sit (prefix included). */
const VI_OFFSET = 8;
const FLAGS_OFFSET = 5;
export const CONTROL_HEADER = 5;
/** Largest frame accepted; a length above it means the stream is corrupt. */
export const MAX_FRAME = 16 * 1024 * 1024;

export class FrameError extends Error {}

/** Type byte of a whole frame (prefix included), or -1 when it is too short. */
export function frameType(frame: Buffer): number {
  return frame.length > LENGTH_PREFIX ? frame[LENGTH_PREFIX] : -1;
}

/** Typed view of a VI frame: checked on parse, fields read in place. */
export class ViFrame {
  private constructor(readonly buf: Buffer) {}

  /**
   * `parse` for untrusted input: the view, or undefined when the bytes are
   * malformed (a FrameError), so a receive path counts and drops without a
   * try/catch of its own. Any other error is a bug and propagates.
   */
  static tryParse(frame: Buffer): ViFrame | undefined {
    try {
      return ViFrame.parse(frame);
    } catch (err) {
      if (err instanceof FrameError) return undefined;
      throw err;
    }
  }

  static parse(frame: Buffer): ViFrame {
    if (frame.length < VI_HEADER) throw new FrameError(`VI frame too short: ${frame.length} bytes`);
    if (frame[LENGTH_PREFIX] !== FrameType.Vi) throw new FrameError(`not a VI frame: type ${frame[LENGTH_PREFIX]}`);
    if (frame.readUInt32BE(0) !== frame.length - LENGTH_PREFIX) throw new FrameError('VI frame length prefix does not match');
    return new ViFrame(frame);
  }

  get vi(): number {
    return ViFrame.viOf(this.buf);
  }
  set vi(v: number) {
    ViFrame.setVi(this.buf, v);
  }

  /**
   * The VI of a whole VI frame without making a view: the switch reads it for
   * every frame it forwards, so no object per frame. -1 when the frame is too
   * short to hold a VI header. The type byte and length prefix are not checked
   * here: a frame from FrameDecoder has a prefix that matches by construction,
   * and ControlChannel hands on only frames of type Vi.
   */
  static viOf(frame: Buffer): number {
    return frame.length < VI_HEADER ? -1 : frame.readUInt32BE(VI_OFFSET);
  }

  /**
   * The VI of a whole frame after checking it is a well-formed VI frame
   * (type, length prefix, room for the header): -1 when it is not. The
   * receive path's check without a view object or a try/catch per frame.
   */
  static checkedVi(frame: Buffer): number {
    if (frame.length < VI_HEADER || frame[LENGTH_PREFIX] !== FrameType.Vi || frame.readUInt32BE(0) !== frame.length - LENGTH_PREFIX) return -1;
    return frame.readUInt32BE(VI_OFFSET);
  }

  /** The flags byte of a frame at least VI_HEADER long (ViFlag bits). */
  static flagsOf(frame: Buffer): number {
    return frame[FLAGS_OFFSET];
  }

  /** A flow frame for `vi` (see the header comment): stop sending on it, or go on. */
  static emitFlow(vi: number, stop: boolean): Buffer {
    const frame = Buffer.allocUnsafe(VI_HEADER);
    ViFrame.emitHeader(frame, vi, 0);
    frame[FLAGS_OFFSET] = ViFlag.Flow | (stop ? ViFlag.Stop : 0);
    return frame;
  }

  /** Rewrites the VI of a whole VI frame in place (the switch's one write to a frame); the frame is at least VI_HEADER long. */
  static setVi(frame: Buffer, vi: number): void {
    frame.writeUInt32BE(vi, VI_OFFSET);
  }
  get payload(): Buffer {
    return this.buf.subarray(VI_HEADER);
  }

  /** Writes a VI header at `target[0..12)` for a payload of `payloadLength` bytes. */
  static emitHeader(target: Buffer, vi: number, payloadLength: number): void {
    target.writeUInt32BE(VI_HEADER - LENGTH_PREFIX + payloadLength, 0);
    target[4] = FrameType.Vi;
    target[5] = 0;
    target.writeUInt16BE(0, 6);
    target.writeUInt32BE(vi, VI_OFFSET);
  }
}

/** Control frame around an already-encoded body. */
export function emitControlFrame(body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(CONTROL_HEADER + body.length);
  frame.writeUInt32BE(1 + body.length, 0);
  frame[4] = FrameType.Control;
  body.copy(frame, CONTROL_HEADER);
  return frame;
}

export function controlBody(frame: Buffer): Buffer {
  if (frame.length < CONTROL_HEADER || frame[LENGTH_PREFIX] !== FrameType.Control) {
    throw new FrameError('not a control frame');
  }
  return frame.subarray(CONTROL_HEADER);
}

/**
 * Where a decoder hands a VI frame that spans reads as it arrives, instead of
 * assembling it first (cut-through, issue 10 item 6). `begin` gets the
 * frame's first bytes (at least VI_HEADER of them, prefix included) and its
 * whole length; returning false makes the decoder assemble this frame and
 * hand it whole to its emit as usual. After true, `part` gets the rest in
 * order, `last` on the piece that completes it. Control frames and frames
 * whole within one read never come here.
 */
export interface CutThroughSink {
  begin(head: Buffer, length: number): boolean;
  part(bytes: Buffer, last: boolean): void;
}

/**
 * Splits a byte stream into whole frames (prefix included). Frames contained in
 * one chunk are handed out as subarrays (no copy); a frame spanning chunks is
 * assembled once, or, with a cut-through sink, passed on piece by piece.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Whole length (prefix included) of the frame being assembled; 0 until its prefix is complete. */
  private need = 0;
  /** Bytes of the frame being cut through still to come; 0 when none is. */
  private streamLeft = 0;
  /** The sink already declined the frame being assembled. */
  private declined = false;
  /** Set to pass spanning VI frames on as they arrive (see CutThroughSink). */
  sink: CutThroughSink | undefined = undefined;

  constructor(private readonly emit: (frame: Buffer) => void) {}

  /** Whether a cut-through frame is part way through (its sink awaits more). */
  get streaming(): boolean {
    return this.streamLeft > 0;
  }

  /** Throws FrameError when the stream cannot be a frame stream any more. */
  push(chunk: Buffer): void {
    let offset = 0;
    if (this.streamLeft > 0) {
      const take = Math.min(this.streamLeft, chunk.length);
      this.streamLeft -= take;
      this.sink?.part(take === chunk.length ? chunk : chunk.subarray(0, take), this.streamLeft === 0);
      if (this.streamLeft > 0) return;
      offset = take;
    }
    if (this.pendingLength > 0) {
      if (this.need === 0) {
        const want = LENGTH_PREFIX - this.pendingLength;
        if (chunk.length < want) {
          this.pending.push(chunk);
          this.pendingLength += chunk.length;
          return;
        }
        const prefix = Buffer.concat([...this.pending, chunk.subarray(0, want)], LENGTH_PREFIX);
        this.need = LENGTH_PREFIX + checkedLength(prefix);
        this.pending = [prefix];
        this.pendingLength = LENGTH_PREFIX;
        offset = want;
      }
      // Copy only what completes the pending frame; the rest of the chunk is parsed in place.
      const take = Math.min(this.need - this.pendingLength, chunk.length - offset);
      this.pending.push(chunk.subarray(offset, offset + take));
      this.pendingLength += take;
      offset += take;
      if (this.pendingLength < this.need) {
        this.tryCutThrough();
        return;
      }
      const frame = Buffer.concat(this.pending, this.need);
      this.pending = [];
      this.pendingLength = 0;
      this.need = 0;
      this.declined = false;
      this.emit(frame);
    }
    while (chunk.length - offset >= LENGTH_PREFIX) {
      const end = offset + LENGTH_PREFIX + checkedLength(chunk, offset);
      if (end > chunk.length) {
        this.need = end - offset;
        break;
      }
      this.emit(chunk.subarray(offset, end));
      offset = end;
    }
    if (offset < chunk.length) {
      this.pending.push(chunk.subarray(offset));
      this.pendingLength = chunk.length - offset;
      this.tryCutThrough();
    }
  }

  /** A VI frame is incomplete at the end of a read: offer it to the sink once its header is in. */
  private tryCutThrough(): void {
    if (!this.sink || this.declined || this.need === 0 || this.pendingLength < VI_HEADER) return;
    const head = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLength);
    if (head[LENGTH_PREFIX] !== FrameType.Vi || !this.sink.begin(head, this.need)) {
      this.declined = true;
      this.pending = [head];
      return;
    }
    this.streamLeft = this.need - this.pendingLength;
    this.pending = [];
    this.pendingLength = 0;
    this.need = 0;
  }
}

function checkedLength(buf: Buffer, offset = 0): number {
  const length = buf.readUInt32BE(offset);
  if (length === 0 || length > MAX_FRAME) throw new FrameError(`bad frame length ${length}`);
  return length;
}
