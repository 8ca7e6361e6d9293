import { defaultPlatformFile } from '../../shared/platform/platform.ts';
import { UsageError, optionsHelp, parseOptions, type OptionValues, type OptionsTable } from '../../shared/runtime/options.ts';
import type { RunDir } from '../../shared/runtime/run-dir.ts';
import { RUN_DIR_ENV, liveRunDir, locateRunDir } from './locate.ts';

/**
 * One verb of the `lparlab` command (Mininet's do_<verb>): its synopsis, its
 * own options, and what it does. scripts/cli/commands/index.ts is the table;
 * main.ts parses argv against the chosen verb's table and calls `run`.
 *
 * Options: every verb gets GLOBAL_OPTIONS (long only: --config, --run-dir,
 * --help) plus its own, which own their short flags; a verb may redefine a
 * global one to give it a short form (up, init and down: -c for --config).
 */
export interface Command<O extends OptionsTable = OptionsTable> {
  name: string;
  /** Synopsis lines without the leading "lparlab ", e.g. 'ping LPAR IP [-c N] [-s BYTES]'. */
  usage: string[];
  /** One line for `lparlab --help`. */
  summary: string;
  /** Paragraphs for `lparlab VERB --help`, after the synopsis. */
  description?: string;
  options: O;
  /** Internal verbs (the detached supervisor) are left out of `lparlab --help`. */
  hidden?: boolean;
  run(ctx: CommandContext<O>): Promise<number>;
}

export const GLOBAL_OPTIONS = {
  config: { type: 'string', arg: 'FILE', help: 'the platform file (default: the built-in platform); names the default run directory' },
  'run-dir': { type: 'string', arg: 'DIR', help: `the platform's run directory (default: $${RUN_DIR_ENV}, else /tmp/lparlab-<uid>/<platform name>)` },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} as const satisfies OptionsTable;

export type WithGlobals<O extends OptionsTable> = Omit<typeof GLOBAL_OPTIONS, keyof O> & O;

export interface CommandContext<O extends OptionsTable> {
  command: Command<O>;
  values: OptionValues<WithGlobals<O>>;
  /** The arguments after the verb that are not options. */
  args: string[];
  /** --config, or the built-in platform file. */
  platformFile(): string;
  /** The run directory (--run-dir, $LPARLAB_RUN_DIR, or the platform's default); need not exist. */
  runDir(): RunDir;
  /** The run directory of a platform that is up (or laid out): an error saying how to start one otherwise. */
  liveRunDir(): RunDir;
  /** A usage error for this verb: the message, then its synopsis (exit 2). */
  usage(message: string): UsageError;
}

/** A command with its option types checked against its table. */
export function command<O extends OptionsTable>(c: Command<O>): Command<O> {
  return c;
}

export function optionsOf(c: Command): OptionsTable {
  return { ...GLOBAL_OPTIONS, ...c.options };
}

export function parseCommand<O extends OptionsTable>(c: Command<O>, argv: readonly string[]): CommandContext<O> {
  let parsed;
  try {
    parsed = parseOptions(argv, optionsOf(c as unknown as Command));
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${c.name}: ${err.message}\n${synopsis(c as unknown as Command)}`);
    throw err;
  }
  const values = parsed.values as OptionValues<WithGlobals<O>>;
  const opts = values as { config?: string; 'run-dir'?: string };
  const ctx: CommandContext<O> = {
    command: c,
    values,
    args: parsed.positionals,
    platformFile: () => opts.config ?? defaultPlatformFile(),
    runDir: () => locateRunDir({ runDir: opts['run-dir'], config: opts.config }),
    liveRunDir: () => liveRunDir(ctx.runDir()),
    usage: (message) => new UsageError(`${c.name}: ${message}\n${synopsis(c as unknown as Command)}`),
  };
  return ctx;
}

export function synopsis(c: Command): string {
  return c.usage.map((u, i) => `${i === 0 ? 'usage: ' : '       '}lparlab ${u}`).join('\n');
}

/** `lparlab VERB --help`. */
export function commandHelp(c: Command): string {
  return `${synopsis(c)}\n\n${c.summary}${c.description ? `\n\n${c.description.trim()}` : ''}\n\noptions:\n${optionsHelp(optionsOf(c))}\n`;
}

/** `lparlab --help`: every verb's synopsis and summary, from the table. */
export function overview(commands: readonly Command[]): string {
  const rows = commands.filter((c) => !c.hidden).flatMap((c) => c.usage.map((u, i) => [`lparlab ${u}`, i === 0 ? c.summary : '']));
  const width = Math.min(72, Math.max(...rows.map(([u]) => u.length)));
  const lines = rows.map(([u, s]) => (s ? (u.length > width ? `  ${u}\n  ${''.padEnd(width)}  ${s}` : `  ${u.padEnd(width)}  ${s}`) : `  ${u}`));
  return `lparlab — every box a process, every wire a socket

${lines.join('\n')}

Every verb takes --config FILE or --run-dir DIR to find its platform (default:
$${RUN_DIR_ENV}, else the run directory of the built-in platform), and --help.
`;
}
