import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformError, loadPlatformFile, parsePlatform } from '../../shared/platform/platform.ts';
import { platformYaml } from '../helpers/platform-yaml.ts';

// The `apps` of an LPAR: built-ins by name, user modules by path (on lpar2; lpar1 has none unless given).
const platform = (apps?: unknown, lpar1Apps?: unknown) => platformYaml({ name: 't', cecs: 1, lpars: [{ cec: 1, apps: lpar1Apps }, { cec: 1, apps }] });
const withApps = (...apps: unknown[]) => platform(apps);

function expectError(fn: () => unknown, at: string, reason: RegExp | string): PlatformError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(PlatformError);
  const e = caught as PlatformError;
  expect(e.path).toBe(at);
  expect(e.message).toMatch(reason);
  return e;
}

describe('platform apps', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-apps-'));
    fs.mkdirSync(path.join(dir, 'apps'));
    fs.writeFileSync(path.join(dir, 'apps', 'mine.mjs'), 'export default async function start() {}\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is optional: an LPAR without apps gets an empty list', () => {
    const p = parsePlatform(platform());
    expect(p.lpars.map((l) => l.apps)).toEqual([[], []]);
  });

  it('takes every built-in with its port, in file order', () => {
    const p = parsePlatform(withApps({ name: 'echo', port: 7 }, { name: 'discard', port: 9 }, { name: 'http', port: 80 }, { name: 'bulk-sink', port: 9000 }));
    expect(p.lpars[1].apps).toEqual([
      { name: 'echo', port: 7 },
      { name: 'discard', port: 9 },
      { name: 'http', port: 80 },
      { name: 'bulk-sink', port: 9000 },
    ]);
  });

  it('resolves a module path against the platform file directory and keeps options', () => {
    const file = path.join(dir, 'platform.yaml');
    fs.writeFileSync(file, withApps({ module: './apps/mine.mjs', port: 9000, options: { banner: 'hi', n: 3 } }, { module: 'apps/mine.mjs' }));
    const p = loadPlatformFile(file);
    const mine = path.join(dir, 'apps', 'mine.mjs');
    expect(p.lpars[1].apps).toEqual([
      { module: mine, port: 9000, options: { banner: 'hi', n: 3 } },
      { module: mine, options: {} },
    ]);
  });

  it('resolves module paths of a text against the given base directory, absolute paths unchanged', () => {
    const abs = path.join(dir, 'apps', 'mine.mjs');
    const p = parsePlatform(withApps({ module: './apps/mine.mjs' }, { module: abs }), 't.yaml', dir);
    expect(p.lpars[1].apps.map((a) => ('module' in a ? a.module : ''))).toEqual([abs, abs]);
  });

  it('a missing module file is an error naming the field', () => {
    const file = path.join(dir, 'missing.yaml');
    fs.writeFileSync(file, withApps({ name: 'echo', port: 7 }, { module: './apps/nope.mjs', port: 9000 }));
    const e = expectError(() => loadPlatformFile(file), '/lpars/1/apps/1/module', `module file ${path.join(dir, 'apps', 'nope.mjs')} does not exist`);
    expect(e.source).toBe(file);
  });

  it('a directory is not a module file', () => {
    expectError(() => parsePlatform(withApps({ module: './apps' }), 't.yaml', dir), '/lpars/1/apps/0/module', /does not exist/);
  });

  it('unknown built-in', () => {
    expectError(() => parsePlatform(withApps({ name: 'chargen', port: 19 })), '/lpars/1/apps/0/name', /must be one of "echo", "discard", "http", "bulk-sink"/);
  });

  it('both name and module', () => {
    expectError(() => parsePlatform(withApps({ name: 'echo', module: './apps/mine.mjs', port: 7 }), 't.yaml', dir), '/lpars/1/apps/0', /exactly one of "name".*and "module"/);
  });

  it('neither name nor module', () => {
    expectError(() => parsePlatform(withApps({ port: 7 })), '/lpars/1/apps/0', /missing "name" .* or "module"/);
  });

  it('a built-in without a port', () => {
    expectError(() => parsePlatform(withApps({ name: 'http' })), '/lpars/1/apps/0/port', 'missing required field "port" (built-in app "http")');
  });

  it('options on a built-in', () => {
    expectError(() => parsePlatform(withApps({ name: 'echo', port: 7, options: { x: 1 } })), '/lpars/1/apps/0/options', /takes no options/);
  });

  it('two apps on one port', () => {
    expectError(() => parsePlatform(withApps({ name: 'echo', port: 7 }, { module: './apps/mine.mjs', port: 7 }), 't.yaml', dir), '/lpars/1/apps/1/port', 'port 7 is already used by /lpars/1/apps/0');
  });

  it('the same port on two LPARs is fine', () => {
    const text = platform([{ name: 'echo', port: 7 }], [{ name: 'echo', port: 7 }]);
    expect(parsePlatform(text).lpars.map((l) => l.apps.length)).toEqual([1, 1]);
  });

  it('port out of range, wrong types, unknown keys', () => {
    expectError(() => parsePlatform(withApps({ name: 'echo', port: 70000 })), '/lpars/1/apps/0/port', /must be <= 65535/);
    expectError(() => parsePlatform(withApps({ name: 'echo', port: '7' })), '/lpars/1/apps/0/port', /must be integer, got string/);
    expectError(() => parsePlatform(withApps({ module: './apps/mine.mjs', options: [1] }), 't.yaml', dir), '/lpars/1/apps/0/options', /must be object, got array/);
    expectError(() => parsePlatform(withApps({ name: 'echo', port: 7, prot: 8 })), '/lpars/1/apps/0/prot', 'unknown key "prot"');
    expectError(() => parsePlatform(platform({ name: 'echo' })), '/lpars/1/apps', /must be array, got object/);
  });
});
