/**
 * node:net's `normalizeArgs` (lib/net.js): connect, createConnection and
 * listen take either an options object or (port[, host]) positionally, with
 * an optional callback last. One function reads both forms, so the four
 * entry points cannot drift apart; a null or missing first argument is an
 * empty options object, as in Node.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- listeners of any arity, as EventEmitter takes them
export type Callback = (...args: any[]) => void;

export function normalizeArgs(args: readonly unknown[]): [options: Record<string, unknown>, cb: Callback | undefined] {
  if (args.length === 0) return [{}, undefined];
  const arg0 = args[0];
  let options: Record<string, unknown> = {};
  if (typeof arg0 === 'object' && arg0 !== null) options = arg0 as Record<string, unknown>;
  else if (arg0 !== undefined && arg0 !== null && typeof arg0 !== 'function') {
    options.port = arg0;
    if (args.length > 1 && typeof args[1] === 'string') options.host = args[1];
  }
  const last = args[args.length - 1];
  return [options, typeof last === 'function' ? (last as Callback) : undefined];
}

/** Node's `ERR_SOCKET_BAD_PORT` check: a port is an integer (or its decimal string) 0..65535; `allowZero` for listen. */
export function validatePort(port: unknown, allowZero: boolean): number {
  const n = typeof port === 'string' && /^[0-9]+$/.test(port.trim()) ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    const err = new RangeError(`Port should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${typeof port === 'string' ? `"${port}"` : String(port)}.`) as RangeError & { code: string };
    err.code = 'ERR_SOCKET_BAD_PORT';
    throw err;
  }
  return n;
}
