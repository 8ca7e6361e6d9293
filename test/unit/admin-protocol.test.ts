import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ControlChannel } from '../../shared/control/channel.ts';
import { connectLink, listenLink } from '../../shared/link/transport.ts';
import { adminCall, controlNodeRequests, decodeAdminReply, decodeAdminStream, lparRequests, registerVerbs, switchRequests } from '../../shared/protocol/admin.ts';
import { decodeHvRequest, decodeHvSignal, decodeSmbeGrant, hvRequests } from '../../shared/protocol/hv.ts';

const refused = (d: { ok: boolean; reason?: string }) => {
  expect(d.ok).toBe(false);
  return (d as { reason: string }).reason;
};

describe('admin requests', () => {
  it('decodes a well-formed request into its typed member, leaving absent optional fields out', () => {
    const d = lparRequests.decode({ t: 'ping', dst: '10.1.0.2', count: 3, rq: 7, size: null });
    expect(d).toEqual({ ok: true, value: { t: 'ping', dst: '10.1.0.2', count: 3 } });
  });

  it('refuses a malformed request naming the field and what it wanted', () => {
    expect(refused(lparRequests.decodeOf('ping', { t: 'ping', dst: '10.1.0.2', count: '3' }))).toBe('ping: field "count": an integer in 1..1000000 (got "3")');
    expect(refused(lparRequests.decodeOf('ping', { t: 'ping' }))).toMatch(/^ping: field "dst": an IPv4 address .*got nothing/);
    expect(refused(lparRequests.decodeOf('ping', { t: 'ping', dst: '10.1.0.256' }))).toMatch(/field "dst"/);
    expect(refused(lparRequests.decodeOf('udp-send', { t: 'udp-send', socket: 1, dst: '10.1.0.1', port: 70000 }))).toMatch(/^udp-send: field "port": an integer in 0\.\.65535/);
    expect(refused(lparRequests.decodeOf('tcp-held-write', { t: 'tcp-held-write', id: 1, data: 'text' }))).toMatch(/field "data": binary data/);
    expect(refused(lparRequests.decodeOf('perf-send', { t: 'perf-send', peer: 'lpar2', count: 10, sizes: [64, 'x'] }))).toMatch(/field "sizes\[1\]"/);
    expect(refused(lparRequests.decodeOf('smc-probe', { t: 'smc-probe', dst: '10.1.0.2', port: 7, clc: 'abc' }))).toMatch(/field "clc": hex digits/);
  });

  it('refuses an unknown verb, naming the ones there are', () => {
    expect(refused(lparRequests.decode({ t: 'explode' }))).toMatch(/field "t": one of status, rvis, .*ping/);
  });

  it('turns binary, hex and text fields into Buffers', () => {
    const probe = lparRequests.decodeOf('smc-probe', { t: 'smc-probe', dst: '10.1.0.2', port: 7, clc: 'e2d4c3d9', after: '' });
    expect(probe.ok && probe.value.clc).toEqual(Buffer.from([0xe2, 0xd4, 0xc3, 0xd9]));
    const text = lparRequests.decodeOf('tcp-exchange', { t: 'tcp-exchange', dst: '10.6.0.2', port: 7, data: 'hi\n' });
    expect(text.ok && text.value.data).toEqual(Buffer.from('hi\n'));
    const bin = lparRequests.decodeOf('rvi-send-raw', { t: 'rvi-send-raw', peer: 'cn1', purpose: 'mgmt', data: new Uint8Array([1, 2]) });
    expect(bin.ok && Buffer.isBuffer(bin.value.data)).toBe(true);
  });

  it('checks a built-in app name the way Workloads names them', () => {
    expect(refused(lparRequests.decodeOf('app-start', { t: 'app-start', app: 'nope', port: 1 }))).toMatch(/no built-in app "nope" \(echo, discard, http, bulk-sink, count-sink\)/);
  });

  it('decodes the route verb by its op (the contract of areas.md)', () => {
    expect(lparRequests.decodeOf('route', { t: 'route', op: 'add', prefix: '0.0.0.0/0', via: '10.1.0.3' })).toEqual({ ok: true, value: { t: 'route', op: 'add', prefix: '0.0.0.0/0', via: '10.1.0.3' } });
    expect(lparRequests.decodeOf('route', { t: 'route', op: 'show' })).toEqual({ ok: true, value: { t: 'route', op: 'show' } });
    expect(refused(lparRequests.decodeOf('route', { t: 'route', op: 'add', prefix: '10.2.0.0/33' }))).toMatch(/field "prefix": an IPv4 prefix/);
    expect(refused(lparRequests.decodeOf('route', { t: 'route', op: 'flush' }))).toMatch(/field "op": a route operation \(show, add, del\)/);
  });

  it("refuses a fault with an unknown action in the switch's own words, and one missing its value", () => {
    expect(refused(switchRequests.decodeOf('fault', { t: 'fault', action: 'explode' }))).toMatch(/unknown fault action "explode" \(cut, restore, drop, delay, clear\)/);
    expect(refused(switchRequests.decodeOf('fault', { t: 'fault', action: 'drop' }))).toMatch(/field "pct": a number in 0\.\.100/);
    expect(switchRequests.decodeOf('fault', { t: 'fault', action: 'delay', ms: 2, jitter: 3, rvi: 5 })).toEqual({ ok: true, value: { t: 'fault', action: 'delay', ms: 2, jitter: 3, rvi: 5 } });
  });

  it('decodes the control node verbs', () => {
    expect(controlNodeRequests.decodeOf('vlan-join', { t: 'vlan-join', vlan: 'blue', lpar: 'lpar3', ip: '10.1.0.9' }).ok).toBe(true);
    expect(refused(controlNodeRequests.decodeOf('vlan-join', { t: 'vlan-join', vlan: 'blue', lpar: '', ip: '10.1.0.9' }))).toMatch(/field "lpar": a string of 1\.\.256 characters \(got ""\)/);
  });
});

describe('admin replies and streams', () => {
  it('decodes a ping reply, ignoring what the channel adds', () => {
    const d = decodeAdminReply('ping', { t: 'ping-ok', re: 3, dst: '10.1.0.2', sent: 2, received: 1, rttsMs: [0.2], errors: ['timeout'] });
    expect(d).toEqual({ ok: true, value: { dst: '10.1.0.2', sent: 2, received: 1, rttsMs: [0.2], errors: ['timeout'] } });
    expect(refused(decodeAdminReply('ping', { dst: '10.1.0.2', sent: 2, received: 1, rttsMs: ['x'], errors: [] }))).toMatch(/^ping reply: field "rttsMs\[0\]"/);
  });

  it('keeps the open-ended part of an open reply', () => {
    const d = decodeAdminReply('app-report', { app: 'echo', connections: 3 });
    expect(d.ok && d.value.connections).toBe(3);
  });

  it('decodes route replies and fault lists', () => {
    const routes = decodeAdminReply('route', { routes: [{ prefix: '10.2.0.0/24', via: '10.1.0.3', dev: 'blue', source: 'static', mtu: 1500 }] });
    expect(routes.ok && routes.value.routes?.[0].via).toBe('10.1.0.3');
    const faults = decodeAdminReply('fault', { faults: [{ cut: true, dropPct: 0, delayMs: 0, jitterMs: 0, target: { kind: 'port', port: 2, name: 'lpar1' } }] });
    expect(faults.ok && faults.value.faults[0].target).toEqual({ kind: 'port', port: 2, name: 'lpar1' });
  });

  it('decodes stream messages', () => {
    const f = decodeAdminStream('capture-frame', { t: 'capture-frame', ts: 1, frame: new Uint8Array(14), dropped: 0 });
    expect(f.ok && f.value.frame.length).toBe(14);
    expect(refused(decodeAdminStream('nc-data', { t: 'nc-data', data: 5 }))).toMatch(/nc-data: field "data": binary data/);
  });
});

describe('hypervisor protocol', () => {
  it('decodes requests and refuses malformed ones naming the field', () => {
    expect(decodeHvRequest({ t: 'smbe-alloc', peer: 'lpar2' })).toEqual({ ok: true, value: { t: 'smbe-alloc', peer: 'lpar2' } });
    expect(refused(hvRequests.decodeOf('smbe-alloc', { t: 'smbe-alloc' }))).toMatch(/^smbe-alloc: field "peer"/);
    expect(refused(hvRequests.decodeOf('smbe-attach', { t: 'smbe-attach', token: -1 }))).toMatch(/field "token": an integer in 0\.\.4294967295/);
    expect(refused(decodeHvRequest({ t: 'smbe-steal' }))).toMatch(/field "t": one of smbe-alloc/);
  });

  it('checks the doorbell without a decoder of its own', () => {
    expect(decodeHvSignal({ t: 'signal', token: 0xfffffffe })).toEqual({ ok: true, value: { t: 'signal', token: 0xfffffffe } });
    expect(decodeHvSignal({ t: 'signal', token: 1.5 }).ok).toBe(false);
    expect(decodeHvSignal({ t: 'signal' }).ok).toBe(false);
  });

  it('decodes a grant and refuses one with a bad side', () => {
    const grant = { token: 9, smbId: 1, path: '/dev/shm/x', bytes: 4096, element: 0, side: 1, peer: 'lpar2', ringBytes: 1024 };
    expect(decodeSmbeGrant({ t: 'smbe-alloc-ok', re: 1, ...grant })).toEqual({ ok: true, value: grant });
    expect(refused(decodeSmbeGrant({ ...grant, side: 2 }))).toMatch(/field "side": 0 or 1/);
  });
});

describe('registerVerbs over a real control channel', () => {
  it('answers a well-formed request and refuses a malformed one with an error reply naming the field', async () => {
    const log = pino({ level: 'silent' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lparlab-admin-'));
    const seen: unknown[] = [];
    const server = await listenLink(`unix:${path.join(dir, 'admin.sock')}`, (link) => {
      const ch = new ControlChannel(link, log);
      registerVerbs(
        switchRequests,
        {
          fault: (m) => {
            seen.push(m);
            return { faults: [] };
          },
        },
        (verb, fn) => ch.handle(verb, fn),
      );
    });
    const ch = new ControlChannel(await connectLink(`unix:${path.join(dir, 'admin.sock')}`), log);
    try {
      const ok = await ch.request({ t: 'fault', action: 'drop', pct: 5, port: 'lpar1' });
      expect(decodeAdminReply('fault', ok)).toEqual({ ok: true, value: { faults: [] } });
      expect(seen).toEqual([{ t: 'fault', action: 'drop', pct: 5, port: 'lpar1' }]);
      const typed = await adminCall((m) => ch.request(m), { t: 'fault', action: 'cut' });
      expect(typed.faults).toEqual([]);
      await expect(ch.request({ t: 'fault', action: 'drop', pct: '5' })).rejects.toThrow('fault: field "pct": a number in 0..100 (got "5")');
      await expect(ch.request({ t: 'fault', action: 'explode' })).rejects.toThrow(/unknown fault action "explode"/);
      expect(seen.length).toBe(2);
    } finally {
      ch.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
