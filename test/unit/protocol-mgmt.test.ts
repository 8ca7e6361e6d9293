import { describe, expect, it } from 'vitest';
import { encodeControl } from '../../shared/control/codec.ts';
import { decodeToControlNode, decodeToLpar, sendMgmt, type ConfigSent, type ToControlNode, type ToLpar } from '../../shared/protocol/mgmt.ts';

const enc = (m: Record<string, unknown>) => encodeControl(m as { t: string });

const ifc = { vlan: 'blue', vlanId: 1, dev: 1, ip: '10.1.0.2', prefix: 24, mac: '02:00:01:00:00:05', mtu: 16896, promiscuousAllowed: false };
const config: ConfigSent = {
  t: 'config',
  name: 'lpar1',
  cec: 'cec1',
  controlNode: 'cn1',
  serial: 1,
  platform: 'test',
  ethernet: { heartbeatMs: 50, arpCacheSeconds: 60 },
  interfaces: [ifc],
  apps: [{ name: 'echo', port: 7 }, { module: '/x/app.mjs', options: { a: 1 } }],
  forwarding: true,
  routes: [{ prefix: '10.9.0.0/16', via: '10.1.0.3' }, { prefix: '0.0.0.0/0', dev: 'blue' }],
  smc: { enabled: true, d: true, r: false, ringBytes: 65536, pollUs: 10, clcTimeoutMs: 500 },
};

function sent(msg: Parameters<typeof sendMgmt>[1]): Buffer {
  let out: Buffer | undefined;
  sendMgmt({ send: (b: Buffer) => ((out = b), true) }, msg);
  return out!;
}

describe('management protocol: LPAR to control node', () => {
  const good: ToControlNode[] = [
    { t: 'boot', name: 'lpar1' },
    { t: 'health', state: 'healthy', detail: 'control nodes cn1,cn2' },
    { t: 'vlan-register', vlan: 'blue', dev: 1, ip: '10.1.0.2', mac: '02:00:01:00:00:05' },
    { t: 'mcast', vlan: 'blue', group: '01:00:5e:01:02:03', join: true },
    { t: 'promisc', vlan: 'blue', on: false },
    { t: 'smcr-links', peer: 'lpar2' },
  ];
  for (const m of good) {
    it(`round-trips ${m.t}`, () => expect(decodeToControlNode(sent(m))).toEqual({ ok: true, value: m }));
  }

  it('refuses malformed messages with a reason naming the field', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ t: 'smcr-links', peer: 42 }, /field "peer": a string/],
      [{ t: 'smcr-links', peer: 'x'.repeat(100_000) }, /field "peer": a string of 1\.\.64/],
      [{ t: 'health', state: { toString: 0 } }, /"state"/],
      [{ t: 'vlan-register', vlan: 'green', dev: { valueOf: 0 }, ip: '10.2.0.4', mac: '02:00:0b:00:00:03' }, /field "dev": an integer/],
      [{ t: 'vlan-register', vlan: 'green', dev: 1, ip: '10.2.0', mac: '02:00:0b:00:00:03' }, /field "ip": a dotted IPv4 address/],
      [{ t: 'mcast', vlan: 'green', group: 'x'.repeat(100_000), join: true }, /"group"/],
      [{ t: 'mcast', vlan: 'green', group: '01:00:5e:01:02:03', join: 'yes' }, /field "join": true or false/],
      [{ t: 'config', name: 'lpar1' }, /management: field "t": .*\(got "config"\)/],
      [{ t: 'nonsense' }, /management: field "t": .*\(got "nonsense"\)/],
      [{ t: 'toString' }, /management: field "t": .*\(got "toString"\)/],
    ];
    for (const [m, reason] of cases) {
      const d = decodeToControlNode(enc(m));
      expect(d.ok, JSON.stringify(m).slice(0, 80)).toBe(false);
      if (!d.ok) expect(d.reason).toMatch(reason);
    }
  });

  it('refuses bytes that are not a control message', () => {
    for (const b of [Buffer.from([1, 2, 3]), Buffer.alloc(0), encodeControl({ t: 'x' }).subarray(0, 2)]) expect(decodeToControlNode(b).ok).toBe(false);
  });
});

describe('management protocol: control node to LPAR', () => {
  const good: ToLpar[] = [
    { t: 'vlan-registered', vlan: 'blue', ok: true },
    { t: 'vlan-registered', vlan: 'blue', ok: false, reason: 'MAC taken' },
    { t: 'lan-peers', vlan: 'blue', peers: [{ rvi: 7, ip: '10.1.0.3', mac: null, forwarding: false }, { rvi: 8, ip: '10.1.0.4', mac: '02:00:02:00:00:01', forwarding: true }] },
    { t: 'promisc-listeners', vlan: 'blue', listeners: [{ node: 'lpar3', dev: 1 }] },
    { t: 'vlan-added', interface: ifc },
    { t: 'vlan-removed', vlan: 'blue' },
    { t: 'smcr-links', peer: 'lpar2', ok: true, rvis: [11, 12] },
    { t: 'smcr-links', peer: 'lpar2', ok: false, reason: 'share no virtual LAN' },
  ];
  for (const m of good) {
    it(`round-trips ${m.t}${'ok' in m ? ` ok=${m.ok}` : ''}`, () => expect(decodeToLpar(sent(m))).toEqual({ ok: true, value: m }));
  }

  it('round-trips a full config', () => {
    expect(decodeToLpar(sent(config))).toEqual({ ok: true, value: config });
  });

  it('takes an older control node\'s partial or out-of-bounds SMC grant as far as it is valid', () => {
    const d = decodeToLpar(enc({ ...config, smc: { enabled: false, ringBytes: 100000, pollUs: -1, clcTimeoutMs: 'x' } }));
    expect(d.ok && d.value.t === 'config' && d.value.smc).toEqual({ enabled: false });
    const none = decodeToLpar(enc({ ...config, smc: undefined }));
    expect(none.ok && none.value.t === 'config' && none.value.smc).toEqual({});
  });

  it('refuses malformed messages with a reason naming the field', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...config, interfaces: [{ ...ifc, mac: 'nope' }] }, /field "interfaces\[0\]\.mac": a MAC address/],
      [{ ...config, interfaces: 'all' }, /field "interfaces": an array/],
      [{ ...config, ethernet: { heartbeatMs: 0, arpCacheSeconds: 60 } }, /"ethernet\.heartbeatMs"/],
      [{ ...config, apps: [{ name: 'rm -rf', port: 1 }] }, /field "apps\[0\]\.name": one of/],
      [{ ...config, serial: 0x10000 }, /"serial"/],
      [{ t: 'lan-peers', vlan: 'blue', peers: [{ rvi: -1, ip: '10.1.0.3' }] }, /"peers\[0\]\.rvi"/],
      [{ t: 'lan-peers', vlan: 'blue', peers: [7] }, /field "peers\[0\]": a map/],
      [{ t: 'smcr-links', peer: 'lpar2', ok: true, rvis: [1] }, /field "rvis": an array of 2 /],
      [{ t: 'vlan-registered', vlan: 'blue' }, /field "ok": true or false/],
      [{ t: 'boot', name: 'lpar1' }, /management: field "t": .*\(got "boot"\)/],
    ];
    for (const [m, reason] of cases) {
      const d = decodeToLpar(enc(m));
      expect(d.ok, JSON.stringify(m).slice(0, 80)).toBe(false);
      if (!d.ok) expect(d.reason).toMatch(reason);
    }
  });
});
