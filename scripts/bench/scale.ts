/**
 * Scale benchmark (issue 10; docs/BENCHMARKS.md).
 *
 *   node --import tsx scripts/bench/scale.ts [--json] [--sizes 16,64,128,256] [--idle S]
 *
 * For each size N: a platform of N LPARs on 4 CECs with two control nodes,
 * every LPAR on one virtual LAN, booted through the CLI (`lparlab up
 * --detach`, so it measures whatever `up` is), and measured:
 *
 *   - `up` wall time;
 *   - RSS per role (LPAR, control node, plane, fabric manager, hypervisor):
 *     median and max, after boot and again after the pingall;
 *   - whole-platform idle CPU over --idle seconds (default 30), right after
 *     boot and again once the pingall's traffic is over (pidusage, % of one
 *     core summed over every process of the platform);
 *   - a full `lparlab pingall` (N·(N-1) pairs): time and loss;
 *   - RVIs the fabric manager holds, before and after the pingall (unicast
 *     RVIs are made on first need, issue 10 item 2);
 *
 * and, in the same run, the physical limit: N bare Node processes spawned at
 * once, each reporting ready over a UNIX socket (time until all have, RSS).
 *
 * The bars are the issue's, defined at N = 256 and printed for every size
 * (met / unmet): boot < 60 s and within 4× the bare-process time; idle CPU <
 * 50 % of one core; pingall with 0 loss; median LPAR RSS ≤ 50 MB.
 *
 * With --json exactly one JSON object goes to stdout; progress to stderr.
 * Exit code: 0 when every bar is met at every size, 1 when not, 2 on error.
 * Run it alone: `flock /tmp/lparlab-bench.lock node --import tsx scripts/bench/scale.ts --json`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pidusage from 'pidusage';
import { platformYaml } from '../../test/helpers/platform-yaml.ts';
import { benchArgs, codeVersion, createBench, fmRequest, log, median, r1, r2, REPO_ROOT, runRecord, sleep, type Bench, type RunDirT } from './harness.ts';

const LPARLAB = path.join(REPO_ROOT, 'scripts', 'lparlab.mjs');
const MB = 1024 * 1024;

const { json: JSON_OUT, quick: QUICK, num, str } = benchArgs(
  'node --import tsx scripts/bench/scale.ts [--json] [--sizes 16,64,128,256] [--idle S] [--quick]',
  { idle: 'seconds of idle CPU measured, after boot and after the pingall (default 30, 5 with --quick)' },
  { sizes: 'platform sizes in LPARs, comma-separated (default 16,64,128,256)' },
);
const SIZES = (str('--sizes') ?? '16,64,128,256').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 2 || n > 1000) {
    process.stderr.write(`--sizes: "${s}" is not a number of LPARs from 2 to 1000\n`);
    process.exit(2);
  }
  return n;
});
const IDLE_S = num('--idle') ?? (QUICK ? 5 : 30);

const BARS = { bootS: 60, bootVsBare: 4, idleCpuPct: 50, pingLoss: 0, lparRssMb: 50 };

// ---------------------------------------------------------------- the platform

/** N LPARs on 4 CECs, two control nodes, one virtual LAN of all of them (a /16, so 256 fit). */
function scaleYaml(n: number): string {
  const members = Array.from({ length: n }, (_, i) => `lpar${i + 1}`);
  return platformYaml({ name: `scale${n}`, cecs: 4, controlNodes: 2, lpars: n, vlans: [{ name: 'blue', subnet: '10.64.0.0/16', members }] });
}

type Role = 'lpar' | 'control-node' | 'plane' | 'fabric-manager' | 'hypervisor' | 'other';

function roleOf(name: string): Role {
  if (/^lpar\d+$/.test(name)) return 'lpar';
  if (/^cn\d+$/.test(name)) return 'control-node';
  if (name.startsWith('plane-')) return 'plane';
  if (name === 'fabric-manager') return 'fabric-manager';
  if (/hypervisor|^hv/.test(name)) return 'hypervisor';
  return 'other';
}

/** Every process of the platform with a state file: name → pid. */
function platformPids(runDir: RunDirT): Map<string, number> {
  const dir = path.join(runDir.root, 'state');
  const out = new Map<string, number>();
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!f.endsWith('.json')) continue;
    try {
      const st = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { pid?: number };
      if (st.pid) out.set(f.slice(0, -'.json'.length), st.pid);
    } catch {
      /* being rewritten */
    }
  }
  return out;
}

/** Children of `pids` (e.g. an esbuild service beside a tsx-run service), from /proc. */
function childrenOf(pids: Set<number>): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (pids.has(ppid)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

interface RssByRole {
  [role: string]: { count: number; medianMb: number; maxMb: number };
}

async function rssByRole(runDir: RunDirT): Promise<{ roles: RssByRole; helperChildren: { count: number; totalMb: number } }> {
  const pids = platformPids(runDir);
  const usage = await pidusage([...pids.values()]);
  const byRole = new Map<Role, number[]>();
  for (const [name, pid] of pids) {
    const u = usage[pid];
    if (!u) continue;
    const role = roleOf(name);
    byRole.set(role, [...(byRole.get(role) ?? []), u.memory / MB]);
  }
  const roles: RssByRole = {};
  for (const [role, xs] of byRole) roles[role] = { count: xs.length, medianMb: r1(median(xs)), maxMb: r1(Math.max(...xs)) };
  const kids = childrenOf(new Set(pids.values()));
  const kidUsage: Record<number, { memory: number } | undefined> = kids.length ? await pidusage(kids).catch(() => ({})) : {};
  const totalMb = Object.values(kidUsage).reduce((a, u) => a + (u?.memory ?? 0) / MB, 0);
  return { roles, helperChildren: { count: kids.length, totalMb: r1(totalMb) } };
}

/** CPU of every platform process (and their children) over `seconds`, % of one core summed; the machine's too. */
async function idleCpu(runDir: RunDirT, seconds: number): Promise<{ platformPct: number; byRole: Record<string, number>; machinePct: number; seconds: number }> {
  const pids = platformPids(runDir);
  const all = [...pids.values(), ...childrenOf(new Set(pids.values()))];
  const jiffies = (pid: number): number => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(f[11]) + Number(f[12]);
    } catch {
      return NaN;
    }
  };
  // pidusage keeps each pid's previous sample: the second call gives the CPU over the interval between the two.
  await pidusage(all);
  const before = new Map(all.map((p) => [p, jiffies(p)]));
  const m0 = machine();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const usage: Record<number, { cpu: number } | undefined> = await pidusage(all).catch(() => ({}));
  const m1 = machine();
  const byRole: Record<string, number> = {};
  let total = 0;
  const nameOf = new Map([...pids].map(([n, p]) => [p, n]));
  for (const pid of all) {
    // pidusage's figure; /proc's where pidusage had none (a process that went away meanwhile).
    const pct = usage[pid]?.cpu ?? ((jiffies(pid) - (before.get(pid) ?? NaN)) / 100 / wall) * 100;
    if (!Number.isFinite(pct)) continue;
    const role = nameOf.has(pid) ? roleOf(nameOf.get(pid)!) : 'helper-children';
    byRole[role] = r1((byRole[role] ?? 0) + pct);
    total += pct;
  }
  return { platformPct: r1(total), byRole, machinePct: r1(((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * os.cpus().length * 100), seconds: r1(wall) };
}

function machine(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

async function rviCounts(runDir: RunDirT): Promise<{ total: number; lan: number; other: number }> {
  const r = (await fmRequest(runDir, { t: 'fm-status' })) as unknown as { rvis: Array<{ purpose: string }> };
  const lan = r.rvis.filter((x) => x.purpose.startsWith('lan:')).length;
  return { total: r.rvis.length, lan, other: r.rvis.length - lan };
}

async function pingall(bench: Bench, n: number): Promise<{ seconds: number; pairs: number; received: number; lossPct: number; exit: number }> {
  const t0 = performance.now();
  // Generous: 65,280 pairs at 256.
  const r = await bench.run([LPARLAB, 'pingall', '--json', '--run-dir', bench.runDir.root], Math.max(300_000, n * n * 100));
  const seconds = (performance.now() - t0) / 1000;
  let out: { sent: number; received: number };
  try {
    out = JSON.parse(r.stdout) as { sent: number; received: number };
  } catch {
    throw new Error(`lparlab pingall printed no JSON (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
  return { seconds: r1(seconds), pairs: out.sent, received: out.received, lossPct: out.sent ? r1(((out.sent - out.received) / out.sent) * 100) : 0, exit: r.code };
}

// ---------------------------------------------------------------- the physical limit

/** N bare Node processes spawned at once, each saying ready over a UNIX socket: time until all have, and their RSS. */
async function bareProcesses(n: number): Promise<{ seconds: number; rssMedianMb: number; rssMaxMb: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-bare-'));
  const sock = path.join(dir, 's');
  const children: ChildProcess[] = [];
  const ready = new Set<number>();
  const server = net.createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d;
      const pid = Number(buf.trim());
      if (buf.endsWith('\n') && pid > 0) ready.add(pid);
    });
    c.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(sock, r));
  const script = `const s=require('node:net').connect(${JSON.stringify(sock)},()=>s.write(process.pid+'\\n'));s.on('error',()=>process.exit(1));setInterval(()=>{},1e6);`;
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) children.push(spawn(process.execPath, ['-e', script], { stdio: 'ignore' }));
    const deadline = Date.now() + 300_000;
    while (ready.size < n) {
      if (Date.now() > deadline) throw new Error(`only ${ready.size} of ${n} bare processes ready in 300 s`);
      await sleep(5);
    }
    const seconds = (performance.now() - t0) / 1000;
    const usage = await pidusage([...ready]);
    const rss = Object.values(usage).map((u) => u.memory / MB);
    return { seconds: r2(seconds), rssMedianMb: r1(median(rss)), rssMaxMb: r1(Math.max(...rss)) };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- one size

interface SizeResult {
  lpars: number;
  bare: Awaited<ReturnType<typeof bareProcesses>>;
  upSeconds: number;
  rssAfterBoot: Awaited<ReturnType<typeof rssByRole>>;
  idleAfterBoot: Awaited<ReturnType<typeof idleCpu>>;
  rvisBefore: Awaited<ReturnType<typeof rviCounts>>;
  pingall: Awaited<ReturnType<typeof pingall>>;
  rvisAfter: Awaited<ReturnType<typeof rviCounts>>;
  idleAfterPingall: Awaited<ReturnType<typeof idleCpu>>;
  rssAfterPingall: Awaited<ReturnType<typeof rssByRole>>;
  loadavg: number[];
  bars: Record<string, { value: number; bar: string; met: boolean }>;
}

async function measure(n: number): Promise<SizeResult> {
  log(`--- ${n} LPARs: ${n} bare Node processes first`);
  const bare = await bareProcesses(n);
  log(`bare: ${bare.seconds} s, RSS median ${bare.rssMedianMb} MB`);
  const bench = createBench(`lpl-scale${n}-`, []);
  try {
    const t0 = performance.now();
    await bench.up(scaleYaml(n), 1_800_000, ['--timeout', '1800']);
    const upSeconds = r1((performance.now() - t0) / 1000);
    log(`up: ${upSeconds} s`);
    await sleep(5000);
    const rssAfterBoot = await rssByRole(bench.runDir);
    const idleAfterBoot = await idleCpu(bench.runDir, IDLE_S);
    log(`idle after boot: platform ${idleAfterBoot.platformPct} % of a core (${JSON.stringify(idleAfterBoot.byRole)})`);
    const rvisBefore = await rviCounts(bench.runDir);
    log(`pingall of ${n * (n - 1)} pairs`);
    const ping = await pingall(bench, n);
    log(`pingall: ${ping.received}/${ping.pairs} in ${ping.seconds} s`);
    const rvisAfter = await rviCounts(bench.runDir);
    // The peer links of the pairs that talked go quiet after 2 x deadAfterMs without traffic (peer-link.ts).
    await sleep(5000);
    const idleAfterPingall = await idleCpu(bench.runDir, IDLE_S);
    log(`idle after pingall: platform ${idleAfterPingall.platformPct} % of a core`);
    const rssAfterPingall = await rssByRole(bench.runDir);
    const lparRss = rssAfterBoot.roles.lpar?.medianMb ?? NaN;
    const bars = {
      bootSeconds: { value: upSeconds, bar: `< ${BARS.bootS} s`, met: upSeconds < BARS.bootS },
      bootVsBare: { value: r1(upSeconds / Math.max(0.01, bare.seconds)), bar: `<= ${BARS.bootVsBare}x bare processes`, met: upSeconds <= BARS.bootVsBare * bare.seconds },
      idleCpuAfterBoot: { value: idleAfterBoot.platformPct, bar: `< ${BARS.idleCpuPct} % of one core`, met: idleAfterBoot.platformPct < BARS.idleCpuPct },
      idleCpuAfterPingall: { value: idleAfterPingall.platformPct, bar: `< ${BARS.idleCpuPct} % of one core`, met: idleAfterPingall.platformPct < BARS.idleCpuPct },
      // Pairs, not the rounded percentage: 2 of 65,280 lost is 0.0 % and not the bar.
      pingallLost: { value: ping.pairs - ping.received, bar: '0 pairs lost', met: ping.received === ping.pairs && ping.pairs === n * (n - 1) },
      lparRssMedianMb: { value: lparRss, bar: `<= ${BARS.lparRssMb} MB`, met: lparRss <= BARS.lparRssMb },
    };
    return { lpars: n, bare, upSeconds, rssAfterBoot, idleAfterBoot, rvisBefore, pingall: ping, rvisAfter, idleAfterPingall, rssAfterPingall, loadavg: os.loadavg().map((x) => r1(x)), bars };
  } finally {
    await bench.teardown();
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const code = codeVersion();
  const loadBefore = os.loadavg().map((x) => r1(x));
  const results: SizeResult[] = [];
  for (const n of SIZES) results.push(await measure(n));
  const allMet = results.every((r) => Object.values(r.bars).every((b) => b.met));
  const record = { ...runRecord('scale', code, 1, QUICK), idleSeconds: IDLE_S, loadavgBefore: loadBefore, barsDefinedAt: 256, sizes: results, allMet };
  if (JSON_OUT) process.stdout.write(`${JSON.stringify(record)}\n`);
  else {
    for (const r of results) {
      process.stdout.write(`\n${r.lpars} LPARs (load average ${r.loadavg.join(' ')})\n`);
      process.stdout.write(`  bare processes   ${r.bare.seconds} s, RSS median ${r.bare.rssMedianMb} MB, max ${r.bare.rssMaxMb} MB\n`);
      process.stdout.write(`  up               ${r.upSeconds} s\n`);
      for (const [role, x] of Object.entries(r.rssAfterBoot.roles)) process.stdout.write(`  RSS ${role.padEnd(15)}${x.count} × median ${x.medianMb} MB, max ${x.maxMb} MB\n`);
      process.stdout.write(`  idle CPU         ${r.idleAfterBoot.platformPct} % of a core after boot, ${r.idleAfterPingall.platformPct} % after the pingall\n`);
      process.stdout.write(`  pingall          ${r.pingall.received}/${r.pingall.pairs} in ${r.pingall.seconds} s (${r.pingall.lossPct} % lost)\n`);
      process.stdout.write(`  RVIs             ${r.rvisBefore.total} before (${r.rvisBefore.lan} unicast), ${r.rvisAfter.total} after (${r.rvisAfter.lan} unicast)\n`);
      for (const [k, b] of Object.entries(r.bars)) process.stdout.write(`  bar ${k.padEnd(22)}${String(b.value).padEnd(8)} ${b.bar.padEnd(30)} ${b.met ? 'met' : 'UNMET'}\n`);
    }
  }
  return allMet ? 0 : 1;
}

process.on('uncaughtException', (err) => {
  log(`bench failed: ${err.stack ?? String(err)}`);
  process.exit(2);
});
main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log(`bench failed: ${err.stack ?? String(err)}`);
    process.exit(2);
  },
);
