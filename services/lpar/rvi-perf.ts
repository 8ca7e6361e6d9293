import crypto from 'node:crypto';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { Rvi } from '../../shared/rclan/rvi.ts';

/**
 * RVI diagnostics in the manner of InfiniBand's perftest: streams of numbered
 * messages whose receiver checks order, exactly-once delivery and content;
 * ping-pong round trips; and RDMA WRITE into registered regions. They run on
 * RVIs of purpose "perf" that management creates between two LPARs.
 *
 * Message: u8 type, u32 run, u32 index, filler whose every byte is index & 0xff.
 */
const STREAM = 1;
const PING = 2;
const PONG = 3;
const PERF_HEADER = 9;

interface RxStats {
  run: number;
  expected: number;
  received: number;
  bytes: number;
  duplicates: number;
  missing: number;
  outOfOrder: number;
  corrupt: number;
  firstAt: number;
  lastAt: number;
}

interface PerfState {
  rx: RxStats;
  undeliverable: number;
  drain?: () => void;
  pong?: (payload: Buffer) => void;
  regions: Map<number, Buffer>;
}

function freshRx(): RxStats {
  return { run: 0, expected: 0, received: 0, bytes: 0, duplicates: 0, missing: 0, outOfOrder: 0, corrupt: 0, firstAt: 0, lastAt: 0 };
}

export class RviPerf {
  private readonly state = new Map<Rvi, PerfState>();

  constructor(private readonly fabric: NodeFabric) {}

  /** Takes over an RVI of purpose "perf". */
  attach(rvi: Rvi): void {
    const st: PerfState = { rx: freshRx(), undeliverable: 0, regions: new Map() };
    this.state.set(rvi, st);
    rvi.onMessage = (payload) => this.onMessage(rvi, st, payload);
    rvi.onUndeliverable = () => {
      st.undeliverable++;
    };
    rvi.onDrain = () => st.drain?.();
  }

  private onMessage(rvi: Rvi, st: PerfState, p: Buffer): void {
    if (p.length < PERF_HEADER) {
      st.rx.corrupt++;
      return;
    }
    const type = p[0];
    if (type === PING) {
      const pong = Buffer.from(p);
      pong[0] = PONG;
      rvi.send(pong);
      return;
    }
    if (type === PONG) {
      st.pong?.(p);
      return;
    }
    if (type !== STREAM) {
      st.rx.corrupt++;
      return;
    }
    const rx = st.rx;
    const run = p.readUInt32BE(1);
    const index = p.readUInt32BE(5);
    const now = performance.now();
    if (run !== rx.run) {
      Object.assign(rx, freshRx(), { run, firstAt: now });
    }
    rx.received++;
    rx.bytes += p.length;
    rx.lastAt = now;
    if (p.length > PERF_HEADER && (p[PERF_HEADER] !== (index & 0xff) || p[p.length - 1] !== (index & 0xff))) rx.corrupt++;
    if (index === rx.expected) rx.expected++;
    else if (index < rx.expected) rx.duplicates++;
    else {
      rx.outOfOrder++;
      rx.missing += index - rx.expected;
      rx.expected = index + 1;
    }
  }

  private rviTo(peer: unknown): { rvi: Rvi; st: PerfState } {
    const rvi = this.fabric.rclan.find(String(peer), 'perf');
    const st = rvi && this.state.get(rvi);
    if (!rvi || !st) throw new Error(`no perf RVI to "${String(peer)}" (create one: lparlab rvi create A B --purpose perf)`);
    return { rvi, st };
  }

  /** Streams `count` messages cycling through `sizes`; resolves when every one is acknowledged or reported undeliverable. */
  async send(m: ControlMessage): Promise<Record<string, unknown>> {
    const { rvi, st } = this.rviTo(m.peer);
    const count = Number(m.count);
    const sizes = (m.sizes as number[] | undefined) ?? [1024];
    if (!(count > 0) || sizes.some((s) => !(s >= PERF_HEADER && s <= 1 << 20))) throw new Error(`count must be > 0 and sizes within ${PERF_HEADER}..1048576`);
    const run = crypto.randomBytes(4).readUInt32BE(0) || 1;
    const stopOnFailure = m.stopOnFailure !== false;
    const ackedBefore = rvi.stats.acked;
    const failedBefore = st.undeliverable;
    const t0 = performance.now();
    let bytes = 0;
    let index = 0;
    while (index < count) {
      if (stopOnFailure && st.undeliverable > failedBefore) break;
      const size = sizes[index % sizes.length];
      const msg = Buffer.allocUnsafe(size);
      msg[0] = STREAM;
      msg.writeUInt32BE(run, 1);
      msg.writeUInt32BE(index, 5);
      msg.fill(index & 0xff, PERF_HEADER);
      if (!rvi.send(msg)) {
        await new Promise<void>((resolve) => {
          st.drain = resolve;
        });
        st.drain = undefined;
        continue;
      }
      bytes += size;
      index++;
    }
    const deadline = performance.now() + Number(m.settleMs ?? 30_000);
    while (rvi.inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    const elapsedMs = performance.now() - t0;
    return {
      run,
      sent: index,
      acked: rvi.stats.acked - ackedBefore,
      undeliverable: st.undeliverable - failedBefore,
      inFlight: rvi.inFlight,
      bytes,
      elapsedMs,
      gbps: (bytes * 8) / (elapsedMs * 1e6),
      msgsPerSec: (index * 1000) / elapsedMs,
    };
  }

  received(m: ControlMessage): Record<string, unknown> {
    const { st } = this.rviTo(m.peer);
    const rx = st.rx;
    const elapsedMs = rx.lastAt - rx.firstAt;
    return { ...rx, elapsedMs, gbps: elapsedMs > 0 ? (rx.bytes * 8) / (elapsedMs * 1e6) : 0 };
  }

  /** Sequential round trips of `size`-byte messages; latency figures in microseconds. */
  async ping(m: ControlMessage): Promise<Record<string, unknown>> {
    const { rvi, st } = this.rviTo(m.peer);
    const count = Number(m.count ?? 1000);
    const size = Math.max(PERF_HEADER, Number(m.size ?? 64));
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const msg = Buffer.alloc(size);
      msg[0] = PING;
      msg.writeUInt32BE(i, 5);
      const t0 = performance.now();
      const got = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no pong for ping ${i} within 5 s`)), 5000);
        st.pong = (p) => {
          if (p.readUInt32BE(5) !== i) return;
          clearTimeout(timer);
          resolve();
        };
      });
      while (!rvi.send(msg)) await new Promise<void>((r) => (st.drain = r));
      await got;
      samples.push((performance.now() - t0) * 1000);
    }
    st.pong = undefined;
    samples.sort((a, b) => a - b);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    return { count, size, minUs: samples[0], p50Us: samples[samples.length >> 1], p99Us: samples[Math.floor(samples.length * 0.99)], meanUs: mean };
  }

  registerRegion(m: ControlMessage): Record<string, unknown> {
    const { rvi, st } = this.rviTo(m.peer);
    const size = Number(m.size);
    if (!(size > 0 && size <= 64 << 20)) throw new Error('region size must be 1..64 MiB');
    const region = rvi.registerRegion(Buffer.alloc(size));
    st.regions.set(region.id, region.buffer);
    return { region: region.id, key: region.key, size };
  }

  readRegion(m: ControlMessage): Record<string, unknown> {
    const { st } = this.rviTo(m.peer);
    const buf = st.regions.get(Number(m.region));
    if (!buf) throw new Error(`no region ${String(m.region)}`);
    const offset = Number(m.offset ?? 0);
    const length = Math.min(Number(m.length ?? buf.length), buf.length - offset);
    return { data: buf.subarray(offset, offset + length) };
  }

  async rdmaWrite(m: ControlMessage): Promise<Record<string, unknown>> {
    const { rvi, st } = this.rviTo(m.peer);
    const data = Buffer.from(m.data as Uint8Array);
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const attempt = () => {
        const ok = rvi.rdmaWrite(Number(m.region), Number(m.key), Number(m.offset ?? 0), data, (err) => (err ? reject(err) : resolve()));
        if (!ok) st.drain = attempt;
      };
      attempt();
    });
    return { written: data.length, us: (performance.now() - t0) * 1000 };
  }
}
