import type { ControlChannel } from '../../shared/control/channel.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { ipToString, parseIp } from '../../shared/wire/ipv4-address.ts';
import type { Lpar } from './lpar.ts';
import type { NetStack } from './net/net-stack.ts';
import type { UdpSocket } from './net/udp.ts';
import { BUILTIN_APPS, bulkSource, httpGet, type App } from './apps/builtin.ts';

interface OpenSocket {
  socket: UdpSocket;
  inbox: Array<{ from: string; port: number; data: Buffer }>;
  dropped: number;
  /** A sink only counts what arrives (for throughput runs). */
  sink?: { count: number; bytes: number; firstAt: number; lastAt: number };
}

const INBOX = 10_000;

/**
 * What the CLI and the tests do inside a partition, through its admin socket:
 * ping, ARP and interface listings, UDP sockets (as netcat -u would), and
 * frame capture of a virtual LAN. Also `rvi-send-raw`, which sends arbitrary
 * bytes on one of the partition's RVIs: a partition can send anything on its
 * paths, and the fault tests use it to show the receivers cope.
 */
export class NetDiagnostics {
  private readonly sockets = new Map<number, OpenSocket>();
  private readonly apps = new Map<number, App>();
  private nextSocket = 1;

  constructor(
    private readonly lpar: Lpar,
    private readonly fabric: NodeFabric,
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
        }),
      'net-stats': () => ({ driver: this.stack.driver.stats, ip: this.stack.ip.stats, udp: this.stack.udp.stats, refusals: this.lpar.refusals, malformedMgmt: this.lpar.malformed }),
      'udp-open': (m) => this.open(m),
      'udp-send': (m) => this.send(m),
      'udp-recv': (m) => {
        const s = this.socket(m);
        const messages = s.inbox.splice(0);
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
      'app-start': (m) => {
        const make = BUILTIN_APPS[String(m.app)];
        if (!make) throw new Error(`no built-in app "${String(m.app)}" (${Object.keys(BUILTIN_APPS).join(', ')})`);
        const port = Number(m.port);
        if (this.apps.has(port)) throw new Error(`port ${port} already runs ${this.apps.get(port)!.name}`);
        this.apps.set(port, make(this.stack.net, port));
        return { app: m.app, port };
      },
      'app-report': (m) => {
        const app = this.apps.get(Number(m.port));
        if (!app) throw new Error(`no app on port ${String(m.port)}`);
        return { app: app.name, ...app.report() };
      },
      'http-get': (m) => httpGet(this.stack.net, String(m.host), Number(m.port), String(m.path ?? '/'), Number(m.count ?? 1)),
      'tcp-send': (m) => bulkSource(this.stack.net, String(m.dst), Number(m.port), Number(m.bytes), Number(m.seed ?? 1)),
      ss: () => ({ connections: this.stack.tcp.list().map((c) => ({ local: `${ipToString(c.quad.localIp)}:${c.quad.localPort}`, remote: `${ipToString(c.quad.remoteIp)}:${c.quad.remotePort}`, transport: 'tcp', ...c.info })), listening: this.stack.tcp.listening().map((l) => `${ipToString(l.ip)}:${l.port}`) }),
      'rvi-send-raw': (m) => {
        const rvi = this.fabric.rclan.find(String(m.peer), String(m.purpose));
        if (!rvi) throw new Error(`no RVI to ${String(m.peer)} (${String(m.purpose)})`);
        return { accepted: rvi.send(Buffer.from(m.data as Uint8Array)) };
      },
    };
  }

  /** Frames seen in promiscuous mode, by virtual LAN (bounded). */
  readonly promiscuous = new Map<string, Buffer[]>();

  recordPromiscuous(vlan: string, frame: Buffer): void {
    let list = this.promiscuous.get(vlan);
    if (!list) this.promiscuous.set(vlan, (list = []));
    if (list.length >= INBOX) list.shift();
    list.push(Buffer.from(frame));
  }

  private open(m: ControlMessage): Record<string, unknown> {
    const socket = this.stack.udp.createSocket();
    const id = this.nextSocket++;
    const entry: OpenSocket = { socket, inbox: [], dropped: 0, sink: m.sink ? { count: 0, bytes: 0, firstAt: 0, lastAt: 0 } : undefined };
    socket.on('message', (data: Buffer, rinfo) => {
      const sink = entry.sink;
      if (sink) {
        const now = performance.now();
        if (sink.count++ === 0) sink.firstAt = now;
        sink.lastAt = now;
        sink.bytes += data.length;
      } else if (entry.inbox.length >= INBOX) entry.dropped++;
      else entry.inbox.push({ from: rinfo.address, port: rinfo.port, data: Buffer.from(data) });
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

  private socket(m: ControlMessage): OpenSocket {
    const s = this.sockets.get(Number(m.socket));
    if (!s) throw new Error(`no UDP socket ${String(m.socket)}`);
    return s;
  }

  /**
   * Streams every frame this partition transmits on a virtual LAN as
   * `capture-frame` messages until the asker closes the channel. The CLI asks
   * every member and merges: each frame of the LAN is sent by exactly one.
   */
  private capture(m: ControlMessage, ch: ControlChannel): Record<string, unknown> {
    const vlan = String(m.vlan);
    const taps = this.stack.driver.taps;
    if (!taps.has(vlan)) taps.set(vlan, new Set());
    let dropped = 0;
    // When the collector falls behind, frames are counted and dropped rather than queued without bound.
    const tap = (frame: Buffer) => {
      if (!ch.link.writable) dropped++;
      else ch.send({ t: 'capture-frame', ts: performance.timeOrigin + performance.now(), frame, dropped });
    };
    taps.get(vlan)!.add(tap);
    ch.onClose(() => taps.get(vlan)?.delete(tap));
    return { vlan, node: this.lpar.name };
  }
}
