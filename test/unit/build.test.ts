import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILD_COMMAND, ensureBuilt, staleReason } from '../../scripts/build.mjs';

/**
 * scripts/build.mjs on a scratch repository (the real build/ is shared by
 * every test running beside this one): it compiles to build/, notices a
 * source saved, added or removed after the build, and a failed build names
 * the command (issue 10 item 1: a stale build can never run).
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function scratchRepo(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-build-'));
  dirs.push(root);
  const write = (f: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), text);
  };
  write('package.json', '{ "type": "module" }\n');
  write('tsconfig.json', JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, allowImportingTsExtensions: true, types: [] } }));
  // The real build settings, with the scratch tsconfig.json under them.
  write('tsconfig.build.json', fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'tsconfig.build.json'), 'utf8'));
  write('services/a/main.ts', "import { b } from '../../shared/b.ts';\nconst n: number = b + 1;\nprocess.stdout.write(`${n}\\n`);\n");
  write('shared/b.ts', 'export const b: number = 41;\n');
  write('scripts/c.ts', 'export const c = 1;\n');
  return root;
}

/** Dates the build 10 s back, so the edit that follows is certainly newer on any file system's clock granularity. */
const ageBuild = (root: string) => {
  const t = new Date(Date.now() - 10_000);
  fs.utimesSync(path.join(root, 'build', '.stamp'), t, t);
};

describe('scripts/build.mjs', () => {
  it('compiles to runnable JavaScript with source maps, and is current afterwards', () => {
    const root = scratchRepo();
    expect(staleReason(root)).toBe('there is no build yet');
    ensureBuilt({ root });
    expect(staleReason(root)).toBeUndefined();
    const main = path.join(root, 'build', 'services', 'a', 'main.js');
    expect(fs.readFileSync(main, 'utf8')).toContain("from '../../shared/b.js'");
    const map = JSON.parse(fs.readFileSync(`${main}.map`, 'utf8')) as { sources: string[] };
    expect(map.sources.map((s) => path.resolve(path.dirname(main), s))).toEqual([path.join(root, 'services', 'a', 'main.ts')]);
    const run = spawnSync(process.execPath, [main], { encoding: 'utf8' });
    expect(run.stdout).toBe('42\n');
  });

  it('is stale once a source is saved, and builds it again', () => {
    const root = scratchRepo();
    ensureBuilt({ root });
    ageBuild(root);
    fs.writeFileSync(path.join(root, 'shared', 'b.ts'), 'export const b: number = 99;\n');
    expect(staleReason(root)).toBe('sources changed since the last build');
    const lines: string[] = [];
    ensureBuilt({ root, log: (l) => lines.push(l) });
    expect(lines).toHaveLength(1);
    expect(staleReason(root)).toBeUndefined();
    expect(spawnSync(process.execPath, [path.join(root, 'build', 'services', 'a', 'main.js')], { encoding: 'utf8' }).stdout).toBe('100\n');
  });

  it('is stale once a source is removed, and the rebuild drops its compiled file', () => {
    const root = scratchRepo();
    ensureBuilt({ root });
    ageBuild(root);
    fs.rmSync(path.join(root, 'scripts', 'c.ts'));
    expect(staleReason(root)).toBe('sources changed since the last build');
    ensureBuilt({ root });
    expect(fs.existsSync(path.join(root, 'build', 'scripts', 'c.js'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'build', 'scripts', 'c.js.map'))).toBe(false);
  });

  it('fails naming the command when tsc cannot compile, and stays stale', () => {
    const root = scratchRepo();
    fs.writeFileSync(path.join(root, 'shared', 'b.ts'), 'export const b: number = ;\n');
    expect(() => ensureBuilt({ root })).toThrow(new RegExp(`the build failed \\(${BUILD_COMMAND}\\):\\n.*shared/b\\.ts`));
    expect(staleReason(root)).toBe('there is no build yet');
    expect(fs.existsSync(path.join(root, '.build.lock'))).toBe(false);
  });
});
