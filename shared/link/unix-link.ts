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

/**
 * Buffers for the reads of a socket that lets us hand them over (net.connect's
 * `onread`), so that a frame larger than Node's 64 KiB read is not copied
 * together from two (issue 10 item 6, the receiver's half). At a frame
 * boundary a read gets room for at least the last frame's length, so a stream
 * of 64 KiB messages (65,580-byte frames) comes a frame per read. A read that
 * ended inside a frame is followed by one into the rest of the same buffer,
 * right behind the frame's start, when the frame fits there: the decoder then
 * hands the frame on as one view of that buffer, no copy. Otherwise the next
 * read asks for just what completes the frame.
 */
export class ReadBuffers {
  private last: Buffer = Buffer.alloc(0);

  constructor(private readonly decoder: FrameDecoder) {}

  next(): Buffer {
    const left = this.decoder.remaining;
    if (left > 0) {
      const head = this.decoder.pendingPiece;
      const last = this.last;
      if (head !== undefined && head.buffer === last.buffer) {
        const end = head.byteOffset + head.length;
        if (end + left <= last.byteOffset + last.length) return Buffer.from(last.buffer, end, left);
      }
      return (this.last = Buffer.allocUnsafe(Math.min(left, READ_MAX)));
    }
    return (this.last = Buffer.allocUnsafe(Math.min(Math.max(READ_MIN, this.decoder.lastLength), READ_MAX)));
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
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (link) link.received(chunk);
          else early.push(chunk);
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
