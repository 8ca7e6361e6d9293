/**
 * The raw baseline for `scripts/bench/rvi.ts`: two plain Node processes on one
 * UNIX stream socket, with no project code in between. Messages are framed
 * with a 4-byte big-endian length prefix (the RVI path adds its own link, VI
 * and RCLAN headers on top of the same idea), and each side does the same
 * per-message work the RVI perf verbs do: the sender allocates and fills every
 * message, the receiver reassembles whole messages and checks their content.
 *
 *   raw-socket-peer.ts server --socket PATH --mode sink --warmup W --count N
 *       Accepts one connection, takes W + N messages. Sends the byte 0x01 after
 *       the W warm-up messages and 0x02 once all N timed ones are in.
 *   raw-socket-peer.ts server --socket PATH --mode echo
 *       Sends every message straight back (ping-pong).
 *   raw-socket-peer.ts client --socket PATH --mode stream --warmup W --count N --size S [--hwm BYTES]
 *       Streams W warm-up messages, waits for 0x01, then streams N messages of S
 *       bytes, timed from the first write until the server's 0x02 arrives.
 *   raw-socket-peer.ts client --socket PATH --mode ping --warmup W --count N --size S
 *       W then N sequential round trips of S-byte messages.
 *
 * The server prints "READY" on stdout once it listens and one JSON line when it
 * is done; the client prints one JSON line. Nothing else goes to stdout.
 */
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import { num, opts } from './peer-args.ts';

const PREFIX = 4;
const ACK_WARM = 1;
const ACK_DONE = 2;


/** Busy and total jiffies of the whole machine (Linux /proc/stat), to see what else ran meanwhile. */
function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - f[4], total };
  } catch {
    return undefined;
  }
}

/** Whole-machine CPU since `m0`, in % of one core (100 x cores when every core is busy). */
function machinePct(m0: ReturnType<typeof machineJiffies>): number | null {
  const m1 = machineJiffies();
  if (!m0 || !m1 || m1.total === m0.total) return null;
  return Math.round(((m1.busy - m0.busy) / (m1.total - m0.total)) * os.cpus().length * 1000) / 10;
}

function cpuMs(since: NodeJS.CpuUsage): { userMs: number; systemMs: number } {
  const d = process.cpuUsage(since);
  return { userMs: d.user / 1000, systemMs: d.system / 1000 };
}

/** Splits a byte stream into whole messages (payload only), joining those that span chunks. */
class Deframer {
  private parts: Buffer[] = [];
  private partsLength = 0;

  constructor(private readonly emit: (msg: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.partsLength > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.partsLength < PREFIX) return;
      const head = this.parts[0].length >= PREFIX ? this.parts[0] : Buffer.concat(this.parts, this.partsLength);
      if (this.partsLength < PREFIX + head.readUInt32BE(0)) return;
      chunk = Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
    }
    let off = 0;
    while (chunk.length - off >= PREFIX) {
      const end = off + PREFIX + chunk.readUInt32BE(off);
      if (end > chunk.length) break;
      this.emit(chunk.subarray(off + PREFIX, end));
      off = end;
    }
    if (off < chunk.length) {
      this.parts.push(chunk.subarray(off));
      this.partsLength = chunk.length - off;
    }
  }
}

function frame(size: number, index: number): Buffer {
  const b = Buffer.allocUnsafe(PREFIX + size);
  b.writeUInt32BE(size, 0);
  b.writeUInt32BE(index, PREFIX);
  if (size > 4) b.fill(index & 0xff, PREFIX + 4);
  return b;
}

function server(o: Map<string, string>): void {
  const path = o.get('socket')!;
  const mode = o.get('mode') ?? 'sink';
  const warmup = mode === 'sink' ? num(o, 'warmup', 0) : 0;
  const count = mode === 'sink' ? num(o, 'count') : 0;
  try {
    fs.unlinkSync(path);
  } catch {
    /* not there */
  }
  const srv = net.createServer((sock) => {
    sock.setNoDelay(true);
    srv.close();
    if (mode === 'echo') {
      let echoed = 0;
      const d = new Deframer((m) => {
        const out = Buffer.allocUnsafe(PREFIX + m.length);
        out.writeUInt32BE(m.length, 0);
        m.copy(out, PREFIX);
        sock.write(out);
        echoed++;
      });
      sock.on('data', (c: Buffer) => d.push(c));
      sock.on('close', () => {
        process.stdout.write(`${JSON.stringify({ role: 'server', mode, echoed })}\n`);
        process.exit(0);
      });
      return;
    }
    let received = 0;
    let bytes = 0;
    let corrupt = 0;
    let firstAt = 0;
    let lastAt = 0;
    let cpu0 = process.cpuUsage();
    let cpu: { userMs: number; systemMs: number } | undefined;
    const ackWarm = () => {
      sock.write(Buffer.from([ACK_WARM]));
      cpu0 = process.cpuUsage();
    };
    const d = new Deframer((m) => {
      received++;
      if (received <= warmup) {
        if (received === warmup) ackWarm();
        return;
      }
      if (firstAt === 0) firstAt = performance.now();
      const index = m.readUInt32BE(0);
      if (m.length > 4 && (m[4] !== (index & 0xff) || m[m.length - 1] !== (index & 0xff))) corrupt++;
      bytes += m.length;
      if (received === warmup + count) {
        lastAt = performance.now();
        cpu = cpuMs(cpu0);
        sock.write(Buffer.from([ACK_DONE]));
      }
    });
    if (warmup === 0) ackWarm();
    sock.on('data', (c: Buffer) => d.push(c));
    sock.on('close', () => {
      process.stdout.write(`${JSON.stringify({ role: 'server', mode, received: received - warmup, bytes, corrupt, rxMs: lastAt - firstAt, cpu })}\n`);
      process.exit(0);
    });
  });
  srv.listen(path, () => process.stdout.write('READY\n'));
}

async function client(o: Map<string, string>): Promise<void> {
  const path = o.get('socket')!;
  const mode = o.get('mode') ?? 'stream';
  const warmup = num(o, 'warmup', 0);
  const count = num(o, 'count');
  const size = Math.max(8, num(o, 'size'));
  const hwm = num(o, 'hwm', 1 << 20);
  const sock = net.connect(path);
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });

  if (mode === 'ping') {
    let waiter: ((m: Buffer) => void) | undefined;
    const d = new Deframer((m) => waiter?.(m));
    sock.on('data', (c: Buffer) => d.push(c));
    const samples: number[] = [];
    const cpu0 = process.cpuUsage();
    const m0 = machineJiffies();
    for (let i = 0; i < warmup + count; i++) {
      const msg = frame(size, i);
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no echo for ping ${i} within 5 s`)), 5000);
        waiter = (m) => {
          if (m.readUInt32BE(0) !== i) return;
          clearTimeout(timer);
          resolve();
        };
        sock.write(msg);
      });
      if (i >= warmup) samples.push((performance.now() - t0) * 1000);
    }
    const cpu = cpuMs(cpu0);
    const machine = machinePct(m0);
    sock.end();
    samples.sort((a, b) => a - b);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    process.stdout.write(`${JSON.stringify({ role: 'client', mode, count, size, minUs: samples[0], p50Us: samples[samples.length >> 1], p99Us: samples[Math.floor(samples.length * 0.99)], meanUs: mean, cpu, machinePct: machine })}\n`);
    return;
  }

  // stream: the same backpressure the fabric links use (a high-water mark on
  // unsent bytes, writes of one tick corked into one writev, then 'drain').
  const acks: number[] = [];
  let ackWaiter: (() => void) | undefined;
  sock.on('data', (c: Buffer) => {
    for (const b of c) acks.push(b);
    ackWaiter?.();
  });
  const waitAck = (want: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (acks.includes(want)) {
          ackWaiter = undefined;
          resolve();
        }
      };
      ackWaiter = check;
      check();
    });
  let corked = false;
  const send = async (total: number, base: number) => {
    for (let i = 0; i < total; i++) {
      if (!corked) {
        corked = true;
        sock.cork();
        process.nextTick(() => {
          corked = false;
          sock.uncork();
        });
      }
      sock.write(frame(size, base + i));
      if (sock.writableLength >= hwm) await new Promise<void>((r) => sock.once('drain', r));
    }
  };
  await send(warmup, 0);
  await waitAck(ACK_WARM);
  const cpu0 = process.cpuUsage();
  const m0 = machineJiffies();
  const t0 = performance.now();
  await send(count, warmup);
  await waitAck(ACK_DONE);
  const elapsedMs = performance.now() - t0;
  const cpu = cpuMs(cpu0);
  const machine = machinePct(m0);
  sock.end();
  const bytes = count * size;
  process.stdout.write(`${JSON.stringify({ role: 'client', mode, count, size, bytes, elapsedMs, mibps: bytes / 1048576 / (elapsedMs / 1000), gbps: (bytes * 8) / (elapsedMs * 1e6), msgsPerSec: (count * 1000) / elapsedMs, cpu, machinePct: machine })}\n`);
}

const int = (help: string) => ({ type: 'integer', arg: 'N', min: 0, help }) as const;
const { role, o } = opts(process.argv.slice(2), {
  socket: { type: 'string', arg: 'PATH', help: 'the UNIX socket' },
  mode: { type: 'string', arg: 'MODE', help: 'server: sink|echo; client: stream|ping' },
  warmup: int('untimed messages first'),
  count: int('messages'),
  size: int('bytes per message'),
  hwm: int('client: bytes buffered before waiting for drain'),
});
if (!o.get('socket')) {
  process.stderr.write('usage: raw-socket-peer.ts server|client --socket PATH --mode sink|echo|stream|ping ...\n');
  process.exit(2);
}
if (role === 'server') server(o);
else if (role === 'client') await client(o);
else {
  process.stderr.write(`unknown role "${role}" (server or client)\n`);
  process.exit(2);
}
