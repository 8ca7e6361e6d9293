import { IpProto } from '../../../../shared/wire/ipv4.ts';
import { ipToString } from '../../../../shared/wire/ipv4-address.ts';
import { TCP_HEADER, TcpFlag, TcpSegment, emitTcpHeader, seqAdd, tcpOptionsLength } from '../../../../shared/wire/tcp.ts';
import type { IpLayer } from '../ip/ip-layer.ts';
import { TcpConnection, type OutSegment, type TcpHost, type TcpSettings } from './tcp-connection.ts';

export interface Quad {
  localIp: number;
  localPort: number;
  remoteIp: number;
  remotePort: number;
}

/** A listening port: it makes a connection per SYN, up to `backlog` not yet accepted. */
export interface TcpListener {
  ip: number;
  port: number;
  backlog: number;
  /** Connections in SYN-RECEIVED or established and not yet handed out. */
  pending: number;
  /** A new connection: the listener gives it its host (the socket) and is told when it is established. */
  incoming(quad: Quad, attach: (host: TcpHost) => TcpConnection): void;
}

const EPHEMERAL_LOW = 49152;
const EPHEMERAL_HIGH = 65535;

/** Every segment goes with Don't Fragment: path-MTU discovery (RFC 1191 6.2), so a smaller hop answers with its MTU. */
const SEGMENT_OPTS = { df: true } as const;

function key(q: Quad): string {
  return `${q.localIp}:${q.localPort}>${q.remoteIp}:${q.remotePort}`;
}

/**
 * The TCP layer of a partition: it owns the connection table and the
 * listeners, makes segments for connections (header and options in place,
 * payload views joined once by the IP layer) and sends an RST for segments
 * that belong to nobody (RFC 9293 3.10.7.1).
 */
export class Tcp {
  readonly stats = { segmentsIn: 0, segmentsOut: 0, resetsSent: 0, malformed: 0, backlogDrops: 0 };
  private readonly connections = new Map<string, { quad: Quad; conn: TcpConnection }>();
  private readonly listeners = new Map<number, TcpListener>();
  private nextEphemeral = EPHEMERAL_LOW + Math.floor(Math.random() * 1000);

  constructor(
    private readonly ip: IpLayer,
    readonly settings: TcpSettings,
  ) {
    ip.onTcp = (_ifc, src, dst, data) => this.receive(src, dst, data);
    ip.onPathMtu = (dst, mtu) => this.pathMtuChanged(dst, mtu);
  }

  /** RFC 1191 6.4: a smaller path MTU towards `dst` lowers the MSS of every connection there. */
  private pathMtuChanged(dst: number, mtu: number): void {
    for (const { quad, conn } of this.connections.values()) if (quad.remoteIp === dst) conn.pathMtuChanged(mtu);
  }

  listen(l: TcpListener): void {
    if (this.listeners.has(l.port)) {
      const err = new Error(`listen EADDRINUSE: address already in use ${ipToString(l.ip)}:${l.port}`) as NodeJS.ErrnoException;
      err.code = 'EADDRINUSE';
      throw err;
    }
    this.listeners.set(l.port, l);
  }

  unlisten(port: number): void {
    this.listeners.delete(port);
  }

  ephemeralPort(remoteIp: number, remotePort: number, localIp: number): number {
    for (let i = 0; i <= EPHEMERAL_HIGH - EPHEMERAL_LOW; i++) {
      const port = this.nextEphemeral;
      this.nextEphemeral = port >= EPHEMERAL_HIGH ? EPHEMERAL_LOW : port + 1;
      if (!this.listeners.has(port) && !this.connections.has(key({ localIp, localPort: port, remoteIp, remotePort }))) return port;
    }
    throw Object.assign(new Error('connect EADDRNOTAVAIL: no free local port'), { code: 'EADDRNOTAVAIL' });
  }

  /** Makes a connection for `quad` with `host` as its socket side. */
  open(quad: Quad, host: TcpHost): TcpConnection {
    const k = key(quad);
    // Our MSS follows the interface (and path) towards the peer, capped by the stack's ceiling (RFC 9293 3.7.1).
    const mss = Math.min(this.settings.mss, this.ip.mssFor(quad.remoteIp) ?? this.settings.mss);
    const conn = new TcpConnection(this.hostFor(quad, host), mss === this.settings.mss ? this.settings : { ...this.settings, mss });
    conn.onRelease = () => {
      if (this.connections.get(k)?.conn === conn) this.connections.delete(k);
    };
    this.connections.set(k, { quad, conn });
    return conn;
  }

  /** Wraps the socket's host so its transmit goes out through IP with this quad. */
  private hostFor(quad: Quad, host: TcpHost): TcpHost {
    return { ...host, transmit: (seg) => this.transmit(quad, seg), synOptions: host.synOptions?.bind(host), peerSynOptions: host.peerSynOptions?.bind(host), info: host.info?.bind(host) };
  }

  transmit(quad: Quad, seg: OutSegment): void {
    const headerLength = TCP_HEADER + tcpOptionsLength(seg.options);
    const header = Buffer.allocUnsafe(headerLength);
    emitTcpHeader(header, 0, { srcPort: quad.localPort, dstPort: quad.remotePort, seq: seg.seq, ack: seg.ack, flags: seg.flags, window: seg.window, options: seg.options });
    this.stats.segmentsOut++;
    // Inside the platform the checksum is left zero: every hop checks and delivers reliably (seed 004, "IP Stack").
    this.ip.send(quad.remoteIp, IpProto.Tcp, [header, ...seg.payload], SEGMENT_OPTS);
  }

  private receive(src: number, dst: number, data: Buffer): void {
    const seg = TcpSegment.tryParse(data, { src, dst });
    if (!seg) return void this.stats.malformed++;
    this.stats.segmentsIn++;
    const quad: Quad = { localIp: dst, localPort: seg.dstPort, remoteIp: src, remotePort: seg.srcPort };
    const found = this.connections.get(key(quad));
    if (found) {
      found.conn.segmentArrives(seg);
      return;
    }
    const l = this.listeners.get(seg.dstPort);
    if (l && (l.ip === 0 || l.ip === dst) && seg.isSyn && !seg.isAck && !seg.isRst) {
      // A bounded SYN backlog: past it the SYN is dropped, as a loaded Linux listener does; the peer retries.
      if (l.pending >= l.backlog) {
        this.stats.backlogDrops++;
        return;
      }
      l.incoming(quad, (host) => {
        const conn = this.open(quad, host);
        conn.passive = true;
        conn.acceptSyn(seg);
        return conn;
      });
      return;
    }
    this.reset(quad, seg);
  }

  /** RFC 9293 3.10.7.1: nobody owns this segment; answer with a reset unless it is one. */
  private reset(quad: Quad, seg: TcpSegment): void {
    if (seg.isRst) return;
    this.stats.resetsSent++;
    if (seg.isAck) this.transmit(quad, { seq: seg.ack, ack: 0, flags: TcpFlag.Rst, window: 0, payload: [] });
    else this.transmit(quad, { seq: 0, ack: seqAdd(seg.seq, seg.segmentLength), flags: TcpFlag.Rst | TcpFlag.Ack, window: 0, payload: [] });
  }

  /** Every connection, for `lparlab ss`. */
  list(): Array<{ quad: Quad; info: Record<string, unknown> }> {
    return [...this.connections.values()].map(({ quad, conn }) => ({ quad, info: conn.info() }));
  }

  listening(): TcpListener[] {
    return [...this.listeners.values()];
  }
}
