import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClcType, DeclineReason, SmcPath, declineText, emitClc, parseClc } from '../../shared/wire/smc-clc.ts';
import { TestPlatform } from '../helpers/platform.ts';
import { platformYaml } from '../helpers/platform-yaml.ts';
import { waitFor } from '../helpers/wait.ts';
import { prng, randomBytes } from '../helpers/prng.ts';

/**
 * SMC under the partitions' socket API (seed 002), with real processes: the
 * transport each connection gets (SMC-D within a CEC, SMC-R across CECs, TCP
 * when a side has SMC off or declines), byte-exact bulk both ways at once and
 * Node's own http over each, the reason recorded on both sides when a
 * connection stays on TCP, and malformed CLC messages, which are declined or
 * reset and never take a partition down. test/integration/smc-failover.test.ts
 * breaks links and partitions under running streams.
 *
 *   lpar1 cec1  every transfer starts or ends here
 *   lpar2 cec1  SMC-D peer
 *   lpar3 cec2  SMC-R peer
 *   lpar4 cec1  smc: false (plain TCP)
 *   lpar5 cec2  smc: { r: false }: SMC-D only, so from another CEC it declines
 *
 * The RCLAN timings are relaxed against the other integration files: on a
 * loaded two-core box a 250 ms dead interval takes SMC-R links down under a
 * 500 MB stream and turns a mode test into a failover one.
 */
const PLATFORM = platformYaml({
  name: 'smc',
  rclan: { heartbeatMs: 100, deadAfterMs: 1500, undeliverableAfterMs: 3000, window: 256 },
  lpars: [{ cec: 1 }, { cec: 1 }, { cec: 2 }, { cec: 1, smc: false }, { cec: 2, smc: { r: false } }],
  apps: [{ name: 'bulk-sink', port: 9000 }, { name: 'echo', port: 7 }, { name: 'http', port: 80 }],
  vlans: [{ name: 'blue', subnet: '10.7.0.0/24', members: ['lpar1', 'lpar2', 'lpar3', 'lpar4', 'lpar5'] }],
});
const LPARS = ['lpar1', 'lpar2', 'lpar3', 'lpar4', 'lpar5'];
const IP: Record<string, string> = { lpar1: '10.7.0.1', lpar2: '10.7.0.2', lpar3: '10.7.0.3', lpar4: '10.7.0.4', lpar5: '10.7.0.5' };
const SMC_OFF = 'SMC is off for this partition in the platform file';
const PEER_NO_SMC = declineText(DeclineReason.PeerNoSmc);
const MB = 1_000_000;
const BULK = 500 * MB;

type Rec = Record<string, any>;
type Mode = 'smcd' | 'smcr' | 'tcp';

describe('SMC between partitions', () => {
  let p: TestPlatform;

  const stats = async (lpar: string) => ((await p.admin(lpar, { t: 'smc-status' })) as Rec).smc.stats as Rec;
  const conns = async (lpar: string) => ((await p.admin(lpar, { t: 'ss' })) as Rec).connections as Rec[];
  /** Connections opened per mode, and bytes moved per path, between two smc-status snapshots. */
  const delta = (a: Rec, b: Rec) => ({
    smcd: b.connections.smcd - a.connections.smcd,
    smcr: b.connections.smcr - a.connections.smcr,
    tcp: b.connections.tcp - a.connections.tcp,
    smcdOut: b.bytes.smcdOut - a.bytes.smcdOut,
    smcdIn: b.bytes.smcdIn - a.bytes.smcdIn,
    smcrOut: b.bytes.smcrOut - a.bytes.smcrOut,
    smcrIn: b.bytes.smcrIn - a.bytes.smcrIn,
  });
  const fallbacks = (a: Rec, b: Rec, reason: string) => (b.fallbacks[reason] ?? 0) - (a.fallbacks[reason] ?? 0);
  const send = (from: string, to: string, bytes: number, seed: number) => p.admin(from, { t: 'tcp-send', dst: IP[to], port: 9000, bytes, seed }, 300_000) as Promise<Rec>;

  /**
   * A connection from `from` to `to`'s echo, kept open, and how each end's
   * `ss` shows it (the server's entry is the one whose peer is the client's
   * local address).
   */
  const hold = async (from: string, to: string) => {
    const held = (await p.admin(from, { t: 'tcp-hold', dst: IP[to], port: 7 })) as Rec;
    expect(held.connected).toBe(true);
    const client = (await conns(from)).find((c) => c.local === held.local && c.remote === `${IP[to]}:7`);
    let server: Rec | undefined;
    await waitFor(`${to}'s side of ${held.local}`, async () => {
      server = (await conns(to)).find((c) => c.remote === held.local);
      return server?.smcState === 'active' || server?.smcState === 'tcp';
    });
    return { held, client: client!, server: server! };
  };

  /** `bytes` each way between a and b at once, both byte-exact: the sender's SHA-256 is what the sink answered and recorded. */
  const bothWays = async (a: string, b: string, bytes: number, seeds: [number, number]) => {
    const t0 = performance.now();
    const [there, back] = await Promise.all([send(a, b, bytes, seeds[0]), send(b, a, bytes, seeds[1])]);
    const wallMs = performance.now() - t0;
    for (const [r, sink] of [
      [there, b],
      [back, a],
    ] as const) {
      expect(r.bytes).toBe(bytes);
      expect(r.answer).toBe(r.sha256);
      const report = (await p.admin(sink, { t: 'app-report', port: 9000 })) as Rec;
      expect(report.results).toContainEqual(expect.objectContaining({ bytes, sha256: r.sha256 }));
    }
    return { there, back, wallMs };
  };

  beforeAll(async () => {
    p = await TestPlatform.boot(PLATFORM);
    // An LPAR is healthy once its network is up; its hypervisor session (SMC-D's buffers) can come a moment later.
    await waitFor('every hypervisor session', async () => {
      for (const l of LPARS) if (((await p.admin(l, { t: 'smc-status' })) as Rec).hypervisor?.connected !== true) return false;
      return true;
    });
  }, 120_000);

  afterAll(async () => {
    if (!p) return;
    expect(await p.down()).toEqual([]);
    expect(fs.existsSync(p.shmDir)).toBe(false);
  }, 60_000);

  const MODES: Array<{ name: string; mode: Mode; peer: string; transport: string }> = [
    { name: 'SMC-D within a CEC', mode: 'smcd', peer: 'lpar2', transport: 'SMC-D' },
    { name: 'SMC-R across CECs', mode: 'smcr', peer: 'lpar3', transport: 'SMC-R' },
    { name: 'TCP with a partition that has SMC off', mode: 'tcp', peer: 'lpar4', transport: `TCP (fallback: ${PEER_NO_SMC})` },
  ];

  for (const [i, m] of MODES.entries()) {
    it(`${m.name}: ss shows it at both ends; 500 MB each way at once, byte-exact`, async () => {
      const { client, server } = await hold('lpar1', m.peer);
      expect(client.transport).toBe(m.transport);
      if (m.mode !== 'tcp') {
        expect(server.transport).toBe(m.transport);
        expect(client.smcState).toBe('active');
        expect(client.smc).toMatchObject({ mode: m.transport });
      }
      const [s1, sp] = [await stats('lpar1'), await stats(m.peer)];
      const { there, back, wallMs } = await bothWays('lpar1', m.peer, BULK, [100 + i, 200 + i]);
      const [d1, dp] = [delta(s1, await stats('lpar1')), delta(sp, await stats(m.peer))];
      console.log(`${m.transport.split(' ')[0]}: 500 MB lpar1 -> ${m.peer} in ${there.elapsedMs.toFixed(0)} ms, ${m.peer} -> lpar1 in ${back.elapsedMs.toFixed(0)} ms (both at once, ${wallMs.toFixed(0)} ms wall)`);
      // Each end opened one connection of the mode (its own send) and accepted one (the peer's), and no other kind.
      for (const d of [d1, dp]) {
        expect({ smcd: d.smcd, smcr: d.smcr, tcp: d.tcp }).toEqual({ smcd: 0, smcr: 0, tcp: 0, [m.mode]: 2 });
      }
      // All of it on the mode's data path: each way the bulk, and back the sink's answer (a SHA-256 in 64 hex digits).
      if (m.mode === 'smcd') expect(d1).toMatchObject({ smcdOut: BULK + 64, smcdIn: BULK + 64, smcrOut: 0, smcrIn: 0 });
      if (m.mode === 'smcr') expect(d1).toMatchObject({ smcrOut: BULK + 64, smcrIn: BULK + 64, smcdOut: 0, smcdIn: 0 });
      if (m.mode === 'tcp') expect(d1).toMatchObject({ smcrOut: 0, smcrIn: 0, smcdOut: 0, smcdIn: 0 });
    });
  }

  it('a peer with SMC off: TCP, with the reason at both ends (client: peer has no SMC; server: its off reason), apps see no difference', async () => {
    const [s1, s4] = [await stats('lpar1'), await stats('lpar4')];
    // lpar1 offers, lpar4 does not echo the option.
    const out = await hold('lpar1', 'lpar4');
    expect(out.client).toMatchObject({ smcState: 'tcp', fallbackReason: PEER_NO_SMC, transport: `TCP (fallback: ${PEER_NO_SMC})` });
    expect(out.server).toMatchObject({ smcState: 'tcp', fallbackReason: SMC_OFF });
    // lpar4 offers nothing; lpar1 answers a SYN without the option.
    const back = await hold('lpar4', 'lpar1');
    expect(back.client).toMatchObject({ smcState: 'tcp', fallbackReason: SMC_OFF });
    expect(back.server).toMatchObject({ smcState: 'tcp', fallbackReason: PEER_NO_SMC });
    // The echo app on the other end answers as ever.
    await p.admin('lpar1', { t: 'tcp-held-write', id: out.held.id, data: Buffer.from('over plain TCP\n') });
    await waitFor('the echo', async () => ((await p.admin('lpar1', { t: 'tcp-held', id: out.held.id })) as Rec).received === 15);
    expect(fallbacks(s1, await stats('lpar1'), PEER_NO_SMC)).toBe(2);
    expect(fallbacks(s4, await stats('lpar4'), SMC_OFF)).toBe(2);
  });

  it('a decline (lpar5 is SMC-D only, so it cannot take lpar1 from another CEC): TCP with the reason at both ends, byte-exact', async () => {
    const reason = declineText(DeclineReason.NoSmcDevice);
    const [s1, s5] = [await stats('lpar1'), await stats('lpar5')];
    const { client, server } = await hold('lpar1', 'lpar5');
    expect(client).toMatchObject({ smcState: 'tcp', fallbackReason: `declined by peer: ${reason}`, transport: `TCP (fallback: declined by peer: ${reason})` });
    expect(server).toMatchObject({ smcState: 'tcp', fallbackReason: `declined by us: ${reason}` });
    const { there, back } = await bothWays('lpar1', 'lpar5', 50 * MB, [300, 301]);
    expect([there.bytes, back.bytes]).toEqual([50 * MB, 50 * MB]);
    const [a, b] = [await stats('lpar1'), await stats('lpar5')];
    // lpar1's own connections to lpar5 were declined (the hold and its send); lpar5 has no SMC path to lpar1 at all.
    expect(fallbacks(s1, a, `declined by peer: ${reason}`)).toBe(2);
    expect(fallbacks(s5, b, `declined by us: ${reason}`)).toBe(2);
    expect(fallbacks(s5, b, 'no SMC path to the peer')).toBe(1);
    expect(delta(s1, a)).toMatchObject({ smcd: 0, smcr: 0, tcp: 3, smcdOut: 0, smcrOut: 0 });
  });

  for (const m of MODES) {
    it(`Node's http runs unmodified over ${m.transport.split(' ')[0]}: 2000 keep-alive requests, then 3 bodies of 4 MB`, async () => {
      const before = await stats('lpar1');
      const small = (await p.admin('lpar1', { t: 'http-get', host: IP[m.peer], port: 80, path: '/smc', count: 2000 }, 120_000)) as Rec;
      expect(small.ok).toBe(2000);
      expect(small.lastBody).toBe('hello from lparlab GET /smc\n');
      const big = (await p.admin('lpar1', { t: 'http-get', host: IP[m.peer], port: 80, path: '/bytes/4000000', count: 3 }, 120_000)) as Rec;
      // Each body is checked against the SHA-256 its server put in a header.
      expect(big.ok).toBe(3);
      expect(big.bytes).toBe(12 * MB);
      const d = delta(before, await stats('lpar1'));
      console.log(`http over ${m.transport.split(' ')[0]}: 2000 requests in ${small.elapsedMs.toFixed(0)} ms, 12 MB of bodies in ${big.elapsedMs.toFixed(0)} ms`);
      // One keep-alive connection per run (the agent keeps one socket), each of the mode.
      expect({ smcd: d.smcd, smcr: d.smcr, tcp: d.tcp }).toEqual({ smcd: 0, smcr: 0, tcp: 0, [m.mode]: 2 });
    });
  }

  describe('malformed CLC messages are declined or reset, never crash the partition', () => {
    const PROPOSAL = emitClc({ type: ClcType.Proposal, paths: SmcPath.D | SmcPath.R, lpar: 'lpar1', cec: 'cec1', ringBytes: 65536 });
    const probe = (clc: Buffer, opts: Rec = {}) => p.admin('lpar1', { t: 'smc-probe', dst: IP.lpar2, port: 7, clc: clc.toString('hex'), ...opts }) as Promise<Rec>;
    const altered = (b: Buffer, f: (c: Buffer) => void) => {
      const c = Buffer.from(b);
      f(c);
      return c;
    };
    const expectReset = (r: Rec) => {
      expect(r.echoed).toBe(true);
      expect(r).toMatchObject({ reset: true, closed: true, received: '' });
    };
    let before: Rec;
    let pid: number;

    beforeAll(async () => {
      before = await stats('lpar2');
      pid = p.pid('lpar2');
    });

    it('speaks CLC: a well-formed proposal gets an accept; one from an address it does not match gets a decline, then TCP carries on', async () => {
      const ok = await probe(PROPOSAL);
      expect(ok.echoed).toBe(true);
      expect(parseClc(Buffer.from(ok.received, 'hex'))).toMatchObject({ type: ClcType.Accept, path: SmcPath.D, lpar: 'lpar2' });

      // Our address is lpar1's: a proposal in another LPAR's name is declined (synchronization error) ...
      const impostor = emitClc({ type: ClcType.Proposal, paths: SmcPath.D | SmcPath.R, lpar: 'lpar3', cec: 'cec2', ringBytes: 65536 });
      const r = await probe(impostor, { after: Buffer.from('still TCP\n').toString('hex') });
      const got = Buffer.from(r.received, 'hex');
      const decline = parseClc(got.subarray(0, got.readUInt16BE(5)));
      expect(decline).toMatchObject({ type: ClcType.Decline, reason: DeclineReason.SyncError });
      // ... and the connection goes on as TCP: the echo app gets what follows and answers it.
      expect(got.subarray(got.readUInt16BE(5)).toString()).toBe('still TCP\n');
      expect(r.reset).toBe(false);

      // A client's decline in place of a proposal is legal too: TCP from there on, bytes behind it are app data.
      const declined = await probe(Buffer.concat([emitClc({ type: ClcType.Decline, reason: DeclineReason.PeerDeclined }), Buffer.from('after a decline\n')]));
      expect(Buffer.from(declined.received, 'hex').toString()).toBe('after a decline\n');

      // Without the SMC option in the SYN the same bytes are just data to the echo app; so they are to a partition with SMC off.
      const plain = await probe(PROPOSAL, { offer: false });
      expect(plain).toMatchObject({ echoed: false, received: PROPOSAL.toString('hex') });
      const off = (await p.admin('lpar1', { t: 'smc-probe', dst: IP.lpar4, port: 7, clc: PROPOSAL.toString('hex') })) as Rec;
      expect(off).toMatchObject({ echoed: false, received: PROPOSAL.toString('hex') });
    });

    it('resets garbage, a bad eyecatcher, length, version or trailer, and a message of the wrong type', async () => {
      const cases: Record<string, Buffer> = {
        garbage: Buffer.from('GET / HTTP/1.1\r\nHost: lpar2\r\n\r\n'),
        'bad eyecatcher': altered(PROPOSAL, (c) => (c[1] ^= 0xff)),
        'length past any proposal': altered(PROPOSAL, (c) => c.writeUInt16BE(0xffff, 5)),
        'length short of the body': altered(PROPOSAL, (c) => c.writeUInt16BE(PROPOSAL.length - 1, 5)),
        'bad version': altered(PROPOSAL, (c) => (c[7] = 0x23)),
        'bad trailer': altered(PROPOSAL, (c) => (c[c.length - 1] ^= 0xff)),
        'accept where a proposal is due': emitClc({ type: ClcType.Accept, path: SmcPath.D, lpar: 'lpar1', token: 1234, ringBytes: 65536, links: [] }),
        'confirm where a proposal is due': emitClc({ type: ClcType.Confirm, path: SmcPath.R, lpar: 'lpar1', token: 1234, ringBytes: 65536, links: [{ region: 1, key: 2 }, { region: 3, key: 4 }] }),
        'fallback sync where a proposal is due': emitClc({ type: ClcType.FallbackSync, received: 0 }),
      };
      for (const [name, bytes] of Object.entries(cases)) {
        const r = await probe(bytes);
        expect({ name, ...r }).toMatchObject({ name, echoed: true, reset: true, received: '' });
      }
      const after = await stats('lpar2');
      expect(after.malformedClc - before.malformedClc).toBeGreaterThanOrEqual(Object.keys(cases).length);
    });

    it('waits for the rest of a truncated proposal, and resets when the stream ends instead', async () => {
      const truncated = PROPOSAL.subarray(0, PROPOSAL.length - 5);
      const waiting = await probe(truncated);
      expect(waiting).toMatchObject({ echoed: true, reset: false, closed: false, received: '' });
      expectReset(await probe(truncated, { end: true }));
      expectReset(await probe(PROPOSAL.subarray(0, 3), { end: true }));
    });

    it('declines or resets 10 random buffers', async () => {
      const r = prng(0x5eed);
      for (let i = 0; i < 10; i++) {
        const bytes = randomBytes(r, 1 + Math.floor(r() * 300));
        // Half of them start like a CLC message, so the checks past the eyecatcher get exercised too.
        if (i % 2 === 1) Buffer.from([0xe2, 0xd4, 0xc3, 0xd9, 1 + ((i >> 1) % 4)]).copy(bytes);
        const res = await probe(bytes, { end: true });
        const got = Buffer.from(res.received, 'hex');
        const declined = got.length >= 8 && got[4] === ClcType.Decline;
        expect({ i, bytes: bytes.toString('hex'), reset: res.reset || declined }).toEqual({ i, bytes: bytes.toString('hex'), reset: true });
      }
    });

    it('leaves the partition healthy, counting what it refused, and SMC still works', async () => {
      expect(p.pid('lpar2')).toBe(pid);
      const st = (await p.admin('lpar2', { t: 'status' })) as Rec;
      expect(st.health).toBe('healthy');
      const status = JSON.parse((await p.cli(['status', '--json'])).stdout) as Rec;
      expect((status.processes as Rec[]).find((x) => x.name === 'lpar2')).toMatchObject({ pid, health: 'healthy' });
      const after = await stats('lpar2');
      expect(after.malformedClc).toBeGreaterThan(before.malformedClc);
      console.log(`lpar2 after the probes: malformedClc +${after.malformedClc - before.malformedClc}, resets +${after.resets - before.resets}`);
      const s1 = await stats('lpar1');
      const { there } = await bothWays('lpar1', 'lpar2', 20 * MB, [400, 401]);
      expect(there.answer).toBe(there.sha256);
      expect(delta(s1, await stats('lpar1'))).toMatchObject({ smcd: 2, smcr: 0, tcp: 0 });
      // The element the accepted probe left half-negotiated went back, as did those of the closed connections:
      // what remains is the held SMC-D connection's, in the one SMB of lpar1 and lpar2.
      await waitFor('SMB elements given back', async () => ((await p.admin('hypervisor-cec1', { t: 'hv-status' })) as Rec).elements.length === 1);
      const hv = (await p.admin('hypervisor-cec1', { t: 'hv-status' })) as Rec;
      expect(hv.smbs.map((x: Rec) => x.pair)).toEqual([['lpar1', 'lpar2']]);
      // Both partitions map it, so its file has no name left to be opened (and truncated) by (issue 11 item 6).
      expect(fs.readdirSync(path.join(p.shmDir, 'cec1')).filter((f) => f.startsWith('smb-'))).toEqual([]);
    });
  });
});
