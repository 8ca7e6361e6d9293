import crypto from 'node:crypto';
import type { NodeFabric } from '../../../shared/fabric/node-fabric.ts';
import type { AdminReply, LparRequests, LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { Rvi } from '../../../shared/rclan/rvi.ts';
import { PERF_HEADER, PERF_MAX, PerfMessage, PerfType, emitPerf } from '../../../shared/wire/perf-message.ts';
import { Perf } from '../../../shared/rclan/purpose.ts';

/**
 * RVI diagnostics in the manner of InfiniBand's perftest: streams of numbered
 * messages whose receiver checks order, exactly-once delivery and content;
 * ping-pong round trips; and RDMA WRITE into registered regions. They run on
 * RVIs of purpose "perf" that management creates between two LPARs. The
 * messages are shared/wire/perf-message.ts.
 */

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
  pong?: (msg: PerfMessage) => void;
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

  /** The verbs of these diagnostics, for the admin socket. */
  verbs(): LparVerbTable<'perf-send' | 'perf-received' | 'perf-ping' | 'rdma-register' | 'rdma-read' | 'rdma-write'> {
    return {
      'perf-send': (m) => this.send(m),
      'perf-received': (m) => this.received(m),
      'perf-ping': (m) => this.ping(m),
      'rdma-register': (m) => this.registerRegion(m),
      'rdma-read': (m) => this.readRegion(m),
      'rdma-write': (m) => this.rdmaWrite(m),
    };
  }

  private onMessage(rvi: Rvi, st: PerfState, p: Buffer): void {
    const msg = PerfMessage.tryParse(p);
    if (!msg) {
      st.rx.corrupt++;
      return;
    }
    if (msg.type === PerfType.Ping) {
      const pong = PerfMessage.parse(Buffer.from(p));
      pong.setType(PerfType.Pong);
      rvi.send(pong.buffer);
      return;
    }
    if (msg.type === PerfType.Pong) {
      st.pong?.(msg);
      return;
    }
    const rx = st.rx;
    const run = msg.run;
    const index = msg.index;
    const now = performance.now();
    if (run !== rx.run) {
      Object.assign(rx, freshRx(), { run, firstAt: now });
    }
    rx.received++;
    rx.bytes += p.length;
    rx.lastAt = now;
    if (!msg.fillerIntact) rx.corrupt++;
    if (index === rx.expected) rx.expected++;
    else if (index < rx.expected) rx.duplicates++;
    else {
      rx.outOfOrder++;
      rx.missing += index - rx.expected;
      rx.expected = index + 1;
    }
  }

  private rviTo(peer: string): { rvi: Rvi; st: PerfState } {
    const rvi = this.fabric.rclan.find(peer, Perf);
    const st = rvi && this.state.get(rvi);
    if (!rvi || !st) throw new Error(`no perf RVI to "${peer}" (create one: lparlab rvi create A B --purpose perf)`);
    return { rvi, st };
  }

  /** Streams `count` messages cycling through `sizes`; resolves when every one is acknowledged or reported undeliverable. */
  async send(m: LparRequests['perf-send']): Promise<AdminReply<'perf-send'>> {
    const { rvi, st } = this.rviTo(m.peer);
    const count = m.count;
    const sizes = m.sizes ?? [1024];
    if (sizes.length === 0 || sizes.some((s) => !(s >= PERF_HEADER && s <= PERF_MAX))) throw new Error(`perf-send: field "sizes": sizes within ${PERF_HEADER}..${PERF_MAX}`);
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
      emitPerf(msg, 0, { type: PerfType.Stream, run, index });
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
    const deadline = performance.now() + (m.settleMs ?? 30_000);
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

  received(m: LparRequests['perf-received']): AdminReply<'perf-received'> {
    const { st } = this.rviTo(m.peer);
    const rx = st.rx;
    const elapsedMs = rx.lastAt - rx.firstAt;
    return { ...rx, elapsedMs, gbps: elapsedMs > 0 ? (rx.bytes * 8) / (elapsedMs * 1e6) : 0 };
  }

  /** Sequential round trips of `size`-byte messages; latency figures in microseconds. */
  async ping(m: LparRequests['perf-ping']): Promise<AdminReply<'perf-ping'>> {
    const { rvi, st } = this.rviTo(m.peer);
    const count = m.count ?? 1000;
    const size = Math.max(PERF_HEADER, m.size ?? 64);
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const msg = Buffer.allocUnsafe(size);
      emitPerf(msg, 0, { type: PerfType.Ping, run: 0, index: i });
      const t0 = performance.now();
      const got = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no pong for ping ${i} within 5 s`)), 5000);
        st.pong = (p) => {
          if (p.index !== i) return;
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

  registerRegion(m: LparRequests['rdma-register']): AdminReply<'rdma-register'> {
    const { rvi, st } = this.rviTo(m.peer);
    const size = m.size;
    const region = rvi.registerRegion(Buffer.alloc(size));
    st.regions.set(region.id, region.buffer);
    return { region: region.id, key: region.key, size };
  }

  readRegion(m: LparRequests['rdma-read']): AdminReply<'rdma-read'> {
    const { st } = this.rviTo(m.peer);
    const buf = st.regions.get(m.region);
    if (!buf) throw new Error(`no region ${m.region}`);
    const offset = Math.min(m.offset ?? 0, buf.length);
    const length = Math.min(m.length ?? buf.length, buf.length - offset);
    return { data: buf.subarray(offset, offset + length) };
  }

  async rdmaWrite(m: LparRequests['rdma-write']): Promise<AdminReply<'rdma-write'>> {
    const { rvi, st } = this.rviTo(m.peer);
    const data = m.data;
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const attempt = () => {
        const ok = rvi.rdmaWrite(m.region, m.key, m.offset ?? 0, data, (err) => (err ? reject(err) : resolve()));
        if (!ok) st.drain = attempt;
      };
      attempt();
    });
    return { written: data.length, us: (performance.now() - t0) * 1000 };
  }
}
