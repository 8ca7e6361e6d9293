import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  PlatformError,
  defaultPlatformFile,
  loadPlatformFile,
  parsePlatform,
  platformNodes,
} from '../../shared/platform/platform.ts';

// Minimal valid file; each error test breaks exactly one thing in it.
const BASE = `
name: t
planes: [a, b]
controlNodes:
  - name: cn1
    serial: 1
cecs:
  - name: cec1
lpars:
  - name: lpar1
    cec: cec1
  - name: lpar2
    cec: cec1
`;

function expectError(fn: () => unknown, path: string, reason: RegExp | string): PlatformError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(PlatformError);
  const e = caught as PlatformError;
  expect(e.path).toBe(path);
  expect(e.message).toContain(`: ${path || '/'}: `);
  expect(e.message).toMatch(reason);
  return e;
}

const parseErr = (text: string, path: string, reason: RegExp | string) =>
  expectError(() => parsePlatform(text, 'test.yaml'), path, reason);

describe('default platform file', () => {
  it('loads with four LPARs and defaults applied', () => {
    const p = loadPlatformFile(defaultPlatformFile());
    expect(p.name).toBe('default');
    expect(p.planes).toEqual(['a', 'b']);
    expect(p.controlNodes).toEqual([
      { name: 'cn1', serial: 1 },
      { name: 'cn2', serial: 2 },
    ]);
    expect(p.cecs.map((c) => c.name)).toEqual(['cec1', 'cec2']);
    expect(p.lpars).toEqual([
      { name: 'lpar1', cec: 'cec1', smc: { d: true, r: true }, apps: [] },
      { name: 'lpar2', cec: 'cec1', smc: { d: true, r: true }, apps: [{ name: 'echo', port: 7 }, { name: 'http', port: 80 }] },
      { name: 'lpar3', cec: 'cec2', smc: { d: true, r: true }, apps: [] },
      { name: 'lpar4', cec: 'cec2', smc: { d: true, r: true }, apps: [] },
    ]);
    expect(p.smc).toEqual({ ringBytes: 1048576, elementsPerSmb: 32, pollUs: 1000, clcTimeoutMs: 10000 });
    expect(p.transport).toBe('unix');
    expect(p.ws).toEqual({ host: '127.0.0.1', basePort: 7400 });
    expect(p.rclan).toEqual({ heartbeatMs: 100, deadAfterMs: 400, undeliverableAfterMs: 1500, window: 256 });
  });

  it('numbers fabric ports control nodes first, then LPARs', () => {
    const nodes = platformNodes(loadPlatformFile(defaultPlatformFile()));
    expect(nodes).toEqual([
      { name: 'cn1', role: 'control-node', port: 1 },
      { name: 'cn2', role: 'control-node', port: 2 },
      { name: 'lpar1', role: 'lpar', port: 3, cec: 'cec1' },
      { name: 'lpar2', role: 'lpar', port: 4, cec: 'cec1' },
      { name: 'lpar3', role: 'lpar', port: 5, cec: 'cec2' },
      { name: 'lpar4', role: 'lpar', port: 6, cec: 'cec2' },
    ]);
  });
});

describe('parsePlatform defaults', () => {
  it('fills omitted optional sections and keeps partial overrides', () => {
    const p = parsePlatform(`${BASE}transport: ws\nws: { basePort: 9000 }\nrclan: { window: 64 }\n`);
    expect(p.transport).toBe('ws');
    expect(p.ws).toEqual({ host: '127.0.0.1', basePort: 9000 });
    expect(p.rclan).toEqual({ heartbeatMs: 100, deadAfterMs: 400, undeliverableAfterMs: 1500, window: 64 });
  });

  it('fills in the SMC settings, whole or in part, and SMC on for every LPAR unless turned off', () => {
    const none = parsePlatform(BASE);
    expect(none.smc).toEqual({ ringBytes: 1048576, elementsPerSmb: 32, pollUs: 1000, clcTimeoutMs: 10000 });
    expect(none.lpars.map((l) => l.smc)).toEqual([
      { d: true, r: true },
      { d: true, r: true },
    ]);
    const some = parsePlatform(`${BASE.replace('name: lpar2\n    cec: cec1', 'name: lpar2\n    cec: cec1\n    smc: false')}smc: { ringBytes: 65536, pollUs: 0 }\n`);
    expect(some.smc).toEqual({ ringBytes: 65536, elementsPerSmb: 32, pollUs: 0, clcTimeoutMs: 10000 });
    expect(some.lpars.map((l) => [l.name, l.smc])).toEqual([
      ['lpar1', { d: true, r: true }],
      ['lpar2', { d: false, r: false }],
    ]);
    const dOnly = parsePlatform(BASE.replace('name: lpar2\n    cec: cec1', 'name: lpar2\n    cec: cec1\n    smc: { r: false }'));
    expect(dOnly.lpars[1].smc).toEqual({ d: true, r: false });
    expect(() => parsePlatform(BASE.replace('name: lpar2\n    cec: cec1', 'name: lpar2\n    cec: cec1\n    smc: { x: true }'))).toThrow(/lpars\/1\/smc/);
  });

  it('uses <string> as the source by default', () => {
    const e = expectError(() => parsePlatform(`${BASE}colour: red\n`), '/colour', 'unknown key "colour"');
    expect(e.source).toBe('<string>');
    expect(e.message).toBe('<string>: /colour: unknown key "colour"');
  });
});

describe('parsePlatform errors', () => {
  it('unknown top-level key', () => {
    const e = parseErr(`${BASE}colour: red\n`, '/colour', 'unknown key "colour"');
    expect(e.source).toBe('test.yaml');
    expect(e.message).toBe('test.yaml: /colour: unknown key "colour"');
  });

  it('unknown nested key', () => {
    parseErr(BASE.replace('    cec: cec1\n', '    cec: cec1\n    colour: red\n'), '/lpars/0/colour', 'unknown key "colour"');
  });

  it('unknown key in an optional section', () => {
    parseErr(`${BASE}rclan: { heartbeat: 5 }\n`, '/rclan/heartbeat', 'unknown key "heartbeat"');
  });

  it('missing required field', () => {
    parseErr(BASE.replace('    cec: cec1\n', ''), '/lpars/0/cec', 'missing required field "cec"');
  });

  it('missing required top-level field', () => {
    parseErr(BASE.replace('planes: [a, b]\n', ''), '/planes', 'missing required field "planes"');
  });

  it('wrong type', () => {
    parseErr(BASE.replace('serial: 1', 'serial: "x"'), '/controlNodes/0/serial', /must be integer, got string/);
  });

  it('value out of range', () => {
    parseErr(`${BASE}rclan: { window: 2 }\n`, '/rclan/window', /must be >= 4/);
  });

  it('bad name pattern', () => {
    parseErr(BASE.replace('name: lpar2', 'name: LPAR2'), '/lpars/1/name', /"LPAR2" does not match/);
  });

  it('duplicate name', () => {
    const text = `${BASE}  - name: lpar3\n    cec: cec1\n  - name: lpar2\n    cec: cec1\n`;
    parseErr(text, '/lpars/3/name', 'duplicate name "lpar2" (also at /lpars/1/name)');
  });

  it('duplicate name across sections', () => {
    parseErr(BASE.replace('name: lpar1', 'name: cec1'), '/lpars/0/name', 'duplicate name "cec1" (also at /cecs/0/name)');
  });

  it('reserved name', () => {
    parseErr(BASE.replace('name: cec1', 'name: supervisor'), '/cecs/0/name', 'name "supervisor" is reserved');
  });

  it('names starting with hypervisor- are reserved for the CECs\' hypervisors', () => {
    parseErr(BASE.replace('name: cec1', 'name: hypervisor-cec1').replace(/cec: cec1/g, 'cec: hypervisor-cec1'), '/cecs/0/name', /name "hypervisor-cec1" is reserved: names starting with "hypervisor-"/);
    parseErr(BASE.replace('name: lpar2', 'name: hypervisor-x'), '/lpars/1/name', /name "hypervisor-x" is reserved/);
    parseErr(BASE.replace('name: cn1', 'name: hypervisor-'), '/controlNodes/0/name', /name "hypervisor-" is reserved/);
    // Only the prefix: a name merely containing it is fine.
    expect(parsePlatform(BASE.replace('name: lpar2', 'name: my-hypervisor-1')).lpars[1].name).toBe('my-hypervisor-1');
  });

  it('SMC ring size that is not a power of two names /smc/ringBytes', () => {
    parseErr(`${BASE}smc: { ringBytes: 100000 }\n`, '/smc/ringBytes', '100000 is not a power of two');
  });

  it('SMC values out of range or unknown', () => {
    parseErr(`${BASE}smc: { ringBytes: 2048 }\n`, '/smc/ringBytes', /must be >= 4096/);
    parseErr(`${BASE}smc: { ringBytes: 33554432 }\n`, '/smc/ringBytes', /must be <= 16777216/);
    parseErr(`${BASE}smc: { elementsPerSmb: 0 }\n`, '/smc/elementsPerSmb', /must be >= 1/);
    parseErr(`${BASE}smc: { elementsPerSmb: 1025 }\n`, '/smc/elementsPerSmb', /must be <= 1024/);
    parseErr(`${BASE}smc: { pollUs: 100001 }\n`, '/smc/pollUs', /must be <= 100000/);
    parseErr(`${BASE}smc: { clcTimeoutMs: 99 }\n`, '/smc/clcTimeoutMs', /must be >= 100/);
    parseErr(`${BASE}smc: { ring: 4096 }\n`, '/smc/ring', 'unknown key "ring"');
    parseErr(BASE.replace('name: lpar2\n    cec: cec1', 'name: lpar2\n    cec: cec1\n    smc: "no"'), '/lpars/1/smc', /must be boolean, got string/);
  });

  it('reserved plane name', () => {
    parseErr(BASE.replace('name: lpar2', 'name: plane-b'), '/lpars/1/name', 'name "plane-b" is reserved');
  });

  it('duplicate control-node serial', () => {
    const text = BASE.replace('cecs:', '  - name: cn2\n    serial: 1\ncecs:');
    parseErr(text, '/controlNodes/1/serial', 'duplicate serial 1 (also at /controlNodes/0/serial)');
  });

  it('too many control nodes', () => {
    const text = BASE.replace('cecs:', '  - name: cn2\n    serial: 2\n  - name: cn3\n    serial: 3\ncecs:');
    parseErr(text, '/controlNodes', /must NOT have more than 2 items/);
  });

  it('bad CEC reference', () => {
    parseErr(BASE.replace('name: lpar2\n    cec: cec1', 'name: lpar2\n    cec: cec9'), '/lpars/1/cec', 'CEC "cec9" does not exist');
  });

  it('deadAfterMs <= heartbeatMs', () => {
    parseErr(
      `${BASE}rclan: { heartbeatMs: 200, deadAfterMs: 200 }\n`,
      '/rclan/deadAfterMs',
      'deadAfterMs (200) must be greater than heartbeatMs (200)',
    );
  });

  it('heartbeatMs raised past the default deadAfterMs blames heartbeatMs', () => {
    parseErr(
      `${BASE}rclan: { heartbeatMs: 500 }\n`,
      '/rclan/heartbeatMs',
      'deadAfterMs (400, default) must be greater than heartbeatMs (500)',
    );
  });

  it('undeliverableAfterMs <= deadAfterMs', () => {
    parseErr(
      `${BASE}rclan: { deadAfterMs: 800, undeliverableAfterMs: 700 }\n`,
      '/rclan/undeliverableAfterMs',
      'undeliverableAfterMs (700) must be greater than deadAfterMs (800)',
    );
  });

  it('YAML syntax error', () => {
    const e = parseErr(BASE.replace('planes: [a, b]', 'planes: [a, b'), '', /YAML syntax error at line \d+/);
    expect(e.message).toMatch(/^test\.yaml: \/: /);
  });

  it('duplicate YAML key', () => {
    parseErr(`${BASE}name: u\n`, '', /YAML syntax error at line 14, column 1: Map keys must be unique/);
  });

  it('empty document', () => {
    parseErr('', '', /must be object, got null/);
  });

  it('planes not exactly 2', () => {
    parseErr(BASE.replace('planes: [a, b]', 'planes: [a, b, c]'), '/planes', /must NOT have more than 2 items/);
    parseErr(BASE.replace('planes: [a, b]', 'planes: [a]'), '/planes', /must NOT have fewer than 2 items/);
  });

  it('duplicate planes', () => {
    parseErr(BASE.replace('planes: [a, b]', 'planes: [a, a]'), '/planes/1', 'duplicate plane "a" (also at /planes/0)');
  });
});

describe('loadPlatformFile', () => {
  it('missing file', () => {
    const file = join(tmpdir(), `lparlab-no-such-platform-${process.pid}.yaml`);
    const e = expectError(() => loadPlatformFile(file), '', /cannot read file: .*ENOENT/);
    expect(e.source).toBe(file);
    expect(e.message.startsWith(`${file}: /: cannot read file: `)).toBe(true);
  });
});
