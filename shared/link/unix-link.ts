import net from 'node:net';
import fs from 'node:fs';
import { FrameDecoder, FrameError, type CutThroughSink } from './frame.ts';
import { FrameDelivery, HIGH_WATER, noop, type Link, type LinkServer } from './link.ts';

/** sockaddr_un.sun_path is 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export function checkSocketPath(path: string): void {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new Error(`UNIX socket path is ${Buffer.byteLength(path)} bytes, the limit is ${MAX_SOCKET_PATH}: ${path} (use a shorter --run-dir)`);
  }
}

/** The least a read asks for: what Node reads by default. */
const READ_MIN = 64 * 1024;
/** The most one read asks for, however large the frame under way. */
const READ_MAX = 1024 * 1024;

/** Memory reads are carved from, as Node's Buffer pool does: small reads cost no allocation each. */
const SLAB = 256 * 1024;

/**
 * Buffers for the reads of a socket that lets us hand them over (net.connect's
 * `onread`), so that a frame larger than Node's 64 KiB read is not copied
 * together from two (issue 10 item 6, the receiver's half). Reads are carved
 * one after another from a slab, each starting where the last one's data
 * ended (what a read did not fill is offered again; memory a frame was handed
 * on in never is). At a frame boundary a read gets room for at least the last
 * frame's length, so a stream of 64 KiB messages (65,580-byte frames) comes a
 * frame per read; a read that ended inside a frame is followed by one for just
 * what completes it, right behind it in the same slab when it fits there, and
 * the decoder then hands the frame on as one view (no copy). Only a frame that
 * runs past the end of a slab is copied together.
 */
export class ReadBuffers {
  private slab: Buffer = Buffer.alloc(0);
  private used = 0;

  constructor(private readonly decoder: FrameDecoder) {}

  /** Where the next read goes. */
  next(): Buffer {
    const left = this.decoder.remaining;
    const want = left > 0 ? Math.min(left, READ_MAX) : Math.min(Math.max(READ_MIN, this.decoder.lastLength), READ_MAX);
    if (this.slab.length - this.used < want) {
      this.slab = Buffer.allocUnsafe(Math.max(SLAB, want));
      this.used = 0;
    }
    return this.slab.subarray(this.used, this.used + want);
  }

  /** A read put `n` bytes into the buffer `next` gave: they are the decoder's now. */
  filled(n: number): void {
    this.used += n;
  }
}

/**
 * A link over a UNIX stream socket. Writes issued in one tick are corked and
 * leave as a single writev, so many small frames cost one system call.
 */
export class UnixLink extends FrameDelivery implements Link {
  onDrain: () => void = noop;
  onClose: (err?: Error) => void = noop;
  closed = false;
  private corked = false;
  private readonly decoder: FrameDecoder;
  private readonly reads: ReadBuffers;

  /**
   * `reads`: the socket was made with an `onread` that hands its reads here
   * (`received`, sized by `nextRead`) instead of emitting 'data'.
   */
  constructor(
    private readonly socket: net.Socket,
    readonly remote: string,
    reads: 'data' | 'onread' = 'data',
  ) {
    super();
    socket.setNoDelay?.(true);
    this.decoder = new FrameDecoder((f) => this.deliver(f));
    this.reads = new ReadBuffers(this.decoder);
    if (reads === 'data') socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('drain', () => this.onDrain());
    let closeError: Error | undefined;
    socket.on('error', (err) => {
      closeError = err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.onClose(closeError);
    });
  }

  /** Bytes read from the socket. */
  received(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
    } catch (err) {
      // A bad length prefix leaves no way to find the next frame: drop the link.
      this.socket.destroy(err instanceof FrameError ? err : new FrameError(String(err)));
    }
  }

  /** The memory the next read goes to (never memory a frame handed on is a view of). */
  nextRead(): Buffer {
    return this.reads.next();
  }

  /** A read of `n` bytes into what nextRead gave. */
  readInto(buf: Uint8Array, n: number): void {
    this.reads.filled(n);
    this.received(Buffer.from(buf.buffer, buf.byteOffset, n));
  }

  get writable(): boolean {
    return !this.closed && this.socket.writableLength < HIGH_WATER;
  }

  get queued(): number {
    return this.socket.writableLength;
  }

  send(frame: Buffer): boolean {
    if (this.closed) return false;
    this.cork();
    this.socket.write(frame);
    return this.socket.writableLength < HIGH_WATER;
  }

  sendParts(head: Buffer, body: Buffer): boolean {
    if (this.closed) return false;
    this.cork();
    this.socket.write(head);
    this.socket.write(body);
    return this.socket.writableLength < HIGH_WATER;
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  setCutThrough(sink: CutThroughSink | undefined): void {
    this.decoder.sink = sink;
  }

  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  close(): void {
    this.socket.destroy();
  }
}

export function connectUnix(path: string): Promise<Link> {
  checkSocketPath(path);
  return new Promise((resolve, reject) => {
    let link: UnixLink | undefined;
    // Reads before the link exists (none are expected: reading starts after 'connect') are kept for it.
    const early: Buffer[] = [];
    const socket = net.connect({
      path,
      onread: {
        buffer: () => (link ? link.nextRead() : Buffer.allocUnsafe(READ_MIN)),
        callback: (n: number, buf: Uint8Array) => {
          if (link) link.readInto(buf, n);
          else early.push(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      link = new UnixLink(socket, `unix:${path}`, 'onread');
      for (const c of early) link.received(c);
      resolve(link);
    });
    socket.once('error', reject);
  });
}

export async function listenUnix(path: string, onLink: (link: Link) => void): Promise<LinkServer> {
  checkSocketPath(path);
  // A socket file left by a killed process would make listen fail with EADDRINUSE.
  try {
    fs.unlinkSync(path);
  } catch {
    /* not there */
  }
  const server = net.createServer((socket) => onLink(new UnixLink(socket, `unix:${path}#${socket.remotePort ?? 'peer'}`)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    url: `unix:${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
