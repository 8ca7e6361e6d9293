import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../services/supervisor/process-plan.ts';
import { LPARLAB, TestPlatform } from '../helpers/platform.ts';
import { platformYaml } from '../helpers/platform-yaml.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Workloads (TCP issue, items 3 and 4): lpar2 starts the apps its platform
 * file names — two built-ins and the example user module — once its network
 * is up; lpar1 reaches each over the partitions' own TCP, through admin verbs
 * and through the `lparlab nc`, `http` and `ss` commands.
 */
const EXAMPLE = path.join(REPO_ROOT, 'scripts', 'examples', 'echo-upper.mjs');
const PLATFORM = platformYaml({
  name: 'wktest',
  lpars: [
    { cec: 1 },
    { cec: 2, apps: [{ name: 'echo', port: 7 }, { name: 'http', port: 80 }, { module: EXAMPLE, port: 9000, options: { banner: 'HI ' } }] },
  ],
  vlans: [{ name: 'blue', subnet: '10.6.0.0/24', members: ['lpar1', 'lpar2'] }],
});

type Rec = Record<string, any>;

/** Runs `lparlab ARGS` with piped stdin; stdout kept as bytes. */
function spawnCli(args: string[]) {
  const child = spawn(process.execPath, [LPARLAB, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  return {
    child,
    exited,
    stdout: () => Buffer.concat(out),
    stderr: () => stderr,
    waitFor(pred: () => boolean, what: string, timeoutMs = 15_000) {
      return waitFor(() => `${what}; stdout ${JSON.stringify(Buffer.concat(out).toString())}, stderr ${stderr}`, pred, timeoutMs);
    },
  };
}

describe('workloads from the platform file', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
  });
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('starts every app once the network is up and reports them', async () => {
    const { apps } = (await p.admin('lpar2', { t: 'apps' })) as Rec;
    expect(apps.map((a: Rec) => [a.app, a.port, a.state, a.source])).toEqual([
      ['echo', 7, 'running', 'platform'],
      ['http', 80, 'running', 'platform'],
      ['echo-upper.mjs', 9000, 'running', 'platform'],
    ]);
    expect(apps[2].module).toBe(EXAMPLE);
    const st = (await p.admin('lpar2', { t: 'status' })) as Rec;
    expect(st.health).toBe('healthy');
    expect(st.detail).toContain('apps 3 running');
    expect(((await p.admin('lpar1', { t: 'apps' })) as Rec).apps).toEqual([]);
  });

  it('echo answers every byte', async () => {
    const r = (await p.admin('lpar1', { t: 'tcp-exchange', dst: '10.6.0.2', port: 7, data: 'hello, echo\n' })) as Rec;
    expect(Buffer.from(r.data).toString()).toBe('hello, echo\n');
    expect(r.timedOut).toBe(false);
  });

  it('http serves over the partition TCP', async () => {
    const r = (await p.admin('lpar1', { t: 'http-get', host: '10.6.0.2', port: 80, path: '/workloads', count: 3 })) as Rec;
    expect(r.ok).toBe(3);
    expect(r.lastBody).toBe('hello from lparlab GET /workloads\n');
  });

  it('the user module gets its port and options and reports', async () => {
    const r = (await p.admin('lpar1', { t: 'tcp-exchange', dst: '10.6.0.2', port: 9000, data: 'hello, module 42\n' })) as Rec;
    expect(Buffer.from(r.data).toString()).toBe('HI HELLO, MODULE 42\n');
    const rep = (await p.admin('lpar2', { t: 'app-report', port: 9000 })) as Rec;
    expect(rep).toMatchObject({ app: 'echo-upper.mjs', connections: 1, bytes: 17 });
  });

  it('a failing module is reported without taking the partition down', async () => {
    await expect(p.admin('lpar2', { t: 'app-start', module: path.join(REPO_ROOT, 'package.json') })).rejects.toThrow(/package\.json/);
    await expect(p.admin('lpar2', { t: 'app-start', app: 'echo', port: 9000 })).rejects.toThrow(/port 9000 already runs echo-upper\.mjs/);
    const { apps } = (await p.admin('lpar2', { t: 'apps' })) as Rec;
    expect(apps.at(-1)).toMatchObject({ app: 'package.json', state: 'failed', source: 'admin' });
    const st = (await p.admin('lpar2', { t: 'status' })) as Rec;
    expect(st.detail).toMatch(/apps 3 running, 1 FAILED \(package\.json: /);
    const r = (await p.admin('lpar1', { t: 'tcp-exchange', dst: '10.6.0.2', port: 7, data: 'still here' })) as Rec;
    expect(Buffer.from(r.data).toString()).toBe('still here');
  });

  it('lparlab http prints the body, binary-safe, and the head with -v', async () => {
    const small = await p.cli(['http', 'lpar1', 'http://10.6.0.2/via-cli']);
    expect(small.code).toBe(0);
    expect(small.stdout).toBe('hello from lparlab GET /via-cli\n');

    const run = spawnCli(['http', '-v', 'lpar1', 'http://10.6.0.2:80/bytes/300000', '--run-dir', p.runDir.root]);
    run.child.stdin.end();
    expect(await run.exited).toBe(0);
    const body = run.stdout();
    expect(body.length).toBe(300_000);
    const sha = /< x-sha256: ([0-9a-f]{64})/.exec(run.stderr())?.[1];
    expect(sha).toBe(crypto.createHash('sha256').update(body).digest('hex'));
    expect(run.stderr()).toMatch(/< HTTP\/1\.1 200 OK/);

    const refused = await p.cli(['http', 'lpar1', 'http://10.6.0.2:81/']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/ECONNREFUSED 10\.6\.0\.2:81/);
  });

  it('lparlab nc relays stdin and stdout over one connection', async () => {
    const run = spawnCli(['nc', 'lpar1', '10.6.0.2', '7', '--run-dir', p.runDir.root]);
    run.child.stdin.write('hello over nc\n');
    await run.waitFor(() => run.stdout().toString() === 'hello over nc\n', 'the echo');
    // While it is open, ss on both sides shows the connection: lpar1 and lpar2 are on different CECs, so it runs SMC-R.
    const ss = await p.cli(['ss', 'lpar1', '--json']);
    const conns = (JSON.parse(ss.stdout) as Rec).connections as Rec[];
    expect(conns.some((c) => c.remote === '10.6.0.2:7' && c.state === 'ESTABLISHED' && c.transport === 'SMC-R')).toBe(true);
    run.child.stdin.end();
    expect(await run.exited).toBe(0);
    expect(run.stdout().toString()).toBe('hello over nc\n');

    const module = spawnCli(['nc', 'lpar1', '10.6.0.2', '9000', '--run-dir', p.runDir.root]);
    module.child.stdin.end('shout\n');
    expect(await module.exited).toBe(0);
    expect(module.stdout().toString()).toBe('HI SHOUT\n');
  });

  it('lparlab nc -l takes one connection and relays it both ways', async () => {
    const run = spawnCli(['nc', '-l', '-v', 'lpar2', '5555', '--run-dir', p.runDir.root]);
    await run.waitFor(() => run.stderr().includes('listening on 0.0.0.0:5555'), 'the listener');
    run.child.stdin.end('pong\n');
    const r = (await p.admin('lpar1', { t: 'tcp-exchange', dst: '10.6.0.2', port: 5555, data: 'ping\n' })) as Rec;
    expect(Buffer.from(r.data).toString()).toBe('pong\n');
    expect(await run.exited).toBe(0);
    expect(run.stdout().toString()).toBe('ping\n');
    expect(run.stderr()).toMatch(/connection from 10\.6\.0\.1:\d+/);
    // One connection only: the port is free again.
    await expect(p.admin('lpar1', { t: 'tcp-exchange', dst: '10.6.0.2', port: 5555, data: 'x' })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('lparlab nc carries 8 MB through backpressure both ways', async () => {
    const data = crypto.randomBytes(8_000_000);
    const run = spawnCli(['nc', 'lpar1', '10.6.0.2', '7', '--run-dir', p.runDir.root]);
    run.child.stdin.end(data);
    const code = await run.exited;
    expect(run.stderr()).toBe('');
    expect(code).toBe(0);
    expect(run.stdout().equals(data)).toBe(true);
  });

  it('lparlab nc fails cleanly on a closed port', async () => {
    const r = await p.cli(['nc', 'lpar1', '10.6.0.2', '6']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ECONNREFUSED 10\.6\.0\.2:6/);
  });

  it('lparlab ss lists listeners and connections with queues and transport', async () => {
    const r = await p.cli(['ss', 'lpar2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^State\s+Recv-Q\s+Send-Q\s+Local Address:Port\s+Peer Address:Port\s+Transport\s+SMC$/);
    for (const port of [7, 80, 9000]) expect(lines.some((l) => new RegExp(`^LISTEN\\s+0\\s+511\\s+0\\.0\\.0\\.0:${port}\\s+\\*:\\*\\s+tcp\\s*$`).test(l))).toBe(true);
    const json = JSON.parse((await p.cli(['ss', 'lpar2', '--json'])).stdout) as Rec;
    expect(json.listening.map((l: Rec) => l.local)).toEqual(expect.arrayContaining(['0.0.0.0:7', '0.0.0.0:80', '0.0.0.0:9000']));
    expect(Array.isArray(json.connections)).toBe(true);
  });
});
