import type { ControlChannel } from '../../shared/control/channel.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { ipToString, parseIp } from '../../shared/wire/ipv4-address.ts';
import type { Lpar } from './lpar.ts';
import type { NetStack } from './net/net-stack.ts';
import type { UdpSocket } from './net/udp.ts';
import type { Socket } from './net/socket/net-api.ts';
import type { AppSpec, BuiltinAppName } from '../../shared/platform/platform.ts';
import { bulkSource, httpFetch, httpGet, requestResponse } from './apps/builtin.ts';
import type { Workloads } from './apps/workloads.ts';
import { hasSmcOption, smcSynOption } from '../../shared/wire/smc-clc.ts';
import type { TcpErrorCode, TcpHost } from './net/tcp/tcp-connection.ts';
import { pingIpOptions, routeVerb } from './net/ip/route-admin.ts';

interface OpenSocket {
  socket: UdpSocket;
  inbox: Array<{ from: string; port: number; data: Buffer }>;
  dropped: number;
  bytes: number;
  /** A sink only counts what arrives (for throughput runs). */
  sink?: { count: number; bytes: number; firstAt: number; lastAt: number };
}

const INBOX = 10_000;
/** Bytes a diagnostic inbox may hold: count and size are both bounded. */
const INBOX_BYTES = 16 * 1024 * 1024;

/**
 * What the CLI and the tests do inside a partition, through its admin socket:
 * ping, ARP and interface listings, UDP sockets (as netcat -u would), and
 * frame capture of a virtual LAN. Also `rvi-send-raw`, which sends arbitrary
 * bytes on one of the partition's RVIs: a partition can send anything on its
 * paths, and the fault tests use it to show the receivers cope. `locate` asks
 * the location service where an address lives; `smcr-links` asks a control
 * node for the SMC-R link group to a peer, as the SMC layer would.
 * `smc-probe` speaks raw CLC bytes to a peer's SMC layer, as an attacker or a
 * broken implementation could: the malformed-CLC tests use it.
 */
export class NetDiagnostics {
  private readonly sockets = new Map<number, OpenSocket>();
  private nextSocket = 1;

  constructor(
    private readonly lpar: Lpar,
    private readonly fabric: NodeFabric,
    private readonly workloads: Workloads,
  ) {}

  private get stack(): NetStack {
    if (!this.lpar.stack) throw new Error('the network is not configured yet (no control node has answered)');
    return this.lpar.stack;
  }

  verbs(): Record<string, (m: ControlMessage, ch: ControlChannel) => unknown> {
    return {
      ip: () => ({ interfaces: this.stack.describe(), controlNodes: this.stack.driver.liveControlNodes(), registered: Object.fromEntries([...this.lpar.registered].map(([k, v]) => [k, [...v]])) }),
      arp: () => ({ entries: this.stack.ip.arpTable() }),
      'arp-flush': () => {
        this.stack.ip.flushArp();
        return {};
      },
      ping: (m) =>
        this.stack.ip.ping(parseIp(String(m.dst)), {
          count: Number(m.count ?? 1),
          size: Number(m.size ?? 56),
          intervalMs: Number(m.intervalMs ?? 0),
          timeoutMs: Number(m.timeoutMs ?? 1000),
          // ping -t TTL and ping -M do (Don't Fragment): optional, so older callers are unchanged.
          ...pingIpOptions(m),
        }),
      route: (m) => routeVerb(this.stack.ip, m),
      'net-stats': () => ({ driver: this.stack.driver.stats, ip: this.stack.ip.stats, udp: this.stack.udp.stats, refusals: this.lpar.refusals, malformedMgmt: this.lpar.malformed }),
      'udp-open': (m) => this.open(m),
      'udp-send': (m) => this.send(m),
      'udp-recv': (m) => {
        const s = this.socket(m);
        const messages = s.inbox.splice(0);
        s.bytes = 0;
        return { messages, dropped: s.dropped, sink: s.sink ?? null };
      },
      'udp-join': (m) => {
        this.socket(m).socket.addMembership(String(m.group));
        return {};
      },
      'udp-leave': (m) => {
        this.socket(m).socket.dropMembership(String(m.group));
        return {};
      },
      'udp-close': (m) => {
        this.socket(m).socket.close();
        this.sockets.delete(Number(m.socket));
        return {};
      },
      promisc: (m) => {
        this.lpar.setPromiscuous(String(m.vlan), m.on !== false);
        return {};
      },
      'promisc-frames': (m) => {
        const frames = this.promiscuous.get(String(m.vlan)) ?? [];
        return { count: frames.length, frames: frames.slice(-Number(m.last ?? 20)) };
      },
      capture: (m, ch) => this.capture(m, ch),
      // A built-in ({app, port}) or a user module ({module, port?, options?}, an absolute path), as the platform file's apps.
      'app-start': async (m) => {
        const spec: AppSpec = m.module !== undefined ? { module: String(m.module), ...(m.port !== undefined ? { port: Number(m.port) } : {}), options: (m.options as Record<string, unknown>) ?? {} } : { name: String(m.app) as BuiltinAppName, port: Number(m.port) };
        const status = await this.workloads.start(this.stack.net, spec, 'admin');
        return { app: status.app, port: status.port };
      },
      'app-report': (m) => this.workloads.report(Number(m.port)),
      apps: () => ({ apps: this.workloads.list() }),
      'http-get': (m) => httpGet(this.stack.net, String(m.host), Number(m.port), String(m.path ?? '/'), Number(m.count ?? 1)),
      'http-fetch': (m, ch) => this.httpFetch(m, ch),
      'tcp-send': (m) => bulkSource((o) => this.stack.net.connect(o), String(m.dst), Number(m.port), Number(m.bytes), Number(m.seed ?? 1), m.repeat === true, m.hash !== false) as Promise<unknown>,
      'tcp-exchange': (m) => this.tcpExchange(m),
      'tcp-rr': (m) => requestResponse(this.stack.net, String(m.dst), Number(m.port ?? 7), Number(m.count ?? 1000), Number(m.size ?? 64)),
      'tcp-many': (m) => this.tcpMany(m),
      'tcp-hold': (m) => this.tcpHold(m),
      'tcp-held': (m) => this.held(m).state,
      'tcp-held-write': (m) => {
        const h = this.held(m);
        h.socket.write(Buffer.from(m.data as Uint8Array));
        return h.state;
      },
      'nc-connect': (m, ch) => this.ncConnect(m, ch),
      'nc-listen': (m, ch) => this.ncListen(m, ch),
      ss: () => ({
        connections: this.stack.tcp.list().map((c) => ({ local: `${ipToString(c.quad.localIp)}:${c.quad.localPort}`, remote: `${ipToString(c.quad.remoteIp)}:${c.quad.remotePort}`, transport: 'tcp', ...c.info })),
        listening: this.stack.tcp.listening().map((l) => `${ipToString(l.ip)}:${l.port}`),
        // As Linux ss shows a listener: Recv-Q the connections waiting to be accepted, Send-Q the backlog.
        listeners: this.stack.tcp.listening().map((l) => ({ local: `${ipToString(l.ip)}:${l.port}`, pending: l.pending, backlog: l.backlog, transport: 'tcp' })),
      }),
      locate: async (m) => ({ ip: String(m.ip), ...(await this.lpar.locate(String(m.ip), m.timeoutMs !== undefined ? Number(m.timeoutMs) : undefined)) }),
      'smcr-links': async (m) => {
        const links = await this.lpar.smcrLinks(String(m.peer), m.timeoutMs !== undefined ? Number(m.timeoutMs) : undefined);
        return { peer: String(m.peer), links: links.map((r) => ({ id: r.id, purpose: r.purpose, plane: r.plane ?? null, state: r.state, legs: r.legs })) };
      },
      'smc-probe': (m) => this.smcProbe(m),
      'rvi-send-raw': (m) => {
        const rvi = this.fabric.rclan.find(String(m.peer), String(m.purpose));
        if (!rvi) throw new Error(`no RVI to ${String(m.peer)} (${String(m.purpose)})`);
        return { accepted: rvi.send(Buffer.from(m.data as Uint8Array)) };
      },
    };
  }

  /**
   * `smc-probe {dst, port, clc, offer?, end?, after?, waitMs?}`: a connection
   * of the partition's own TCP with no socket and no SMC session above it. Its
   * SYN carries the SMC option unless `offer` is false; once established it
   * sends the bytes of `clc` (hex) as they are (then a FIN if `end`), then
   * `after` (hex) once the peer has answered anything, and reports what came
   * back within `waitMs` (default 1000) of sending: whether the SYN-ACK
   * echoed the option, the bytes (hex), and whether the peer reset or closed.
   * The connection is reset at the end if it is still open.
   */
  private smcProbe(m: ControlMessage): Promise<Record<string, unknown>> {
    const dst = String(m.dst);
    const port = Number(m.port);
    const clc = Buffer.from(String(m.clc ?? ''), 'hex');
    const after = m.after === undefined ? undefined : Buffer.from(String(m.after), 'hex');
    const offer = m.offer !== false;
    const end = m.end === true;
    const waitMs = Number(m.waitMs ?? 1000);
    const remoteIp = parseIp(dst);
    const ifc = this.stack.ip.route(remoteIp);
    if (!ifc) throw Object.assign(new Error(`connect ENETUNREACH ${dst}:${port}`), { code: 'ENETUNREACH' });
    const tcp = this.stack.tcp;
    const quad = { localIp: ifc.ip, localPort: tcp.ephemeralPort(remoteIp, port, ifc.ip), remoteIp, remotePort: port };
    return new Promise((resolve) => {
      const state = { echoed: false, connected: false, received: [] as Buffer[], reset: false, closed: false, eof: false, code: null as TcpErrorCode | null };
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      let afterSent = false;
      const finish = () => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        const received = Buffer.concat(state.received);
        resolve({ local: `${ipToString(quad.localIp)}:${quad.localPort}`, connected: state.connected, echoed: state.echoed, received: received.toString('hex'), bytes: received.length, reset: state.reset, closed: state.closed, eof: state.eof, code: state.code });
        // What the peer did is reported above; our own reset of a connection still open is not part of it.
        if (!state.closed) conn.abort();
      };
      const host: TcpHost = {
        transmit: () => {},
        deliver: (data) => {
          state.received.push(Buffer.from(data));
          if (after && !afterSent) {
            afterSent = true;
            conn.send(after);
          }
        },
        unread: () => 0,
        eof: () => {
          state.eof = true;
        },
        connected: () => {
          state.connected = true;
          if (clc.length > 0) conn.send(clc);
          if (end) conn.close();
          clearTimeout(timer);
          timer = setTimeout(finish, waitMs);
        },
        closed: (code) => {
          state.closed = true;
          state.code = code ?? null;
          if (code === 'ECONNRESET') state.reset = true;
          finish();
        },
        writable: () => {},
        synOptions: () => (offer ? [smcSynOption()] : undefined),
        peerSynOptions: (o) => {
          state.echoed = hasSmcOption(o);
        },
      };
      const conn = tcp.open(quad, host);
      conn.connect();
      // The wait runs from the moment the bytes go; the handshake itself gets a few seconds more.
      timer = setTimeout(finish, waitMs + 5000);
    });
  }

  /** Frames seen in promiscuous mode, by virtual LAN (bounded). */
  readonly promiscuous = new Map<string, Buffer[]>();

  private promiscuousBytes = 0;

  recordPromiscuous(vlan: string, frame: Buffer): void {
    let list = this.promiscuous.get(vlan);
    if (!list) this.promiscuous.set(vlan, (list = []));
    while (list.length > 0 && (list.length >= INBOX || this.promiscuousBytes + frame.length > INBOX_BYTES)) this.promiscuousBytes -= list.shift()!.length;
    this.promiscuousBytes += frame.length;
    list.push(Buffer.from(frame));
  }

  private open(m: ControlMessage): Record<string, unknown> {
    const socket = this.stack.udp.createSocket();
    const id = this.nextSocket++;
    const entry: OpenSocket = { socket, inbox: [], dropped: 0, bytes: 0, sink: m.sink ? { count: 0, bytes: 0, firstAt: 0, lastAt: 0 } : undefined };
    socket.on('message', (data: Buffer, rinfo) => {
      const sink = entry.sink;
      if (sink) {
        const now = performance.now();
        if (sink.count++ === 0) sink.firstAt = now;
        sink.lastAt = now;
        sink.bytes += data.length;
      } else if (entry.inbox.length >= INBOX || entry.bytes + data.length > INBOX_BYTES) entry.dropped++;
      else {
        entry.bytes += data.length;
        entry.inbox.push({ from: rinfo.address, port: rinfo.port, data: Buffer.from(data) });
      }
    });
    socket.on('error', () => entry.dropped++);
    socket.bind(Number(m.port ?? 0));
    if (m.broadcast) socket.setBroadcast(true);
    this.sockets.set(id, entry);
    return { socket: id, port: socket.port };
  }

  /** Sends `count` datagrams (the given bytes, or `size` bytes), keeping at most `window` unconfirmed. */
  private async send(m: ControlMessage): Promise<Record<string, unknown>> {
    const s = this.socket(m);
    const data = m.data !== undefined ? Buffer.from(m.data as Uint8Array) : Buffer.alloc(Number(m.size ?? 64), 0x61);
    const count = Number(m.count ?? 1);
    const window = Number(m.window ?? 64);
    let outstanding = 0;
    let errors = 0;
    let lastError = '';
    let wake: (() => void) | undefined;
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      while (outstanding >= window) await new Promise<void>((r) => (wake = r));
      outstanding++;
      s.socket.send(data, Number(m.port), String(m.dst), (err: Error | null) => {
        outstanding--;
        if (err) {
          errors++;
          lastError = err.message;
        }
        wake?.();
      });
    }
    while (outstanding > 0) await new Promise<void>((r) => (wake = r));
    return { sent: count, errors, lastError, elapsedMs: performance.now() - t0, bytes: count * data.length };
  }

  private readonly holds = new Map<number, { socket: Socket; state: { connected: boolean; error: string | null; code: string | null; closed: boolean; received: number } }>();
  private nextHold = 1;

  /** Opens a connection and keeps it, recording what happens to it (the killed-peer tests watch this). */
  private tcpHold(m: ControlMessage): Promise<Record<string, unknown>> {
    const state = { connected: false, error: null as string | null, code: null as string | null, closed: false, received: 0 };
    const socket = this.stack.net.connect({ port: Number(m.port), host: String(m.dst) });
    const id = this.nextHold++;
    this.holds.set(id, { socket, state });
    socket.on('data', (d: Buffer) => (state.received += d.length));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      state.error = err.message;
      state.code = err.code ?? null;
    });
    socket.on('close', () => (state.closed = true));
    return new Promise((resolve) => {
      socket.once('connect', () => {
        state.connected = true;
        // The local address names the connection in the peer's `ss`.
        resolve({ id, local: `${socket.localAddress}:${socket.localPort}`, ...state });
      });
      socket.once('close', () => resolve({ id, ...state }));
    });
  }

  private held(m: ControlMessage): { socket: Socket; state: { connected: boolean; error: string | null; code: string | null; closed: boolean; received: number } } {
    const h = this.holds.get(Number(m.id));
    if (!h) throw new Error(`no held connection ${String(m.id)}`);
    return h;
  }

  /**
   * `count` connections at once to an echo server, each sending `size` bytes
   * and checking they come back; resolves when all are done.
   */
  private async tcpMany(m: ControlMessage): Promise<Record<string, unknown>> {
    const count = Number(m.count);
    const size = Number(m.size ?? 100);
    const errors: Record<string, number> = {};
    let ok = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: count }, (_, i) => {
        const data = Buffer.alloc(size, i & 0xff);
        return new Promise<void>((resolve) => {
          const s = this.stack.net.connect({ port: Number(m.port), host: String(m.dst) });
          const got: Buffer[] = [];
          let n = 0;
          s.on('connect', () => s.write(data));
          s.on('data', (d: Buffer) => {
            got.push(d);
            n += d.length;
            if (n >= size) {
              if (Buffer.concat(got).equals(data)) ok++;
              s.end();
            }
          });
          s.on('error', (err: NodeJS.ErrnoException) => {
            errors[err.code ?? err.message] = (errors[err.code ?? err.message] ?? 0) + 1;
          });
          s.on('close', () => resolve());
        });
      }),
    );
    return { count, ok, errors, elapsedMs: performance.now() - t0 };
  }

  private socket(m: ControlMessage): OpenSocket {
    const s = this.sockets.get(Number(m.socket));
    if (!s) throw new Error(`no UDP socket ${String(m.socket)}`);
    return s;
  }

  /**
   * Connects to dst:port, writes `data`, half-closes, and returns everything
   * the peer sent until it closed (or `timeoutMs` passed: then `timedOut`).
   */
  private tcpExchange(m: ControlMessage): Promise<Record<string, unknown>> {
    const data = typeof m.data === 'string' ? Buffer.from(m.data) : Buffer.from((m.data as Uint8Array | undefined) ?? []);
    const timeoutMs = Number(m.timeoutMs ?? 10_000);
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const s = this.stack.net.connect({ port: Number(m.port), host: String(m.dst), allowHalfOpen: true });
      const chunks: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        s.destroy();
      }, timeoutMs);
      s.on('connect', () => s.end(data));
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      s.on('close', () => {
        clearTimeout(timer);
        const got = Buffer.concat(chunks);
        resolve({ sent: data.length, bytes: got.length, data: got, timedOut, elapsedMs: performance.now() - t0 });
      });
    });
  }

  /** `lparlab nc HOST PORT`: one connection, relayed both ways over this admin channel once connected. */
  private ncConnect(m: ControlMessage, ch: ControlChannel): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const s = this.stack.net.connect({ port: Number(m.port), host: String(m.host), allowHalfOpen: true });
      const failed = (err: Error) => reject(err);
      s.once('error', failed);
      ch.onClose(() => s.destroy());
      s.once('connect', () => {
        s.removeListener('error', failed);
        this.relay(s, ch);
        resolve({ local: `${s.localAddress}:${s.localPort}`, remote: `${s.remoteAddress}:${s.remotePort}` });
      });
    });
  }

  /** `lparlab nc -l [HOST] PORT`: listens, takes one connection (then stops listening), says `nc-connected`, relays it. */
  private ncListen(m: ControlMessage, ch: ControlChannel): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const server = this.stack.net.createServer({ allowHalfOpen: true });
      let socket: Socket | undefined;
      const stop = () => {
        if (server.listening) server.close();
      };
      ch.onClose(() => {
        stop();
        socket?.destroy();
      });
      server.once('error', reject);
      server.once('connection', (s: Socket) => {
        socket = s;
        stop();
        if (ch.link.closed) {
          s.destroy();
          return;
        }
        ch.send({ t: 'nc-connected', local: `${s.localAddress}:${s.localPort}`, remote: `${s.remoteAddress}:${s.remotePort}` });
        this.relay(s, ch);
      });
      server.listen({ port: Number(m.port), host: m.host === undefined ? undefined : String(m.host) }, () => {
        const a = server.address();
        resolve({ local: a ? `${a.address}:${a.port}` : '', port: a?.port ?? Number(m.port) });
      });
    });
  }

  /**
   * Relays one TCP connection and the admin channel both ways, with
   * backpressure both ways: bytes from the peer go out as `nc-data` (the
   * socket pauses while the channel is full), `nc-data` from the CLI is
   * written to the socket (the channel stops reading while the socket's send
   * buffer is full). `nc-end` either way is a half-close; `nc-closed` (with
   * `error` when it failed) says the connection is over.
   */
  private relay(s: Socket, ch: ControlChannel): void {
    let closed = false;
    ch.link.onDrain = () => {
      if (!closed) s.resume();
    };
    s.on('data', (d: Buffer) => {
      if (!ch.send({ t: 'nc-data', data: d })) s.pause();
    });
    s.on('end', () => ch.send({ t: 'nc-end' }));
    let error: string | undefined;
    s.on('error', (err) => (error = err.message));
    s.on('close', () => {
      closed = true;
      ch.link.resume();
      ch.send({ t: 'nc-closed', ...(error ? { error } : {}) });
    });
    let waiting = false;
    ch.handle('nc-data', (msg) => {
      if (closed || s.writableEnded) return;
      if (!s.write(Buffer.from(msg.data as Uint8Array)) && !waiting) {
        waiting = true;
        ch.link.pause();
        s.once('drain', () => {
          waiting = false;
          ch.link.resume();
        });
      }
    });
    ch.handle('nc-end', () => {
      if (!closed && !s.writableEnded) s.end();
    });
  }

  /** `lparlab http`: one request; the body streams to the asker as `http-body` messages, the reply carries status and headers. */
  private async httpFetch(m: ControlMessage, ch: ControlChannel): Promise<Record<string, unknown>> {
    const abort = new AbortController();
    ch.onClose(() => abort.abort());
    let waiters: Array<() => void> = [];
    ch.link.onDrain = () => {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    };
    const r = await httpFetch(this.stack.net, String(m.url), {
      method: m.method === undefined ? undefined : String(m.method),
      signal: abort.signal,
      onData: (chunk) => {
        if (ch.send({ t: 'http-body', data: chunk }) || ch.link.closed) return;
        return new Promise<void>((resolve) => waiters.push(resolve));
      },
    });
    return { status: r.status, statusMessage: r.statusMessage, httpVersion: r.httpVersion, headers: r.headers, bytes: r.bytes };
  }

  /**
   * Streams every frame this partition transmits on a virtual LAN as
   * `capture-frame` messages until the asker closes the channel. The CLI asks
   * every member and merges: each frame of the LAN is sent by exactly one.
   */
  private capture(m: ControlMessage, ch: ControlChannel): Record<string, unknown> {
    const vlan = String(m.vlan);
    let dropped = 0;
    // When the collector falls behind, frames are counted and dropped rather than queued without bound.
    const tap = (frame: Buffer) => {
      if (!ch.link.writable) dropped++;
      else ch.send({ t: 'capture-frame', ts: performance.timeOrigin + performance.now(), frame, dropped });
    };
    ch.onClose(this.stack.tap(vlan, tap));
    return { vlan, node: this.lpar.name };
  }
}
