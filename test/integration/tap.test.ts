import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPlatform } from '../helpers/platform.ts';
import { platformYaml } from '../helpers/platform-yaml.ts';
import { waitFor } from '../helpers/wait.ts';
import { missingForTap } from '../helpers/tap-needs.ts';

/**
 * Linux's own TCP/IP as a peer: a virtual LAN bridged to a TAP device on the
 * host (issue "TCP ... and Linux's own TCP as a peer"). Needs root, /dev/net/tun,
 * socat, curl and tshark; CI has them (.ci/run installs the packages).
 */
const third = 100 + Math.floor(Math.random() * 150);
const NET = `10.66.${third}`;
const DEV = `lpltap${crypto.randomBytes(2).toString('hex')}`;
const PLATFORM = platformYaml({
  name: 'taptest',
  controlNodes: 2,
  cecs: 1,
  vlans: [{ name: 'blue', subnet: `${NET}.0/24`, members: ['lpar1', 'lpar2'] }],
});


/** A listener on the host: hashes what each connection sends and answers with the digest. */
function hostSink(host: string, port: number): Promise<{ server: net.Server; got: Array<{ bytes: number; sha256: string }> }> {
  const got: Array<{ bytes: number; sha256: string }> = [];
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    const h = crypto.createHash('sha256');
    let bytes = 0;
    c.on('data', (d) => {
      bytes += d.length;
      h.update(d);
    });
    c.on('end', () => {
      const sha256 = h.digest('hex');
      got.push({ bytes, sha256 });
      c.end(sha256);
    });
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve({ server, got })));
}

describe('Linux as a peer through a TAP device', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    const lacking = missingForTap(['socat', 'curl', 'tshark']);
    if (lacking.length) throw new Error(`this test needs ${lacking.join(', ')}`);
    p = await TestPlatform.boot(PLATFORM);
    const r = await p.cli(['tap', 'attach', 'blue', '--dev', DEV, '--ip', `${NET}.100/24`]);
    if (r.code !== 0) throw new Error(`tap attach failed: ${r.stderr}`);
    await p.admin('lpar2', { t: 'app-start', app: 'http', port: 80 });
  });
  afterAll(async () => {
    if (!p) return;
    expect(await p.down()).toEqual([]);
    expect(fs.existsSync(`/sys/class/net/${DEV}`)).toBe(false);
  });

  it('curl on the host fetches 100 MB from an http server in an LPAR, byte-exact', async () => {
    const dir = p.root;
    const body = path.join(dir, 'body');
    const headers = execFileSync('curl', ['-s', '-m', '120', '-D', '-', '-o', body, `http://${NET}.2/bytes/100000000`]).toString();
    const want = /x-sha256: ([0-9a-f]{64})/i.exec(headers)?.[1];
    expect(want).toBeDefined();
    const got = crypto.createHash('sha256').update(fs.readFileSync(body)).digest('hex');
    expect(got).toBe(want);
    fs.rmSync(body);
  });

  it('an LPAR connects to a listener on the host and sends 100 MB, byte-exact', async () => {
    const sink = await hostSink(`${NET}.100`, 9100);
    try {
      const r = (await p.admin('lpar1', { t: 'tcp-send', dst: `${NET}.100`, port: 9100, bytes: 100_000_000 }, 180_000)) as Record<string, unknown>;
      expect(r.bytes).toBe(100_000_000);
      expect(r.answer).toBe(r.sha256);
      expect(sink.got).toEqual([{ bytes: 100_000_000, sha256: r.sha256 }]);
    } finally {
      sink.server.close();
    }
  });

  it('leaves the platform with correct checksums: tshark on the TAP finds no malformed packet and no bad checksum', async () => {
    const file = path.join(p.root, 'tap.pcap');
    // tshark takes seconds to start on a loaded box: the traffic starts once it says it is capturing, not after a guess.
    const capture = spawn('tshark', ['-i', DEV, '-w', file, '-a', 'duration:8'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    capture.stderr!.on('data', (d: Buffer) => (said += d.toString()));
    await waitFor('tshark capturing on the TAP', () => said.includes('Capturing on'), 30_000);
    const sink = await hostSink(`${NET}.100`, 9101);
    try {
      execFileSync('curl', ['-s', '-m', '30', '-o', '/dev/null', `http://${NET}.2/bytes/1000000`]);
      await p.admin('lpar1', { t: 'tcp-send', dst: `${NET}.100`, port: 9101, bytes: 1_000_000 });
      await p.admin('lpar1', { t: 'ping', dst: `${NET}.100`, count: 2 });
      const s = Number((await p.admin('lpar2', { t: 'udp-open', port: 0 })).socket);
      await p.admin('lpar2', { t: 'udp-send', socket: s, dst: `${NET}.100`, port: 9, size: 300 });
    } finally {
      sink.server.close();
    }
    await new Promise((r) => capture.on('exit', r));
    const prefs = ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'];
    const fromLpars = `(ip.src == ${NET}.1 || ip.src == ${NET}.2)`;
    const counted = execFileSync('tshark', ['-r', file, ...prefs, '-Y', `${fromLpars} && (tcp || udp || icmp)`]).toString().trim().split('\n').filter(Boolean).length;
    expect(counted).toBeGreaterThan(100);
    // Frames the host sends may carry offloaded (partial) checksums in a capture; what leaves the platform may not.
    const bad = execFileSync('tshark', ['-r', file, ...prefs, '-Y', `${fromLpars} && (_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0)`]).toString().trim();
    expect(bad).toBe('');
  });
});
