import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { ipToString, parseIp } from '../../../../shared/wire/ipv4-address.ts';
import type { TcpOptions } from '../../../../shared/wire/tcp.ts';
import type { IpLayer } from '../ip/ip-layer.ts';
import type { Smc } from '../smc/smc.ts';
import { SmcSession } from '../smc/smc-session.ts';
import type { Quad, Tcp } from '../tcp/tcp.ts';
import { TcpState, type TcpConnection, type TcpErrorCode, type TcpHost } from '../tcp/tcp-connection.ts';
import { normalizeArgs, validatePort } from './normalize-args.ts';

const ERRNO: Record<string, number> = { ECONNREFUSED: -111, ECONNRESET: -104, ETIMEDOUT: -110, EPIPE: -32, EADDRINUSE: -98, ENETUNREACH: -101 };

/** An error shaped like libuv's through node:net (code, errno, syscall, address, port). */
function netError(code: string, syscall: string, address?: string, port?: number): NodeJS.ErrnoException {
  const where = address !== undefined ? ` ${address}${port !== undefined ? `:${port}` : ''}` : '';
  const err = new Error(`${syscall} ${code}${where}`) as NodeJS.ErrnoException & { address?: string; port?: number };
  err.code = code;
  err.errno = ERRNO[code];
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

export interface ConnectOptions {
  port: number;
  host?: string;
  localAddress?: string;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  timeout?: number;
}

/**
 * A TCP socket of the partition's own stack with node:net's Socket shape: a
 * Duplex with backpressure both ways (writes wait for send-buffer space; the
 * receive window shrinks while data sits unread), setNoDelay, setKeepAlive,
 * setTimeout, ref/unref, address(), remote/local address and port,
 * bytesRead/bytesWritten, end (half-close) and destroy, and Node's error codes.
 * Node's own http runs on it unmodified.
 */
export class Socket extends Duplex {
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  localAddress?: string;
  localPort?: number;
  connecting = false;
  bytesRead = 0;
  private conn?: TcpConnection;
  private waitingWrite?: () => void;
  private readonly beforeConnect: Array<{ chunk: Buffer; cb: (err?: Error | null) => void }> = [];
  private idleMs = 0;
  private idleTimer?: NodeJS.Timeout;
  private noDelayWanted = false;
  private keepAlive: [boolean, number] = [false, 0];
  /** SMC under this socket (seed 002): negotiation, then the data path, or plain TCP. */
  private smc?: SmcSession;
  private smcBytesOut = 0;
  private readonly heldWrites: Array<{ chunk: Buffer; cb: (err?: Error | null) => void }> = [];

  constructor(
    private readonly net: Net,
    opts: { allowHalfOpen?: boolean } = {},
  ) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false, decodeStrings: true });
  }

  get bytesWritten(): number {
    return Number(this.conn?.stats.bytesOut ?? 0) + this.smcBytesOut;
  }

  get pending(): boolean {
    return !this.conn || this.connecting;
  }

  get readyState(): string {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** connect(port[, host][, cb]) or connect(options[, cb]). */
  connect(...args: unknown[]): this {
    const [raw, cb] = normalizeArgs(args);
    const opts = { ...raw, port: validatePort(raw.port, false) } as ConnectOptions;
    if (cb) this.once('connect', cb);
    if (opts.noDelay) this.noDelayWanted = true;
    if (opts.keepAlive) this.keepAlive = [true, opts.keepAliveInitialDelay ?? 0];
    if (opts.timeout) this.setTimeout(opts.timeout);
    const host = opts.host === undefined || opts.host === 'localhost' ? this.net.localhost() : opts.host;
    let remoteIp: number;
    try {
      remoteIp = parseIp(host);
    } catch {
      queueMicrotask(() => this.destroy(netError('ENOTFOUND', 'getaddrinfo', host)));
      return this;
    }
    const ifc = this.net.ip.route(remoteIp);
    const localIp = ifc ? ifc.ip : this.net.ownAddress(remoteIp);
    if (localIp === undefined) {
      queueMicrotask(() => this.destroy(netError('ENETUNREACH', 'connect', host, opts.port)));
      return this;
    }
    const quad: Quad = { localIp, localPort: this.net.tcp.ephemeralPort(remoteIp, opts.port, localIp), remoteIp, remotePort: opts.port };
    this.setQuad(quad);
    this.connecting = true;
    const smc = this.net.smc;
    if (!smc || localIp === remoteIp) {
      this.openTcp(quad);
      return this;
    }
    // Seed 003: ask where the peer lives once for this connection, then send the SYN (with the SMC offer if it applies).
    const session = new SmcSession(smc, this.smcHooks(), 'client', host);
    this.smc = session;
    void session.locate().then(() => {
      if (!this.destroyed) this.openTcp(quad);
    });
    return this;
  }

  private openTcp(quad: Quad): void {
    this.conn = this.net.tcp.open(quad, this.host());
    this.conn.noDelay = this.noDelayWanted;
    this.conn.connect();
  }

  /** A listener's connection: the socket is its host from the SYN on. */
  attachIncoming(quad: Quad, attach: (host: TcpHost) => TcpConnection): void {
    this.setQuad(quad);
    this.connecting = true;
    if (this.net.smc) this.smc = new SmcSession(this.net.smc, this.smcHooks(), 'server', ipToString(quad.remoteIp));
    this.conn = attach(this.host());
  }

  private setQuad(q: Quad): void {
    this.remoteAddress = ipToString(q.remoteIp);
    this.remotePort = q.remotePort;
    this.remoteFamily = 'IPv4';
    this.localAddress = ipToString(q.localIp);
    this.localPort = q.localPort;
  }

  private host(): TcpHost {
    return {
      transmit: () => {},
      deliver: (data) => {
        if (this.smc?.takesTcp) {
          this.smc.tcpData(data);
          return;
        }
        this.bytesRead += data.length;
        this.touch();
        this.push(data);
      },
      unread: () => this.readableLength,
      eof: () => {
        if (this.smc?.takesTcp) this.smc.tcpEof();
        else if (!this.readableEnded) this.push(null);
      },
      connected: () => {
        if (this.smc) this.smc.tcpConnected();
        else this.ready();
      },
      closed: (code) => {
        if (this.smc?.takesTcp) this.smc.tcpClosed(code);
        else this.onClosed(code);
      },
      writable: () => {
        const w = this.waitingWrite;
        this.waitingWrite = undefined;
        w?.();
      },
      synOptions: () => this.smc?.synOptions(),
      peerSynOptions: (o: TcpOptions) => this.smc?.peerSynOptions(o),
      // `lparlab ss` lists the TCP layer's connections: the SMC session's transport, state and cursors go with each
      // (this socket's info() alone was never reached by it, so ss said "tcp" for SMC-D and SMC-R connections too).
      info: () => this.smc?.info(),
    };
  }

  /** The connection is the app's now (after the SMC negotiation, if there was one). */
  private ready(): void {
    if (this.destroyed) return;
    this.connecting = false;
    this.conn!.noDelay = this.noDelayWanted;
    if (this.keepAlive[0]) this.conn!.setKeepAlive(true, this.keepAlive[1]);
    for (const w of this.beforeConnect.splice(0)) this._write(w.chunk, 'binary', w.cb);
    this.emit('connect');
    this.emit('ready');
    this.emitConnected();
  }

  /** What the SMC session does to this socket and its TCP connection. */
  private smcHooks() {
    return {
      tcpSend: (data: Buffer) => {
        this.conn?.send(data);
      },
      tcpClose: () => this.conn?.close(),
      ready: () => this.ready(),
      push: (data: Buffer) => {
        this.bytesRead += data.length;
        this.touch();
        return this.push(data);
      },
      pushEof: () => {
        if (!this.readableEnded) this.push(null);
      },
      fail: (code: string, why: string) => {
        const wasConnecting = this.connecting;
        this.connecting = false;
        const err = netError(code, wasConnecting ? 'connect' : 'read', this.remoteAddress, wasConnecting ? this.remotePort : undefined);
        err.message += ` (${why})`;
        this.destroy(err);
      },
      finished: () => {
        // SMC closed both ways: the TCP connection closes behind it (FIN), and the socket is done.
        process.nextTick(() => {
          this.conn?.close();
          if (!this.destroyed) {
            if (this.readableLength > 0) this.once('end', () => this.destroy());
            else this.destroy();
          }
        });
      },
      flushHeldWrites: () => {
        for (const w of this.heldWrites.splice(0)) this._write(w.chunk, 'binary', w.cb);
      },
      tcpProgress: () => ({ unacked: this.conn?.bufferedBytes ?? 0, segmentsIn: this.conn?.stats.segmentsIn ?? 0 }),
    };
  }

  /** Set by a server to hear of the connection once it is established. */
  emitConnected: () => void = () => {};

  private onClosed(code?: TcpErrorCode): void {
    const wasConnecting = this.connecting;
    this.connecting = false;
    if (code) {
      this.destroy(netError(code, wasConnecting ? 'connect' : 'read', this.remoteAddress, wasConnecting ? this.remotePort : undefined));
      return;
    }
    // Both directions are done (or we are in TIME-WAIT): the socket is over.
    if (!this.readableEnded) this.push(null);
    if (this.destroyed) return;
    // Data delivered but not read yet (a paused reader) is not thrown away: as with node:net, the socket ends once it is read.
    if (this.readableLength > 0) this.once('end', () => this.destroy());
    else this.destroy();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const conn = this.conn;
    if (!conn || this.connecting) {
      this.beforeConnect.push({ chunk, cb });
      return;
    }
    const smc = this.smc;
    if (smc?.path) {
      this.touch();
      this.smcBytesOut += chunk.length;
      smc.path.write(chunk, (err) => cb(err ? netError((err as NodeJS.ErrnoException).code ?? 'EPIPE', 'write') : undefined));
      return;
    }
    if (smc?.holdsWrites) {
      this.heldWrites.push({ chunk, cb });
      return;
    }
    if (conn.state !== TcpState.Established && conn.state !== TcpState.CloseWait) {
      cb(netError('EPIPE', 'write'));
      return;
    }
    this.touch();
    if (conn.send(chunk)) cb();
    else this.waitingWrite = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const finish = () => {
      if (this.smc?.path) this.smc.path.end();
      else if (this.smc?.holdsWrites) this.heldWrites.push({ chunk: Buffer.alloc(0), cb: () => this.conn?.close() });
      else this.conn?.close();
      cb();
    };
    if (this.connecting) this.once('connect', finish);
    else finish();
  }

  override _read(): void {
    if (this.smc?.path) this.smc.path.resume();
    else this.conn?.read();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.clearIdle();
    if (this.smc?.takesTcp) this.smc.close(err !== null || this.readableLength > 0);
    const conn = this.conn;
    if (conn && conn.state !== TcpState.Closed && conn.state !== TcpState.TimeWait) {
      // Like closing a kernel socket: data unread or an error → RST; otherwise FIN and let the stack finish
      // (orphaned: FIN-WAIT-2 is bounded, issue 11 item 3).
      if (err || this.readableLength > 0 || this.connecting) conn.abort();
      else conn.close(true);
    }
    cb(err);
  }

  setNoDelay(noDelay = true): this {
    this.noDelayWanted = noDelay;
    if (this.conn) this.conn.noDelay = noDelay;
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.keepAlive = [enable, initialDelay];
    if (this.conn && !this.connecting) this.conn.setKeepAlive(enable, initialDelay);
    return this;
  }

  /** Emits 'timeout' after `ms` without activity, as node:net does (the socket stays open). */
  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb) this.once('timeout', cb);
    this.touch();
    return this;
  }

  private touch(): void {
    this.clearIdle();
    if (this.idleMs > 0 && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
    }
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    return this.localAddress ? { address: this.localAddress, family: 'IPv4', port: this.localPort! } : {};
  }

  /**
   * node:net's ref/unref decide whether an open socket keeps the process
   * alive. A partition's sockets hold no OS handle of their own (the
   * partition process lives as long as the partition does), so there is
   * nothing to hold or release: both are accepted and chain, as in node:net.
   */
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** What `lparlab ss` shows of this socket. */
  info(): Record<string, unknown> | undefined {
    const tcp = this.conn?.info();
    return tcp && this.smc ? { ...tcp, ...this.smc.info() } : tcp;
  }
}

export interface ListenOptions {
  port?: number;
  host?: string;
  backlog?: number;
}

/** node:net's Server over the partition's TCP: listen, address, close, getConnections; 'connection', 'listening', 'close', 'error'. */
export class Server extends EventEmitter {
  listening = false;
  maxConnections?: number;
  private port = 0;
  private ipAddr = 0;
  private readonly sockets = new Set<Socket>();
  private closing = false;

  constructor(
    private readonly net: Net,
    listener?: (socket: Socket) => void,
    private readonly opts: { allowHalfOpen?: boolean } = {},
  ) {
    super();
    if (listener) this.on('connection', listener);
  }

  /** listen(port[, host][, backlog][, cb]) or listen(options[, cb]). */
  listen(...args: unknown[]): this {
    const [raw, cb] = normalizeArgs(args);
    // listen(port, host, backlog) or listen(port, backlog): Node takes the backlog from either place.
    const positionalBacklog = typeof args[0] !== 'object' ? [args[1], args[2]].find((a) => typeof a === 'number') : undefined;
    const o = { ...raw, port: raw.port === undefined ? 0 : validatePort(raw.port, true), backlog: (raw.backlog as number | undefined) ?? positionalBacklog } as ListenOptions;
    if (cb) this.once('listening', cb);
    const ip = o.host && o.host !== '0.0.0.0' && o.host !== '::' ? parseIp(o.host) : 0;
    const port = o.port || this.net.tcp.ephemeralPort(0, 0, ip);
    const server = this;
    const backlog = o.backlog ?? 511;
    try {
      this.net.tcp.listen({
        ip,
        port,
        backlog,
        pending: 0,
        incoming(quad, attach) {
          if (server.maxConnections !== undefined && server.sockets.size >= server.maxConnections) return;
          const socket = new Socket(server.net, { allowHalfOpen: server.opts.allowHalfOpen });
          this.pending++;
          const listener = this;
          let counted = true;
          const settle = () => {
            if (counted) {
              counted = false;
              listener.pending--;
            }
          };
          socket.emitConnected = () => {
            settle();
            server.sockets.add(socket);
            socket.once('close', () => {
              server.sockets.delete(socket);
              server.maybeClosed();
            });
            server.emit('connection', socket);
          };
          socket.once('close', settle);
          socket.on('error', () => {});
          socket.attachIncoming(quad, attach);
        },
      });
    } catch (err) {
      queueMicrotask(() => this.emit('error', err));
      return this;
    }
    this.port = port;
    this.ipAddr = ip;
    this.listening = true;
    queueMicrotask(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; family: string; port: number } | null {
    return this.listening ? { address: ipToString(this.ipAddr), family: 'IPv4', port: this.port } : null;
  }

  close(cb?: (err?: Error) => void): this {
    if (!this.listening) {
      const err = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
      if (cb) queueMicrotask(() => cb(err));
      return this;
    }
    this.net.tcp.unlisten(this.port);
    this.listening = false;
    this.closing = true;
    if (cb) this.once('close', cb);
    this.maybeClosed();
    return this;
  }

  private maybeClosed(): void {
    if (this.closing && this.sockets.size === 0) {
      this.closing = false;
      queueMicrotask(() => this.emit('close'));
    }
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    queueMicrotask(() => cb(null, this.sockets.size));
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}

/**
 * The partition's `net` module: what its workloads get instead of node:net.
 * createServer, connect/createConnection, Socket, Server.
 */
export class Net {
  /** The partition's SMC component, once its configuration is in; without it every connection is plain TCP. */
  smc?: Smc;

  constructor(
    readonly tcp: Tcp,
    readonly ip: IpLayer,
  ) {}

  /** The address a connection to this partition itself uses (its first interface). */
  localhost(): string {
    const ip = this.ip.firstAddress();
    return ip === undefined ? '127.0.0.1' : ipToString(ip);
  }

  /** The local address for a destination that is one of our own addresses, if it is. */
  ownAddress(ip: number): number | undefined {
    return this.ip.isLocal(ip) ? ip : undefined;
  }

  /** createServer([options][, connectionListener]): the only form with no port, so read apart from normalizeArgs. */
  readonly createServer = (...args: unknown[]): Server => {
    const opts = typeof args[0] === 'object' && args[0] !== null ? (args[0] as { allowHalfOpen?: boolean }) : {};
    const listener = args.find((a) => typeof a === 'function') as ((s: Socket) => void) | undefined;
    return new Server(this, listener, opts);
  };

  readonly connect = (...args: unknown[]): Socket => {
    const [opts] = normalizeArgs(args);
    return new Socket(this, { allowHalfOpen: opts.allowHalfOpen === true }).connect(...args);
  };

  readonly createConnection = this.connect;
}
