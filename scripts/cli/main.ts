import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pidusage from 'pidusage';
import { PlatformError, defaultPlatformFile, hypervisorName, loadPlatformFile, type Platform } from '../../shared/platform/platform.ts';
import { flag, parseArgs, requireFlag, type ParsedArgs } from '../../shared/runtime/args.ts';
import { RunDir, defaultRunDir } from '../../shared/runtime/run-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import { ControlChannel } from '../../shared/control/channel.ts';
import { connectLink } from '../../shared/link/transport.ts';
import { processLogger } from '../../shared/runtime/log.ts';
import { adminRequest, fmRequest } from './admin-client.ts';
import { nodeArgs, processPlan, REPO_ROOT, serviceEnv } from './process-plan.ts';
import { HealthError, Supervisor, cleanRunDir, isAlive, logTail, waitHealthy } from './supervisor.ts';
import { capture, pingall, type PingPair } from './net-commands.ts';
import { TCP_USAGE, tcpCommand } from './tcp-commands.ts';

const USAGE = `lparlab — every box a process, every wire a socket

  lparlab up [-c FILE] [--run-dir DIR] [--detach] [--except NAME]...   boot a platform (default: the built-in one)
  lparlab init [-c FILE] [--run-dir DIR]                               lay out a run directory (platform, keys) without starting it
  lparlab down [--run-dir DIR | -c FILE]                               stop it; no process, socket or state left
  lparlab status [--json]                                              processes (role, pid, health, CPU, memory), planes, RVIs, shared memory
  lparlab kill NAME [--signal TERM|KILL|STOP|CONT]                     signal one process (default TERM)
  lparlab start NAME                                                   start one process again (or one left out with --except)
  lparlab fault PLANE cut|restore|drop PCT|delay MS|clear [--port NODE | --rvi ID] [--jitter MS]
  lparlab svc ROLE --id NAME [--run-dir DIR] [--inspect[=HOST:PORT]] [--inspect-brk] [--node-arg=FLAG]...
                                                                       run one process in the foreground (debugger-ready)
  lparlab rvi list | create A B [--purpose P] | destroy ID             the fabric manager's RVIs (as management)
  lparlab perf A B [--count N] [--size BYTES] [--ping N]               RVI throughput and round trips between two LPARs
  lparlab ping LPAR IP [-c N] [-s BYTES] [-i SECONDS] [--json]        ICMP echo from inside a partition's stack
  lparlab pingall [--json]                                             every LPAR to every other address on its virtual LANs
  lparlab arp LPAR | ip LPAR                                           a partition's ARP cache / interfaces
  lparlab capture VLAN -w FILE [-c N] [--duration S]                   a virtual LAN's frames to a pcap file
  lparlab vlan join VLAN LPAR IP | leave VLAN LPAR                     change membership at run time (all control nodes)
  lparlab tap attach VLAN --dev NAME --ip CIDR | tap detach --dev NAME bridge a virtual LAN to a Linux TAP device (root)
${TCP_USAGE}
Every command but up takes --run-dir DIR or -c FILE to find the platform (default: the built-in platform's run directory).
`;

const BOOLEANS = ['detach', 'json', 'help', 'inspect', 'inspect-brk', 'h', 'l', 'v', 'fail'];

async function ping(args: ParsedArgs): Promise<number> {
  const runDir = liveRunDir(args);
  const [, lpar, dst] = args.positionals;
  if (!lpar || !dst) throw new Error('usage: lparlab ping LPAR IP [-c N] [-s BYTES] [-i SECONDS]');
  const count = Number(flag(args, 'c') ?? 4);
  const intervalMs = Math.round(Number(flag(args, 'i') ?? 0.2) * 1000);
  const r = await adminRequest(runDir, lpar, { t: 'ping', dst, count, size: Number(flag(args, 's') ?? 56), intervalMs, timeoutMs: 1000 }, count * (intervalMs + 1000) + 10_000);
  if (flag(args, 'json') === 'true') {
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } else {
    const rtts = r.rttsMs as number[];
    const loss = Math.round((1 - Number(r.received) / Number(r.sent)) * 100);
    for (const e of r.errors as string[]) process.stdout.write(`${lpar}: ${e}\n`);
    process.stdout.write(`--- ${dst} ping statistics from ${lpar} ---\n${r.sent} packets transmitted, ${r.received} received, ${loss}% packet loss\n`);
    if (rtts.length) process.stdout.write(`rtt min/avg/max = ${Math.min(...rtts).toFixed(3)}/${(rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(3)}/${Math.max(...rtts).toFixed(3)} ms\n`);
  }
  return Number(r.received) > 0 ? 0 : 1;
}

async function pingallCommand(args: ParsedArgs): Promise<number> {
  const runDir = liveRunDir(args);
  const pairs = await pingall(runDir, runDir.readPlatform());
  const received = pairs.filter((p) => p.ok).length;
  if (flag(args, 'json') === 'true') process.stdout.write(`${JSON.stringify({ pairs, sent: pairs.length, received })}\n`);
  else {
    process.stdout.write('*** Ping: testing ping reachability\n');
    const byFrom = new Map<string, PingPair[]>();
    for (const p of pairs) byFrom.set(p.from, [...(byFrom.get(p.from) ?? []), p]);
    for (const [from, list] of byFrom) process.stdout.write(`${from} -> ${list.map((p) => (p.ok ? `${p.to}(${p.ip})` : 'X')).join(' ')}\n`);
    const dropped = pairs.length ? Math.round(((pairs.length - received) / pairs.length) * 100) : 0;
    process.stdout.write(`*** Results: ${dropped}% dropped (${received}/${pairs.length} received)\n`);
  }
  return received === pairs.length ? 0 : 1;
}

async function captureCommand(args: ParsedArgs): Promise<number> {
  const runDir = liveRunDir(args);
  const vlan = args.positionals[1];
  const file = flag(args, 'w');
  if (!vlan || !file) throw new Error('usage: lparlab capture VLAN -w FILE [-c N] [--duration S]');
  const count = flag(args, 'c') === undefined ? undefined : Number(flag(args, 'c'));
  const duration = flag(args, 'duration') === undefined ? undefined : Number(flag(args, 'duration')) * 1000;
  const stop = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  if (count === undefined && duration === undefined) process.stderr.write('capturing until Ctrl-C\n');
  const r = await capture(runDir, runDir.readPlatform(), vlan, file, { count, durationMs: duration, stop });
  process.stdout.write(`${r.frames} frames of ${vlan} (from ${r.members.join(', ')}) written to ${file}\n`);
  return 0;
}

async function vlanCommand(args: ParsedArgs): Promise<number> {
  const runDir = liveRunDir(args);
  const [, sub, vlan, lpar, ip] = args.positionals;
  if ((sub !== 'join' && sub !== 'leave') || !vlan || !lpar || (sub === 'join' && !ip)) throw new Error('usage: lparlab vlan join VLAN LPAR IP | lparlab vlan leave VLAN LPAR');
  // Every control node serves every virtual LAN: each is told.
  for (const cn of runDir.readPlatform().controlNodes) {
    const r = sub === 'join' ? await adminRequest(runDir, cn.name, { t: 'vlan-join', vlan, lpar, ip }) : await adminRequest(runDir, cn.name, { t: 'vlan-leave', vlan, lpar });
    process.stdout.write(`${cn.name}: ${sub === 'join' ? `${lpar} joined ${vlan} (${JSON.stringify(r.interface)})` : `${lpar} left ${vlan}`}\n`);
  }
  return 0;
}

function platformFrom(args: ParsedArgs): Platform {
  return loadPlatformFile(flag(args, 'c') ?? flag(args, 'config') ?? defaultPlatformFile());
}

function runDirFrom(args: ParsedArgs): RunDir {
  const dir = flag(args, 'run-dir');
  if (dir) return new RunDir(dir);
  return new RunDir(defaultRunDir(platformFrom(args).name));
}

/** A run directory that has a platform running (or at least laid out). */
function liveRunDir(args: ParsedArgs): RunDir {
  const runDir = runDirFrom(args);
  if (!fs.existsSync(runDir.platformFile)) throw new Error(`no platform in ${runDir.root} (start one with lparlab up, or name it with --run-dir)`);
  return runDir;
}

function supervisorPid(runDir: RunDir): number | undefined {
  try {
    const pid = Number(fs.readFileSync(runDir.supervisorPidFile, 'utf8'));
    return pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function up(args: ParsedArgs): Promise<number> {
  const platform = platformFrom(args);
  const runDir = runDirFrom(args);
  const running = supervisorPid(runDir);
  if (running) throw new Error(`platform already running in ${runDir.root} (supervisor pid ${running}); lparlab down --run-dir ${runDir.root}`);
  const except = args.flags.get('except') ?? [];
  fs.mkdirSync(runDir.root, { recursive: true });

  if (flag(args, 'detach') === 'true') {
    const supArgs = ['supervise', '--run-dir', runDir.root, '-c', flag(args, 'c') ?? flag(args, 'config') ?? defaultPlatformFile(), ...except.flatMap((e) => ['--except', e])];
    const out = fs.openSync(path.join(runDir.root, 'supervisor.log'), 'a');
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts', 'lparlab.mjs'), ...supArgs], { detached: true, stdio: ['ignore', out, out], cwd: REPO_ROOT });
    fs.closeSync(out);
    child.unref();
    const names = processPlan(platform, runDir)
      .map((p) => p.name)
      .filter((n) => !except.includes(n));
    try {
      const deadline = Date.now() + 10_000;
      while (!fs.existsSync(runDir.supervisorPidFile)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new HealthError('supervisor', `supervisor did not start: ${logTailOf(path.join(runDir.root, 'supervisor.log'))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await waitHealthy(
        runDir,
        names,
        30_000,
        (name) => {
          const st = readState(runDir.stateFile(name));
          return (st !== undefined && !isAlive(st.pid)) || !isAlive(child.pid!);
        },
        except.length > 0,
      );
    } catch (err) {
      const name = err instanceof HealthError ? err.processName : 'supervisor';
      process.stderr.write(`lparlab up: ${(err as Error).message}\n--- last lines of ${name}'s log ---\n${logTail(runDir, name)}\n`);
      try {
        process.kill(child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      return 1;
    }
    process.stdout.write(`platform ${platform.name} is up (run directory ${runDir.root})\n`);
    await printStatus(runDir, false);
    return 0;
  }

  const sup = new Supervisor(platform, runDir, { except, onEvent: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`) });
  const stop = async (code: number) => {
    await sup.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  await sup.start();
  try {
    await sup.waitHealthy(30_000);
  } catch (err) {
    const name = err instanceof HealthError ? err.processName : 'fabric-manager';
    process.stderr.write(`lparlab up: ${(err as Error).message}\n--- last lines of ${name}'s log ---\n${logTail(runDir, name)}\n`);
    await stop(1);
  }
  process.stdout.write(`platform ${platform.name} is up (run directory ${runDir.root}); Ctrl-C stops it\n`);
  if (except.length) process.stdout.write(`left out for you to start: ${except.map((e) => `lparlab svc ... --id ${e} --run-dir ${runDir.root}`).join('; ')}\n`);
  await printStatus(runDir, false);
  return new Promise(() => {});
}

/** The detached supervisor behind `up --detach`. */
async function supervise(args: ParsedArgs): Promise<number> {
  const sup = new Supervisor(platformFrom(args), new RunDir(requireFlag(args, 'run-dir')), {
    except: args.flags.get('except') ?? [],
    onEvent: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
  });
  const stop = async () => {
    await sup.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  await sup.start();
  return new Promise(() => {});
}

function logTailOf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n');
  } catch {
    return '(no log)';
  }
}

async function down(args: ParsedArgs): Promise<number> {
  const runDir = runDirFrom(args);
  const sup = supervisorPid(runDir);
  if (sup) {
    process.kill(sup, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (isAlive(sup) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  // Whatever is left (a supervisor that was killed, a process started by hand) is ended here.
  if (fs.existsSync(runDir.platformFile)) {
    for (const spec of processPlan(runDir.readPlatform(), runDir)) {
      const st = readState(runDir.stateFile(spec.name));
      if (st && isAlive(st.pid)) {
        process.kill(st.pid, 'SIGKILL');
      }
    }
  }
  if (sup && isAlive(sup)) process.kill(sup, 'SIGKILL');
  cleanRunDir(runDir);
  process.stdout.write(`platform in ${runDir.root} is down\n`);
  return 0;
}

/** Linux process state letter from /proc (T: stopped by a signal). */
function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

export async function collectStatus(runDir: RunDir): Promise<Record<string, unknown>> {
  const platform = runDir.readPlatform();
  const plan = processPlan(platform, runDir);
  const states = plan.map((spec) => ({ spec, st: readState(runDir.stateFile(spec.name)) }));
  const pids = states.filter(({ st }) => st && isAlive(st.pid)).map(({ st }) => st!.pid);
  // pidusage measures CPU between two calls for the same pid: the first only sets the baseline.
  const usage: Record<number, { cpu: number; memory: number }> = {};
  if (pids.length) {
    try {
      await pidusage(pids);
      await new Promise((r) => setTimeout(r, 250));
      Object.assign(usage, await pidusage(pids));
    } catch {
      /* a process went away meanwhile: its figures stay unknown */
    }
    pidusage.clear();
  }
  const processes = states.map(({ spec, st }) => {
    const alive = st !== undefined && isAlive(st.pid);
    let health: string = st?.health ?? 'not running';
    if (st && !alive) health = 'dead';
    else if (st && procState(st.pid) === 'T') health = 'stopped';
    const u = alive ? usage[st!.pid] : undefined;
    return { name: spec.name, role: spec.role, pid: alive ? st!.pid : null, health, detail: st?.detail ?? '', cpu: u ? Math.round(u.cpu * 10) / 10 : null, memory: u?.memory ?? null };
  });
  const planes = await Promise.all(
    platform.planes.map(async (p) => {
      try {
        const s = await adminRequest(runDir, `plane-${p}`, { t: 'switch-status' }, 2000);
        const ports = s.ports as Array<{ up: boolean }>;
        return { plane: p, up: true, portsUp: ports.filter((x) => x.up).length, ports: ports.length, vis: s.vis, stats: s.stats, faults: s.faults };
      } catch {
        return { plane: p, up: false };
      }
    }),
  );
  let rvis: unknown[] = [];
  try {
    rvis = (await adminRequest(runDir, 'fabric-manager', { t: 'fm-status' }, 2000)).rvis as unknown[];
  } catch {
    /* fabric manager down: the table is unknown */
  }
  const hypervisors = await Promise.all(
    platform.cecs.map(async (c) => {
      try {
        const s = await adminRequest(runDir, hypervisorName(c.name), { t: 'hv-status' }, 2000);
        return { cec: c.name, up: true, dir: s.dir, smbs: (s.smbs as unknown[]).length, elements: (s.elements as unknown[]).length, stats: s.stats };
      } catch {
        return { cec: c.name, up: false };
      }
    }),
  );
  // Per-LPAR SMC counters (smc-tools' smcss/smcd stats in spirit): connections by mode, fallbacks by reason, bytes, ring-full events.
  const smc = await Promise.all(
    platform.lpars.map(async (l) => {
      try {
        const r = (await adminRequest(runDir, l.name, { t: 'smc-status' }, 2000)).smc as { enabled: boolean; stats: Record<string, unknown> } | null;
        return { lpar: l.name, up: true, enabled: r?.enabled ?? null, stats: r?.stats ?? null };
      } catch {
        return { lpar: l.name, up: false };
      }
    }),
  );
  return { platform: platform.name, runDir: runDir.root, processes, planes, rvis, hypervisors, smc };
}

async function printStatus(runDir: RunDir, json: boolean): Promise<void> {
  const s = await collectStatus(runDir);
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const rows = s.processes as Array<Record<string, unknown>>;
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd([16, 15, 8, 12, 7, 9][i] ?? 0)).join(' ');
  const out = [line(['NAME', 'ROLE', 'PID', 'HEALTH', 'CPU%', 'MEM']), ...rows.map((r) => line([String(r.name), String(r.role), String(r.pid ?? '-'), String(r.health), r.cpu === null ? '-' : String(r.cpu), r.memory === null ? '-' : `${Math.round(Number(r.memory) / 1048576)}M`]) + `  ${r.detail}`)];
  for (const p of s.planes as Array<Record<string, unknown>>) out.push(p.up ? `plane ${p.plane}: up, ${p.portsUp}/${p.ports} ports attached, ${p.vis} VIs${(p.faults as unknown[]).length ? `, faults: ${JSON.stringify(p.faults)}` : ''}` : `plane ${p.plane}: DOWN`);
  out.push(`RVIs: ${(s.rvis as unknown[]).length}`);
  for (const h of s.hypervisors as Array<Record<string, unknown>>) out.push(h.up ? `hypervisor of ${h.cec}: ${h.smbs} SMBs, ${h.elements} elements in use (${h.dir})` : `hypervisor of ${h.cec}: DOWN`);
  for (const m of s.smc as Array<{ lpar: string; up: boolean; enabled?: boolean | null; stats?: Record<string, any> | null }>) {
    if (!m.up || !m.stats) continue;
    const st = m.stats;
    const fb = Object.entries(st.fallbacks as Record<string, number>).map(([k, v]) => `${v} ${k}`).join('; ');
    out.push(`SMC ${m.lpar}${m.enabled ? '' : ' (off)'}: connections SMC-D ${st.connections.smcd}, SMC-R ${st.connections.smcr}, TCP ${st.connections.tcp}; bytes out/in SMC-D ${st.bytes.smcdOut}/${st.bytes.smcdIn}, SMC-R ${st.bytes.smcrOut}/${st.bytes.smcrIn}; ring full ${st.ringFull}; link failovers ${st.linkFailovers}, TCP failbacks ${st.tcpFailbacks}${fb ? `; fallbacks: ${fb}` : ''}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

function signalProcess(runDir: RunDir, name: string, signal: string): number {
  const st = readState(runDir.stateFile(name));
  if (!st || !isAlive(st.pid)) throw new Error(`${name} is not running`);
  const sig = `SIG${signal.toUpperCase().replace(/^SIG/, '')}` as NodeJS.Signals;
  if (!['SIGTERM', 'SIGKILL', 'SIGSTOP', 'SIGCONT', 'SIGINT'].includes(sig)) throw new Error(`--signal must be TERM, KILL, STOP or CONT`);
  process.kill(st.pid, sig);
  process.stdout.write(`${sig} sent to ${name} (pid ${st.pid})\n`);
  return 0;
}

async function supervisorRequest(runDir: RunDir, msg: { t: string; [k: string]: unknown }): Promise<Record<string, unknown>> {
  const link = await connectLink(`unix:${runDir.socket('supervisor')}`).catch(() => {
    throw new Error(`no supervisor for ${runDir.root}: is the platform up?`);
  });
  const ch = new ControlChannel(link, processLogger('cli', 'lparlab'));
  try {
    return await ch.request(msg);
  } finally {
    ch.close();
  }
}

async function fault(args: ParsedArgs): Promise<number> {
  const [plane, action, value] = args.positionals.slice(1);
  if (!plane || !action) throw new Error('usage: lparlab fault PLANE cut|restore|drop PCT|delay MS|clear [--port NODE | --rvi ID]');
  const msg: Record<string, unknown> = { t: 'fault', action };
  if (action === 'drop') msg.pct = Number(value);
  if (action === 'delay') {
    msg.ms = Number(value);
    msg.jitter = Number(flag(args, 'jitter') ?? 0);
  }
  if (flag(args, 'port')) msg.port = flag(args, 'port');
  if (flag(args, 'rvi')) msg.rvi = Number(flag(args, 'rvi'));
  const r = await adminRequest(liveRunDir(args), `plane-${plane}`, msg as { t: string });
  process.stdout.write(`plane ${plane} faults: ${JSON.stringify(r.faults)}\n`);
  return 0;
}

/** One process in the foreground, stdio attached; with --inspect, ready for a debugger. */
async function svc(args: ParsedArgs): Promise<number> {
  const role = args.positionals[1];
  const name = requireFlag(args, 'id');
  const runDir = liveRunDir(args);
  const spec = processPlan(runDir.readPlatform(), runDir).find((p) => p.name === name);
  if (!spec) throw new Error(`no process "${name}" in this platform`);
  if (role && role !== spec.role) throw new Error(`${name} is a ${spec.role}, not a ${role}`);
  // --node-arg passes any node flag through: --cpu-prof, --heap-prof, --trace-gc ...
  const extra: string[] = [...(args.flags.get('node-arg') ?? [])];
  for (const f of ['inspect', 'inspect-brk']) {
    const v = flag(args, f);
    if (v !== undefined) extra.push(v === 'true' ? `--${f}` : `--${f}=${v}`);
  }
  const argv = nodeArgs(spec, extra);
  const env = serviceEnv();
  process.stderr.write(`running: GLIBC_TUNABLES=${env.GLIBC_TUNABLES} node ${argv.join(' ')}\n`);
  const child = spawn(process.execPath, argv, { stdio: 'inherit', cwd: REPO_ROOT, env });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

async function rvi(args: ParsedArgs): Promise<number> {
  const runDir = liveRunDir(args);
  const [, sub, a, b] = args.positionals;
  if (sub === 'list' || sub === undefined) {
    const r = await fmRequest(runDir, { t: 'rvi-list' });
    for (const x of r.rvis as Array<Record<string, unknown>>) process.stdout.write(`${x.id}\t${x.a} (vi ${x.viA}) <-> ${x.b} (vi ${x.viB})\t${x.purpose}\n`);
    return 0;
  }
  if (sub === 'create') {
    const r = await fmRequest(runDir, { t: 'rvi-create', a, b, purpose: flag(args, 'purpose') ?? 'data' });
    process.stdout.write(`${JSON.stringify(r.rvi)}\n`);
    return 0;
  }
  if (sub === 'destroy') {
    await fmRequest(runDir, { t: 'rvi-destroy', id: Number(a) });
    process.stdout.write(`RVI ${a} destroyed\n`);
    return 0;
  }
  throw new Error(`unknown: lparlab rvi ${sub} (list, create, destroy)`);
}

async function perf(args: ParsedArgs): Promise<number> {
  const runDir = liveRunDir(args);
  const [, a, b] = args.positionals;
  if (!a || !b) throw new Error('usage: lparlab perf A B [--count N] [--size BYTES] [--ping N]');
  await fmRequest(runDir, { t: 'rvi-create', a, b, purpose: 'perf' });
  const size = Number(flag(args, 'size') ?? 65536);
  const count = Number(flag(args, 'count') ?? 20000);
  await new Promise((r) => setTimeout(r, 300));
  const sent = await adminRequest(runDir, a, { t: 'perf-send', peer: b, count, sizes: [size] }, 600_000);
  const got = await adminRequest(runDir, b, { t: 'perf-received', peer: a });
  const ping = await adminRequest(runDir, a, { t: 'perf-ping', peer: b, count: Number(flag(args, 'ping') ?? 1000), size: 64 }, 600_000);
  const result = { size, count, sender: sent, receiver: got, ping };
  if (flag(args, 'json') === 'true') process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(`${a} -> ${b}: ${count} x ${size} B in ${Number(sent.elapsedMs).toFixed(0)} ms = ${Number(sent.gbps).toFixed(2)} Gbit/s; received in order ${got.received}, missing ${got.missing}, duplicates ${got.duplicates}\n`);
    process.stdout.write(`round trip (64 B): p50 ${Number(ping.p50Us).toFixed(0)} us, p99 ${Number(ping.p99Us).toFixed(0)} us\n`);
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, BOOLEANS);
  const verb = args.positionals[0];
  switch (verb) {
    case 'up':
      return up(args);
    case 'supervise':
      return supervise(args);
    case 'init': {
      const platform = platformFrom(args);
      const runDir = runDirFrom(args);
      runDir.initialise(platform, processPlan(platform, runDir).map((p) => p.name));
      process.stdout.write(`run directory ${runDir.root} ready for platform ${platform.name}\n`);
      return 0;
    }
    case 'down':
      return down(args);
    case 'status':
      await printStatus(liveRunDir(args), flag(args, 'json') === 'true');
      return 0;
    case 'kill':
      return signalProcess(liveRunDir(args), args.positionals[1] ?? '', flag(args, 'signal') ?? 'TERM');
    case 'start': {
      const r = await supervisorRequest(liveRunDir(args), { t: 'start', name: args.positionals[1] });
      process.stdout.write(`${r.name} started (pid ${r.pid})\n`);
      return 0;
    }
    case 'fault':
      return fault(args);
    case 'svc':
      return svc(args);
    case 'rvi':
      return rvi(args);
    case 'perf':
      return perf(args);
    case 'ping':
      return ping(args);
    case 'pingall':
      return pingallCommand(args);
    case 'arp': {
      const r = await adminRequest(liveRunDir(args), args.positionals[1] ?? '', { t: 'arp' });
      const entries = r.entries as Array<Record<string, unknown>>;
      if (flag(args, 'json') === 'true') process.stdout.write(`${JSON.stringify(entries)}\n`);
      else for (const e of entries) process.stdout.write(`${String(e.ip).padEnd(16)} ${e.mac}  ${e.vlan}  expires in ${Math.round(Number(e.expiresInMs) / 1000)} s\n`);
      return 0;
    }
    case 'ip': {
      const r = await adminRequest(liveRunDir(args), args.positionals[1] ?? '', { t: 'ip' });
      if (flag(args, 'json') === 'true') process.stdout.write(`${JSON.stringify(r)}\n`);
      else for (const i of r.interfaces as Array<Record<string, unknown>>) process.stdout.write(`${i.name}: vlan ${i.vlan} (${i.vlanId}) link/ether ${i.mac} inet ${i.ip} mtu ${i.mtu}${i.promiscuous ? ' PROMISC' : ''}\n`);
      return 0;
    }
    case 'capture':
      return captureCommand(args);
    case 'vlan':
      return vlanCommand(args);
    case 'tap': {
      const sub = args.positionals[1];
      const dev = requireFlag(args, 'dev');
      const runDir = liveRunDir(args);
      if (sub === 'attach') {
        const vlan = args.positionals[2];
        if (!vlan) throw new Error('usage: lparlab tap attach VLAN --dev NAME --ip CIDR');
        const r = await supervisorRequest(runDir, { t: 'tap-attach', vlan, dev, cidr: requireFlag(args, 'ip') });
        process.stdout.write(`virtual LAN ${vlan} bridged to ${dev} (socat pid ${r.pid})\n`);
        return 0;
      }
      if (sub === 'detach') {
        await supervisorRequest(runDir, { t: 'tap-detach', dev });
        process.stdout.write(`${dev} detached\n`);
        return 0;
      }
      throw new Error('usage: lparlab tap attach VLAN --dev NAME --ip CIDR | lparlab tap detach --dev NAME');
    }
    case 'nc':
    case 'http':
    case 'ss':
      return tcpCommand(verb, liveRunDir(args), args);
    case undefined:
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      if (flag(args, 'help') || flag(args, 'h')) {
        process.stdout.write(USAGE);
        return 0;
      }
      throw new Error(`unknown command "${verb}"\n${USAGE}`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`lparlab: ${err instanceof PlatformError ? err.message : (err as Error).message}\n`);
  process.exitCode = err instanceof PlatformError ? 2 : 1;
}
