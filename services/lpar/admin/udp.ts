import type { AdminReply, LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { UdpSocket } from '../net/udp.ts';
import type { StackPort } from './stack.ts';

interface OpenSocket {
  socket: UdpSocket;
  inbox: Array<{ from: string; port: number; data: Buffer }>;
  dropped: number;
  bytes: number;
  /** A sink only counts what arrives (for throughput runs). */
  sink?: { count: number; bytes: number; firstAt: number; lastAt: number };
}

/** Datagrams an inbox holds: count and size are both bounded. */
const INBOX = 10_000;
const INBOX_BYTES = 16 * 1024 * 1024;

/**
 * UDP sockets driven from outside, as netcat -u would: open (bind), send,
 * receive what arrived since the last look, join and leave groups, close.
 */
export function udpVerbs(stack: StackPort): LparVerbTable<'udp-open' | 'udp-send' | 'udp-recv' | 'udp-join' | 'udp-leave' | 'udp-close'> {
  const sockets = new Map<number, OpenSocket>();
  let nextSocket = 1;
  const socket = (id: number): OpenSocket => {
    const s = sockets.get(id);
    if (!s) throw new Error(`no UDP socket ${id}`);
    return s;
  };
  return {
    'udp-open': (m) => {
      const socket = stack().udp.createSocket();
      const id = nextSocket++;
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
      socket.bind(m.port ?? 0);
      if (m.broadcast) socket.setBroadcast(true);
      sockets.set(id, entry);
      return { socket: id, port: socket.port };
    },
    // `count` datagrams (the given bytes, or `size` bytes), keeping at most `window` unconfirmed.
    'udp-send': async (m): Promise<AdminReply<'udp-send'>> => {
      const s = socket(m.socket);
      const data = m.data ?? Buffer.alloc(m.size ?? 64, 0x61);
      const count = m.count ?? 1;
      const window = m.window ?? 64;
      let outstanding = 0;
      let errors = 0;
      let lastError = '';
      let wake: (() => void) | undefined;
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        while (outstanding >= window) await new Promise<void>((r) => (wake = r));
        outstanding++;
        s.socket.send(data, m.port, m.dst, (err: Error | null) => {
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
    },
    'udp-recv': (m) => {
      const s = socket(m.socket);
      const messages = s.inbox.splice(0);
      s.bytes = 0;
      return { messages, dropped: s.dropped, sink: s.sink ?? null };
    },
    'udp-join': (m) => {
      socket(m.socket).socket.addMembership(m.group);
      return {};
    },
    'udp-leave': (m) => {
      socket(m.socket).socket.dropMembership(m.group);
      return {};
    },
    'udp-close': (m) => {
      socket(m.socket).socket.close();
      sockets.delete(m.socket);
      return {};
    },
  };
}
