import { WebSocket, WebSocketServer } from 'ws';
import { FrameDelivery, HIGH_WATER, noop, type Link, type LinkServer } from './link.ts';
import { LENGTH_PREFIX, MAX_FRAME } from './frame.ts';
import { PRE_AUTH, registerTransportGuard } from './pre-auth.ts';

/**
 * Largest WebSocket message: one frame of MAX_FRAME behind its length prefix,
 * as on a UNIX socket (issue 11 item 10: ws took 64 MB messages).
 */
const MAX_MESSAGE = LENGTH_PREFIX + MAX_FRAME;

/**
 * A link over a WebSocket: one binary message per frame, the length prefix
 * kept so both transports carry identical bytes. A two-part frame goes out as
 * one fragmented message, so the body is never copied to join it.
 */
export class WsLink extends FrameDelivery implements Link {
  onDrain: () => void = noop;
  onClose: (err?: Error) => void = noop;
  closed = false;
  /** Frames whose length prefix disagreed with the message: counted, dropped. */
  malformed = 0;
  private unsent = 0;
  private blocked = false;

  constructor(
    private readonly ws: WebSocket,
    readonly remote: string,
  ) {
    super();
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer) => {
      if (data.length <= LENGTH_PREFIX || data.length > MAX_MESSAGE || data.readUInt32BE(0) !== data.length - LENGTH_PREFIX) {
        this.malformed++;
        return;
      }
      this.deliver(data);
    });
    let closeError: Error | undefined;
    ws.on('error', (err) => {
      closeError = err;
    });
    ws.on('close', () => {
      this.closed = true;
      this.onClose(closeError);
    });
  }

  get writable(): boolean {
    return !this.closed && this.unsent < HIGH_WATER;
  }

  get queued(): number {
    return this.unsent;
  }

  private readonly written = (length: number) => () => {
    this.unsent -= length;
    if (this.blocked && this.unsent < HIGH_WATER / 2) {
      this.blocked = false;
      this.onDrain();
    }
  };

  send(frame: Buffer): boolean {
    if (this.closed) return false;
    this.unsent += frame.length;
    this.ws.send(frame, { binary: true }, this.written(frame.length));
    return this.checkWater();
  }

  sendParts(head: Buffer, body: Buffer): boolean {
    if (this.closed) return false;
    this.unsent += head.length + body.length;
    this.ws.send(head, { binary: true, fin: false });
    this.ws.send(body, { binary: true, fin: true }, this.written(head.length + body.length));
    return this.checkWater();
  }

  private checkWater(): boolean {
    if (this.unsent < HIGH_WATER) return true;
    this.blocked = true;
    return false;
  }

  pause(): void {
    this.ws.pause();
  }
  resume(): void {
    this.ws.resume();
  }
  close(): void {
    this.ws.terminate();
  }

  /**
   * An accepted connection's limits until its peer authenticates (PRE_AUTH):
   * bytes are counted as they come off the socket, since the ws library
   * assembles a whole message (up to MAX_MESSAGE) before anyone sees it, and
   * a peer that does not authenticate in time is cut off even if no
   * listener code ever looks at it. Lifted by guardPreAuth's lift().
   */
  guardUntilAuthenticated(socket: { on(e: 'data', fn: (chunk: Buffer) => void): unknown; off(e: 'data', fn: (chunk: Buffer) => void): unknown }): void {
    let bytes = 0;
    const count = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > PRE_AUTH.budget) {
        this.preAuthRefused = `more than ${PRE_AUTH.budget} bytes before authentication`;
        lift();
        this.close();
      }
    };
    const timer = setTimeout(() => {
      this.preAuthRefused = `not authenticated within ${PRE_AUTH.deadlineMs} ms`;
      this.close();
    }, PRE_AUTH.deadlineMs);
    timer.unref?.();
    const lift = () => {
      clearTimeout(timer);
      socket.off('data', count);
    };
    socket.on('data', count);
    this.ws.once('close', lift);
    registerTransportGuard(this, lift);
  }

  /** Why the pre-authentication guard cut this link off, if it did. */
  preAuthRefused?: string;
}

export function connectWs(url: string): Promise<Link> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_MESSAGE });
    ws.once('open', () => {
      ws.removeListener('error', reject);
      resolve(new WsLink(ws, url));
    });
    ws.once('error', reject);
  });
}

export async function listenWs(url: string, onLink: (link: Link) => void): Promise<LinkServer> {
  const u = new URL(url);
  const wss = new WebSocketServer({ host: u.hostname, port: Number(u.port), perMessageDeflate: false, maxPayload: MAX_MESSAGE });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  wss.on('connection', (ws, req) => {
    const link = new WsLink(ws, `ws:${req.socket.remoteAddress}:${req.socket.remotePort}`);
    link.guardUntilAuthenticated(req.socket);
    onLink(link);
  });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
