import { ControlChannel } from '../../shared/control/channel.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { connectLink } from '../../shared/link/transport.ts';
import { flag, type ParsedArgs } from '../../shared/runtime/args.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { processLogger } from '../../shared/runtime/log.ts';
import { adminRequest } from './admin-client.ts';

/**
 * The CLI verbs that run inside a partition's own TCP stack:
 *
 *   lparlab nc [-l] [-v] LPAR HOST PORT    netcat: stdin/stdout over one TCP connection of LPAR
 *   lparlab nc -l [-v] LPAR [HOST] PORT    listen on LPAR for one connection
 *   lparlab http [-v] [--fail] LPAR URL    GET as curl: the body to stdout, binary-safe
 *   lparlab ss LPAR [--json]               LPAR's sockets: state, queues, addresses, transport
 */
export const TCP_USAGE = [
  ['lparlab nc [-v] LPAR HOST PORT | nc -l [-v] LPAR [HOST] PORT', 'netcat inside a partition: stdin/stdout over its TCP'],
  ['lparlab http [-v] [--fail] [--max-time S] LPAR URL', "GET through a partition's TCP (as curl); body to stdout"],
  ['lparlab ss LPAR [--json]', "a partition's TCP sockets: state, queues, transport"],
]
  .map(([cmd, what]) => `  ${cmd.padEnd(68)} ${what}\n`)
  .join('');

const log = processLogger('cli', 'lparlab');

export async function tcpCommand(verb: string, runDir: RunDir, args: ParsedArgs): Promise<number> {
  switch (verb) {
    case 'nc':
      return nc(runDir, args);
    case 'http':
      return httpCommand(runDir, args);
    case 'ss':
      return ss(runDir, args);
    default:
      throw new Error(`not a TCP command: ${verb}`);
  }
}

async function openAdmin(runDir: RunDir, lpar: string): Promise<ControlChannel> {
  const link = await connectLink(`unix:${runDir.adminSocket(lpar)}`).catch((err: Error) => {
    throw new Error(`cannot reach ${lpar}'s admin socket (${err.message}): is it running?`);
  });
  return new ControlChannel(link, log);
}

const isTrue = (args: ParsedArgs, name: string) => flag(args, name) === 'true';

/**
 * netcat over the partition's TCP. The LPAR holds the connection (admin verbs
 * nc-connect / nc-listen) and relays it over the admin channel as `nc-data`
 * and `nc-end` both ways; it ends with `nc-closed`. Backpressure both ways:
 * stdin is paused while the admin link is full, the link while stdout is.
 * EOF on stdin half-closes the connection; the command exits once the
 * connection is closed (the remote's data all written out), 1 if it failed.
 */
async function nc(runDir: RunDir, args: ParsedArgs): Promise<number> {
  const listen = isTrue(args, 'l');
  const verbose = isTrue(args, 'v');
  const pos = args.positionals.slice(1);
  const usage = 'usage: lparlab nc [-v] LPAR HOST PORT | lparlab nc -l [-v] LPAR [HOST] PORT';
  if (listen ? pos.length < 2 || pos.length > 3 : pos.length !== 3) throw new Error(usage);
  const lpar = pos[0];
  const port = Number(pos.at(-1));
  const host = pos.length === 3 ? pos[1] : undefined;
  if (!Number.isInteger(port) || port < (listen ? 0 : 1) || port > 65535) throw new Error(`bad port "${pos.at(-1)}"\n${usage}`);
  const say = (line: string) => verbose && process.stderr.write(`lparlab nc: ${line}\n`);

  const ch = await openAdmin(runDir, lpar);
  const stdin = process.stdin;
  const stdout = process.stdout;
  let finish!: (code: number) => void;
  const done = new Promise<number>((r) => (finish = r));

  // From the LPAR: bytes to stdout (the link stops reading while stdout is full).
  let stdoutWaiting = false;
  ch.handle('nc-data', (m) => {
    if (!stdout.write(Buffer.from(m.data as Uint8Array)) && !stdoutWaiting) {
      stdoutWaiting = true;
      ch.link.pause();
      stdout.once('drain', () => {
        stdoutWaiting = false;
        ch.link.resume();
      });
    }
  });
  ch.handle('nc-end', () => say('remote end finished sending'));
  ch.handle('nc-closed', (m) => {
    if (m.error) process.stderr.write(`lparlab nc: ${String(m.error)}\n`);
    else say('connection closed');
    finish(m.error ? 1 : 0);
  });
  ch.onClose(() => finish(1));

  // To the LPAR: stdin (paused while the admin link is full); EOF half-closes.
  const pump = () => {
    ch.link.onDrain = () => stdin.resume();
    stdin.on('data', (d: Buffer) => {
      if (!ch.send({ t: 'nc-data', data: d })) stdin.pause();
    });
    stdin.on('end', () => {
      say('stdin closed: half-closing');
      ch.send({ t: 'nc-end' });
    });
    stdin.on('error', () => ch.send({ t: 'nc-end' }));
  };

  const stopSignal = () => finish(130);
  process.once('SIGINT', stopSignal);
  try {
    if (listen) {
      const connected = new Promise<ControlMessage>((resolve) => ch.handle('nc-connected', (m) => resolve(m)));
      const r = await ch.request({ t: 'nc-listen', port, ...(host !== undefined ? { host } : {}) });
      say(`${lpar} listening on ${String(r.local)}`);
      const c = await Promise.race([connected, done.then(() => undefined)]);
      if (c) {
        say(`connection from ${String(c.remote)} to ${String(c.local)}`);
        pump();
      }
    } else {
      const r = await ch.request({ t: 'nc-connect', host, port }, 30_000);
      say(`${lpar} ${String(r.local)} connected to ${String(r.remote)}`);
      pump();
    }
    const code = await done;
    // Everything from the remote is on its way to stdout: wait for it before leaving.
    await new Promise<void>((r) => (stdout.writableNeedDrain ? stdout.once('drain', () => r()) : r()));
    return code;
  } finally {
    process.removeListener('SIGINT', stopSignal);
    stdin.pause();
    stdin.removeAllListeners('data');
    stdin.destroy();
    ch.close();
  }
}

/** curl-like GET through the partition's TCP; the body streams to stdout, the status line and headers to stderr with -v. */
async function httpCommand(runDir: RunDir, args: ParsedArgs): Promise<number> {
  const [, lpar, url] = args.positionals;
  if (!lpar || !url) throw new Error('usage: lparlab http [-v] [--fail] LPAR URL');
  const maxTimeMs = Number(flag(args, 'max-time') ?? 600) * 1000;
  const ch = await openAdmin(runDir, lpar);
  const stdout = process.stdout;
  let waiting = false;
  ch.handle('http-body', (m) => {
    if (!stdout.write(Buffer.from(m.data as Uint8Array)) && !waiting) {
      waiting = true;
      ch.link.pause();
      stdout.once('drain', () => {
        waiting = false;
        ch.link.resume();
      });
    }
  });
  try {
    const r = await ch.request({ t: 'http-fetch', url }, maxTimeMs);
    if (isTrue(args, 'v')) {
      const lines = [`< HTTP/${String(r.httpVersion)} ${String(r.status)} ${String(r.statusMessage)}`];
      for (const [k, v] of Object.entries(r.headers as Record<string, string | string[]>)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`< ${k}: ${one}`);
      process.stderr.write(`${lines.join('\n')}\n<\n`);
    }
    await new Promise<void>((res) => (stdout.writableNeedDrain ? stdout.once('drain', () => res()) : res()));
    // As curl --fail: an HTTP error status is exit code 22.
    return isTrue(args, 'fail') && Number(r.status) >= 400 ? 22 : 0;
  } finally {
    ch.close();
  }
}

/** An SMC connection's cursors as smcss shows them: token, link (SMC-R), producer/consumer each way. */
function smcDetail(smc: unknown): string {
  if (!smc || typeof smc !== 'object') return '';
  const x = smc as { token?: number; link?: number; tx?: { prod: number; cons: number }; rx?: { prod: number; cons: number } };
  const link = x.link !== undefined ? ` link ${x.link}` : '';
  return `token ${x.token}${link} tx ${x.tx?.prod}/${x.tx?.cons} rx ${x.rx?.prod}/${x.rx?.cons}`;
}

/** Linux ss's table for the partition's TCP: listeners and connections, with the transport each uses. */
async function ss(runDir: RunDir, args: ParsedArgs): Promise<number> {
  const lpar = args.positionals[1];
  if (!lpar) throw new Error('usage: lparlab ss LPAR [--json]');
  const r = await adminRequest(runDir, lpar, { t: 'ss' });
  if (isTrue(args, 'json')) {
    process.stdout.write(`${JSON.stringify({ connections: r.connections, listening: r.listeners ?? r.listening })}\n`);
    return 0;
  }
  const rows: string[][] = [['State', 'Recv-Q', 'Send-Q', 'Local Address:Port', 'Peer Address:Port', 'Transport', 'SMC']];
  const listeners = (r.listeners as Array<Record<string, unknown>> | undefined) ?? (r.listening as string[]).map((local) => ({ local, pending: 0, backlog: 0, transport: 'tcp' }));
  for (const l of listeners) rows.push(['LISTEN', String(l.pending), String(l.backlog), String(l.local), '*:*', String(l.transport), '']);
  for (const c of r.connections as Array<Record<string, unknown>>) rows.push([String(c.state), String(c.recvQueue ?? 0), String(c.sendQueue ?? 0), String(c.local), String(c.remote), String(c.transport ?? 'TCP'), smcDetail(c.smc)]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  process.stdout.write(`${rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n')}\n`);
  return 0;
}
