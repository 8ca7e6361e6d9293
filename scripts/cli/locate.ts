import fs from 'node:fs';
import { parseDocument } from 'yaml';
import { PlatformError, defaultPlatformFile } from '../../shared/platform/platform.ts';
import { RunDir, defaultRunDir } from '../../shared/runtime/run-dir.ts';

/** The environment variable that sets the default run directory of every verb (below --run-dir, above the platform's default). */
export const RUN_DIR_ENV = 'LPARLAB_RUN_DIR';

// The schema's NODE_NAME: the name becomes a path component (run directory, /dev/shm pool).
const PLATFORM_NAME = /^[a-z][a-z0-9-]{0,30}$/;

/**
 * A platform file's `name` and nothing else: finding a run directory must not
 * cost (or fail on) the whole validation, which `up` and `init` do when they
 * boot. The name is still checked, since it becomes a path.
 */
export function platformNameOf(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlatformError(file, '', `cannot read file: ${(err as Error).message}`);
  }
  const doc = parseDocument(text);
  if (doc.errors[0]) throw new PlatformError(file, '', `YAML syntax error: ${doc.errors[0].message.split('\n')[0]}`);
  const name: unknown = doc.get('name');
  if (typeof name !== 'string' || !PLATFORM_NAME.test(name)) throw new PlatformError(file, '/name', 'must be a platform name (lowercase letters, digits and -, starting with a letter)');
  return name;
}

/**
 * Where a verb's platform lives: --run-dir, else $LPARLAB_RUN_DIR, else the
 * default run directory of the platform named by --config (default: the
 * built-in platform).
 */
export function locateRunDir(opts: { runDir?: string; config?: string }, env: NodeJS.ProcessEnv = process.env): RunDir {
  if (opts.runDir) return new RunDir(opts.runDir);
  if (env[RUN_DIR_ENV]) return new RunDir(env[RUN_DIR_ENV]!);
  return new RunDir(defaultRunDir(platformNameOf(opts.config ?? defaultPlatformFile())));
}

/** A run directory that has a platform running (or at least laid out). */
export function liveRunDir(runDir: RunDir): RunDir {
  if (!fs.existsSync(runDir.platformFile)) throw new Error(`no platform in ${runDir.root} (start one with lparlab up, or name it with --run-dir or $${RUN_DIR_ENV})`);
  return runDir;
}
