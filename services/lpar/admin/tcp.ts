import type { AdminReply, LparVerbTable } from '../../../shared/protocol/admin.ts';
import { bulkSource, requestResponse } from '../apps/builtin.ts';
import type { Socket } from '../net/socket/net-api.ts';
import type { StackPort } from './stack.ts';

interface HeldState {
  connected: boolean;
  error: string | null;
  code: string | null;
  closed: boolean;
  received: number;
}

/**
 * TCP workloads through the partition's sockets (the same `net` its apps
 * use): a bulk send to a sink, one exchange, request/response rounds, many
 * connections at once, and a connection held open for the tests that kill
 * or cut its peer and watch what becomes of it.
 */
export function tcpVerbs(stack: StackPort): LparVerbTable<'tcp-send' | 'tcp-exchange' | 'tcp-rr' | 'tcp-many' | 'tcp-hold' | 'tcp-held' | 'tcp-held-write'> {
  const holds = new Map<number, { socket: Socket; state: HeldState }>();
  let nextHold = 1;
  const held = (id: number) => {
    const h = holds.get(id);
    if (!h) throw new Error(`no held connection ${id}`);
    return h;
  };
  return {
    'tcp-send': (m) => bulkSource((o) => stack().net.connect(o), m.dst, m.port, m.bytes, m.seed ?? 1, m.repeat === true, m.hash !== false),
    'tcp-exchange': (m) => exchange(stack, m.dst, m.port, m.data ?? Buffer.alloc(0), m.timeoutMs ?? 10_000),
    'tcp-rr': (m) => requestResponse(stack().net, m.dst, m.port ?? 7, m.count ?? 1000, m.size ?? 64),
    'tcp-many': (m) => many(stack, m.dst, m.port, m.count, m.size ?? 100),
    // Opens a connection and keeps it, recording what happens to it (the killed-peer tests watch this).
    'tcp-hold': (m) => {
      const state: HeldState = { connected: false, error: null, code: null, closed: false, received: 0 };
      const socket = stack().net.connect({ port: m.port, host: m.dst });
      const id = nextHold++;
      holds.set(id, { socket, state });
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
    },
    'tcp-held': (m) => held(m.id).state,
    'tcp-held-write': (m) => {
      const h = held(m.id);
      h.socket.write(Buffer.from(m.data));
      return h.state;
    },
  };
}

/**
 * Connects to dst:port, writes `data`, half-closes, and returns everything
 * the peer sent until it closed (or `timeoutMs` passed: then `timedOut`).
 */
function exchange(stack: StackPort, dst: string, port: number, data: Buffer, timeoutMs: number): Promise<AdminReply<'tcp-exchange'>> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = stack().net.connect({ port, host: dst, allowHalfOpen: true });
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

/** `count` connections at once to an echo server, each sending `size` bytes and checking they come back; resolves when all are done. */
async function many(stack: StackPort, dst: string, port: number, count: number, size: number): Promise<AdminReply<'tcp-many'>> {
  const errors: Record<string, number> = {};
  let ok = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const data = Buffer.alloc(size, i & 0xff);
      return new Promise<void>((resolve) => {
        const s = stack().net.connect({ port, host: dst });
        const got: Buffer[] = [];
        let n = 0;
        let failed = false;
        const count = (what: string) => {
          failed = true;
          errors[what] = (errors[what] ?? 0) + 1;
        };
        s.on('connect', () => s.write(data));
        s.on('data', (d: Buffer) => {
          got.push(d);
          n += d.length;
          if (n >= size && n - d.length < size) {
            // Every connection is ok, or counted under what went wrong: an error code, or what came back.
            if (Buffer.concat(got).equals(data)) ok++;
            else count(n === size ? 'echo differs' : 'echo too long');
            s.end();
          }
        });
        s.on('error', (err: NodeJS.ErrnoException) => count(err.code ?? err.message));
        s.on('close', () => {
          if (n < size && !failed) count('closed before the whole echo');
          resolve();
        });
      });
    }),
  );
  return { count, ok, errors, elapsedMs: performance.now() - t0 };
}
