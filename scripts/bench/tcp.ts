/**
 * TCP benchmark (docs/BENCHMARKS.md, issue "TCP"): bulk throughput and
 * request/response rate between two LPARs over a virtual LAN, through the
 * partitions' own TCP, against two plain Node processes over kernel TCP on
 * 127.0.0.1 (scripts/bench/tcp-peer.ts), in the same run.
 *
 *   node scripts/bench.mjs tcp [--json] [--reps N] [--quick]
 *
 * Boots one control node and two LPARs on different CECs, both fabric planes,
 * and a virtual LAN "blue" (10.9.0.1 on lpar1, 10.9.0.2 on lpar2), in a
 * temporary run directory. On lpar2 it starts the built-in apps `bulk-sink`
 * (port 9000), `echo` (port 7) and `http` (port 80). Then, interleaved within
 * each repetition (the order alternates between repetitions):
 *
 *   - bulk: `tcp-send {dst: 10.9.0.2, port: 9000, bytes: N}` on lpar1 (connect,
 *     xorshift pattern in 64 KiB chunks hashed with SHA-256, backpressure,
 *     half-close, the sink answers the digest; timed in lpar1 from connect to
 *     close). The answer must equal the digest, else the run fails. Against
 *     tcp-peer doing exactly that over kernel TCP ("kernel"), and, for scale
 *     only, the same with one pre-made 64 KiB chunk written over and over
 *     ("kernel, no pattern": transport and hashing, without the pattern cost).
 *   - request/response, sequential on one connection: `tcp-rr {dst, port: 7,
 *     count, size: 64}` against the echo app when the LPAR has that verb,
 *     otherwise `http-get {host, port: 80, path: '/x', count}` (Node's http
 *     over the partition's TCP, one keep-alive connection). Both kernel kinds
 *     are measured every time: 64-byte ping-pong and the same HTTP exchange;
 *     the LPAR figure is compared with the kernel figure of its own kind.
 *
 * Bars: LPAR bulk >= 1 Gbit/s, LPAR bulk >= 20 % of kernel bulk, LPAR
 * request/response rate >= 20 % of kernel (same kind). CPU per process comes
 * from /proc for every LPAR measurement; the kernel peers report their own.
 *
 * With --json exactly one JSON object goes to stdout; progress goes to stderr.
 * Exit code: 0 when the bars are met, 1 when not, 2 on error, 130 when interrupted.
 */
import os from 'node:os';
import { benchArgs, adminRequest, codeVersion, contention as contentionOf, CONTENDED_PCT, createBench, cpuLine, log, median, medianCpu, medianOf, r1, r2, runRecord, withCpu, type CpuSample, type RunDirT, benchPlatformYaml, BENCH_PROCESSES, BENCH_DST, waitFor } from './harness.ts';
import { KernelBaseline, type PeerCpu } from './kernel-baseline.ts';
import { lan } from '../../shared/rclan/purpose.ts';

const PLATFORM_YAML = benchPlatformYaml('tbench');
const PROCESSES = BENCH_PROCESSES;
const DST = BENCH_DST;
const PORTS = { bulk: 9000, echo: 7, http: 80 };
const RR_SIZE = 64;
const HTTP_PATH = '/x';
const BARS = { bulkGbps: 1, bulkRatio: 0.2, rrRatio: 0.2 };

// ---------------------------------------------------------------- arguments

const { json: JSON_OUT, quick: QUICK, reps: REPS } = benchArgs('node scripts/bench.mjs tcp [--json] [--reps N] [--quick]');

const CFG = QUICK
  ? {
      lpar: { bytes: 20_000_000, warmupBytes: 5_000_000, rrCount: 500, httpCount: 200, rrWarmup: 50 },
      kernel: { bytes: 100_000_000, warmupBytes: 10_000_000, rrCount: 2000, httpCount: 500, rrWarmup: 200 },
    }
  : {
      lpar: { bytes: 300_000_000, warmupBytes: 30_000_000, rrCount: 5000, httpCount: 2000, rrWarmup: 200 },
      kernel: { bytes: 1_000_000_000, warmupBytes: 100_000_000, rrCount: 20_000, httpCount: 5000, rrWarmup: 1000 },
    };

// ---------------------------------------------------------------- kernel baseline (tcp-peer)

const bench = createBench('lpl-tbench-', PROCESSES);
const runDir: RunDirT = bench.runDir;
const kernelPeers = new KernelBaseline(bench, PROCESSES);

interface Bulk {
  gbps: number;
  mibps: number;
  elapsedMs: number;
  bytes: number;
}

interface Rr {
  /** Exchanges per second, sequential on one connection. */
  rps: number;
  elapsedMs: number;
  count: number;
}

const kernelBulk = (fill: 'pattern' | 'repeat') => kernelPeers.bulk(fill, CFG.kernel.bytes, CFG.kernel.warmupBytes);
const kernelRr = () => kernelPeers.rr(CFG.kernel.rrCount, CFG.kernel.rrWarmup, RR_SIZE);
const kernelHttp = () => kernelPeers.http(CFG.kernel.httpCount, CFG.kernel.rrWarmup, HTTP_PATH);

// ---------------------------------------------------------------- LPAR side

/** An admin request to a platform process; `T` is the reply's shape. */
const admin = async <T = Record<string, unknown>>(name: string, msg: { t: string } & Record<string, unknown>, timeoutMs = 10_000): Promise<T> =>
  (await adminRequest(runDir, name, msg, timeoutMs)) as unknown as T;

interface LparBulk extends Bulk {
  cpu: CpuSample;
  /** The sending connection's counters from `ss` on lpar1 (TIME-WAIT entry), when found. */
  conn: Record<string, number> | null;
  /** lpar1's driver counters during the run. */
  driver: Record<string, number>;
}

async function lparBulk(bytes: number): Promise<LparBulk> {
  const d0 = (await admin<{ driver: Record<string, number> }>('lpar1', { t: 'net-stats' })).driver;
  const { result: r, cpu } = await withCpu(runDir, PROCESSES, () => admin<{ bytes: number; sha256: string; answer: string; elapsedMs: number }>('lpar1', { t: 'tcp-send', dst: DST, port: PORTS.bulk, bytes }, 600_000));
  if (r.bytes !== bytes || r.answer !== r.sha256) throw new Error(`tcp-send: ${r.bytes}/${bytes} bytes, answer ${JSON.stringify(r.answer)} is not the digest ${r.sha256}`);
  const d1 = (await admin<{ driver: Record<string, number> }>('lpar1', { t: 'net-stats' })).driver;
  const driver: Record<string, number> = {};
  for (const k of ['txDirect', 'txRelayed', 'txControlNode', 'txDropped']) driver[k] = (d1[k] ?? 0) - (d0[k] ?? 0);
  // The connection lingers in TIME-WAIT on lpar1 (it closed first): its counters tell retransmissions and segment counts.
  let conn: Record<string, number> | null = null;
  try {
    const ss = await admin<{ connections: Array<Record<string, unknown>> }>('lpar1', { t: 'ss' });
    const c = ss.connections.filter((x) => x.remote === `${DST}:${PORTS.bulk}` && Number(x.bytesOut) >= bytes).at(-1);
    if (c) conn = Object.fromEntries(['segmentsOut', 'segmentsIn', 'retransmits', 'dupAcks', 'mss', 'cwnd', 'srttMs', 'rtoMs'].map((k) => [k, Number(c[k])]));
  } catch {
    /* informational */
  }
  return { gbps: (bytes * 8) / (r.elapsedMs * 1e6), mibps: bytes / 1048576 / (r.elapsedMs / 1000), elapsedMs: r.elapsedMs, bytes, cpu, conn, driver };
}

type RrKind = 'tcp-rr' | 'http';

async function lparRr(kind: RrKind, count: number): Promise<Rr & { cpu: CpuSample; p50Us?: number; p99Us?: number }> {
  if (kind === 'tcp-rr') {
    const { result: r, cpu } = await withCpu(runDir, PROCESSES, () => admin<Record<string, unknown>>('lpar1', { t: 'tcp-rr', dst: DST, port: PORTS.echo, count, size: RR_SIZE }, 600_000));
    if (Number(r.count) !== count) throw new Error(`tcp-rr: ${String(r.count)}/${count} exchanges`);
    const elapsedMs = Number(r.elapsedMs);
    return { rps: (count * 1000) / elapsedMs, elapsedMs, count, p50Us: r.p50Us === undefined ? undefined : Number(r.p50Us), p99Us: r.p99Us === undefined ? undefined : Number(r.p99Us), cpu };
  }
  const { result: r, cpu } = await withCpu(runDir, PROCESSES, () => admin<{ requests: number; ok: number; elapsedMs: number; lastBody: string }>('lpar1', { t: 'http-get', host: DST, port: PORTS.http, path: HTTP_PATH, count }, 600_000));
  if (r.ok !== count) throw new Error(`http-get: ${r.ok}/${count} answers right (last: ${JSON.stringify(r.lastBody)})`);
  return { rps: (count * 1000) / r.elapsedMs, elapsedMs: r.elapsedMs, count, cpu };
}

// ---------------------------------------------------------------- setup


const lanUp = (name: string) => async () => {
  const s = await admin<{ rvis: Array<Record<string, unknown>> }>(name, { t: 'rvis' });
  return s.rvis.find((r) => r.purpose === lan('blue') && r.state === 'up');
};

/** Waits for the LAN, resolves ARP, starts the apps on lpar2; which request/response kind the LPAR offers. */
async function setUp(): Promise<{ arp: unknown; rrKind: RrKind; rrProbe: string }> {
  for (const l of ['lpar1', 'lpar2']) {
    await waitFor(`${l}'s interface on blue`, 20_000, async () => ((await admin(l, { t: 'ip' })).interfaces as Array<{ vlan: string }>).find((i) => i.vlan === 'blue'));
  }
  await waitFor('the lan:blue RVI up at both ends', 10_000, async () => ((await lanUp('lpar1')()) && (await lanUp('lpar2')())) || undefined);
  await waitFor(`a reply to ping ${DST}`, 10_000, async () => (Number((await admin('lpar1', { t: 'ping', dst: DST, count: 1, size: 56, timeoutMs: 1000 })).received) > 0 ? true : undefined));
  const arp = (await admin('lpar1', { t: 'arp' })).entries;
  await admin('lpar2', { t: 'app-start', app: 'bulk-sink', port: PORTS.bulk });
  await admin('lpar2', { t: 'app-start', app: 'echo', port: PORTS.echo });
  await admin('lpar2', { t: 'app-start', app: 'http', port: PORTS.http });
  // A 64-byte ping-pong verb, when the partition has one; else HTTP is the request/response measurement.
  let rrKind: RrKind = 'tcp-rr';
  let rrProbe = 'tcp-rr answered';
  try {
    const r = await admin('lpar1', { t: 'tcp-rr', dst: DST, port: PORTS.echo, count: 10, size: RR_SIZE }, 30_000);
    if (Number(r.count) !== 10 || !(Number(r.elapsedMs) > 0)) throw new Error(`tcp-rr gave ${JSON.stringify(r)}`);
  } catch (err) {
    if (!/unknown request/.test((err as Error).message)) throw err;
    rrKind = 'http';
    rrProbe = (err as Error).message;
  }
  return { arp, rrKind, rrProbe };
}

// ---------------------------------------------------------------- main

const gb = (b: Bulk) => `${b.gbps.toFixed(2)} Gbit/s (${b.mibps.toFixed(0)} MiB/s, ${b.elapsedMs.toFixed(0)} ms)`;
const rrs = (r: Rr) => `${Math.round(r.rps)} /s (${r.count} in ${r.elapsedMs.toFixed(0)} ms)`;

async function main(): Promise<number> {
  const code = codeVersion();
  log(`lparlab bench: TCP between partitions vs kernel loopback; ${REPS} repetition(s)${QUICK ? ', quick' : ''}; ${os.cpus().length} CPUs; code ${code.commit}${code.modified.length ? ` + changes to ${code.modified.join(', ')}` : ''}; temp ${bench.root}`);
  await bench.up(PLATFORM_YAML);
  log('platform up');
  const setup = await setUp();
  const rrKind = setup.rrKind;
  const lparRrCount = rrKind === 'tcp-rr' ? CFG.lpar.rrCount : CFG.lpar.httpCount;
  log(`LAN up, apps started on lpar2; ARP ${JSON.stringify(setup.arp)}; request/response: ${rrKind === 'tcp-rr' ? `tcp-rr (${RR_SIZE}-byte ping-pong against echo)` : `http-get ${HTTP_PATH} (no tcp-rr verb: ${setup.rrProbe})`}`);
  const check = () => {
    if (bench.interrupted) throw new Error('interrupted');
  };

  // Warm-up (JIT, buffers, congestion state is per connection), untimed. The kernel peers warm up inside each run.
  await lparBulk(CFG.lpar.warmupBytes);
  await lparRr(rrKind, CFG.lpar.rrWarmup);
  check();

  const kBulk: Array<Awaited<ReturnType<typeof kernelBulk>>> = [];
  const kPlain: Array<Awaited<ReturnType<typeof kernelBulk>>> = [];
  const kRr: Array<Awaited<ReturnType<typeof kernelRr>>> = [];
  const kHttp: Array<Awaited<ReturnType<typeof kernelHttp>>> = [];
  const lBulk: LparBulk[] = [];
  const lRr: Array<Awaited<ReturnType<typeof lparRr>>> = [];
  for (let rep = 1; rep <= REPS; rep++) {
    const tag = `[rep ${rep}/${REPS}]`;
    const kernelBulkStep = async () => {
      kBulk.push(await kernelBulk('pattern'));
      log(`${tag} kernel bulk: ${gb(kBulk.at(-1)!)}; CPU % ${JSON.stringify(kBulk.at(-1)!.cpu)}`);
      check();
      kPlain.push(await kernelBulk('repeat'));
      log(`${tag} kernel bulk, no pattern: ${gb(kPlain.at(-1)!)}; CPU % ${JSON.stringify(kPlain.at(-1)!.cpu)}`);
    };
    const lparBulkStep = async () => {
      lBulk.push(await lparBulk(CFG.lpar.bytes));
      const b = lBulk.at(-1)!;
      log(`${tag} LPAR bulk: ${gb(b)}; CPU % ${JSON.stringify(b.cpu.processes)}; conn ${JSON.stringify(b.conn)}; driver ${JSON.stringify(b.driver)}`);
    };
    const kernelRrStep = async () => {
      kRr.push(await kernelRr());
      log(`${tag} kernel ${RR_SIZE} B req/resp: ${rrs(kRr.at(-1)!)}, p50 ${kRr.at(-1)!.p50Us.toFixed(1)} us`);
      check();
      kHttp.push(await kernelHttp());
      log(`${tag} kernel HTTP req/resp: ${rrs(kHttp.at(-1)!)}`);
    };
    const lparRrStep = async () => {
      lRr.push(await lparRr(rrKind, lparRrCount));
      log(`${tag} LPAR ${rrKind === 'tcp-rr' ? `${RR_SIZE} B` : 'HTTP'} req/resp: ${rrs(lRr.at(-1)!)}; CPU % ${JSON.stringify(lRr.at(-1)!.cpu.processes)}`);
    };
    // Odd repetitions kernel first, even ones LPAR first.
    const steps = rep % 2 ? [kernelBulkStep, lparBulkStep, kernelRrStep, lparRrStep] : [lparBulkStep, kernelBulkStep, lparRrStep, kernelRrStep];
    for (const step of steps) {
      check();
      await step();
    }
  }

  const med = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
  const bulkSummary = (xs: Bulk[]) => ({
    gbps: r2(med(xs, (x) => x.gbps)),
    mibps: r1(med(xs, (x) => x.mibps)),
    bytes: xs[0].bytes,
    elapsedMs: Math.round(med(xs, (x) => x.elapsedMs)),
    samplesGbps: xs.map((x) => r2(x.gbps)),
  });
  const rrSummary = (xs: Rr[]) => ({ rps: Math.round(med(xs, (x) => x.rps)), usPerExchange: r1(1e6 / med(xs, (x) => x.rps)), count: xs[0].count, samplesRps: xs.map((x) => Math.round(x.rps)) });
  const kernel = {
    bulk: bulkSummary(kBulk),
    bulkNoPattern: bulkSummary(kPlain),
    rr64: { ...rrSummary(kRr), size: RR_SIZE, p50Us: r1(med(kRr, (x) => x.p50Us)), p99Us: r1(med(kRr, (x) => x.p99Us)) },
    rrHttp: { ...rrSummary(kHttp), path: HTTP_PATH },
  };
  const retransmits = lBulk.map((x) => x.conn?.retransmits ?? NaN);
  const lpar = {
    bulk: {
      ...bulkSummary(lBulk),
      samplesRetransmits: retransmits,
      conn: lBulk.every((x) => x.conn) ? medianOf(lBulk.map((x) => x.conn!)) : null,
      driver: Object.fromEntries(Object.keys(lBulk[0].driver).map((k) => [k, lBulk.reduce((a, x) => a + x.driver[k], 0)])),
    },
    rr: {
      kind: rrKind,
      ...rrSummary(lRr),
      ...(rrKind === 'tcp-rr' ? { size: RR_SIZE, p50Us: lRr[0].p50Us === undefined ? null : r1(med(lRr, (x) => x.p50Us ?? NaN)) } : { path: HTTP_PATH }),
    },
  };
  const rrBase = rrKind === 'tcp-rr' ? kernel.rr64 : kernel.rrHttp;
  const ratios = {
    bulk: r2(lpar.bulk.gbps / kernel.bulk.gbps),
    bulkVsNoPattern: r2(lpar.bulk.gbps / kernel.bulkNoPattern.gbps),
    rr: r2(lpar.rr.rps / rrBase.rps),
    rrVsKernel64: r2(lpar.rr.rps / kernel.rr64.rps),
  };
  const pass = { bulkGbps: lpar.bulk.gbps >= BARS.bulkGbps, bulkRatio: ratios.bulk >= BARS.bulkRatio, rrRatio: ratios.rr >= BARS.rrRatio, all: false };
  pass.all = pass.bulkGbps && pass.bulkRatio && pass.rrRatio;

  const contention = contentionOf(
    { bulk: [...kBulk, ...lBulk], rr: [...kRr, ...kHttp, ...lRr] },
    `CPU (% of one core) used on the box during the timed parts by others than the measured ones (LPAR runs: the platform's processes; kernel runs: the two peers, interrupts and the idle platform; median of repetitions); above ${CONTENDED_PCT} for a measurement the box was shared, which costs the LPAR path (six processes) more than the kernel pair`,
  );
  const { byMeasurement } = contention;
  if (contention.contended) log(`warning: the box was busy with other work during the measurements (% of a core: ${JSON.stringify(byMeasurement)}): ratios are pessimistic for the LPARs`);
  /** CPU seconds per GB (1e9 bytes) moved, per process. */
  const perGB = (xs: LparBulk[]) => {
    const o: Record<string, number> = {};
    for (const name of PROCESSES) o[name] = r2(median(xs.map((x) => ((x.cpu.processes[name] / 100) * (x.cpu.wallMs / 1000)) / (x.bytes / 1e9))));
    o.total = r2(Object.values(o).reduce((a, b) => a + b, 0));
    return o;
  };
  const kernelPerGB = (xs: Array<{ cpu: PeerCpu; elapsedMs: number; bytes: number }>) => {
    const f = (k: 'client' | 'server' | 'irq') => r2(median(xs.map((x) => ((x.cpu[k] / 100) * (x.elapsedMs / 1000)) / (x.bytes / 1e9))));
    return { client: f('client'), server: f('server'), irq: f('irq'), total: r2(f('client') + f('server') + f('irq')) };
  };
  /** CPU microseconds per exchange, per process. */
  const perExchange = (xs: Array<{ cpu: CpuSample; count: number }>) => {
    const o: Record<string, number> = {};
    for (const name of PROCESSES) o[name] = r1(median(xs.map((x) => ((x.cpu.processes[name] / 100) * x.cpu.wallMs * 1000) / x.count)));
    o.total = r1(Object.values(o).reduce((a, b) => a + b, 0));
    return o;
  };
  const cpuPct = {
    note: `% of one core per process during the timed part (median of repetitions); machine: the whole box in the same unit (${os.cpus().length * 100} = every core busy); other: machine minus the measured processes`,
    lpar: { bulk: medianCpu(lBulk.map((x) => x.cpu)), rr: medianCpu(lRr.map((x) => x.cpu)) },
    kernel: { bulk: medianOf(kBulk.map((x) => ({ ...x.cpu }))), bulkNoPattern: medianOf(kPlain.map((x) => ({ ...x.cpu }))), rr64: medianOf(kRr.map((x) => ({ ...x.cpu }))), rrHttp: medianOf(kHttp.map((x) => ({ ...x.cpu }))) },
  };
  const cpuSecondsPerGB = { lpar: perGB(lBulk), kernel: kernelPerGB(kBulk), kernelNoPattern: kernelPerGB(kPlain) };
  const cpuUsPerExchange = {
    lpar: perExchange(lRr),
    kernel64: r1(median(kRr.map((x) => (((x.cpu.client + x.cpu.server + x.cpu.irq) / 100) * x.elapsedMs * 1000) / x.count))),
    kernelHttp: r1(median(kHttp.map((x) => (((x.cpu.client + x.cpu.server + x.cpu.irq) / 100) * x.elapsedMs * 1000) / x.count))),
  };

  const result = {
    ...runRecord('tcp', code, REPS, QUICK),
    config: { ...CFG, rrSize: RR_SIZE, httpPath: HTTP_PATH, rrKind, rrProbe: setup.rrProbe },
    statistic: 'median of repetitions; bulk in Gbit/s (1e9 bit/s) of payload, timed by the sender from connect until close (digest received); request/response in exchanges per second, sequential on one connection',
    kernel,
    lpar,
    ratios,
    contention,
    bars: { bulkGbps: `>=${BARS.bulkGbps}`, bulkRatio: `>=${BARS.bulkRatio.toFixed(2)}`, rrRatio: `>=${BARS.rrRatio.toFixed(2)} (against the kernel figure of the same kind: ${rrKind === 'tcp-rr' ? `${RR_SIZE}-byte ping-pong` : 'HTTP GET'})` },
    pass,
    cpuPct,
    cpuSecondsPerGB,
    cpuUsPerExchange,
  };

  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const ok = (b: boolean) => (b ? 'PASS' : 'FAIL');
    const row = (c: string[]) => `${c[0].padEnd(30)}${c[1].padStart(18)}${c[2].padStart(18)}${c[3].padStart(8)}${c[4].padStart(12)}${c[5] ? `  ${c[5]}` : ''}`;
    const rrName = rrKind === 'tcp-rr' ? `req/resp ${RR_SIZE} B` : `req/resp HTTP GET ${HTTP_PATH}`;
    const out = [
      '',
      `TCP between partitions vs kernel loopback — median of ${REPS} (${os.cpus().length} CPUs, node ${process.version})`,
      row(['measurement', 'kernel loopback', 'LPAR ↔ LPAR', 'ratio', 'bar', '']),
      row(['bulk (tcp-send → bulk-sink)', `${kernel.bulk.gbps} Gbit/s`, `${lpar.bulk.gbps} Gbit/s`, ratios.bulk.toFixed(2), `>= ${BARS.bulkRatio.toFixed(2)}`, ok(pass.bulkRatio)]),
      row(['  absolute', '', `${lpar.bulk.gbps} Gbit/s`, '', `>= ${BARS.bulkGbps} Gbit/s`, ok(pass.bulkGbps)]),
      row(['  kernel without the pattern', `${kernel.bulkNoPattern.gbps} Gbit/s`, '', ratios.bulkVsNoPattern.toFixed(2), '', '']),
      row([rrName, `${rrBase.rps} /s`, `${lpar.rr.rps} /s`, ratios.rr.toFixed(2), `>= ${BARS.rrRatio.toFixed(2)}`, ok(pass.rrRatio)]),
      ...(rrKind === 'http' ? [row([`  kernel req/resp ${RR_SIZE} B`, `${kernel.rr64.rps} /s`, '', ratios.rrVsKernel64.toFixed(2), '', '(not like for like)'])] : []),
      '',
      `CPU, % of one core (machine: whole box, ${os.cpus().length * 100} = all cores busy):`,
      `  LPAR bulk        ${cpuLine(cpuPct.lpar.bulk)}`,
      `  LPAR req/resp    ${cpuLine(cpuPct.lpar.rr)}`,
      `  kernel bulk      ${cpuLine(cpuPct.kernel.bulk)}`,
      `  kernel req/resp  ${cpuLine(rrKind === 'tcp-rr' ? cpuPct.kernel.rr64 : cpuPct.kernel.rrHttp)}`,
      `CPU seconds per GB: LPAR ${JSON.stringify(cpuSecondsPerGB.lpar)}; kernel ${JSON.stringify(cpuSecondsPerGB.kernel)}; kernel without the pattern ${JSON.stringify(cpuSecondsPerGB.kernelNoPattern)}`,
      `CPU us per exchange: LPAR ${JSON.stringify(cpuUsPerExchange.lpar)}; kernel ${RR_SIZE} B ${cpuUsPerExchange.kernel64}, kernel HTTP ${cpuUsPerExchange.kernelHttp}`,
      `LPAR bulk connection (median): ${JSON.stringify(lpar.bulk.conn)}; driver ${JSON.stringify(lpar.bulk.driver)}`,
      `other load, % of one core: bulk ${Math.round(byMeasurement.bulk)}, req/resp ${Math.round(byMeasurement.rr)}; max ${Math.round(contention.otherPctMax)}${contention.contended ? ' — CONTENDED' : ''}`,
      `bars ${pass.all ? 'met' : 'NOT met'}`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return pass.all ? 0 : 1;
}

await bench.main(main);
