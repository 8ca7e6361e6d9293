import { ensureBuilt } from '../scripts/build.mjs';

/**
 * Before any test file: the build is current (issue 10 item 1). Tests import
 * the TypeScript directly, but the processes they start run what users run,
 * the compiled build/ (the lparlab launcher would build on its own too, but
 * once here rather than racing from parallel workers).
 */
export default function setup(): void {
  ensureBuilt({ log: (line) => process.stderr.write(`${line}\n`) });
}
