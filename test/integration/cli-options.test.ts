import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../scripts/cli/commands/index.ts';
import { LPARLAB, TEST_PLATFORM, TestPlatform, cli, waitFor } from '../helpers/platform.ts';

/**
 * The command line as a person types it (issue 9, item 1): no --run-dir
 * (LPARLAB_RUN_DIR names the test's own run directory), each verb's own
 * short flags, errors that name the option.
 */
const PLATFORM = `${TEST_PLATFORM}
vlans:
  - name: blue
    subnets: [10.61.0.0/24]
    members: [{ lpar: lpar1, ip: 10.61.0.1 }, { lpar: lpar2, ip: 10.61.0.2 }]
`;

/** Records in a pcap file (24-byte global header, then a 16-byte header and incl_len bytes each). */
function pcapRecords(file: string): number {
  const b = fs.readFileSync(file);
  let n = 0;
  for (let off = 24; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 8)) n++;
  return n;
}

describe('lparlab command line on a running platform, without --run-dir', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
  });
  afterAll(async () => {
    if (p) expect(await p.down()).toEqual([]);
  });

  it('ping -c N sends N (the README example that used to open a file named "3")', async () => {
    const r = await p.cliByEnv(['ping', 'lpar1', '10.61.0.2', '-c', '3', '-i', '0.05']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    const long = await p.cliByEnv(['ping', 'lpar1', '10.61.0.2', '--count', '2', '--json']);
    expect(JSON.parse(long.stdout)).toMatchObject({ sent: 2, received: 2 });
  });

  it('checks numbers, naming the option', async () => {
    const r = await p.cliByEnv(['ping', 'lpar1', '10.61.0.2', '-c', 'abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-c, --count: "abc" is not a whole number/);
    expect(r.stderr).toMatch(/usage: lparlab ping LPAR IP/);
    const missing = await p.cliByEnv(['ping', 'lpar1', '10.61.0.2', '-c']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/-c, --count <value>' argument missing/);
    const drop = await p.cliByEnv(['fault', 'a', 'drop', 'lots']);
    expect(drop.code).toBe(2);
    expect(drop.stderr).toMatch(/drop PCT: "lots" is not a number/);
  });

  it('refuses an unknown option, naming it', async () => {
    for (const args of [['ping', 'lpar1', '10.61.0.2', '--bogus'], ['status', '-x'], ['nc', '-q', 'lpar1', '10.61.0.2', '7'], ['up', '--config-file', 'x']]) {
      const r = await p.cliByEnv(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(new RegExp(`Unknown option '${args.find((a) => a.startsWith('-'))}'`));
    }
    // Global options are long only: -c is no verb's config but up's, init's and down's.
    const r = await p.cliByEnv(['status', '-c', 'platform.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '-c'/);
  });

  it('capture -c N writes N frames', async () => {
    const file = path.join(p.root, 'blue.pcap');
    const recording = p.cliByEnv(['capture', 'blue', '-w', file, '-c', '4']);
    await waitFor('the capture to start', async () => (await p.admin('lpar1', { t: 'status' })).health === 'healthy', 5000);
    let r: Awaited<typeof recording> | undefined;
    void recording.then((x) => (r = x));
    for (let i = 0; i < 20 && !r; i++) await p.cliByEnv(['ping', 'lpar1', '10.61.0.2', '-c', '1']);
    r ??= await recording;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^4 frames of blue/);
    expect(pcapRecords(file)).toBe(4);
  });

  it('nc -lv listens (combined short flags) and says so; nc connects and both see the bytes', async () => {
    const listener = spawn(process.execPath, [LPARLAB, 'nc', '-lv', 'lpar2', '5555'], { env: { ...process.env, LPARLAB_RUN_DIR: p.runDir.root }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    listener.stdout.on('data', (d) => (out += d));
    listener.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number>((r) => listener.on('exit', (code) => r(code ?? 1)));
    try {
      await waitFor('nc -lv to listen', () => /listening on/.test(err), 15_000);
      const connector = p.cliByEnv(['nc', '-v', 'lpar1', '10.61.0.2', '5555'], 30_000, 'hello from lpar1\n');
      await waitFor('the connection at the listener', () => /connection from/.test(err), 15_000);
      listener.stdin.end('and back from lpar2\n');
      const c = await connector;
      expect(await exited).toBe(0);
      expect(c.code).toBe(0);
      expect(out).toBe('hello from lpar1\n');
      expect(c.stdout).toBe('and back from lpar2\n');
      expect(err).toMatch(/lparlab nc: lpar2 listening on .*:5555/);
      expect(err).toMatch(/lparlab nc: connection from 10\.61\.0\.1:\d+/);
      expect(c.stderr).toMatch(/lparlab nc: lpar1 10\.61\.0\.1:\d+ connected to 10\.61\.0\.2:5555/);
    } finally {
      listener.kill('SIGKILL');
    }
  });

  it('status and perf find the platform through LPARLAB_RUN_DIR', async () => {
    const s = await p.cliByEnv(['status', '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout).runDir).toBe(p.runDir.root);
    // perf waits for its new RVI to be up at both ends (no fixed sleep) and checks delivery.
    const r = await p.cliByEnv(['perf', 'lpar1', 'lpar2', '--count', '500', '--size', '1000', '--ping', '20', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).receiver).toMatchObject({ received: 500, missing: 0, duplicates: 0 });
  });
});

describe('lparlab command line without a platform', () => {
  it('has --help for every verb, and lparlab --help lists every verb from the table', async () => {
    const all = await cli(['--help']);
    expect(all.code).toBe(0);
    for (const c of COMMANDS.filter((x) => !x.hidden)) expect(all.stdout, c.name).toMatch(new RegExp(`^  lparlab ${c.name}\\b`, 'm'));
    const results = await Promise.all(COMMANDS.map(async (c) => ({ c, r: await cli([c.name, '--help']) })));
    for (const { c, r } of results) {
      expect(r.code, c.name).toBe(0);
      expect(r.stdout, c.name).toMatch(new RegExp(`^usage: lparlab ${c.name}\\b`));
      expect(r.stdout, c.name).toMatch(/--run-dir DIR/);
    }
    expect((await cli(['help', 'ping'])).stdout).toMatch(/-c, --count N/);
  });

  it('ends quietly, as by SIGPIPE (exit 141), when the reader of its stdout is gone (`lparlab arp lpar1 | head -1`)', async () => {
    const child = spawn(process.execPath, [LPARLAB, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The read end closes before the command writes anything: its first write fails EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(141);
  });

  it('names an unknown verb (exit 2)', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('finds the run directory from the platform name alone: no validation of the rest', async () => {
    const dir = fs.mkdtempSync('/tmp/lpl-');
    try {
      const file = path.join(dir, 'p.yaml');
      fs.writeFileSync(file, 'name: not-validated-here\nplanes: [just-one-and-wrong]\n');
      const r = await cli(['status', '--config', file], 60_000, { env: { LPARLAB_RUN_DIR: '' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/no platform in \/tmp\/lparlab-\d+\/not-validated-here/);
      const env = await cli(['status'], 60_000, { env: { LPARLAB_RUN_DIR: path.join(dir, 'run') } });
      expect(env.stderr).toMatch(new RegExp(`no platform in ${path.join(dir, 'run')}`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
