#!/usr/bin/env node
// The build: tsc compiles services/, shared/ and scripts/ to build/ (JavaScript
// plus source maps back to the .ts files), so every process runs plain Node
// without a TypeScript loader at run time (issue 10 item 1: tsx cost ~47 MB a
// process and an esbuild child beside each one).
//
//   node scripts/build.mjs          build if any source is newer than the build (npm run build)
//   node scripts/build.mjs --force  build whatever the stamp says
//
// `npm install` runs it (prepare), the `lparlab` launcher, the benches' entry
// and the tests' global setup call ensureBuilt() before anything runs from
// build/, so a stale build never runs: a source (or a directory, for files
// added or removed) newer than build/.stamp means build again first.
// Plain JavaScript because it must run before there is a build.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_ROOT = path.join(REPO_ROOT, 'build');
/** The directories tsc compiles (tsconfig.build.json's include). */
const SOURCE_DIRS = ['services', 'shared', 'scripts'];
const CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];
export const BUILD_COMMAND = 'npm run build';

// Every function takes the repository's root (REPO_ROOT unless a test builds a scratch copy).
const buildRoot = (root) => path.join(root, 'build');
const stampFile = (root) => path.join(buildRoot(root), '.stamp');
const lockFile = (root) => path.join(root, '.build.lock');

/** Newest modification time (ms) of the TypeScript sources, their directories and the tsconfig files. */
function newestSource(root) {
  let newest = 0;
  const visit = (dir) => {
    const st = fs.statSync(dir);
    newest = Math.max(newest, st.mtimeMs);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) if (fs.existsSync(path.join(root, d))) visit(path.join(root, d));
  for (const c of CONFIGS) newest = Math.max(newest, fs.statSync(path.join(root, c)).mtimeMs);
  return newest;
}

function stampTime(root) {
  try {
    return fs.statSync(stampFile(root)).mtimeMs;
  } catch {
    return -1;
  }
}

/** Why the build is stale, or undefined when it is current. */
export function staleReason(root = REPO_ROOT) {
  const stamp = stampTime(root);
  if (stamp < 0) return 'there is no build yet';
  if (newestSource(root) > stamp) return 'sources changed since the last build';
  return undefined;
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * Holds the build lock while `fn` runs: one build at a time (parallel test
 * workers and CLI calls find the build stale together). A lock whose holder is
 * gone is taken over.
 */
function withLock(root, fn) {
  const LOCK = lockFile(root);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const fd = fs.openSync(LOCK, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(fs.readFileSync(LOCK, 'utf8')) || 0;
      } catch {
        continue; // released meanwhile
      }
      if (holder > 0 && !pidAlive(holder)) {
        fs.rmSync(LOCK, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the build lock ${LOCK} is held by pid ${holder} for over 2 minutes`);
      // Another process is building: wait for it (Atomics.wait is a synchronous sleep, the caller needs the build before going on).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(LOCK, { force: true });
  }
}

/** Removes compiled files whose source is gone, so nothing can import a module that no longer exists. */
function pruneOrphans(root, dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      pruneOrphans(root, p);
      if (fs.readdirSync(p).length === 0) fs.rmdirSync(p);
      continue;
    }
    const m = /^(.*)\.js(\.map)?$/.exec(e.name);
    if (!m) continue;
    const source = path.join(root, path.relative(buildRoot(root), dir), `${m[1]}.ts`);
    if (!fs.existsSync(source)) fs.rmSync(p);
  }
}

/**
 * Compiles with tsc into build/ (type errors do not stop it: `npm run
 * typecheck` is the check, as tsx never checked either) and stamps the build
 * with the time it started, so a source saved during the build makes it stale.
 * Returns tsc's output on failure.
 */
function compile(root) {
  const start = Date.now();
  const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--noCheck'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) return `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() || `tsc exited with ${r.status ?? r.signal}`;
  pruneOrphans(root, buildRoot(root));
  fs.writeFileSync(stampFile(root), `built ${new Date(start).toISOString()}\n`);
  fs.utimesSync(stampFile(root), start / 1000, start / 1000);
  return undefined;
}

/**
 * Makes sure build/ is current: builds first when it is stale. Throws, naming
 * the command to run, when the build fails.
 * `log` hears one line when a build happens (the launcher prints it to stderr).
 */
export function ensureBuilt({ force = false, log = () => {}, root = REPO_ROOT } = {}) {
  if (!force && staleReason(root) === undefined) return;
  withLock(root, () => {
    // Someone else may have built while this process waited for the lock.
    const reason = force ? 'asked to' : staleReason(root);
    if (reason === undefined) return;
    log(`building lparlab (${reason}): tsc -p tsconfig.build.json ...`);
    const failure = compile(root);
    if (failure) throw new Error(`the build failed (${BUILD_COMMAND}):\n${failure}`);
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    ensureBuilt({ force: process.argv.includes('--force'), log: (l) => process.stderr.write(`${l}\n`) });
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
