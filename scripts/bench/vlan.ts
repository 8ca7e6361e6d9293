/**
 * Virtual LAN benchmark (docs/BENCHMARKS.md, issue "Virtual Ethernet over RVIs
 * and virtual LAN servers"): UDP throughput and ICMP ping between two LPARs on
 * a virtual LAN, against the raw RVI (the foundation bench's `perf-send` and
 * `perf-ping` over a `perf` RVI) between the same two LPARs, in the same run.
 *
 *   node scripts/bench.mjs vlan [--json] [--reps N] [--quick] [--window W]
 *
 * Boots one control node and two LPARs on different CECs, both fabric planes,
 * and a virtual LAN "blue" (10.9.0.1 on lpar1, 10.9.0.2 on lpar2), in a
 * temporary run directory. Then, interleaved within each repetition (the order
 * alternates between repetitions) so that drift hits both sides alike:
 *
 *   - UDP: lpar1 sends N datagrams of 16384 bytes to a counting sink on lpar2
 *     (admin verbs udp-open / udp-send / udp-recv), at most W unconfirmed
 *     (confirmed = in the RVI's hands). Timed at the bench: from just before
 *     udp-send is issued until a poll of the sink shows every datagram (or, when
 *     some were lost, until the count stopped growing). Throughput counts the
 *     bytes delivered; losses are reported. The receiver's own rate
 *     (bytes / (lastAt - firstAt)) is reported too.
 *   - RVI: `perf-send` of N x 16384-byte messages on a `perf` RVI, timed in the
 *     LPAR from the first send until all are acknowledged, as in rvi.ts.
 *   - Round trip: `ping` (ICMP echo, 56 data bytes, one at a time as ping -f)
 *     against `perf-ping` (64-byte messages).
 *
 * W is chosen among 16/64/256 by one trial each before the timed runs (or given
 * with --window). Bar: UDP throughput >= 60 % of RVI throughput at 16 KiB. CPU
 * per process comes from /proc for every timed part.
 *
 * With --json exactly one JSON object goes to stdout; progress goes to stderr.
 * Exit code: 0 when the bar is met, 1 when not, 2 on error, 130 when interrupted.
 */
import os from 'node:os';
import { adminRequest, benchArgs, codeVersion, contention as contentionOf, CONTENDED_PCT, createBench, cpuLine, fmRequest, latency, log, median, medianCpu, r1, r2, runRecord, sleep, withCpu, type CpuSample, type RunDirT, benchPlatformYaml, BENCH_PROCESSES, BENCH_DST, waitFor } from './harness.ts';
import { Perf, lan } from '../../shared/rclan/purpose.ts';

const PLATFORM_YAML = benchPlatformYaml('vbench');
const PROCESSES = BENCH_PROCESSES;
const DST = BENCH_DST;
const PORT = 9000;
const SIZE = 16384;
const WINDOWS = [16, 64, 256];
const BAR = 0.6;
/** A sink whose count has not grown for this long has everything it will get. */
const STALL_MS = 500;

// ---------------------------------------------------------------- arguments

const { json: JSON_OUT, quick: QUICK, reps: REPS, num } = benchArgs('node scripts/bench.mjs vlan [--json] [--reps N] [--quick] [--window W]', {
  window: 'UDP datagrams in flight (default: the best of 16, 64, 256 by one trial each)',
});
const WINDOW_ARG = num('--window');
if (WINDOW_ARG !== undefined && WINDOW_ARG < 1) {
  process.stderr.write('--window must be a whole number >= 1\n');
  process.exit(2);
}

const CFG = QUICK
  ? { count: 2000, trialCount: 1000, warmup: 1000, ping: { count: 300, warmup: 50, icmpSize: 56, rviSize: 64 } }
  : { count: 32_768, trialCount: 16_384, warmup: 2000, ping: { count: 2000, warmup: 200, icmpSize: 56, rviSize: 64 } }; // 512 MiB per timed run

// ---------------------------------------------------------------- measurements

interface Throughput {
  /** MiB/s of payload delivered, timed at the bench (UDP) or in the sending LPAR (RVI, as rvi.ts). */
  mibps: number;
  elapsedMs: number;
  bytes: number;
  cpu: CpuSample;
}
interface UdpThroughput extends Throughput {
  /** bytes / (lastAt - firstAt) on lpar2. */
  receiverMibps: number;
  /** udp-send's own figures: time until the last datagram was in the RVI's hands. */
  senderMs: number;
  sendErrors: number;
  sent: number;
  received: number;
  lossPct: number;
  /** Frames the sending driver dropped (queue full), sent direct, relayed through a control node, during the run. */
  driver: Record<string, number>;
}
interface Rtt {
  p50Us: number;
  p99Us: number;
  minUs: number;
  meanUs: number;
  lost: number;
  cpu: CpuSample;
}

const MiB = 1048576;
let runDir: RunDirT;
let txSocket = 0;

/** An admin request to a platform process; `T` is the reply's shape. */
const admin = async <T = Record<string, unknown>>(name: string, msg: { t: string } & Record<string, unknown>, timeoutMs = 10_000): Promise<T> =>
  (await adminRequest(runDir, name, msg, timeoutMs)) as unknown as T;

/** Numeric fields of lpar1's driver stats (to see the path the frames took and any drops). */
async function driverStats(): Promise<Record<string, number>> {
  const s = await admin<{ driver: Record<string, number> }>('lpar1', { t: 'net-stats' });
  return s.driver;
}

async function udpThroughput(count: number, window: number): Promise<UdpThroughput> {
  const { socket: sink } = await admin<{ socket: number }>('lpar2', { t: 'udp-open', port: PORT, sink: true });
  try {
    const d0 = await driverStats();
    const { result, cpu } = await withCpu(runDir, PROCESSES, async () => {
      const t0 = performance.now();
      const sent = await admin<{ sent: number; errors: number; lastError: string; elapsedMs: number }>('lpar1', { t: 'udp-send', socket: txSocket, dst: DST, port: PORT, size: SIZE, count, window }, 600_000);
      let s = { count: 0, bytes: 0, firstAt: 0, lastAt: 0 };
      let grewAt = performance.now();
      let doneAt = grewAt;
      for (;;) {
        const got = (await admin<{ sink: typeof s }>('lpar2', { t: 'udp-recv', socket: sink })).sink;
        const now = performance.now();
        if (got.count !== s.count) grewAt = now;
        s = got;
        if (s.count >= count) {
          doneAt = now;
          break;
        }
        if (now - grewAt > STALL_MS) {
          doneAt = grewAt;
          break;
        }
        await sleep(1);
      }
      return { sent, s, elapsedMs: doneAt - t0 };
    });
    const d1 = await driverStats();
    const driver: Record<string, number> = {};
    for (const k of ['txDirect', 'txRelayed', 'txControlNode', 'txDropped']) driver[k] = (d1[k] ?? 0) - (d0[k] ?? 0);
    const { sent, s, elapsedMs } = result;
    if (sent.errors > 0) log(`  udp-send: ${sent.errors} of ${count} sends failed (${sent.lastError})`);
    return {
      mibps: s.bytes / MiB / (elapsedMs / 1000),
      elapsedMs,
      bytes: s.bytes,
      cpu,
      receiverMibps: s.lastAt > s.firstAt ? s.bytes / MiB / ((s.lastAt - s.firstAt) / 1000) : NaN,
      senderMs: sent.elapsedMs,
      sendErrors: sent.errors,
      sent: sent.sent,
      received: s.count,
      lossPct: ((count - s.count) / count) * 100,
      driver,
    };
  } finally {
    await admin('lpar2', { t: 'udp-close', socket: sink }).catch(() => {});
  }
}

async function rviThroughput(count: number): Promise<Throughput> {
  const { result: sent, cpu } = await withCpu(runDir, PROCESSES, () => admin('lpar1', { t: 'perf-send', peer: 'lpar2', count, sizes: [SIZE] }, 600_000));
  const got = await admin('lpar2', { t: 'perf-received', peer: 'lpar1' });
  if (sent.sent !== count || sent.acked !== count || sent.undeliverable !== 0) throw new Error(`perf-send: sent ${String(sent.sent)}, acked ${String(sent.acked)}, undeliverable ${String(sent.undeliverable)} of ${count}`);
  if (got.run !== sent.run || got.received !== count || got.missing !== 0 || got.duplicates !== 0 || got.corrupt !== 0) {
    throw new Error(`perf-received: ${String(got.received)}/${count} received, missing ${String(got.missing)}, duplicates ${String(got.duplicates)}, corrupt ${String(got.corrupt)}`);
  }
  const elapsedMs = Number(sent.elapsedMs);
  const bytes = Number(sent.bytes);
  return { mibps: bytes / MiB / (elapsedMs / 1000), elapsedMs, bytes, cpu };
}

async function icmpPing(): Promise<Rtt> {
  const { icmpSize: size, count, warmup } = CFG.ping;
  if (warmup > 0) await admin('lpar1', { t: 'ping', dst: DST, count: warmup, size, intervalMs: 0, timeoutMs: 1000 }, 120_000);
  const { result: p, cpu } = await withCpu(runDir, PROCESSES, () => admin('lpar1', { t: 'ping', dst: DST, count, size, intervalMs: 0, timeoutMs: 1000 }, 600_000));
  const rtts = (p.rttsMs as number[]).map((ms) => ms * 1000);
  if (rtts.length === 0) throw new Error(`ping: no replies (${JSON.stringify(p.errors)})`);
  return { ...latency(rtts), lost: Number(p.sent) - Number(p.received), cpu };
}

async function rviPing(): Promise<Rtt> {
  const { rviSize: size, count, warmup } = CFG.ping;
  if (warmup > 0) await admin('lpar1', { t: 'perf-ping', peer: 'lpar2', count: warmup, size }, 120_000);
  const { result: p, cpu } = await withCpu(runDir, PROCESSES, () => admin('lpar1', { t: 'perf-ping', peer: 'lpar2', count, size }, 600_000));
  return { p50Us: Number(p.p50Us), p99Us: Number(p.p99Us), minUs: Number(p.minUs), meanUs: Number(p.meanUs), lost: 0, cpu };
}

// ---------------------------------------------------------------- setup


const rviUp = (name: string, purpose: string) => async () => {
  const s = await admin<{ rvis: Array<Record<string, unknown>> }>(name, { t: 'rvis' });
  return s.rvis.find((r) => r.purpose === purpose && r.state === 'up');
};

async function setUp(): Promise<Record<string, unknown>> {
  for (const l of ['lpar1', 'lpar2']) {
    await waitFor(`${l}'s interface on blue`, 20_000, async () => ((await admin(l, { t: 'ip' })).interfaces as Array<{ vlan: string }>).find((i) => i.vlan === 'blue'));
  }
  await waitFor('the lan:blue RVI up at both ends', 10_000, async () => ((await rviUp('lpar1', lan('blue'))()) && (await rviUp('lpar2', lan('blue'))())) || undefined);
  await fmRequest(runDir, { t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: Perf });
  const perf = await waitFor('the perf RVI up at both ends', 5000, async () => ((await rviUp('lpar2', Perf)()) ? rviUp('lpar1', Perf)() : undefined));
  // ARP: the first ping resolves lpar2's address.
  await waitFor('a reply to ping 10.9.0.2', 10_000, async () => (Number((await admin('lpar1', { t: 'ping', dst: DST, count: 1, size: 56, timeoutMs: 1000 })).received) > 0 ? true : undefined));
  const arp = (await admin('lpar1', { t: 'arp' })).entries;
  ({ socket: txSocket } = await admin<{ socket: number }>('lpar1', { t: 'udp-open' }));
  return { perfRvi: perf, arp };
}

// ---------------------------------------------------------------- main

const bench = createBench('lpl-vbench-', PROCESSES);
runDir = bench.runDir;

const fmtTp = (t: Throughput) => `${t.mibps.toFixed(0)} MiB/s (${t.elapsedMs.toFixed(0)} ms)`;
const fmtUdp = (t: UdpThroughput) => `${fmtTp(t)}, receiver ${t.receiverMibps.toFixed(0)} MiB/s, ${t.received}/${t.sent} delivered${t.lossPct > 0 ? ` (LOSS ${t.lossPct.toFixed(2)} %)` : ''}, driver ${JSON.stringify(t.driver)}`;
const fmtRtt = (r: Rtt) => `p50 ${r.p50Us.toFixed(1)} us, p99 ${r.p99Us.toFixed(1)} us${r.lost ? `, ${r.lost} lost` : ''}`;

async function main(): Promise<number> {
  const code = codeVersion();
  log(`lparlab bench: virtual LAN (UDP, ICMP) vs raw RVI; ${REPS} repetition(s)${QUICK ? ', quick' : ''}; ${os.cpus().length} CPUs; code ${code.commit}${code.modified.length ? ` + changes to ${code.modified.join(', ')}` : ''}; temp ${bench.root}`);
  await bench.up(PLATFORM_YAML);
  log('platform up');
  const setup = await setUp();
  log(`LAN and perf RVI up; ARP ${JSON.stringify(setup.arp)}`);
  const check = () => {
    if (bench.interrupted) throw new Error('interrupted');
  };

  // Warm-up (JIT, buffers), untimed.
  await rviThroughput(CFG.warmup);
  await udpThroughput(CFG.warmup, 64);
  check();

  let window = WINDOW_ARG ?? 0;
  const trial: Record<string, number> = {};
  if (!window) {
    for (const w of WINDOWS) {
      const t = await udpThroughput(CFG.trialCount, w);
      trial[w] = r1(t.mibps);
      log(`[window trial] W=${w}: ${fmtUdp(t)}`);
      check();
    }
    window = WINDOWS.reduce((best, w) => (trial[w] > trial[best] ? w : best));
  }
  log(`UDP window ${window}${WINDOW_ARG ? ' (given)' : ' (best of the trial)'}`);

  const udp: UdpThroughput[] = [];
  const rvi: Throughput[] = [];
  const icmp: Rtt[] = [];
  const rviRtt: Rtt[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    const tag = `[rep ${rep}/${REPS}]`;
    const steps: Array<() => Promise<void>> = [
      async () => {
        rvi.push(await rviThroughput(CFG.count));
        log(`${tag} RVI 16 KiB: ${fmtTp(rvi.at(-1)!)}; CPU % ${JSON.stringify(rvi.at(-1)!.cpu.processes)}`);
      },
      async () => {
        udp.push(await udpThroughput(CFG.count, window));
        log(`${tag} UDP 16 KiB: ${fmtUdp(udp.at(-1)!)}; CPU % ${JSON.stringify(udp.at(-1)!.cpu.processes)}`);
      },
      async () => {
        rviRtt.push(await rviPing());
        log(`${tag} RVI perf-ping 64 B: ${fmtRtt(rviRtt.at(-1)!)}`);
      },
      async () => {
        icmp.push(await icmpPing());
        log(`${tag} ICMP ping 56 B: ${fmtRtt(icmp.at(-1)!)}`);
      },
    ];
    // Odd repetitions RVI first, even ones UDP/ICMP first.
    const order = rep % 2 ? [0, 1, 2, 3] : [1, 0, 3, 2];
    for (const i of order) {
      check();
      await steps[i]();
    }
  }

  const med = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
  const raw = {
    throughput16k: { mibps: r1(med(rvi, (x) => x.mibps)), gbps: r2((med(rvi, (x) => x.mibps) * MiB * 8) / 1e9), samplesMibps: rvi.map((x) => r1(x.mibps)) },
    rtt: { p50Us: r1(med(rviRtt, (x) => x.p50Us)), p99Us: r1(med(rviRtt, (x) => x.p99Us)), minUs: r1(med(rviRtt, (x) => x.minUs)), meanUs: r1(med(rviRtt, (x) => x.meanUs)), samplesP50Us: rviRtt.map((x) => r1(x.p50Us)), size: CFG.ping.rviSize },
  };
  const udpMibps = med(udp, (x) => x.mibps);
  const lost = udp.reduce((a, x) => a + (x.sent - x.received), 0);
  const sentTotal = udp.reduce((a, x) => a + x.sent, 0);
  const vlan = {
    throughput16k: {
      mibps: r1(udpMibps),
      gbps: r2((udpMibps * MiB * 8) / 1e9),
      receiverMibps: r1(med(udp, (x) => x.receiverMibps)),
      senderMibps: r1(med(udp, (x) => x.bytes / MiB / (x.senderMs / 1000))),
      samplesMibps: udp.map((x) => r1(x.mibps)),
      samplesReceiverMibps: udp.map((x) => r1(x.receiverMibps)),
      window,
      lost,
      lossPct: r2((lost / sentTotal) * 100),
      samplesLossPct: udp.map((x) => r2(x.lossPct)),
      sendErrors: udp.reduce((a, x) => a + x.sendErrors, 0),
      driver: Object.fromEntries(Object.keys(udp[0].driver).map((k) => [k, udp.reduce((a, x) => a + x.driver[k], 0)])),
    },
    rtt: { p50Us: r1(med(icmp, (x) => x.p50Us)), p99Us: r1(med(icmp, (x) => x.p99Us)), minUs: r1(med(icmp, (x) => x.minUs)), meanUs: r1(med(icmp, (x) => x.meanUs)), samplesP50Us: icmp.map((x) => r1(x.p50Us)), lost: icmp.reduce((a, x) => a + x.lost, 0), size: CFG.ping.icmpSize },
  };
  const ratios = {
    throughput16k: r2(vlan.throughput16k.mibps / raw.throughput16k.mibps),
    throughput16kReceiver: r2(vlan.throughput16k.receiverMibps / raw.throughput16k.mibps),
    rttP50: r2(vlan.rtt.p50Us / raw.rtt.p50Us),
    rttP99: r2(vlan.rtt.p99Us / raw.rtt.p99Us),
  };
  const pass = { throughput16k: ratios.throughput16k >= BAR, noLoss: lost === 0, all: false };
  pass.all = pass.throughput16k;

  const contention = contentionOf(
    { throughput16k: [...rvi, ...udp], rtt: [...rviRtt, ...icmp] },
    `CPU (% of one core) used on the box during the timed parts by processes other than the platform's (this bench's polling included; median of repetitions); above ${CONTENDED_PCT} for a measurement the box was shared`,
  );
  const { byMeasurement } = contention;
  if (contention.contended) log(`warning: the box was busy with other work during the measurements (% of a core: ${JSON.stringify(byMeasurement)})`);
  /** CPU seconds per GiB delivered, per process: where the time goes. */
  const perGiB = (xs: Throughput[]) => {
    const out: Record<string, number> = {};
    for (const name of PROCESSES) out[name] = r2(median(xs.map((x) => ((x.cpu.processes[name] / 100) * (x.cpu.wallMs / 1000)) / (x.bytes / (1024 * MiB)))));
    out.total = r2(Object.values(out).reduce((a, b) => a + b, 0));
    return out;
  };
  const cpuPct = {
    note: `% of one core per process during the timed part (median of repetitions); machine: the whole box in the same unit (${os.cpus().length * 100} = every core busy); other: machine minus the platform's processes`,
    rvi: { throughput16k: medianCpu(rvi.map((x) => x.cpu)), rtt: medianCpu(rviRtt.map((x) => x.cpu)) },
    vlan: { throughput16k: medianCpu(udp.map((x) => x.cpu)), rtt: medianCpu(icmp.map((x) => x.cpu)) },
  };
  const cpuSecondsPerGiB = { rvi: perGiB(rvi), udp: perGiB(udp) };

  const result = {
    ...runRecord('vlan', code, REPS, QUICK),
    config: { ...CFG, size: SIZE, windowTrial: WINDOW_ARG ? null : trial, window },
    statistic: 'median of repetitions; throughput in MiB/s of payload delivered (UDP: bench-side, start of udp-send until the sink has all; RVI: perf-send in lpar1, first send until all acknowledged); RTT in microseconds',
    raw,
    vlan,
    ratios,
    contention,
    bars: { throughput16k: `>=${BAR.toFixed(2)}` },
    pass,
    cpuPct,
    cpuSecondsPerGiB,
  };

  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const row = (c: string[]) => `${c[0].padEnd(26)}${c[1].padStart(14)}${c[2].padStart(16)}${c[3].padStart(8)}${c[4].padStart(9)}${c[5] ? `  ${c[5]}` : ''}`;
    const out = [
      '',
      `Virtual LAN vs raw RVI — median of ${REPS} (${os.cpus().length} CPUs, node ${process.version}); UDP window ${window}`,
      row(['measurement', 'raw RVI', 'virtual LAN', 'ratio', 'bar', '']),
      row(['throughput 16 KiB', `${raw.throughput16k.mibps} MiB/s`, `${vlan.throughput16k.mibps} MiB/s`, ratios.throughput16k.toFixed(2), `>= ${BAR.toFixed(2)}`, pass.throughput16k ? 'PASS' : 'FAIL']),
      row(['  UDP receiver-side rate', '', `${vlan.throughput16k.receiverMibps} MiB/s`, ratios.throughput16kReceiver.toFixed(2), '', '']),
      row(['  UDP loss', '', `${vlan.throughput16k.lossPct} %`, '', '', lost ? `${lost} datagrams lost` : '']),
      row(['RTT p50 (64 B / 56 B)', `${raw.rtt.p50Us} us`, `${vlan.rtt.p50Us} us`, ratios.rttP50.toFixed(2), '', '']),
      row(['RTT p99 (64 B / 56 B)', `${raw.rtt.p99Us} us`, `${vlan.rtt.p99Us} us`, ratios.rttP99.toFixed(2), '', '']),
      '',
      `CPU, % of one core (machine: whole box, ${os.cpus().length * 100} = all cores busy):`,
      `  RVI 16 KiB   ${cpuLine(cpuPct.rvi.throughput16k)}`,
      `  UDP 16 KiB   ${cpuLine(cpuPct.vlan.throughput16k)}`,
      `  RVI ping     ${cpuLine(cpuPct.rvi.rtt)}`,
      `  ICMP ping    ${cpuLine(cpuPct.vlan.rtt)}`,
      `CPU seconds per GiB: RVI ${JSON.stringify(cpuSecondsPerGiB.rvi)}; UDP ${JSON.stringify(cpuSecondsPerGiB.udp)}`,
      `other load, % of one core: throughput ${Math.round(byMeasurement.throughput16k)}, ping ${Math.round(byMeasurement.rtt)}; max ${Math.round(contention.otherPctMax)}${contention.contended ? ' — CONTENDED' : ''}`,
      `bar ${pass.all ? 'met' : 'NOT met'}`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return pass.all ? 0 : 1;
}

await bench.main(main);
