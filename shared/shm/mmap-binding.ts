import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type mmapModule from '@riaskov/mmap-io';

/** The binding's calls and constants: the package's types without `sync`, which only its JS wrapper adds. */
export type MmapIo = Omit<typeof mmapModule.default, 'sync'>;

const require = createRequire(import.meta.url);

/**
 * The @riaskov/mmap-io native binding, loaded from where its installer put
 * it. The package's own entry looks the file up at run time through
 * @mapbox/node-pre-gyp, which loads npmlog, gauge, semver, nopt and more
 * (~30 modules, ~55 ms of CPU) in every process that maps shared memory:
 * each partition and hypervisor paid it at start, ~14 CPU-seconds of a
 * 256-partition boot on two cores (issue 10 item 4). The path is the one
 * node-pre-gyp computes: the package.json's `binary.module_path` with
 * {configuration} Release, {node_abi} node-v<ABI>, {platform}, {arch}, then
 * `<module_name>.node`; a build from source leaves it in build/Release. An
 * install that put it elsewhere still works through the package's entry.
 */
export function loadMmapBinding(): MmapIo {
  const dir = path.dirname(require.resolve('@riaskov/mmap-io/package.json'));
  const pkg = require('@riaskov/mmap-io/package.json') as { binary?: { module_name?: string; module_path?: string } };
  const name = pkg.binary?.module_name ?? 'mmap_io';
  const candidates: string[] = [];
  if (pkg.binary?.module_path) {
    const subst: Record<string, string> = { configuration: 'Release', node_abi: `node-v${process.versions.modules}`, platform: process.platform, arch: process.arch };
    candidates.push(path.join(dir, pkg.binary.module_path.replace(/\{(\w+)\}/g, (m, k: string) => subst[k] ?? m), `${name}.node`));
  }
  candidates.push(path.join(dir, 'build', 'Release', `${name}.node`));
  for (const file of candidates) if (fs.existsSync(file)) return require(file) as MmapIo;
  return require('@riaskov/mmap-io') as MmapIo;
}
