import type { ControlChannel } from '../../../shared/control/channel.ts';
import { decodeAdminStream, type LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { Socket } from '../net/socket/net-api.ts';
import type { StackPort } from './stack.ts';

/**
 * `lparlab nc`: one TCP connection of the partition relayed over the admin
 * channel that asked for it, both ways, as netcat relays its stdin/stdout.
 */
export function ncVerbs(stack: StackPort): LparVerbTable<'nc-connect' | 'nc-listen'> {
  return {
    // `lparlab nc HOST PORT`: one connection, relayed once connected.
    'nc-connect': (m, ch) =>
      new Promise((resolve, reject) => {
        const s = stack().net.connect({ port: m.port, host: m.host, allowHalfOpen: true });
        const failed = (err: Error) => reject(err);
        s.once('error', failed);
        ch.onClose(() => s.destroy());
        s.once('connect', () => {
          s.removeListener('error', failed);
          relay(s, ch);
          resolve({ local: `${s.localAddress}:${s.localPort}`, remote: `${s.remoteAddress}:${s.remotePort}` });
        });
      }),
    // `lparlab nc -l [HOST] PORT`: listens, takes one connection (then stops listening), says `nc-connected`, relays it.
    'nc-listen': (m, ch) =>
      new Promise((resolve, reject) => {
        const server = stack().net.createServer({ allowHalfOpen: true });
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
          relay(s, ch);
        });
        server.listen({ port: m.port, host: m.host }, () => {
          const a = server.address();
          resolve({ local: a ? `${a.address}:${a.port}` : '', port: a?.port ?? m.port });
        });
      }),
  };
}

/**
 * Relays one TCP connection and the admin channel both ways, with
 * backpressure both ways: bytes from the peer go out as `nc-data` (the
 * socket pauses while the channel is full), `nc-data` from the CLI is
 * written to the socket (the channel stops reading while the socket's send
 * buffer is full). `nc-end` either way is a half-close; `nc-closed` (with
 * `error` when it failed) says the connection is over. A malformed `nc-data`
 * from the asker is counted on the channel and dropped.
 */
function relay(s: Socket, ch: ControlChannel): void {
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
  ch.handle('nc-data', (raw) => {
    const msg = decodeAdminStream('nc-data', raw);
    if (!msg.ok) {
      ch.malformed++;
      return;
    }
    if (closed || s.writableEnded) return;
    if (!s.write(msg.value.data) && !waiting) {
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
