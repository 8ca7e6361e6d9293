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
  /** A frame is being sent piece by piece (sendStart): whole frames wait in `behind` until its last piece. */
  private piecing = false;
  private behind: Buffer[] = [];
  private behindBytes = 0;

  constructor(
    private readonly socket: net.Socket,
    readonly remote: string,
  ) {
    super();
    socket.setNoDelay?.(true);
    this.decoder = new FrameDecoder((f) => this.deliver(f));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (err) {
        // A bad length prefix leaves no way to find the next frame: drop the link.
        this.socket.destroy(err instanceof FrameError ? err : new FrameError(String(err)));
      }
    });
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

  get writable(): boolean {
    return !this.closed && this.queued < HIGH_WATER;
  }

  get queued(): number {
    return this.socket.writableLength + this.behindBytes;
  }

  send(frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.piecing) return this.wait(frame);
    this.cork();
    this.socket.write(frame);
    return this.socket.writableLength < HIGH_WATER;
  }

  sendParts(head: Buffer, body: Buffer): boolean {
    if (this.closed) return false;
    if (this.piecing) {
      this.wait(head);
      return this.wait(body);
    }
    this.cork();
    this.socket.write(head);
    this.socket.write(body);
    return this.socket.writableLength < HIGH_WATER;
  }

  sendStart(head: Buffer): boolean {
    if (this.closed) return false;
    if (this.piecing) throw new Error('a frame is already being sent piece by piece on this link');
    this.piecing = true;
    this.cork();
    this.socket.write(head);
    return this.queued < HIGH_WATER;
  }

  sendPiece(bytes: Buffer, last: boolean): boolean {
    if (this.closed) return false;
    this.cork();
    this.socket.write(bytes);
    if (last) {
      this.piecing = false;
      const behind = this.behind;
      this.behind = [];
      this.behindBytes = 0;
      for (const f of behind) this.socket.write(f);
    }
    return this.queued < HIGH_WATER;
  }

  private wait(bytes: Buffer): boolean {
    this.behind.push(bytes);
    this.behindBytes += bytes.length;
    return this.queued < HIGH_WATER;
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
    const socket = net.connect(path);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(new UnixLink(socket, `unix:${path}`));
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
