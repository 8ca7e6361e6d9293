import { describe, expect, it } from 'vitest';
import { PlatformError, parsePlatform } from '../../shared/platform/platform.ts';

/** lpar3 on blue and green (as in the default platform); `extra` is appended to lpar3's entry. */
const file = (lpar3: string, lpar1 = '') => `
name: t
planes: [a, b]
controlNodes: [{ name: cn1, serial: 1 }]
cecs: [{ name: cec1 }]
lpars:
  - name: lpar1
    cec: cec1
${lpar1}
  - name: lpar2
    cec: cec1
  - name: lpar3
    cec: cec1
${lpar3}
vlans:
  - name: blue
    subnets: [10.1.0.0/24]
    members: [{ lpar: lpar1, ip: 10.1.0.1 }, { lpar: lpar3, ip: 10.1.0.3 }]
  - name: green
    subnets: [10.2.0.0/24]
    mtu: 1500
    members: [{ lpar: lpar2, ip: 10.2.0.2 }, { lpar: lpar3, ip: 10.2.0.3 }]
`;

function error(text: string): PlatformError {
  try {
    parsePlatform(text, 'p.yaml');
  } catch (err) {
    if (err instanceof PlatformError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('platform file: forwarding and routes', () => {
  it('takes forwarding and routes, and leaves both out of an LPAR that gives neither', () => {
    const p = parsePlatform(file('    forwarding: true', '    routes: [{ prefix: 10.2.0.0/24, via: 10.1.0.3 }, { prefix: default, via: 10.1.0.3, dev: blue }]'));
    expect(p.lpars[2].forwarding).toBe(true);
    expect(p.lpars[0].routes).toEqual([{ prefix: '10.2.0.0/24', via: '10.1.0.3' }, { prefix: 'default', via: '10.1.0.3', dev: 'blue' }]);
    expect('forwarding' in p.lpars[1] || 'routes' in p.lpars[1]).toBe(false);
    expect(p.vlans.map((v) => v.mtu)).toEqual([16896, 1500]);
  });

  it('refuses a next hop on none of the LPAR\u2019s subnets, naming the field', () => {
    const e = error(file('    routes: [{ prefix: 10.9.0.0/16, via: 10.7.0.1 }]'));
    expect(e.path).toBe('/lpars/2/routes/0/via');
    expect(e.message).toBe('p.yaml: /lpars/2/routes/0/via: 10.7.0.1 is not on any subnet of lpar3');
  });

  it('refuses a via outside the named dev, a dev the LPAR is not on, its own address, host bits, and neither via nor dev', () => {
    expect(error(file('    routes: [{ prefix: 10.9.0.0/16, via: 10.1.0.1, dev: green }]')).message).toMatch(/\/lpars\/2\/routes\/0\/via: 10\.1\.0\.1 is not on any subnet of virtual LAN "green"/);
    expect(error(file('    routes: [{ prefix: 10.9.0.0/16, dev: red }]')).message).toMatch(/\/lpars\/2\/routes\/0\/dev: lpar3 is not on virtual LAN "red" \(it is on blue, green\)/);
    expect(error(file('    routes: [{ prefix: 10.9.0.0/16, via: 10.2.0.3 }]')).message).toMatch(/\/via: 10\.2\.0\.3 is lpar3's own address/);
    expect(error(file('    routes: [{ prefix: 10.9.0.1/16, via: 10.2.0.2 }]')).path).toBe('/lpars/2/routes/0/prefix');
    expect(error(file('    routes: [{ prefix: 10.9.0.0/16 }]')).message).toMatch(/\/lpars\/2\/routes\/0: give a next hop/);
  });

  it('checks the shape in the schema: prefix, addresses, unknown keys, forwarding a boolean', () => {
    expect(error(file('    routes: [{ prefix: 10.9.0.0, via: 10.1.0.1 }]')).path).toBe('/lpars/2/routes/0/prefix');
    expect(error(file('    routes: [{ prefix: default, via: 10.1.0.300 }]')).path).toBe('/lpars/2/routes/0/via');
    expect(error(file('    routes: [{ prefix: default, gw: 10.1.0.1 }]')).message).toMatch(/\/lpars\/2\/routes\/0\/gw: unknown key "gw"/);
    expect(error(file('    forwarding: yes please')).path).toBe('/lpars/2/forwarding');
  });
});
