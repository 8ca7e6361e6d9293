import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PlatformError, loadPlatformFile, parsePlatform, platformNodes } from '../../shared/platform/platform.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { uniquePlatform } from '../helpers/platform.ts';

describe('platformYaml', () => {
  it('by default builds a platform the loader reads: planes a and b, cn1, two CECs, two LPARs in turn', () => {
    const p = parsePlatform(platformYaml());
    expect(p.name).toBe('test');
    expect(p.planes).toEqual(['a', 'b']);
    expect(p.controlNodes).toEqual([{ name: 'cn1', serial: 1 }]);
    expect(p.cecs.map((c) => c.name)).toEqual(['cec1', 'cec2']);
    expect(p.lpars.map((l) => [l.name, l.cec])).toEqual([
      ['lpar1', 'cec1'],
      ['lpar2', 'cec2'],
    ]);
    // Sections left out are the platform's own defaults.
    expect(p.rclan).toEqual(parsePlatform(platformYaml({ rclan: {} })).rclan);
    expect(p.vlans).toEqual([]);
  });

  it('counts, CEC numbers, per-LPAR fields and platform-wide apps', () => {
    const p = parsePlatform(
      platformYaml({
        name: 'many',
        controlNodes: 2,
        cecs: 3,
        lpars: [{ cec: 3 }, { cec: 'cec1', smc: false }, { name: 'web', cec: 2, apps: [{ name: 'http', port: 80 }] }, {}],
        apps: [{ name: 'echo', port: 7 }],
        rclan: FAST_RCLAN,
        smc: { ringBytes: 65536 },
        ethernet: { heartbeatMs: 40 },
      }),
    );
    expect(p.controlNodes).toEqual([
      { name: 'cn1', serial: 1 },
      { name: 'cn2', serial: 2 },
    ]);
    expect(p.lpars.map((l) => [l.name, l.cec, l.smc, l.apps])).toEqual([
      ['lpar1', 'cec3', { d: true, r: true }, [{ name: 'echo', port: 7 }]],
      ['lpar2', 'cec1', { d: false, r: false }, [{ name: 'echo', port: 7 }]],
      ['web', 'cec2', { d: true, r: true }, [{ name: 'http', port: 80 }]],
      ['lpar4', 'cec1', { d: true, r: true }, [{ name: 'echo', port: 7 }]],
    ]);
    expect(p.rclan).toEqual(FAST_RCLAN);
    expect(p.smc.ringBytes).toBe(65536);
    expect(platformNodes(p).map((n) => n.name)).toEqual(['cn1', 'cn2', 'lpar1', 'lpar2', 'web', 'lpar4']);
  });

  it('VLAN members by name get the host number of their name in the subnet; explicit ones and other fields pass through', () => {
    const p = parsePlatform(
      platformYaml({
        lpars: 4,
        vlans: [
          { name: 'blue', subnet: '10.1.0.0/24', members: ['lpar1', 'lpar3', { lpar: 'lpar2', ip: '10.1.0.200' }], promiscuous: ['lpar3'] },
          { name: 'green', subnets: ['10.2.1.0/24', '10.9.0.0/16'], members: ['lpar4'], mtu: 1500 },
        ],
      }),
    );
    expect(p.vlans.map((v) => [v.name, v.members, v.promiscuous])).toEqual([
      [
        'blue',
        [
          { lpar: 'lpar1', ip: '10.1.0.1' },
          { lpar: 'lpar3', ip: '10.1.0.3' },
          { lpar: 'lpar2', ip: '10.1.0.200' },
        ],
        ['lpar3'],
      ],
      ['green', [{ lpar: 'lpar4', ip: '10.2.1.4' }], []],
    ]);
    expect(p.vlans[1].mtu).toBe(1500);
    expect(() => platformYaml({ vlans: [{ name: 'x', members: ['lpar1'] }] })).toThrow(/needs a subnet/);
  });

  it('extra sections, paths and strings YAML would read as something else survive as given', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-yaml-'));
    try {
      const mod = path.join(dir, 'app.mjs');
      fs.writeFileSync(mod, 'export default async function start() {}\n');
      const file = path.join(dir, 'platform.yaml');
      fs.writeFileSync(file, platformYaml({ lpars: [{}, { apps: [{ module: './app.mjs', port: 9, options: { banner: 'HI ', flag: 'true', n: '7', none: null } }] }], extra: { transport: 'ws', ws: { basePort: 9100 } } }));
      const p = loadPlatformFile(file);
      expect(p.transport).toBe('ws');
      expect(p.ws.basePort).toBe(9100);
      expect(p.lpars[1].apps).toEqual([{ module: mod, port: 9, options: { banner: 'HI ', flag: 'true', n: '7', none: null } }]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not validate: a wrong value reaches the loader, which names it', () => {
    expect(() => parsePlatform(platformYaml({ lpars: [{ cec: 9 }] }))).toThrow(PlatformError);
    expect(() => parsePlatform(platformYaml({ lpars: [{ cec: 9 }] }))).toThrow(/\/lpars\/0\/cec: CEC "cec9" does not exist/);
    expect(() => parsePlatform(platformYaml({ extra: { colour: 'red' } }))).toThrow(/unknown key "colour"/);
  });

  it('writes the hand-written style, with a name line uniquePlatform can rewrite', () => {
    const text = platformYaml({ name: 'smcfo', rclan: FAST_RCLAN });
    expect(text).toContain('\nplanes: [a, b]\n');
    expect(text).toContain('\n  - { name: lpar2, cec: cec2 }\n');
    expect(text).toContain('\nrclan: { heartbeatMs: 50, deadAfterMs: 250, undeliverableAfterMs: 1000, window: 256 }\n');
    const u = uniquePlatform(text);
    expect(u.name).toMatch(/^smcfo-[0-9a-f]{6}$/);
    expect(parsePlatform(u.yaml).name).toBe(u.name);
  });
});
