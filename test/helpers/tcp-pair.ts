/**
 * Two TcpConnections over an in-memory wire, for the connection's unit tests.
 *
 * Every OutSegment is encoded into real bytes (emitTcpHeader + payload) and
 * parsed back with TcpSegment.parse on the far side, asynchronously. The wire
 * (a LossyWire) can drop, duplicate, reorder (jitter) and delay segments (seeded), run a
 * per-segment filter, and lose one side altogether ("vanished"). Each side
 * plays the TCP layer's part too (services/lpar/net/tcp/tcp.ts): a listening
 * side makes a passive connection on the first SYN, and a segment for no live
 * connection is answered with a reset as RFC 9293 3.10.7.1 says.
 */
import { TcpConnection, type OutSegment, type TcpErrorCode, type TcpHost, type TcpSettings, type TcpState } from '../../services/lpar/net/tcp/tcp-connection.ts';
import { TCP_HEADER, TcpFlag, TcpSegment, emitTcpHeader, seqAdd, tcpOptionsLength, type TcpOptions } from '../../shared/wire/tcp.ts';
import { LossyWire, type Side, type Verdict } from './lossy-wire.ts';
import { prng, randomBytes as prngBytes } from './prng.ts';
import { waitForFast } from './wait.ts';

export { prng, type Side, type Verdict };

export const SETTINGS: TcpSettings = { mss: 1000, rcvBuf: 64 * 1024, sndBuf: 64 * 1024, maxRetransmits: 5, delayedAckMs: 20, timeWaitMs: 200, minRtoMs: 30 };

/** Seeded random bytes: `n` bytes of a fresh prng(seed). */
export function randomBytes(n: number, seed: number): Buffer {
  return prngBytes(prng(seed), n);
}

/** The wire form of a segment, as tcp.ts makes it (checksum left 0). */
export function encode(seg: OutSegment, srcPort: number, dstPort: number): Buffer {
  const header = Buffer.alloc(TCP_HEADER + tcpOptionsLength(seg.options));
  emitTcpHeader(header, 0, { srcPort, dstPort, seq: seg.seq, ack: seg.ack, flags: seg.flags, window: seg.window, options: seg.options });
  return Buffer.concat([header, ...seg.payload]);
}

/** One end: the connection's host (what a socket would see) and the TCP layer around it. */
export class Endpoint {
  conn: TcpConnection | undefined;
  /** Make a passive connection for a SYN that finds no connection (a listener). */
  listening = false;
  /** Read delivered data at once (host.unread stays 0); otherwise it piles up until `readAll`. */
  autoRead = true;
  /** What the application has read, in order. */
  readonly received: Buffer[] = [];
  private readonly unreadChunks: Buffer[] = [];
  private unreadBytes = 0;
  /** How often each host callback was called. */
  eofs = 0;
  connects = 0;
  writables = 0;
  readonly closedWith: Array<TcpErrorCode | undefined> = [];
  /** Distinct states in the order seen. */
  readonly states: TcpState[] = [];
  /** The connection called onRelease (the layer would free its quadruple). */
  released = false;
  /** Segments this side put on the wire and segments that reached its connection, parsed. */
  readonly sent: TcpSegment[] = [];
  readonly arrived: TcpSegment[] = [];
  /** Extra SYN options, and the options seen on the peer's SYN. */
  experimental: TcpOptions['experimental'];
  peerOptions: TcpOptions | undefined;
  /** Called when established (after the bookkeeping), and when send-buffer space frees. */
  onConnected: (() => void) | undefined;
  onWritable: (() => void) | undefined;
  /** Rewrites what this side sends before it is encoded (to strip options, say). */
  rewrite: ((seg: OutSegment) => OutSegment) | undefined;

  readonly host: TcpHost = {
    transmit: (seg) => {
      this.track();
      this.pair.carry(this.side, this.rewrite ? this.rewrite(seg) : seg);
    },
    deliver: (data) => {
      if (this.autoRead) this.received.push(data);
      else {
        this.unreadChunks.push(data);
        this.unreadBytes += data.length;
      }
    },
    unread: () => this.unreadBytes,
    eof: () => {
      this.eofs++;
      this.track();
    },
    connected: () => {
      this.connects++;
      this.track();
      this.onConnected?.();
    },
    closed: (code) => {
      this.closedWith.push(code);
      this.track();
    },
    writable: () => {
      this.writables++;
      this.onWritable?.();
    },
    synOptions: () => this.experimental,
    peerSynOptions: (o) => {
      this.peerOptions = o;
    },
  };

  constructor(
    private readonly pair: Pair,
    readonly side: Side,
    readonly settings: TcpSettings,
  ) {}

  get port(): number {
    return this.side === 0 ? 40000 : 80;
  }

  /** Bytes the application has read. */
  get bytesReceived(): number {
    let n = 0;
    for (const b of this.received) n += b.length;
    return n;
  }

  get unread(): number {
    return this.unreadBytes;
  }

  data(): Buffer {
    return Buffer.concat(this.received);
  }

  /** The connection, which must exist. */
  get c(): TcpConnection {
    if (!this.conn) throw new Error(`side ${this.side} has no connection`);
    return this.conn;
  }

  get state(): TcpState | undefined {
    return this.conn?.state;
  }

  info(): Record<string, number> {
    return this.c.info() as Record<string, number>;
  }

  /** Data segments this side sent (payload > 0). */
  dataSegments(): TcpSegment[] {
    return this.sent.filter((s) => s.payload.length > 0);
  }

  track(): void {
    const s = this.conn?.state;
    if (s !== undefined && this.states[this.states.length - 1] !== s) this.states.push(s);
  }

  /** A new connection with this endpoint as its host. */
  open(): TcpConnection {
    const conn = new TcpConnection(this.host, this.settings);
    conn.onRelease = () => {
      this.released = true;
      this.track();
    };
    this.conn = conn;
    this.released = false;
    return conn;
  }

  connect(): void {
    this.open().connect();
    this.track();
  }

  close(): void {
    this.c.close();
    this.track();
  }

  send(data: Buffer): boolean {
    const r = this.c.send(data);
    this.track();
    return r;
  }

  /**
   * Writes all of `data` as the socket would: chunks while send() says there
   * is room, the rest on writable; with `end`, CLOSE after the last chunk
   * (as the socket's end() does).
   */
  feed(data: Buffer, opts: { chunk?: number; end?: boolean } = {}): void {
    const chunk = opts.chunk ?? 16 * 1024;
    let off = 0;
    let ended = false;
    const pump = (): void => {
      while (off < data.length && this.conn && (this.conn.state === 'ESTABLISHED' || this.conn.state === 'CLOSE-WAIT')) {
        const n = Math.min(chunk, data.length - off);
        const room = this.send(data.subarray(off, off + n));
        off += n;
        if (!room) return;
      }
      if (opts.end && off === data.length && !ended) {
        ended = true;
        this.close();
      }
    };
    this.onWritable = pump;
    pump();
  }

  /** The application reads everything delivered so far. */
  readAll(): void {
    this.received.push(...this.unreadChunks.splice(0));
    this.unreadBytes = 0;
    this.conn?.read();
    this.track();
  }

  /** A segment from the wire. */
  arrive(bytes: Buffer): void {
    const seg = TcpSegment.parse(bytes);
    if (this.conn && !this.released) {
      this.arrived.push(seg);
      this.conn.segmentArrives(seg);
      this.track();
      return;
    }
    if (this.listening && seg.isSyn && !seg.isAck && !seg.isRst) {
      const conn = this.open();
      // As tcp.ts does for a listener's connection.
      conn.passive = true;
      this.arrived.push(seg);
      conn.acceptSyn(seg);
      this.track();
      return;
    }
    // RFC 9293 3.10.7.1, as tcp.ts does it: reset anything that is not a reset.
    if (seg.isRst) return;
    if (seg.isAck) this.pair.carry(this.side, { seq: seg.ack, ack: 0, flags: TcpFlag.Rst, window: 0, payload: [] });
    else this.pair.carry(this.side, { seq: 0, ack: seqAdd(seg.seq, seg.segmentLength), flags: TcpFlag.Rst | TcpFlag.Ack, window: 0, payload: [] });
  }
}

/**
 * Two endpoints (a = side 0, the active opener by default; b = side 1,
 * listening) and the wire between them: the pair is the LossyWire, so its
 * faults (drop, dup, delayMs, jitterMs) and counters are set and read on it.
 */
export class Pair extends LossyWire {
  readonly a: Endpoint;
  readonly b: Endpoint;
  /** Decides per segment before the random faults; `pass` leaves it to them. */
  filter: ((from: Side, seg: TcpSegment) => Verdict) | undefined;
  /** A side that has vanished neither receives nor sends anything. */
  readonly vanished: [boolean, boolean] = [false, false];

  constructor(seed = 1, settings: TcpSettings | [TcpSettings, TcpSettings] = SETTINGS) {
    super(prng(seed), (to, bytes) => this.end(to).arrive(bytes));
    this.canSend = this.canReceive = (side) => !this.vanished[side];
    const [sa, sb] = Array.isArray(settings) ? settings : [settings, settings];
    this.a = new Endpoint(this, 0, sa);
    this.b = new Endpoint(this, 1, sb);
    this.b.listening = true;
  }

  end(side: Side): Endpoint {
    return side === 0 ? this.a : this.b;
  }

  /** Puts a segment from `from` on the wire. */
  carry(from: Side, seg: OutSegment): void {
    const src = this.end(from);
    const dst = this.end((from ^ 1) as Side);
    const bytes = encode(seg, src.port, dst.port);
    const parsed = TcpSegment.parse(bytes);
    src.sent.push(parsed);
    const filter = this.filter;
    this.send(from, bytes, filter && (() => filter(from, parsed)));
  }

  /** Hands raw segment fields straight to side `to`, as if from the peer (for crafted segments). */
  inject(to: Side, seg: Partial<OutSegment> & { seq: number; flags: number }): void {
    const from = this.end((to ^ 1) as Side);
    const full: OutSegment = { ack: 0, window: 1000, payload: [], ...seg };
    this.end(to).arrive(encode(full, from.port, this.end(to).port));
  }

  /** Both ends established. */
  async established(timeoutMs = 5000): Promise<void> {
    await waitForFast('both ends ESTABLISHED', () => this.a.state === 'ESTABLISHED' && this.b.state === 'ESTABLISHED', timeoutMs);
  }

  /** Opens a (active) to b (listening) and waits for both to be established. */
  async open(timeoutMs = 5000): Promise<void> {
    this.a.connect();
    await this.established(timeoutMs);
  }

  /** Stops the wire and every timer of both connections. */
  dispose(): void {
    this.close();
    for (const e of [this.a, this.b]) if (e.conn && e.conn.state !== 'CLOSED') e.conn.abort();
  }
}
