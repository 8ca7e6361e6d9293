#!/usr/bin/env node
// Runs a benchmark of scripts/bench/ compiled, building first if the build is
// stale (scripts/build.mjs), as the platform it measures runs compiled:
//   node scripts/bench.mjs rvi --json        (npm run bench -- rvi --json)
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILD_ROOT, REPO_ROOT, ensureBuilt } from './build.mjs';

const [name, ...rest] = process.argv.slice(2);
// A benchmark is a file of scripts/bench/ that parses its command line with the harness's benchArgs (the others are its parts).
const dir = path.join(REPO_ROOT, 'scripts', 'bench');
const benches = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && /=\s*benchArgs\(/.test(fs.readFileSync(path.join(dir, f), 'utf8'))).map((f) => f.slice(0, -3));
if (!name || !benches.includes(name)) {
  process.stderr.write(`usage: node scripts/bench.mjs NAME [--json] [options]  (NAME: ${benches.join(', ')})\n`);
  process.exit(2);
}
try {
  ensureBuilt({ log: (line) => process.stderr.write(`${line}\n`) });
} catch (err) {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
}
const main = path.join(BUILD_ROOT, 'scripts', 'bench', `${name}.js`);
// The bench parses process.argv.slice(2) as its own options.
process.argv = [process.argv[0], main, ...rest];
await import(pathToFileURL(main).href);
