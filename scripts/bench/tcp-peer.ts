/**
 * The kernel baseline for `scripts/bench/tcp.ts`: two plain Node processes
 * over kernel TCP on 127.0.0.1, no project code in between. Each side does the
 * same per-byte and per-request work as the LPAR verbs it is compared with
 * (services/lpar/apps/builtin.ts), so the difference is the transport:
 *
 *   tcp-peer.ts server --mode bulk-sink --conns C
 *       As the `bulk-sink` app: reads each connection to its end, hashes it
 *       (SHA-256) and answers the hex digest. Exits after C connections.
 *   tcp-peer.ts client --mode bulk --port P --bytes N [--warmup W] [--fill pattern|repeat]
 *       As `tcp-send`: W bytes untimed on a first connection (when W > 0), then
 *       N bytes on a new one: connect, write the xorshift pattern in 64 KiB
 *       chunks (hashing each) with backpressure (write() false -> 'drain'),
 *       half-close, read the digest; timed from connect() until 'close'. Fails
 *       when the answer is not the digest of what was sent. `--fill repeat`
 *       writes (and hashes) one pre-made 64 KiB chunk over and over instead:
 *       the same transfer without the cost of making the pattern. `--fill
 *       count` writes that chunk without hashing, against a count-sink.
 *   tcp-peer.ts server --mode count-sink --conns C
 *       As the `count-sink` app: reads each connection to its end and answers
 *       its length (the transport alone, for scripts/bench/smc.ts).
 *   tcp-peer.ts server --mode echo
 *       Every byte back (as the `echo` app), one connection.
 *   tcp-peer.ts client --mode rr --port P --count N --size S [--warmup W]
 *       One connection: W then N sequential request/response exchanges of S
 *       bytes (write S bytes, wait until S bytes are back).
 *   tcp-peer.ts server --mode http
 *       Node's http server answering anything with the `http` app's greeting.
 *   tcp-peer.ts client --mode http --port P --count N [--warmup W] [--path /x]
 *       As `http-get`: W then N sequential GETs through one keep-alive Agent
 *       (maxSockets 1) on one connection.
 *
 * setNoDelay(true) on every socket, both ends. The server prints "READY <port>"
 * once it listens (on 127.0.0.1, an ephemeral port) and one JSON line when done;
 * the client prints one JSON line. Nothing else goes to stdout. CPU of each
 * side (process.cpuUsage) covers its timed part only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
// The same pattern the partition's bulk source makes, so both sides do the same work.
import { bulkSource } from '../../shared/workload/bulk.ts';
import { num, opts } from './peer-args.ts';

const HOST = '127.0.0.1';


/** Busy, interrupt (irq + softirq) and total jiffies of the whole machine (Linux /proc/stat). */
function machineJiffies(): { busy: number; irq: number; total: number } | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - f[4], irq: f[5] + f[6], total };
  } catch {
    return undefined;
  }
}

/**
 * Whole-machine CPU since `m0`, in % of one core (100 x cores when every core
 * is busy): all of it, and the interrupt part. Loopback TCP does much of its
 * receive work in softirq, which the kernel does not charge to either peer.
 */
function machinePct(m0: ReturnType<typeof machineJiffies>): { machinePct: number | null; irqPct: number | null } {
  const m1 = machineJiffies();
  if (!m0 || !m1 || m1.total === m0.total) return { machinePct: null, irqPct: null };
  const pct = (d: number) => Math.round((d / (m1.total - m0.total)) * os.cpus().length * 1000) / 10;
  return { machinePct: pct(m1.busy - m0.busy), irqPct: pct(m1.irq - m0.irq) };
}

function cpuMs(since: NodeJS.CpuUsage): { userMs: number; systemMs: number } {
  const d = process.cpuUsage(since);
  return { userMs: d.user / 1000, systemMs: d.system / 1000 };
}


const out = (x: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(x)}\n`);
const ready = (srv: net.Server | http.Server) => process.stdout.write(`READY ${(srv.address() as net.AddressInfo).port}\n`);

// ---------------------------------------------------------------- servers

/** `hashed` false: the count-sink app's way, answering the length instead of the digest. */
function bulkSinkServer(conns: number, hashed = true): void {
  let done = 0;
  const results: Array<{ bytes: number; ms: number; cpu: { userMs: number; systemMs: number } }> = [];
  const srv = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.setNoDelay(true);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      if (hashed) hash.update(d);
    });
    s.on('end', () => {
      results.push({ bytes, ms: performance.now() - t0, cpu: cpuMs(cpu0) });
      s.end(hashed ? hash.digest('hex') : String(bytes));
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (++done >= conns) {
        out({ role: 'server', mode: 'bulk-sink', results, last: results.at(-1) });
        process.exit(0);
      }
    });
  });
  srv.listen(0, HOST, () => ready(srv));
}

function echoServer(): void {
  const srv = net.createServer({ noDelay: true }, (s) => {
    srv.close();
    s.setNoDelay(true);
    const cpu0 = process.cpuUsage();
    let bytes = 0;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      s.write(d);
    });
    s.on('error', () => {});
    s.on('close', () => {
      out({ role: 'server', mode: 'echo', bytes, cpu: cpuMs(cpu0) });
      process.exit(0);
    });
  });
  srv.listen(0, HOST, () => ready(srv));
}

/** The `http` app's answer for anything but /bytes/N. */
function httpServer(): void {
  let requests = 0;
  let cpu0 = process.cpuUsage();
  const srv = http.createServer({ noDelay: true, keepAlive: true }, (req, res) => {
    requests++;
    res.end(`hello from lparlab ${req.method} ${req.url}\n`);
  });
  srv.on('connection', (s: net.Socket) => {
    srv.close();
    s.setNoDelay(true);
    cpu0 = process.cpuUsage();
    s.on('close', () => {
      out({ role: 'server', mode: 'http', requests, cpu: cpuMs(cpu0) });
      process.exit(0);
    });
  });
  srv.listen(0, HOST, () => ready(srv));
}

// ---------------------------------------------------------------- clients

/** One bulk transfer exactly as the partition's `tcp-send` does it, over kernel TCP. */
function bulkOnce(port: number, bytes: number, seed: number, fill: string) {
  const connect = (o: { port: number; host: string }) => net.connect({ ...o, noDelay: true });
  return bulkSource(connect, HOST, port, bytes, seed, fill === 'repeat', fill !== 'count');
}

async function bulkClient(o: Map<string, string>, port: number): Promise<void> {
  const bytes = num(o, 'bytes');
  const warmup = num(o, 'warmup', 0);
  const fill = o.get('fill') ?? 'pattern';
  if (fill !== 'pattern' && fill !== 'repeat' && fill !== 'count') throw new Error('--fill must be pattern, repeat or count');
  if (warmup > 0) {
    const w = await bulkOnce(port, warmup, 2, fill);
    if (w.answer !== w.sha256) throw new Error(`warm-up transfer: answer ${w.answer} is not the digest ${w.sha256}`);
  }
  const cpu0 = process.cpuUsage();
  const m0 = machineJiffies();
  const r = await bulkOnce(port, bytes, 1, fill);
  const cpu = cpuMs(cpu0);
  const machine = machinePct(m0);
  if (r.answer !== r.sha256) throw new Error(`answer ${r.answer} is not the digest ${r.sha256}`);
  out({ role: 'client', mode: 'bulk', fill, ...r, gbps: (r.bytes * 8) / (r.elapsedMs * 1e6), mibps: r.bytes / 1048576 / (r.elapsedMs / 1000), cpu, ...machine });
}

async function rrClient(o: Map<string, string>, port: number): Promise<void> {
  const count = num(o, 'count');
  const warmup = num(o, 'warmup', 0);
  const size = Math.max(1, num(o, 'size', 64));
  const s = net.connect({ port, host: HOST, noDelay: true });
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  let have = 0;
  let waiter: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    have += d.length;
    if (have >= size) {
      have -= size;
      waiter?.();
    }
  });
  const msg = Buffer.alloc(size, 0x61);
  const samples: number[] = [];
  let cpu0 = process.cpuUsage();
  let m0 = machineJiffies();
  let t0 = performance.now();
  for (let i = 0; i < warmup + count; i++) {
    if (i === warmup) {
      cpu0 = process.cpuUsage();
      m0 = machineJiffies();
      t0 = performance.now();
    }
    const ts = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response to request ${i} within 5 s`)), 5000);
      waiter = () => {
        clearTimeout(timer);
        waiter = undefined;
        resolve();
      };
      s.write(msg);
    });
    if (i >= warmup) samples.push((performance.now() - ts) * 1000);
  }
  const elapsedMs = performance.now() - t0;
  const cpu = cpuMs(cpu0);
  const machine = machinePct(m0);
  s.end();
  samples.sort((a, b) => a - b);
  out({
    role: 'client',
    mode: 'rr',
    count,
    size,
    elapsedMs,
    rps: (count * 1000) / elapsedMs,
    minUs: samples[0],
    p50Us: samples[samples.length >> 1],
    p99Us: samples[Math.floor(samples.length * 0.99)],
    meanUs: samples.reduce((a, b) => a + b, 0) / samples.length,
    cpu,
    ...machine,
  });
}

async function httpClient(o: Map<string, string>, port: number): Promise<void> {
  const count = num(o, 'count');
  const warmup = num(o, 'warmup', 0);
  const path = o.get('path') ?? '/x';
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const want = `hello from lparlab GET ${path}\n`;
  let ok = 0;
  let connections = 0;
  const get = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: HOST, port, path, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          if (res.statusCode === 200 && Buffer.concat(chunks).toString() === want) ok++;
          resolve();
        });
      });
      req.on('socket', (s: net.Socket) => {
        if (!(s as net.Socket & { counted?: boolean }).counted) {
          (s as net.Socket & { counted?: boolean }).counted = true;
          connections++;
          s.setNoDelay(true);
        }
      });
      req.on('error', reject);
      req.end();
    });
  for (let i = 0; i < warmup; i++) await get();
  ok = 0;
  const cpu0 = process.cpuUsage();
  const m0 = machineJiffies();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await get();
  const elapsedMs = performance.now() - t0;
  const cpu = cpuMs(cpu0);
  const machine = machinePct(m0);
  agent.destroy();
  if (ok !== count) throw new Error(`${count - ok} of ${count} answers were wrong`);
  out({ role: 'client', mode: 'http', count, ok, connections, elapsedMs, rps: (count * 1000) / elapsedMs, cpu, ...machine });
}

// ---------------------------------------------------------------- main

const int = (help: string) => ({ type: 'integer', arg: 'N', min: 0, help }) as const;
const { role, o } = opts(process.argv.slice(2), {
  mode: { type: 'string', arg: 'MODE', help: 'server: bulk-sink|count-sink|echo|http; client: bulk|rr|http' },
  conns: int('server: connections to serve'),
  port: int('client: the server port'),
  bytes: int('bulk: bytes to send'),
  warmup: int('untimed bytes or requests first'),
  fill: { type: 'string', arg: 'pattern|count', help: 'bulk: what the bytes are' },
  count: int('rr, http: requests'),
  size: int('rr: bytes per request'),
  path: { type: 'string', arg: 'PATH', help: 'http: the URL path' },
});
const mode = o.get('mode') ?? '';
try {
  if (role === 'server' && mode === 'bulk-sink') bulkSinkServer(num(o, 'conns', 1));
  else if (role === 'server' && mode === 'count-sink') bulkSinkServer(num(o, 'conns', 1), false);
  else if (role === 'server' && mode === 'echo') echoServer();
  else if (role === 'server' && mode === 'http') httpServer();
  else if (role === 'client' && mode === 'bulk') await bulkClient(o, num(o, 'port'));
  else if (role === 'client' && mode === 'rr') await rrClient(o, num(o, 'port'));
  else if (role === 'client' && mode === 'http') await httpClient(o, num(o, 'port'));
  else {
    process.stderr.write('usage: tcp-peer.ts server --mode bulk-sink|count-sink|echo|http [--conns C] | client --mode bulk|rr|http --port P ...\n');
    process.exit(2);
  }
} catch (err) {
  process.stderr.write(`tcp-peer ${role} ${mode}: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
