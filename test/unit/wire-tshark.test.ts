/**
 * tshark is the referee for "real bytes": frames built by the emitters are
 * written with PcapWriter and must decode to the expected protocol stacks with
 * no malformed packet and no error-level expert info, with every checksum
 * validation tshark offers switched on.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ARP_LENGTH,
  ArpOp,
  BROADCAST_MAC,
  EtherType,
  IPV4_HEADER,
  IcmpType,
  IpProto,
  PcapWriter,
  UDP_HEADER,
  emitArp,
  emitEthernet,
  emitIcmpEcho,
  emitIcmpError,
  emitIpv4Header,
  emitUdpHeader,
  fillUdpChecksum,
  fragmentPlan,
  parseIp,
  parseMac,
} from '../../shared/wire/index.ts';

const A_MAC = parseMac('02:00:01:00:00:05');
const B_MAC = parseMac('02:00:01:00:00:06');
const A_IP = parseIp('10.0.0.5');
const B_IP = parseIp('10.0.0.6');

/** Every `*.check_checksum` preference this tshark has, switched on. */
function checksumPrefs(): string[] {
  const r = spawnSync('tshark', ['-G', 'defaultprefs'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const prefs = new Set<string>();
  for (const m of r.stdout.matchAll(/^#?\s*([a-z0-9_.]+\.check_checksum):/gm)) prefs.add(m[1]);
  return [...prefs].flatMap((p) => ['-o', `${p}:TRUE`]);
}

const STATUS_FIELDS = ['-T', 'fields', '-E', 'separator=;', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status', '-e', 'icmp.checksum.status'];

function tshark(args: string[]): string {
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function ethernet(payloadLength: number, etherType: number, dst = B_MAC, vlanId?: number): { frame: Buffer; off: number } {
  const frame = Buffer.alloc((vlanId === undefined ? 14 : 18) + payloadLength);
  const off = emitEthernet(frame, 0, { dst, src: A_MAC, etherType, vlanId, pcp: vlanId === undefined ? undefined : 3 });
  return { frame, off };
}

function arp(op: number): Buffer {
  const { frame, off } = ethernet(ARP_LENGTH, EtherType.Arp, op === ArpOp.Request ? BROADCAST_MAC : B_MAC);
  const tha = op === ArpOp.Request ? Buffer.alloc(6) : B_MAC;
  emitArp(frame, off, { op, sha: A_MAC, spa: A_IP, tha, tpa: B_IP });
  return frame;
}

function echo(type: 0 | 8, seq: number): Buffer {
  const data = Buffer.from('lparlab ping payload 0123456789');
  const { frame, off } = ethernet(IPV4_HEADER + 8 + data.length, EtherType.Ipv4);
  const o = off + emitIpv4Header(frame, off, { src: A_IP, dst: B_IP, protocol: IpProto.Icmp, payloadLength: 8 + data.length, id: seq, checksum: true });
  emitIcmpEcho(frame, o, { type, id: 0x77, seq, data });
  return frame;
}

/** A whole UDP datagram (header + payload) with its checksum filled. */
function udpDatagram(payload: Buffer): Buffer {
  const d = Buffer.alloc(UDP_HEADER + payload.length);
  emitUdpHeader(d, 0, { srcPort: 40000, dstPort: 40001, payloadLength: payload.length });
  payload.copy(d, UDP_HEADER);
  fillUdpChecksum(d, A_IP, B_IP);
  return d;
}

function udp(payload: Buffer, id: number, vlanId?: number): Buffer {
  const d = udpDatagram(payload);
  const { frame, off } = ethernet(IPV4_HEADER + d.length, EtherType.Ipv4, B_MAC, vlanId);
  const o = off + emitIpv4Header(frame, off, { src: A_IP, dst: B_IP, protocol: IpProto.Udp, payloadLength: d.length, id, checksum: true });
  d.copy(frame, o);
  return frame;
}

function udpFragments(payload: Buffer, id: number, mtu: number): Buffer[] {
  const d = udpDatagram(payload);
  return fragmentPlan(d.length, mtu).map((f) => {
    const { frame, off } = ethernet(IPV4_HEADER + f.length, EtherType.Ipv4);
    const o =
      off +
      emitIpv4Header(frame, off, {
        src: A_IP,
        dst: B_IP,
        protocol: IpProto.Udp,
        payloadLength: f.length,
        id,
        moreFragments: f.more,
        fragmentOffset: f.offset,
        checksum: true,
      });
    d.copy(frame, o, f.offset, f.offset + f.length);
    return frame;
  });
}

/** Time exceeded for the UDP packet `original` (an Ethernet frame), quoting its IP header + 8 bytes. */
function timeExceeded(original: Buffer): Buffer {
  const quoted = original.subarray(14, 14 + IPV4_HEADER + 8);
  const { frame, off } = ethernet(IPV4_HEADER + 8 + quoted.length, EtherType.Ipv4, A_MAC);
  const o = off + emitIpv4Header(frame, off, { src: B_IP, dst: A_IP, protocol: IpProto.Icmp, payloadLength: 8 + quoted.length, id: 9, checksum: true });
  emitIcmpError(frame, o, { type: IcmpType.TimeExceeded, code: 0, original: quoted });
  return frame;
}

const tsharkPresent = spawnSync('tshark', ['--version']).error === undefined;
const dir = mkdtempSync(join(tmpdir(), 'wire-tshark-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function writePcap(name: string, frames: Buffer[]): Promise<string> {
  const path = join(dir, name);
  const w = new PcapWriter(path);
  frames.forEach((f, i) => w.write(1_700_000_000_000 + i * 1.5, f));
  await w.close();
  return path;
}

describe('tshark decodes emitted frames', () => {
  if (!tsharkPresent) {
    it('needs tshark', () => {
      throw new Error('tshark is not installed: apt-get install tshark');
    });
    return;
  }

  // Checksum status per frame as ip;udp;icmp; tshark's values: 0 bad, 1 good, 2 unverified.
  const GOOD_ICMP = '1;;1';
  const GOOD_UDP = '1;1;';

  it('as the expected protocol stacks, with no malformed packet or error and every checksum good', async () => {
    const big = Buffer.alloc(2000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const udpFrame = udp(Buffer.from('lparlab udp payload'), 2);
    const [frag1, frag2, ...more] = udpFragments(big, 5, 1500);
    expect(more).toEqual([]);
    const cases: Array<{ frame: Buffer; stack: string; checks: string }> = [
      { frame: arp(ArpOp.Request), stack: 'eth:ethertype:arp', checks: ';;' },
      { frame: arp(ArpOp.Reply), stack: 'eth:ethertype:arp', checks: ';;' },
      { frame: echo(IcmpType.EchoRequest, 1), stack: 'eth:ethertype:ip:icmp:data', checks: GOOD_ICMP },
      { frame: echo(IcmpType.EchoReply, 1), stack: 'eth:ethertype:ip:icmp:data', checks: GOOD_ICMP },
      { frame: udpFrame, stack: 'eth:ethertype:ip:udp:data', checks: GOOD_UDP },
      { frame: udp(Buffer.from('odd'), 3), stack: 'eth:ethertype:ip:udp:data', checks: GOOD_UDP },
      { frame: udp(Buffer.from('tagged payload'), 4, 42), stack: 'eth:ethertype:vlan:ethertype:ip:udp:data', checks: GOOD_UDP },
      // The first fragment is IP data; tshark reassembles the datagram at the second and checks UDP over all of it.
      { frame: frag1, stack: 'eth:ethertype:ip:data', checks: '1;;' },
      { frame: frag2, stack: 'eth:ethertype:ip:udp:data', checks: GOOD_UDP },
      // The quoted UDP header cannot be verified without its payload: unverified, not bad.
      { frame: timeExceeded(udpFrame), stack: 'eth:ethertype:ip:icmp:ip:udp', checks: '1,1;2;1' },
    ];
    const file = await writePcap('good.pcap', cases.map((c) => c.frame));
    const prefs = checksumPrefs();
    expect(prefs).toContain('ip.check_checksum:TRUE');
    expect(prefs).toContain('udp.check_checksum:TRUE');

    const stacks = tshark(['-r', file, ...prefs, '-T', 'fields', '-e', 'frame.protocols']).trim().split('\n');
    expect(stacks).toEqual(cases.map((c) => c.stack));

    const bad = tshark([
      '-r', file, ...prefs,
      '-Y', '_ws.malformed || _ws.expert.severity >= error',
      '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message',
    ]);
    expect(bad.trim()).toBe('');

    const checks = tshark(['-r', file, ...prefs, ...STATUS_FIELDS]).trimEnd().split('\n');
    expect(checks).toEqual(cases.map((c) => c.checks));
  });

  it('flags corrupted checksums, so the clean run above means something', async () => {
    const corrupt = [udp(Buffer.from('payload'), 6), echo(IcmpType.EchoRequest, 2), udp(Buffer.from('payload'), 7)];
    corrupt[0][14 + 10] ^= 0x01; // IP header checksum
    corrupt[1][corrupt[1].length - 1] ^= 0x01; // ICMP data
    corrupt[2][corrupt[2].length - 1] ^= 0x01; // UDP data
    const file = await writePcap('bad.pcap', corrupt);
    const prefs = checksumPrefs();
    expect(tshark(['-r', file, ...prefs, ...STATUS_FIELDS]).trimEnd().split('\n')).toEqual(['0;1;', '1;;0', '1;0;']);
    // tshark 4.0 rates a bad ICMP checksum a warning, a bad IP or UDP one an error.
    const errors = tshark(['-r', file, ...prefs, '-Y', '_ws.expert.severity >= error', '-T', 'fields', '-e', 'frame.number']);
    expect(errors.trim().split('\n')).toEqual(['1', '3']);
    const warnings = tshark(['-r', file, ...prefs, '-Y', '_ws.expert.severity >= warning', '-T', 'fields', '-e', 'frame.number']);
    expect(warnings.trim().split('\n')).toEqual(['1', '2', '3']);
  });
});
