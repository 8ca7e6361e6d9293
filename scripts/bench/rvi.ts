/**
 * RVI vs raw UNIX socket benchmark (docs/BENCHMARKS.md).
 *
 *   node scripts/bench.mjs rvi [--json] [--reps N] [--quick]
 *   npm run bench -- [--json] [--reps N] [--quick]
 *
 * Boots a small platform (one control node, two LPARs on different CECs, both
 * fabric planes) in a temporary run directory, creates an RVI of purpose
 * "perf" between the LPARs, and measures in the same run, interleaved so that
 * drift on a shared machine hits both sides alike:
 *
 *   - throughput with 64 KiB and 1 KiB messages: the LPAR's `perf-send` (timed
 *     from the first send until every message is acknowledged) against two
 *     plain Node processes on one UNIX socket (scripts/bench/raw-socket-peer.ts,
 *     timed from the first write until the receiver reports all bytes in);
 *   - round-trip time of 64-byte messages: `perf-ping` against a raw echo.
 *
 * Each measurement is repeated (default 3) and the median is reported, with
 * the ratios RVI / raw and the bars: RVI throughput at 64 KiB >= 40 % of raw,
 * RVI round trip <= 3x raw. CPU time of every process during each RVI
 * measurement comes from /proc, to show where the time goes.
 *
 * With --json exactly one JSON object goes to stdout; progress goes to stderr.
 * Exit code: 0 when the bars are met, 1 when not, 2 on error.
 */
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { benchArgs, adminRequest, codeVersion, contention as contentionOf, CONTENDED_PCT, createBench, cpuLine, fmRequest, log, median, medianCpu, medianOf, r1, r2, runRecord, sleep, withCpu, type CpuSample, type RunDirT } from './harness.ts';
import { Perf } from '../../shared/rclan/purpose.ts';
import { builtFile } from '../../shared/runtime/build-paths.ts';

// The compiled peer, as the platform's processes run compiled (issue 10 item 1).
const RAW_PEER = builtFile('scripts/bench/raw-socket-peer.ts');

const PLATFORM_YAML = `# lparlab bench platform: one control node, two LPARs on different CECs.
name: bench
transport: unix
rclan: { heartbeatMs: 100, deadAfterMs: 400, undeliverableAfterMs: 1500, window: 256 }
planes: [a, b]
controlNodes:
  - { name: cn1, serial: 1 }
cecs:
  - { name: cec1 }
  - { name: cec2 }
lpars:
  - { name: lpar1, cec: cec1 }
  - { name: lpar2, cec: cec2 }
`;
const PROCESSES = ['fabric-manager', 'plane-a', 'plane-b', 'cn1', 'lpar1', 'lpar2'];

// ---------------------------------------------------------------- arguments

const { json: JSON_OUT, quick: QUICK, reps: REPS } = benchArgs('node scripts/bench.mjs rvi [--json] [--reps N] [--quick]');

const KiB = 1024;
const CFG = QUICK
  ? {
      raw: { count64k: 2048, count1k: 20_000, warmup64k: 200, warmup1k: 2000 },
      rvi: { count64k: 2000, count1k: 10_000, warmup: 2000 },
      ping: { count: 300, warmup: 50, size: 64 },
    }
  : {
      raw: { count64k: 16_384, count1k: 102_400, warmup64k: 800, warmup1k: 5000 }, // 1 GiB and 100 MiB
      rvi: { count64k: 16_000, count1k: 100_000, warmup: 2000 },
      ping: { count: 2000, warmup: 200, size: 64 },
    };

// ---------------------------------------------------------------- raw baseline

async function rawServer(sockPath: string, args: string[]): Promise<{ child: ChildProcess; done: Promise<Record<string, unknown>> }> {
  const child = bench.spawn([RAW_PEER, 'server', '--socket', sockPath, ...args]);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let ready: () => void;
  let failed: (e: Error) => void;
  const isReady = new Promise<void>((res, rej) => {
    ready = res;
    failed = rej;
  });
  child.stdout!.on('data', (d) => {
    stdout += d;
    if (stdout.startsWith('READY\n')) ready();
  });
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on('exit', (code) => {
      failed(new Error(`raw server exited (${code}) before listening: ${stderr}`));
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`raw server (${code}) gave no result: ${stderr}`));
      }
    });
  });
  done.catch(() => {});
  const timer = setTimeout(() => failed(new Error('raw server not listening within 15 s')), 15_000);
  await isReady.finally(() => clearTimeout(timer));
  return { child, done };
}

async function rawClient(sockPath: string, args: string[]): Promise<Record<string, unknown>> {
  const r = await bench.run([RAW_PEER, 'client', '--socket', sockPath, ...args], 300_000);
  if (r.code !== 0) throw new Error(`raw client failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as Record<string, unknown>;
}

interface Throughput {
  mibps: number;
  gbps: number;
  msgsPerSec: number;
  elapsedMs: number;
  bytes: number;
}

async function rawThroughput(dir: string, size: number, count: number, warmup: number): Promise<Throughput & { cpu: Record<string, number> }> {
  const sock = path.join(dir, 'raw.sock');
  const srv = await rawServer(sock, ['--mode', 'sink', '--warmup', String(warmup), '--count', String(count)]);
  const c = await rawClient(sock, ['--mode', 'stream', '--warmup', String(warmup), '--count', String(count), '--size', String(size)]);
  const s = await srv.done;
  if (s.received !== count || s.corrupt !== 0) throw new Error(`raw receiver got ${String(s.received)}/${count} messages, ${String(s.corrupt)} corrupt`);
  const cpuPct = (x: unknown) => {
    const u = x as { userMs: number; systemMs: number } | undefined;
    return u ? r1(((u.userMs + u.systemMs) / Number(c.elapsedMs)) * 100) : NaN;
  };
  const client = cpuPct(c.cpu);
  const server = cpuPct(s.cpu);
  const machine = c.machinePct === null ? NaN : Number(c.machinePct);
  return {
    mibps: Number(c.mibps),
    gbps: Number(c.gbps),
    msgsPerSec: Number(c.msgsPerSec),
    elapsedMs: Number(c.elapsedMs),
    bytes: Number(c.bytes),
    cpu: { client, server, machine, other: r1(Math.max(0, machine - client - server)) },
  };
}

interface Rtt {
  p50Us: number;
  p99Us: number;
  meanUs: number;
  minUs: number;
}

async function rawPing(dir: string): Promise<Rtt & { machine: number }> {
  const sock = path.join(dir, 'raw-echo.sock');
  const srv = await rawServer(sock, ['--mode', 'echo']);
  const c = await rawClient(sock, ['--mode', 'ping', '--warmup', String(CFG.ping.warmup), '--count', String(CFG.ping.count), '--size', String(CFG.ping.size)]);
  await srv.done;
  return { p50Us: Number(c.p50Us), p99Us: Number(c.p99Us), meanUs: Number(c.meanUs), minUs: Number(c.minUs), machine: c.machinePct === null ? NaN : Number(c.machinePct) };
}

// ---------------------------------------------------------------- RVI

async function createPerfRvi(runDir: RunDirT): Promise<Record<string, unknown>> {
  const r = await fmRequest(runDir, { t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: Perf });
  const deadline = Date.now() + 5000;
  for (;;) {
    const [s1, s2] = await Promise.all([adminRequest(runDir, 'lpar1', { t: 'rvis' }, 5000), adminRequest(runDir, 'lpar2', { t: 'rvis' }, 5000)]);
    const perf1 = (s1.rvis as Array<Record<string, unknown>>).find((x) => x.purpose === Perf);
    const perf2 = (s2.rvis as Array<Record<string, unknown>>).find((x) => x.purpose === Perf);
    if (perf1?.state === 'up' && perf2?.state === 'up') return (r.rvi as Record<string, unknown>) ?? perf1;
    if (Date.now() > deadline) throw new Error(`perf RVI not up within 5 s: lpar1 ${String(perf1?.state ?? 'absent')}, lpar2 ${String(perf2?.state ?? 'absent')}`);
    await sleep(50);
  }
}

async function rviThroughput(runDir: RunDirT, size: number, count: number): Promise<Throughput & { cpu: CpuSample }> {
  const { result: sent, cpu } = await withCpu(runDir, PROCESSES, () => adminRequest(runDir, 'lpar1', { t: 'perf-send', peer: 'lpar2', count, sizes: [size] }, 600_000));
  const got = await adminRequest(runDir, 'lpar2', { t: 'perf-received', peer: 'lpar1' }, 10_000);
  if (sent.sent !== count || sent.acked !== count || sent.undeliverable !== 0) throw new Error(`perf-send: sent ${String(sent.sent)}, acked ${String(sent.acked)}, undeliverable ${String(sent.undeliverable)} of ${count}`);
  if (got.run !== sent.run || got.received !== count || got.missing !== 0 || got.duplicates !== 0 || got.corrupt !== 0) {
    throw new Error(`perf-received: ${got.received}/${count} received, missing ${String(got.missing)}, duplicates ${String(got.duplicates)}, corrupt ${String(got.corrupt)}`);
  }
  const elapsedMs = Number(sent.elapsedMs);
  const bytes = Number(sent.bytes);
  return { mibps: bytes / 1048576 / (elapsedMs / 1000), gbps: Number(sent.gbps), msgsPerSec: Number(sent.msgsPerSec), elapsedMs, bytes, cpu };
}

async function rviPing(runDir: RunDirT): Promise<Rtt & { cpu: CpuSample }> {
  if (CFG.ping.warmup > 0) await adminRequest(runDir, 'lpar1', { t: 'perf-ping', peer: 'lpar2', count: CFG.ping.warmup, size: CFG.ping.size }, 120_000);
  const { result: p, cpu } = await withCpu(runDir, PROCESSES, () => adminRequest(runDir, 'lpar1', { t: 'perf-ping', peer: 'lpar2', count: CFG.ping.count, size: CFG.ping.size }, 600_000));
  return { p50Us: Number(p.p50Us), p99Us: Number(p.p99Us), meanUs: Number(p.meanUs), minUs: Number(p.minUs), cpu };
}

// ---------------------------------------------------------------- summary

function summariseTp<T extends Throughput>(xs: T[]) {
  return {
    mibps: median(xs.map((x) => x.mibps)),
    gbps: median(xs.map((x) => x.gbps)),
    msgsPerSec: median(xs.map((x) => x.msgsPerSec)),
    samplesMibps: xs.map((x) => Math.round(x.mibps * 10) / 10),
  };
}

function summariseRtt<T extends Rtt>(xs: T[]) {
  return {
    p50Us: median(xs.map((x) => x.p50Us)),
    p99Us: median(xs.map((x) => x.p99Us)),
    meanUs: median(xs.map((x) => x.meanUs)),
    minUs: median(xs.map((x) => x.minUs)),
    samplesP50Us: xs.map((x) => Math.round(x.p50Us * 10) / 10),
  };
}

// ---------------------------------------------------------------- main

const bench = createBench('lpl-bench-', PROCESSES);
const { root, runDir } = bench;

async function main(): Promise<number> {
  const code = codeVersion();
  log(`lparlab bench: RVI vs raw UNIX socket; ${REPS} repetition(s)${QUICK ? ', quick' : ''}; ${os.cpus().length} CPUs; code ${code.commit}${code.modified.length ? ` + changes to ${code.modified.join(', ')}` : ''}; temp ${root}`);
  await bench.up(PLATFORM_YAML);
  log('platform up');
  const rvi = await createPerfRvi(runDir);
  log(`perf RVI up: ${JSON.stringify(rvi)}`);
  // Warm the RVI path (JIT, buffers) once; the raw peers warm up inside each run.
  await adminRequest(runDir, 'lpar1', { t: 'perf-send', peer: 'lpar2', count: CFG.rvi.warmup, sizes: [64 * KiB] }, 120_000);
  await adminRequest(runDir, 'lpar1', { t: 'perf-send', peer: 'lpar2', count: CFG.rvi.warmup, sizes: [KiB] }, 120_000);

  const raw64: Array<Awaited<ReturnType<typeof rawThroughput>>> = [];
  const raw1: Array<Awaited<ReturnType<typeof rawThroughput>>> = [];
  const rawRtt: Array<Awaited<ReturnType<typeof rawPing>>> = [];
  const rvi64: Array<Awaited<ReturnType<typeof rviThroughput>>> = [];
  const rvi1: Array<Awaited<ReturnType<typeof rviThroughput>>> = [];
  const rviRtt: Array<Awaited<ReturnType<typeof rviPing>>> = [];
  const fmt = (t: Throughput) => `${t.mibps.toFixed(0)} MiB/s (${t.gbps.toFixed(2)} Gbit/s, ${t.elapsedMs.toFixed(0)} ms)`;

  for (let rep = 1; rep <= REPS; rep++) {
    const tag = `[rep ${rep}/${REPS}]`;
    raw64.push(await rawThroughput(root, 64 * KiB, CFG.raw.count64k, CFG.raw.warmup64k));
    log(`${tag} raw 64 KiB: ${fmt(raw64.at(-1)!)}`);
    rvi64.push(await rviThroughput(runDir, 64 * KiB, CFG.rvi.count64k));
    log(`${tag} RVI 64 KiB: ${fmt(rvi64.at(-1)!)}; CPU % ${JSON.stringify(rvi64.at(-1)!.cpu.processes)}`);
    raw1.push(await rawThroughput(root, KiB, CFG.raw.count1k, CFG.raw.warmup1k));
    log(`${tag} raw 1 KiB: ${fmt(raw1.at(-1)!)}`);
    rvi1.push(await rviThroughput(runDir, KiB, CFG.rvi.count1k));
    log(`${tag} RVI 1 KiB: ${fmt(rvi1.at(-1)!)}; CPU % ${JSON.stringify(rvi1.at(-1)!.cpu.processes)}`);
    rawRtt.push(await rawPing(root));
    log(`${tag} raw RTT: p50 ${rawRtt.at(-1)!.p50Us.toFixed(1)} us, p99 ${rawRtt.at(-1)!.p99Us.toFixed(1)} us`);
    rviRtt.push(await rviPing(runDir));
    log(`${tag} RVI RTT: p50 ${rviRtt.at(-1)!.p50Us.toFixed(1)} us, p99 ${rviRtt.at(-1)!.p99Us.toFixed(1)} us`);
  }

  const raw = { throughput64k: summariseTp(raw64), throughput1k: summariseTp(raw1), rtt: summariseRtt(rawRtt) };
  const rv = { throughput64k: summariseTp(rvi64), throughput1k: summariseTp(rvi1), rtt: summariseRtt(rviRtt) };
  const ratios = {
    throughput64k: r2(rv.throughput64k.mibps / raw.throughput64k.mibps),
    throughput1k: r2(rv.throughput1k.mibps / raw.throughput1k.mibps),
    rtt: r2(rv.rtt.p50Us / raw.rtt.p50Us),
  };
  const pass = { throughput64k: ratios.throughput64k >= 0.4, rtt: ratios.rtt <= 3, all: false };
  pass.all = pass.throughput64k && pass.rtt;
  // CPU that neither the platform nor the raw peers used: other users of a shared box.
  const contention = contentionOf(
    { throughput64k: [...raw64, ...rvi64], throughput1k: [...raw1, ...rvi1], rtt: rviRtt },
    `CPU (% of one core) used on the box during the timed parts by processes other than the measured ones (median of repetitions, raw and RVI); above ${CONTENDED_PCT} for any measurement the box was shared, and the RVI (four busy processes) loses more than the raw pair (two): treat its ratios as pessimistic for the RVI`,
  );
  const { byMeasurement } = contention;
  if (contention.contended) log(`warning: the box was busy with other work during the measurements (% of a core by measurement: ${JSON.stringify(byMeasurement)}): ratios are pessimistic for the RVI`);
  const result = {
    ...runRecord('rvi', code, REPS, QUICK),
    config: CFG,
    statistic: 'median of repetitions; throughput in MiB/s of message payload, RTT = p50 of 64-byte round trips in microseconds',
    raw: {
      throughput64k: { ...raw.throughput64k, mibps: r1(raw.throughput64k.mibps), gbps: r2(raw.throughput64k.gbps), msgsPerSec: Math.round(raw.throughput64k.msgsPerSec) },
      throughput1k: { ...raw.throughput1k, mibps: r1(raw.throughput1k.mibps), gbps: r2(raw.throughput1k.gbps), msgsPerSec: Math.round(raw.throughput1k.msgsPerSec) },
      rtt: { ...raw.rtt, p50Us: r1(raw.rtt.p50Us), p99Us: r1(raw.rtt.p99Us), meanUs: r1(raw.rtt.meanUs), minUs: r1(raw.rtt.minUs) },
    },
    rvi: {
      throughput64k: { ...rv.throughput64k, mibps: r1(rv.throughput64k.mibps), gbps: r2(rv.throughput64k.gbps), msgsPerSec: Math.round(rv.throughput64k.msgsPerSec) },
      throughput1k: { ...rv.throughput1k, mibps: r1(rv.throughput1k.mibps), gbps: r2(rv.throughput1k.gbps), msgsPerSec: Math.round(rv.throughput1k.msgsPerSec) },
      rtt: { ...rv.rtt, p50Us: r1(rv.rtt.p50Us), p99Us: r1(rv.rtt.p99Us), meanUs: r1(rv.rtt.meanUs), minUs: r1(rv.rtt.minUs) },
    },
    ratios,
    contention,
    bars: { throughput64k: '>=0.40', rtt: '<=3' },
    pass,
    cpuPct: {
      note: `% of one core per process during the timed part (median of repetitions); machine: the whole box in the same unit (${os.cpus().length * 100} = every core busy); other: machine minus the measured processes (this bench, other users of the box)`,
      raw: { throughput64k: medianOf(raw64.map((x) => x.cpu)), throughput1k: medianOf(raw1.map((x) => x.cpu)), rtt: { machine: median(rawRtt.map((x) => x.machine)) } },
      rvi: { throughput64k: medianCpu(rvi64.map((x) => x.cpu)), throughput1k: medianCpu(rvi1.map((x) => x.cpu)), rtt: medianCpu(rviRtt.map((x) => x.cpu)) },
    },
  };

  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const row = (cols: string[]) => `${cols[0].padEnd(22)}${cols[1].padStart(16)}${cols[2].padStart(16)}${cols[3].padStart(10)}${(cols[4] ?? '').padStart(10)}${cols[5] ? `  ${cols[5]}` : ''}`;
    const ok = (b: boolean) => (b ? 'PASS' : 'FAIL');
    const out = [
      '',
      `RVI vs raw UNIX socket — median of ${REPS} (${os.cpus().length} CPUs, node ${process.version})`,
      row(['measurement', 'raw', 'RVI', 'ratio', 'bar', '']),
      row(['throughput 64 KiB', `${r1(raw.throughput64k.mibps)} MiB/s`, `${r1(rv.throughput64k.mibps)} MiB/s`, ratios.throughput64k.toFixed(2), '>= 0.40', ok(pass.throughput64k)]),
      row(['throughput 1 KiB', `${r1(raw.throughput1k.mibps)} MiB/s`, `${r1(rv.throughput1k.mibps)} MiB/s`, ratios.throughput1k.toFixed(2), '-', '']),
      row(['msgs/s 1 KiB', `${Math.round(raw.throughput1k.msgsPerSec)}`, `${Math.round(rv.throughput1k.msgsPerSec)}`, '', '', '']),
      row(['RTT p50 (64 B)', `${r1(raw.rtt.p50Us)} us`, `${r1(rv.rtt.p50Us)} us`, ratios.rtt.toFixed(2), '<= 3', ok(pass.rtt)]),
      row(['RTT p99 (64 B)', `${r1(raw.rtt.p99Us)} us`, `${r1(rv.rtt.p99Us)} us`, r2(rv.rtt.p99Us / raw.rtt.p99Us).toFixed(2), '', '']),
      '',
      `CPU, % of one core (machine: whole box, ${os.cpus().length * 100} = all cores busy; other: not the measured processes):`,
      `  RVI 64 KiB  ${cpuLine(result.cpuPct.rvi.throughput64k)}`,
      `  RVI 1 KiB   ${cpuLine(result.cpuPct.rvi.throughput1k)}`,
      `  RVI ping    ${cpuLine(result.cpuPct.rvi.rtt)}`,
      `  raw 64 KiB  ${cpuLine(result.cpuPct.raw.throughput64k)}`,
      `  raw 1 KiB   ${cpuLine(result.cpuPct.raw.throughput1k)}`,
      '',
      `other load on the box during the timed parts, % of one core: 64 KiB ${Math.round(byMeasurement.throughput64k)}, 1 KiB ${Math.round(byMeasurement.throughput1k)}, ping ${Math.round(byMeasurement.rtt)}; max ${Math.round(contention.otherPctMax)}${contention.contended ? ' — CONTENDED, ratios are pessimistic for the RVI' : ''}`,
      `bars ${pass.all ? 'met' : 'NOT met'}`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return pass.all ? 0 : 1;
}

await bench.main(main);
