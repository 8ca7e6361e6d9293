/**
 * The kernel baseline of the transport benchmarks (scripts/bench/tcp.ts,
 * scripts/bench/smc.ts): two plain Node processes over kernel TCP on
 * 127.0.0.1 (scripts/bench/tcp-peer.ts), run as children of the bench, with
 * the CPU each side, interrupts and the idle platform used meanwhile.
 */
import type { ChildProcess } from 'node:child_process';
import { builtFile } from '../../shared/runtime/build-paths.ts';
import { r1, withCpu, type Bench } from './harness.ts';

// The compiled peer, as the platform's processes run compiled (issue 10 item 1).
const PEER = builtFile('scripts/bench/tcp-peer.ts');

/**
 * % of one core over the client's timed part: each peer (process.cpuUsage),
 * interrupts (irq + softirq from /proc/stat: loopback TCP's receive work, which
 * is charged to neither peer), the idle platform's processes meanwhile (from
 * /proc), the whole box, and what is left (other users of the box).
 */
export type PeerCpu = { client: number; server: number; irq: number; platform: number; machine: number; other: number };

export interface KernelBulk {
  gbps: number;
  mibps: number;
  elapsedMs: number;
  bytes: number;
  cpu: PeerCpu;
}

export interface KernelRr {
  /** Exchanges per second, sequential on one connection. */
  rps: number;
  elapsedMs: number;
  count: number;
  p50Us: number;
  p99Us: number;
  cpu: PeerCpu;
}

/** `fill`: pattern (as tcp-send: xorshift pattern, hashed), repeat (one chunk, hashed), count (one chunk, unhashed, against a count-sink). */
export type BulkFill = 'pattern' | 'repeat' | 'count';

export class KernelBaseline {
  constructor(
    private readonly bench: Bench,
    private readonly platformProcesses: string[],
  ) {}

  private async server(args: string[]): Promise<{ port: number; child: ChildProcess; done: Promise<Record<string, unknown>> }> {
    const child = this.bench.spawn([PEER, 'server', ...args]);
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let ready: (port: number) => void;
    let failed: (e: Error) => void;
    const listening = new Promise<number>((res, rej) => {
      ready = res;
      failed = rej;
    });
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /^READY (\d+)\n/.exec(stdout);
      if (m) ready(Number(m[1]));
    });
    const done = new Promise<Record<string, unknown>>((resolve, reject) => {
      child.on('exit', (code) => {
        failed(new Error(`tcp-peer server exited (${code}) before listening: ${stderr}`));
        const last = stdout.trim().split('\n').at(-1) ?? '';
        try {
          resolve(JSON.parse(last) as Record<string, unknown>);
        } catch {
          reject(new Error(`tcp-peer server (${code}) gave no result: ${stderr}`));
        }
      });
    });
    done.catch(() => {});
    const timer = setTimeout(() => failed(new Error('tcp-peer server not listening within 15 s')), 15_000);
    const port = await listening.finally(() => clearTimeout(timer));
    return { port, child, done };
  }

  /** Runs the client to completion; also measures the (idle) platform's processes meanwhile. */
  private async client(args: string[]): Promise<{ c: Record<string, unknown>; platform: number }> {
    const { result: r, cpu } = await withCpu(this.bench.runDir, this.platformProcesses, () => this.bench.run([PEER, 'client', ...args], 300_000));
    if (r.code !== 0) throw new Error(`tcp-peer client failed (${r.code}): ${r.stderr}`);
    const platform = r1(Object.values(cpu.processes).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0));
    return { c: JSON.parse(r.stdout.trim()) as Record<string, unknown>, platform };
  }

  private static cpu(c: Record<string, unknown>, serverCpu: unknown, platform: number): PeerCpu {
    const pct = (x: unknown) => {
      const u = x as { userMs: number; systemMs: number } | undefined;
      return u ? r1(((u.userMs + u.systemMs) / Number(c.elapsedMs)) * 100) : NaN;
    };
    const client = pct(c.cpu);
    const server = pct(serverCpu);
    const machine = c.machinePct === null ? NaN : Number(c.machinePct);
    const irq = c.irqPct === null ? NaN : Number(c.irqPct);
    return { client, server, irq, platform, machine, other: r1(Math.max(0, machine - client - server - irq - platform)) };
  }

  async bulk(fill: BulkFill, bytes: number, warmupBytes: number): Promise<KernelBulk> {
    const srv = await this.server(['--mode', fill === 'count' ? 'count-sink' : 'bulk-sink', '--conns', '2']);
    const { c, platform } = await this.client(['--mode', 'bulk', '--port', String(srv.port), '--bytes', String(bytes), '--warmup', String(warmupBytes), '--fill', fill]);
    const s = await srv.done;
    const last = s.last as { bytes: number; cpu: unknown };
    if (c.answer !== c.sha256 || c.bytes !== bytes || last.bytes !== bytes) throw new Error(`kernel bulk: ${String(c.bytes)} bytes sent, ${last.bytes} received, answer ${String(c.answer)} vs expected ${String(c.sha256)}`);
    const elapsedMs = Number(c.elapsedMs);
    return { gbps: (bytes * 8) / (elapsedMs * 1e6), mibps: bytes / 1048576 / (elapsedMs / 1000), elapsedMs, bytes, cpu: KernelBaseline.cpu(c, last.cpu, platform) };
  }

  async rr(count: number, warmup: number, size: number): Promise<KernelRr> {
    const srv = await this.server(['--mode', 'echo']);
    const { c, platform } = await this.client(['--mode', 'rr', '--port', String(srv.port), '--count', String(count), '--warmup', String(warmup), '--size', String(size)]);
    const s = await srv.done;
    return { rps: Number(c.rps), elapsedMs: Number(c.elapsedMs), count: Number(c.count), p50Us: Number(c.p50Us), p99Us: Number(c.p99Us), cpu: KernelBaseline.cpu(c, s.cpu, platform) };
  }

  async http(count: number, warmup: number, urlPath: string): Promise<Omit<KernelRr, 'p50Us' | 'p99Us'>> {
    const srv = await this.server(['--mode', 'http']);
    const { c, platform } = await this.client(['--mode', 'http', '--port', String(srv.port), '--count', String(count), '--warmup', String(warmup), '--path', urlPath]);
    const s = await srv.done;
    return { rps: Number(c.rps), elapsedMs: Number(c.elapsedMs), count: Number(c.count), cpu: KernelBaseline.cpu(c, s.cpu, platform) };
  }
}
