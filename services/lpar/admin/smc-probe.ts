import type { AdminReply, LparRequests, LparVerbTable } from '../../../shared/protocol/admin.ts';
import { ipToString, parseIp } from '../../../shared/wire/ipv4-address.ts';
import { hasSmcOption, smcSynOption } from '../../../shared/wire/smc-clc.ts';
import type { TcpConnection, TcpErrorCode, TcpHost } from '../net/tcp/tcp-connection.ts';
import type { StackPort } from './stack.ts';

/** What the probe does with its connection: SYN, bytes out, FIN, RST. */
type ProbeConnection = Pick<TcpConnection, 'connect' | 'send' | 'close' | 'abort'>;

/**
 * A TCP connection of the partition's own stack to dst:port with `host` as
 * its only user, not yet connected: no socket and no SMC session above it (the one place the
 * probe touches TCP below the socket layer; it needs that to send CLC bytes
 * no SMC session would).
 */
function openRaw(stack: StackPort, dst: string, port: number, host: (conn: () => ProbeConnection) => TcpHost): { local: string; conn: ProbeConnection } {
  const s = stack();
  const remoteIp = parseIp(dst);
  const ifc = s.ip.route(remoteIp);
  if (!ifc) throw Object.assign(new Error(`connect ENETUNREACH ${dst}:${port}`), { code: 'ENETUNREACH' });
  const quad = { localIp: ifc.ip, localPort: s.tcp.ephemeralPort(remoteIp, port, ifc.ip), remoteIp, remotePort: port };
  const conn: TcpConnection = s.tcp.open(quad, host(() => conn));
  return { local: `${ipToString(quad.localIp)}:${quad.localPort}`, conn };
}

/**
 * `smc-probe {dst, port, clc, offer?, end?, after?, waitMs?}` speaks raw CLC
 * bytes to a peer's SMC layer, as an attacker or a broken implementation
 * could (the malformed-CLC tests). Its SYN carries the SMC option unless
 * `offer` is false; once established it sends the bytes of `clc` as they are
 * (then a FIN if `end`), then `after` once the peer has answered anything,
 * and reports what came back within `waitMs` (default 1000) of sending:
 * whether the SYN-ACK echoed the option, the bytes (hex), and whether the
 * peer reset or closed. The connection is reset at the end if it is still
 * open.
 */
export function smcProbeVerbs(stack: StackPort): LparVerbTable<'smc-probe'> {
  return { 'smc-probe': (m) => probe(stack, m) };
}

function probe(stack: StackPort, m: LparRequests['smc-probe']): Promise<AdminReply<'smc-probe'>> {
  const clc = m.clc ?? Buffer.alloc(0);
  const after = m.after;
  const offer = m.offer !== false;
  const end = m.end === true;
  const waitMs = m.waitMs ?? 1000;
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
      resolve({ local: raw.local, connected: state.connected, echoed: state.echoed, received: received.toString('hex'), bytes: received.length, reset: state.reset, closed: state.closed, eof: state.eof, code: state.code });
      // What the peer did is reported above; our own reset of a connection still open is not part of it.
      if (!state.closed) raw.conn.abort();
    };
    const raw = openRaw(stack, m.dst, m.port, (conn) => ({
      transmit: () => {},
      deliver: (data) => {
        state.received.push(Buffer.from(data));
        if (after && !afterSent) {
          afterSent = true;
          conn().send(after);
        }
      },
      unread: () => 0,
      eof: () => {
        state.eof = true;
      },
      connected: () => {
        state.connected = true;
        if (clc.length > 0) conn().send(clc);
        if (end) conn().close();
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
    }));
    raw.conn.connect();
    // The wait runs from the moment the bytes go; the handshake itself gets a few seconds more.
    timer = setTimeout(finish, waitMs + 5000);
  });
}
