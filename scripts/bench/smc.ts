/**
 * SMC benchmark (docs/BENCHMARKS.md, issue "Shared Memory Communications"):
 * bulk throughput (64 KiB writes) and 64-byte request/response rate between
 * two LPARs over SMC-D, SMC-R and the partitions' own TCP (SMC off), against
 * two plain Node processes over kernel TCP on 127.0.0.1, all in one run.
 *
 *   node scripts/bench.mjs smc [--json] [--reps N] [--quick] [--poll-us N] [--ring-bytes N]
 *
 * Platform: one control node; lpar1, lpar2 and lpar4 on cec1, lpar3 on cec2;
 * lpar4 has `smc: false`. One virtual LAN. lpar1 is the client throughout:
 * to lpar2 a connection is SMC-D, to lpar3 SMC-R, to lpar4 TCP. Each
 * measurement checks, from lpar1's SMC statistics, that its connection ran
 * the mode it is named for.
 *
 *   - bulk: `tcp-send {bytes, hash: false}` (one pre-made 64 KiB chunk written
 *     over and over with backpressure, half-close) to the `count-sink` app,
 *     which answers the byte count; timed in lpar1 from connect to close. The
 *     kernel pair does exactly that (tcp-peer --fill count / count-sink).
 *     Nothing is hashed: this measures the transports.
 *   - request/response: `tcp-rr {size: 64}` against the `echo` app, sequential
 *     on one connection; tcp-peer's rr against its echo.
 *
 * CPU seconds per GB: every platform process's CPU (from /proc) during an LPAR
 * bulk run, per 1e9 bytes; the kernel pair's client + server + interrupts.
 *
 * Bars: SMC-D bulk >= 2 x kernel bulk; SMC-D request/response >= 1.5 x kernel;
 * SMC-R bulk >= 1.5 x our TCP bulk.
 *
 * With --json exactly one JSON object goes to stdout; progress goes to stderr.
 * Exit code: 0 when the bars are met, 1 when not, 2 on error, 130 when interrupted.
 */
import os from 'node:os';
import { benchArgs, adminRequest, codeVersion, contention as contentionOf, CONTENDED_PCT, createBench, log, median, medianCpu, r1, r2, runRecord, waitFor, withCpu, type CpuSample } from './harness.ts';
import { KernelBaseline, type KernelBulk, type KernelRr } from './kernel-baseline.ts';

const { json: JSON_OUT, quick: QUICK, reps: REPS, num } = benchArgs('node scripts/bench.mjs smc [--json] [--reps N] [--quick] [--poll-us N] [--ring-bytes N]', {
  'poll-us': 'the platform’s smc.pollUs (µs a side busy-polls before it sleeps)',
  'ring-bytes': 'the platform’s smc.ringBytes (each direction’s ring per connection)',
});
const POLL_US = num('--poll-us');
const RING_BYTES = num('--ring-bytes');
const SMC_SECTION = [POLL_US !== undefined ? `pollUs: ${POLL_US}` : '', RING_BYTES !== undefined ? `ringBytes: ${RING_BYTES}` : ''].filter(Boolean).join(', ');
const PLATFORM_YAML = `# lparlab SMC bench platform
name: sbench${SMC_SECTION ? `\nsmc: { ${SMC_SECTION} }` : ''}
transport: unix
rclan: { heartbeatMs: 100, deadAfterMs: 400, undeliverableAfterMs: 1500, window: 256 }
planes: [a, b]
controlNodes: [{ name: cn1, serial: 1 }]
cecs: [{ name: cec1 }, { name: cec2 }]
lpars:
  - { name: lpar1, cec: cec1 }
  - { name: lpar2, cec: cec1 }
  - { name: lpar3, cec: cec2 }
  - { name: lpar4, cec: cec1, smc: false }
vlans:
  - name: blue
    subnets: [10.9.0.0/24]
    members: [{ lpar: lpar1, ip: 10.9.0.1 }, { lpar: lpar2, ip: 10.9.0.2 }, { lpar: lpar3, ip: 10.9.0.3 }, { lpar: lpar4, ip: 10.9.0.4 }]
`;
const PROCESSES = ['fabric-manager', 'plane-a', 'plane-b', 'hypervisor-cec1', 'hypervisor-cec2', 'cn1', 'lpar1', 'lpar2', 'lpar3', 'lpar4'];
type Mode = 'smcd' | 'smcr' | 'tcp';
const MODES: Mode[] = ['smcd', 'smcr', 'tcp'];
const TARGET: Record<Mode, { lpar: string; ip: string; label: string }> = {
  smcd: { lpar: 'lpar2', ip: '10.9.0.2', label: 'SMC-D' },
  smcr: { lpar: 'lpar3', ip: '10.9.0.3', label: 'SMC-R' },
  tcp: { lpar: 'lpar4', ip: '10.9.0.4', label: 'TCP (SMC off)' },
};
const PORTS = { sink: 9100, echo: 7 };
const RR_SIZE = 64;
const BARS = { smcdBulkVsKernel: 2, smcdRrVsKernel: 1.5, smcrBulkVsTcp: 1.5 };

const CFG = QUICK
  ? { bytes: { smcd: 500_000_000, smcr: 200_000_000, tcp: 100_000_000, kernel: 500_000_000 }, warmupBytes: 20_000_000, rrCount: 2000, rrWarmup: 200 }
  : { bytes: { smcd: 4_000_000_000, smcr: 1_000_000_000, tcp: 400_000_000, kernel: 4_000_000_000 }, warmupBytes: 50_000_000, rrCount: 20_000, rrWarmup: 1000 };

const bench = createBench('lpl-sbench-', PROCESSES);
const kernel = new KernelBaseline(bench, PROCESSES);
const admin = async <T = Record<string, unknown>>(name: string, msg: { t: string } & Record<string, unknown>, timeoutMs = 10_000): Promise<T> => (await adminRequest(bench.runDir, name, msg, timeoutMs)) as unknown as T;

type Connections = { tcp: number; smcd: number; smcr: number };
const connections = async (): Promise<Connections> => (await admin<{ smc: { stats: { connections: Connections } } }>('lpar1', { t: 'smc-status' })).smc.stats.connections;

/** Runs `fn` (one connection from lpar1) and fails unless that connection ran `mode`. */
async function inMode<T>(mode: Mode, fn: () => Promise<T>): Promise<T> {
  const c0 = await connections();
  const r = await fn();
  const c1 = await connections();
  if (c1[mode] - c0[mode] !== 1) throw new Error(`the ${TARGET[mode].label} measurement did not run ${mode}: lpar1's connections went from ${JSON.stringify(c0)} to ${JSON.stringify(c1)}`);
  return r;
}

interface LparBulk {
  gbps: number;
  mibps: number;
  elapsedMs: number;
  bytes: number;
  cpu: CpuSample;
}

async function lparBulk(mode: Mode, bytes: number): Promise<LparBulk> {
  const { result: r, cpu } = await withCpu(bench.runDir, PROCESSES, () =>
    inMode(mode, () => admin<{ bytes: number; sha256: string; answer: string; elapsedMs: number }>('lpar1', { t: 'tcp-send', dst: TARGET[mode].ip, port: PORTS.sink, bytes, hash: false }, 900_000)),
  );
  if (r.bytes !== bytes || r.answer !== String(bytes)) throw new Error(`${mode} bulk: ${r.bytes}/${bytes} bytes sent, the sink counted ${JSON.stringify(r.answer)}`);
  return { gbps: (bytes * 8) / (r.elapsedMs * 1e6), mibps: bytes / 1048576 / (r.elapsedMs / 1000), elapsedMs: r.elapsedMs, bytes, cpu };
}

interface LparRr {
  rps: number;
  elapsedMs: number;
  count: number;
  p50Us: number;
  cpu: CpuSample;
}

async function lparRr(mode: Mode, count: number): Promise<LparRr> {
  const { result: r, cpu } = await withCpu(bench.runDir, PROCESSES, () => inMode(mode, () => admin<Record<string, unknown>>('lpar1', { t: 'tcp-rr', dst: TARGET[mode].ip, port: PORTS.echo, count, size: RR_SIZE }, 600_000)));
  if (Number(r.count) !== count) throw new Error(`${mode} tcp-rr: ${String(r.count)}/${count} exchanges`);
  const elapsedMs = Number(r.elapsedMs);
  return { rps: (count * 1000) / elapsedMs, elapsedMs, count, p50Us: Number(r.p50Us), cpu };
}

async function setUp(): Promise<void> {
  for (const l of ['lpar1', 'lpar2', 'lpar3', 'lpar4']) {
    await waitFor(`${l}'s interface on blue`, 30_000, async () => ((await admin(l, { t: 'ip' })).interfaces as Array<{ vlan: string }>).find((i) => i.vlan === 'blue'));
  }
  for (const m of MODES) {
    const t = TARGET[m];
    await waitFor(`a reply to ping ${t.ip}`, 20_000, async () => (Number((await admin('lpar1', { t: 'ping', dst: t.ip, count: 1, size: 56, timeoutMs: 1000 })).received) > 0 ? true : undefined));
    await admin(t.lpar, { t: 'app-start', app: 'count-sink', port: PORTS.sink });
    await admin(t.lpar, { t: 'app-start', app: 'echo', port: PORTS.echo });
  }
}

const gb = (b: { gbps: number; mibps: number; elapsedMs: number }) => `${b.gbps.toFixed(2)} Gbit/s (${b.mibps.toFixed(0)} MiB/s, ${b.elapsedMs.toFixed(0)} ms)`;
const rrs = (r: { rps: number; count: number; elapsedMs: number }) => `${Math.round(r.rps)} /s (${r.count} in ${r.elapsedMs.toFixed(0)} ms)`;

async function main(): Promise<number> {
  const code = codeVersion();
  log(`lparlab bench: SMC-D, SMC-R and TCP between partitions vs kernel loopback; ${REPS} repetition(s)${QUICK ? ', quick' : ''}; ${os.cpus().length} CPUs; code ${code.commit}${code.modified.length ? ` + changes to ${code.modified.join(', ')}` : ''}; temp ${bench.root}`);
  await bench.up(PLATFORM_YAML);
  await setUp();
  log('platform up, apps started');
  const check = () => {
    if (bench.interrupted) throw new Error('interrupted');
  };
  for (const m of MODES) {
    await lparBulk(m, CFG.warmupBytes);
    await lparRr(m, CFG.rrWarmup);
  }

  const kBulk: KernelBulk[] = [];
  const kRr: KernelRr[] = [];
  const lBulk: Record<Mode, LparBulk[]> = { smcd: [], smcr: [], tcp: [] };
  const lRr: Record<Mode, LparRr[]> = { smcd: [], smcr: [], tcp: [] };
  for (let rep = 1; rep <= REPS; rep++) {
    const tag = `[rep ${rep}/${REPS}]`;
    const steps: Array<() => Promise<void>> = [
      async () => {
        kBulk.push(await kernel.bulk('count', CFG.bytes.kernel, CFG.warmupBytes));
        log(`${tag} kernel bulk: ${gb(kBulk.at(-1)!)}`);
      },
      async () => {
        kRr.push(await kernel.rr(CFG.rrCount, CFG.rrWarmup, RR_SIZE));
        log(`${tag} kernel ${RR_SIZE} B req/resp: ${rrs(kRr.at(-1)!)}`);
      },
      ...MODES.flatMap((m) => [
        async () => {
          lBulk[m].push(await lparBulk(m, CFG.bytes[m]));
          log(`${tag} ${TARGET[m].label} bulk: ${gb(lBulk[m].at(-1)!)}; CPU % ${JSON.stringify(lBulk[m].at(-1)!.cpu.processes)}`);
        },
        async () => {
          lRr[m].push(await lparRr(m, CFG.rrCount));
          log(`${tag} ${TARGET[m].label} ${RR_SIZE} B req/resp: ${rrs(lRr[m].at(-1)!)}`);
        },
      ]),
    ];
    // Odd repetitions in order, even ones reversed: drift on a shared box hits every measurement alike.
    for (const step of rep % 2 ? steps : [...steps].reverse()) {
      check();
      await step();
    }
  }

  const med = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
  const bulk = (xs: Array<{ gbps: number; mibps: number; elapsedMs: number; bytes: number }>) => ({
    gbps: r2(med(xs, (x) => x.gbps)),
    mibps: r1(med(xs, (x) => x.mibps)),
    bytes: xs[0].bytes,
    samplesGbps: xs.map((x) => r2(x.gbps)),
  });
  const rr = (xs: Array<{ rps: number; count: number; p50Us: number }>) => ({ rps: Math.round(med(xs, (x) => x.rps)), p50Us: r1(med(xs, (x) => x.p50Us)), count: xs[0].count, samplesRps: xs.map((x) => Math.round(x.rps)) });
  /** CPU seconds per 1e9 bytes: every platform process. */
  const lparPerGB = (xs: LparBulk[]) => r2(median(xs.map((x) => (Object.values(x.cpu.processes).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) / 100) * (x.cpu.wallMs / 1000) / (x.bytes / 1e9))));
  const kernelPerGB = r2(median(kBulk.map((x) => ((x.cpu.client + x.cpu.server + x.cpu.irq) / 100) * (x.elapsedMs / 1000) / (x.bytes / 1e9))));
  const results = {
    kernel: { bulk: bulk(kBulk), rr: rr(kRr) },
    smcd: { bulk: bulk(lBulk.smcd), rr: rr(lRr.smcd) },
    smcr: { bulk: bulk(lBulk.smcr), rr: rr(lRr.smcr) },
    tcp: { bulk: bulk(lBulk.tcp), rr: rr(lRr.tcp) },
  };
  const ratios = {
    smcdBulkVsKernel: r2(results.smcd.bulk.gbps / results.kernel.bulk.gbps),
    smcdRrVsKernel: r2(results.smcd.rr.rps / results.kernel.rr.rps),
    smcrBulkVsTcp: r2(results.smcr.bulk.gbps / results.tcp.bulk.gbps),
    smcrRrVsTcp: r2(results.smcr.rr.rps / results.tcp.rr.rps),
    tcpBulkVsKernel: r2(results.tcp.bulk.gbps / results.kernel.bulk.gbps),
  };
  const pass = {
    smcdBulkVsKernel: ratios.smcdBulkVsKernel >= BARS.smcdBulkVsKernel,
    smcdRrVsKernel: ratios.smcdRrVsKernel >= BARS.smcdRrVsKernel,
    smcrBulkVsTcp: ratios.smcrBulkVsTcp >= BARS.smcrBulkVsTcp,
    all: false,
  };
  pass.all = pass.smcdBulkVsKernel && pass.smcdRrVsKernel && pass.smcrBulkVsTcp;
  const cpuSecondsPerGB = { smcd: lparPerGB(lBulk.smcd), smcr: lparPerGB(lBulk.smcr), tcp: lparPerGB(lBulk.tcp), kernel: kernelPerGB };
  const cpuPct = {
    note: '% of one core per platform process during the timed part (median of repetitions); machine: the whole box; other: machine minus the platform',
    smcdBulk: medianCpu(lBulk.smcd.map((x) => x.cpu)),
    smcrBulk: medianCpu(lBulk.smcr.map((x) => x.cpu)),
    tcpBulk: medianCpu(lBulk.tcp.map((x) => x.cpu)),
    smcdRr: medianCpu(lRr.smcd.map((x) => x.cpu)),
  };
  const contention = contentionOf(
    { bulk: [...kBulk, ...lBulk.smcd, ...lBulk.smcr, ...lBulk.tcp], rr: [...kRr, ...lRr.smcd, ...lRr.smcr, ...lRr.tcp] },
    `CPU (% of one core) used on the box during the timed parts by others than the measured ones; above ${CONTENDED_PCT} the box was shared`,
  );
  const result = {
    ...runRecord('smc', code, REPS, QUICK),
    config: { ...CFG, rrSize: RR_SIZE, writeBytes: 65536 },
    statistic: 'median of repetitions; bulk in Gbit/s of payload timed by the sender from connect until close (count answered); request/response in exchanges per second, sequential on one connection',
    ...results,
    ratios,
    bars: { smcdBulkVsKernel: `>=${BARS.smcdBulkVsKernel}`, smcdRrVsKernel: `>=${BARS.smcdRrVsKernel}`, smcrBulkVsTcp: `>=${BARS.smcrBulkVsTcp}` },
    pass,
    cpuSecondsPerGB,
    cpuPct,
    contention,
  };
  if (JSON_OUT) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const ok = (b: boolean) => (b ? 'PASS' : 'FAIL');
    const row = (c: string[]) => `${c[0].padEnd(26)}${c[1].padStart(16)}${c[2].padStart(16)}${c[3].padStart(16)}${c[4].padStart(16)}`;
    process.stdout.write(
      [
        '',
        `SMC between partitions vs our TCP and kernel loopback — median of ${REPS} (${os.cpus().length} CPUs, node ${process.version})`,
        row(['measurement', 'kernel loopback', 'SMC-D', 'SMC-R', 'our TCP']),
        row(['bulk, Gbit/s', String(results.kernel.bulk.gbps), String(results.smcd.bulk.gbps), String(results.smcr.bulk.gbps), String(results.tcp.bulk.gbps)]),
        row([`req/resp ${RR_SIZE} B, /s`, String(results.kernel.rr.rps), String(results.smcd.rr.rps), String(results.smcr.rr.rps), String(results.tcp.rr.rps)]),
        row(['CPU s per GB', String(cpuSecondsPerGB.kernel), String(cpuSecondsPerGB.smcd), String(cpuSecondsPerGB.smcr), String(cpuSecondsPerGB.tcp)]),
        `SMC-D bulk / kernel ${ratios.smcdBulkVsKernel} (>= ${BARS.smcdBulkVsKernel}) ${ok(pass.smcdBulkVsKernel)}`,
        `SMC-D req/resp / kernel ${ratios.smcdRrVsKernel} (>= ${BARS.smcdRrVsKernel}) ${ok(pass.smcdRrVsKernel)}`,
        `SMC-R bulk / our TCP ${ratios.smcrBulkVsTcp} (>= ${BARS.smcrBulkVsTcp}) ${ok(pass.smcrBulkVsTcp)}`,
        `other load, % of one core: bulk ${Math.round(contention.byMeasurement.bulk)}, req/resp ${Math.round(contention.byMeasurement.rr)}${contention.contended ? ' — CONTENDED' : ''}`,
        `bars ${pass.all ? 'met' : 'NOT met'}`,
        '',
      ].join('\n'),
    );
  }
  return pass.all ? 0 : 1;
}

await bench.main(main);
