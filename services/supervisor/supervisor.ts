import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import { ControlChannel } from '../../shared/control/channel.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { listenLink } from '../../shared/link/transport.ts';
import type { LinkServer } from '../../shared/link/link.ts';
import type { Platform } from '../../shared/platform/platform.ts';
import { processLogger } from '../../shared/runtime/log.ts';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { adminRequest } from '../../shared/runtime/admin-client.ts';
import { SupervisorMsg, decodeSupervisorRequest, type SupervisorRequest } from '../../shared/protocol/supervisor.ts';
import type { BootEvent } from '../../shared/protocol/boot.ts';
import { Boot, bootLimits, type BootLimits } from './boot.ts';
import { cleanRunDir } from './clean.ts';
import { OPERATOR, adminVerifierFor, authenticateOperator, writeAdminVerifiers } from '../../shared/control/admin-auth.ts';
import { refusals } from '../../shared/runtime/refusal-log.ts';
import { LAUNCHER_FD } from '../../shared/runtime/service-options.ts';
import { canJail, partitionCommand } from './partition-jail.ts';
import { SECRETS_FD, SECRETS_FD_ENV, secretsFor } from '../../shared/control/process-secrets.ts';
import { niceness, nodeArgs, ownSession, processPlan, REPO_ROOT, serviceEnv, type ProcessSpec } from './process-plan.ts';

export interface SupervisorOptions {
  /** Processes not to start (a person starts them by hand, e.g. under a debugger). */
  except: string[];
  onEvent?: (line: string) => void;
  /** How many processes start at once (default: bootLimits(), what the box can take). */
  limits?: BootLimits;
}

/**
 * Starts every process of a platform as a child, each with its log file, and
 * keeps them until told to stop. It never restarts a process on its own: chaos
 * runs kill things on purpose; `lparlab start NAME` brings one back.
 * Its control socket (sock/supervisor.sock) speaks shared/protocol/supervisor.ts.
 */
export class Supervisor {
  readonly plan: ProcessSpec[];
  private readonly children = new Map<string, ChildProcess>();
  /** socat processes bridging virtual LANs to TAP devices, by device name. */
  private readonly taps = new Map<string, { vlan: string; child: ChildProcess }>();
  private server?: LinkServer;
  private booting?: Boot;
  private stopping?: Promise<void>;
  private readonly log = processLogger('supervisor', 'supervisor');
  /** Requests on the control socket refused as malformed (shared/protocol/supervisor.ts). */
  malformed = 0;

  constructor(
    readonly platform: Platform,
    readonly runDir: RunDir,
    private readonly opts: SupervisorOptions,
  ) {
    this.plan = processPlan(platform, runDir);
    for (const name of opts.except) {
      if (!this.plan.some((p) => p.name === name)) throw new Error(`--except ${name}: no such process in platform ${platform.name}`);
    }
  }

  get managed(): ProcessSpec[] {
    return this.plan.filter((p) => !this.opts.except.includes(p.name));
  }

  /** Lays out the run directory and opens the control socket; boot() then starts the processes. */
  async start(): Promise<void> {
    this.runDir.initialise(this.platform, this.plan.map((p) => p.name));
    writeAdminVerifiers(this.runDir, [...this.plan.map((p) => p.name), 'supervisor']);
    const verifier = adminVerifierFor(this.runDir.readCredential(OPERATOR), 'supervisor');
    fs.writeFileSync(this.runDir.supervisorPidFile, String(process.pid));
    // Only the operator may start, stop or bridge anything (issue 11 item 11): a partition's code could reach this socket.
    this.server = await listenLink(`unix:${this.runDir.socket('supervisor')}`, (link) => {
      const ch = new ControlChannel(link, this.log);
      authenticateOperator(ch, verifier).then(
        () => {
          for (const t of Object.values(SupervisorMsg)) ch.handle(t, (m) => this.serve(m));
          ch.send({ t: 'welcome' });
        },
        (err: Error) => {
          refusals.warn(this.log, { err: err.message.slice(0, 200) }, 'control connection refused: not the operator');
          ch.send({ t: 'refused', reason: err.message });
          setTimeout(() => link.close(), 50);
        },
      );
    });
    if (!canJail() && this.managed.some((p) => p.role === 'lpar')) {
      this.log.warn('not root: partitions run with this user’s authority, and code they run can read keys/ (services/supervisor/partition-jail.ts)');
    }
  }

  /**
   * Starts every managed process, as many at a time as the limits allow
   * (services/supervisor/boot.ts), and resolves once all are up; rejects with
   * a HealthError naming the first that exited or stayed unhealthy past
   * `timeoutMs`. `onEvent` hears each step (shared/protocol/boot.ts).
   */
  boot(timeoutMs: number, onEvent: (e: BootEvent) => void = () => {}): Promise<void> {
    const specs = new Map(this.managed.map((p) => [p.name, p]));
    this.booting = new Boot(this.runDir, [...specs.keys()], (name) => this.spawn(specs.get(name)!), {
      limits: this.opts.limits ?? bootLimits(),
      degradedIsUp: this.opts.except.length > 0,
      timeoutMs,
      onEvent,
    });
    return this.booting.run();
  }

  /** One request on the control socket: decoded (a malformed one is counted and refused with the reason), then done. */
  private serve(m: ControlMessage): unknown {
    const d = decodeSupervisorRequest(m);
    if (!d.ok) {
      this.malformed++;
      throw new Error(d.reason);
    }
    const rq: SupervisorRequest = d.value;
    switch (rq.t) {
      case SupervisorMsg.Start:
        return this.startOne(rq.name);
      case SupervisorMsg.Ps:
        return { children: [...this.children].map(([name, c]) => ({ name, pid: c.pid })), taps: [...this.taps].map(([dev, t]) => ({ dev, vlan: t.vlan, pid: t.child.pid })) };
      case SupervisorMsg.TapAttach:
        return this.attachTap(rq.vlan, rq.dev, rq.cidr);
      case SupervisorMsg.TapDetach:
        return this.detachTap(rq.dev);
      case SupervisorMsg.Stop:
        setImmediate(() => void this.stop().then(() => process.exit(0)));
        return {};
    }
  }

  startOne(name: string): { name: string; pid: number } {
    const spec = this.plan.find((p) => p.name === name);
    if (!spec) throw new Error(`no process "${name}" in platform ${this.platform.name}`);
    if (this.children.has(name)) throw new Error(`${name} is already running (pid ${this.children.get(name)!.pid})`);
    const child = this.spawn(spec);
    return { name, pid: child.pid! };
  }

  private spawn(spec: ProcessSpec): ChildProcess {
    // A killed process leaves its last state and admin socket behind; the new one must not be taken
    // for healthy (or loaded, services/supervisor/boot.ts) before it says so.
    fs.rmSync(this.runDir.stateFile(spec.name), { force: true });
    fs.rmSync(this.runDir.adminSocket(spec.name), { force: true });
    const out = fs.openSync(this.runDir.logFile(spec.name), 'a');
    // Each child gets its own secrets on a descriptor, a partition under a jail that hides keys/ (issue 11 item 11).
    // The child watches LAUNCHER_FD, whose other end only this process holds: it reads end of file when the supervisor is gone.
    const cmd = partitionCommand(spec, this.runDir, process.execPath, [...nodeArgs(spec), '--parent-fd', String(LAUNCHER_FD)]);
    const child = spawn(cmd.command, cmd.args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', out, out, 'pipe', 'pipe'],
      detached: ownSession(spec.role),
      env: { ...serviceEnv(spec.role), NODE_OPTIONS: '', [SECRETS_FD_ENV]: String(SECRETS_FD) },
    });
    fs.closeSync(out);
    if (child.pid !== undefined && niceness(spec.role) !== 0) {
      try {
        os.setPriority(child.pid, niceness(spec.role));
      } catch {
        // The child exited already: its exit is reported below.
      }
    }
    const secrets = child.stdio[SECRETS_FD] as NodeJS.WritableStream;
    // A child that dies before reading them closes the descriptor: that is its exit to report, not a supervisor crash.
    secrets.on('error', () => {});
    (child.stdio[LAUNCHER_FD] as NodeJS.ReadableStream | null)?.on('error', () => {});
    secrets.end(secretsFor(this.runDir, spec.name));
    child.on('error', (err) => this.opts.onEvent?.(`${spec.name} could not be started: ${err.message}`));
    this.children.set(spec.name, child);
    child.on('exit', (code, signal) => {
      if (this.children.get(spec.name) === child) this.children.delete(spec.name);
      if (!this.stopping) this.opts.onEvent?.(`${spec.name} (pid ${child.pid}) exited: ${signal ?? `code ${code}`}`);
    });
    return child;
  }

  /**
   * Bridges a virtual LAN to a new Linux TAP device (`lparlab tap attach`):
   * socat moves frames between the TAP and a UDP socket; every control node
   * opens a VLAN proxy that sends to it, and the first one receives from it.
   * Needs root (or CAP_NET_ADMIN) and /dev/net/tun.
   */
  async attachTap(vlan: string, dev: string, cidr: string): Promise<Record<string, unknown>> {
    if (!this.platform.vlans.some((v) => v.name === vlan)) throw new Error(`no virtual LAN "${vlan}" in platform ${this.platform.name}`);
    if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,14}$/.test(dev)) throw new Error(`--dev "${dev}" is not a valid interface name (at most 15 characters)`);
    if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(cidr)) throw new Error(`--ip "${cidr}" must be an IPv4 address with a prefix, e.g. 10.1.0.100/24`);
    if (this.taps.has(dev) || fs.existsSync(`/sys/class/net/${dev}`)) throw new Error(`a network device "${dev}" exists already`);
    if (process.getuid?.() !== 0) throw new Error('tap attach needs root (CAP_NET_ADMIN) to create a TAP device');
    if (!fs.existsSync('/dev/net/tun')) throw new Error('tap attach needs /dev/net/tun (the tun module)');
    const tapPort = await freeUdpPort();
    const ports: number[] = [];
    for (const cn of this.platform.controlNodes) {
      const r = await adminRequest(this.runDir, cn.name, { t: 'tap-attach', vlan, address: '127.0.0.1', port: tapPort }).catch(() => undefined);
      if (r) ports.push(Number(r.port));
    }
    if (ports.length === 0) throw new Error('no control node answered: is the platform up?');
    const child = spawn('socat', [`TUN:${cidr},tun-type=tap,tun-name=${dev},iff-up,iff-no-pi`, `UDP-DATAGRAM:127.0.0.1:${ports[0]},bind=127.0.0.1:${tapPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const spawned = await new Promise<boolean>((resolve) => {
      child.once('error', () => resolve(false));
      child.once('spawn', () => resolve(true));
    });
    if (!spawned) throw new Error('socat is not installed: apt-get install socat');
    const deadline = Date.now() + 5000;
    while (!fs.existsSync(`/sys/class/net/${dev}`)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`socat could not make TAP ${dev}: ${stderr.trim() || 'timed out'}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    this.taps.set(dev, { vlan, child });
    child.on('exit', () => {
      if (this.taps.get(dev)?.child === child) this.taps.delete(dev);
    });
    this.opts.onEvent?.(`virtual LAN ${vlan} bridged to TAP ${dev} (${cidr}), socat pid ${child.pid}`);
    return { dev, vlan, pid: child.pid };
  }

  async detachTap(dev: string): Promise<Record<string, unknown>> {
    const tap = this.taps.get(dev);
    if (!tap) throw new Error(`no TAP "${dev}" attached`);
    await stopChild(tap.child, 2000);
    this.taps.delete(dev);
    for (const cn of this.platform.controlNodes) await adminRequest(this.runDir, cn.name, { t: 'tap-detach', vlan: tap.vlan }).catch(() => undefined);
    return { dev };
  }

  /** Stops every child (SIGTERM; SIGCONT so a stopped one hears it; SIGKILL after 3 s) and removes sockets and state. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.booting?.close();
      await Promise.all([...this.taps.values()].map((t) => stopChild(t.child, 2000)));
      this.taps.clear();
      // Done when the last child has exited (its exit event), not after a fixed wait.
      await Promise.all([...this.children.values()].map((c) => stopChild(c, 3000, true)));
      await this.server?.close();
      cleanRunDir(this.runDir);
    })();
    return this.stopping;
  }
}

/** SIGTERM (and SIGCONT, so a stopped process hears it), SIGKILL after `graceMs`; resolves on its exit event. */
async function stopChild(child: ChildProcess, graceMs: number, cont = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  if (cont) child.kill('SIGCONT');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

