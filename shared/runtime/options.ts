import { parseArgs } from 'node:util';

/**
 * Command-line options for every lparlab program (the CLI's verbs, the
 * services, the benches), on node:util's parseArgs: strict (an unknown option
 * is an error naming it), positionals allowed anywhere, short flags only where
 * a table declares them (so `-c` can be a count for one verb and nothing for
 * another), combined short booleans (`-lv`). parseArgs knows strings and
 * booleans only; numbers are declared here and checked, so `-c abc` is an
 * error naming `-c` instead of NaN further down.
 */
export type OptionSpec =
  | { type: 'boolean'; short?: string; help: string }
  | {
      type: 'string';
      short?: string;
      multiple?: boolean;
      /** What the value is, for --help: FILE, NAME, ... */
      arg: string;
      help: string;
      /**
       * Takes `--name=VALUE` or a bare `--name` (then the value is ''), as node's
       * own --inspect[=HOST:PORT]; a bare one never swallows the next argument.
       */
      optionalValue?: boolean;
    }
  | {
      type: 'integer' | 'number';
      short?: string;
      arg: string;
      help: string;
      min?: number;
      max?: number;
    };

export type OptionsTable = Record<string, OptionSpec>;

/** The parsed values of a table: booleans, strings (arrays when multiple), checked numbers; undefined when absent. */
export type OptionValues<T extends OptionsTable> = {
  [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : T[K] extends { type: 'integer' | 'number' } ? number : T[K] extends { multiple: true } ? string[] : string;
};

export interface Parsed<T extends OptionsTable> {
  values: OptionValues<T>;
  positionals: string[];
}

/** A command line that does not fit its table: the program prints it and exits 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `-c, --count` or `--count`: how an option is named in errors and help. */
export function optionName(name: string, spec: OptionSpec): string {
  return spec.short ? `-${spec.short}, --${name}` : `--${name}`;
}

export function parseOptions<T extends OptionsTable>(argv: readonly string[], table: T): Parsed<T> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(table)) {
    config[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string', ...(spec.short ? { short: spec.short } : {}), ...(spec.type === 'string' && spec.multiple ? { multiple: true } : {}) };
  }
  const optional = new Set(Object.entries(table).filter(([, s]) => s.type === 'string' && s.optionalValue).map(([n]) => `--${n}`));
  const args = argv.map((a) => (optional.has(a) ? `${a}=` : a));
  let parsed: { values: Record<string, string | boolean | Array<string | boolean> | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options: config, strict: true, allowPositionals: true });
  } catch (err) {
    // parseArgs' own text names the option ("Unknown option '--x'", "Option '-c, --count <value>' argument missing").
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  const values: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(parsed.values)) {
    const spec = table[name];
    if (raw === undefined || !spec) continue;
    if (spec.type === 'integer' || spec.type === 'number') values[name] = checkNumber(name, spec, String(raw));
    else values[name] = raw;
  }
  return { values: values as OptionValues<T>, positionals: parsed.positionals };
}

function checkNumber(name: string, spec: Extract<OptionSpec, { type: 'integer' | 'number' }>, raw: string): number {
  const n = raw.trim() === '' ? NaN : Number(raw);
  const what = spec.type === 'integer' ? 'a whole number' : 'a number';
  const range = spec.min !== undefined && spec.max !== undefined ? ` from ${spec.min} to ${spec.max}` : spec.min !== undefined ? ` >= ${spec.min}` : spec.max !== undefined ? ` <= ${spec.max}` : '';
  if (!Number.isFinite(n) || (spec.type === 'integer' && !Number.isInteger(n)) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    throw new UsageError(`option ${optionName(name, spec)}: "${raw}" is not ${what}${range}`);
  }
  return n;
}

/** A required string option, or a UsageError naming it. */
export function required<T extends OptionsTable, K extends keyof T & string>(values: OptionValues<T>, name: K): NonNullable<OptionValues<T>[K]> {
  const v = values[name];
  if (v === undefined) throw new UsageError(`missing required option --${name}`);
  return v as NonNullable<OptionValues<T>[K]>;
}

/** A positional that must be a number in a range (`fault a drop 5`, `nc ... PORT`), or a UsageError naming it. */
export function numberArg(what: string, raw: string | undefined, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  if (raw === undefined) throw new UsageError(`missing ${what}`);
  const n = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    const range = opts.min !== undefined && opts.max !== undefined ? ` from ${opts.min} to ${opts.max}` : opts.min !== undefined ? ` >= ${opts.min}` : '';
    throw new UsageError(`${what}: "${raw}" is not ${opts.integer ? 'a whole number' : 'a number'}${range}`);
  }
  return n;
}

/** The options of a table as --help lists them, one per line, aligned. */
export function optionsHelp(table: OptionsTable): string {
  const rows = Object.entries(table).map(([name, spec]) => {
    const arg = spec.type === 'boolean' ? '' : spec.type === 'string' && spec.optionalValue ? `[=${spec.arg}]` : ` ${spec.arg}`;
    return [`${optionName(name, spec)}${arg}`, spec.help + (spec.type === 'string' && spec.multiple ? ' (repeatable)' : '')];
  });
  const width = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`).join('\n');
}
