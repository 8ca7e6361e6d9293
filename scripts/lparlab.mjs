#!/usr/bin/env node
// The `lparlab` command: builds first if the build is stale (scripts/build.mjs),
// then runs the compiled CLI (build/scripts/cli/main.js).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILD_ROOT, ensureBuilt } from './build.mjs';

try {
  ensureBuilt({ log: (line) => process.stderr.write(`${line}\n`) });
} catch (err) {
  process.stderr.write(`lparlab: ${err.message}\n`);
  process.exit(1);
}
await import(pathToFileURL(path.join(BUILD_ROOT, 'scripts', 'cli', 'main.js')).href);
