/** Command-line options of the benchmark peers: `ROLE --key value ...`. */
export function opts(argv: string[]): { role: string; o: Map<string, string> } {
  const o = new Map<string, string>();
  for (let i = 1; i < argv.length; i += 2) o.set(argv[i].replace(/^--/, ''), argv[i + 1]);
  return { role: argv[0], o };
}

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
