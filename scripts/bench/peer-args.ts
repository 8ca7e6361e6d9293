import { UsageError, optionsHelp, parseOptions, type OptionsTable } from '../../shared/runtime/options.ts';

/**
 * Command-line options of the benchmark peers: `ROLE --key value ...`, parsed
 * strictly with the peer's own table (shared/runtime/options.ts), so a flag
 * the bench passes and the peer does not know is an error, not a default.
 * A command line that does not fit ends the peer with exit code 2.
 */
export function opts(argv: string[], table: OptionsTable): { role: string; o: Map<string, string> } {
  try {
    const { values, positionals } = parseOptions(argv, table);
    if (positionals.length !== 1) throw new UsageError(`want one role (server or client), got ${positionals.length ? positionals.join(' ') : 'none'}`);
    return { role: positionals[0], o: new Map(Object.entries(values).map(([k, v]) => [k, String(v)])) };
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\noptions:\n${optionsHelp(table)}\n`);
    process.exit(2);
  }
}

/** A numeric option (checked by the table's integer type), or its default; required when there is none. */
export function num(o: Map<string, string>, k: string, dflt?: number): number {
  const v = o.get(k);
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`--${k} is required`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a number >= 0`);
  return n;
}
