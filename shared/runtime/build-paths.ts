import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the code is: the repository (the nearest directory up from this
 * module with a package.json — this module runs from shared/runtime/ under
 * vitest and from build/shared/runtime/ everywhere else) and the build that
 * scripts/build.mjs makes in build/ (issue 10 item 1: processes run compiled
 * JavaScript, not TypeScript through a loader). scripts/build.mjs, plain
 * JavaScript that runs before there is a build, knows the same two paths.
 */
function findRepoRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  }
}

export const REPO_ROOT = findRepoRoot();
export const BUILD_ROOT = path.join(REPO_ROOT, 'build');

/** The compiled file of a source given relative to the repository: `services/lpar/main.ts` -> `<repo>/build/services/lpar/main.js`. */
export function builtFile(source: string): string {
  if (!source.endsWith('.ts')) throw new Error(`builtFile: ${source} is not a TypeScript source`);
  return path.join(BUILD_ROOT, `${source.slice(0, -3)}.js`);
}
