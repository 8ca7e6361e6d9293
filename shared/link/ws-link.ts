import { WebSocket, WebSocketServer } from 'ws';
import { FrameDelivery, HIGH_WATER, noop, type Link, type LinkServer } from './link.ts';
import { LENGTH_PREFIX } from './frame.ts';

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
      if (data.length <= LENGTH_PREFIX || data.readUInt32BE(0) !== data.length - LENGTH_PREFIX) {
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
}

export function connectWs(url: string): Promise<Link> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    ws.once('open', () => {
      ws.removeListener('error', reject);
      resolve(new WsLink(ws, url));
    });
    ws.once('error', reject);
  });
}

export async function listenWs(url: string, onLink: (link: Link) => void): Promise<LinkServer> {
  const u = new URL(url);
  const wss = new WebSocketServer({ host: u.hostname, port: Number(u.port), perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  wss.on('connection', (ws, req) => onLink(new WsLink(ws, `ws:${req.socket.remoteAddress}:${req.socket.remotePort}`)));
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
