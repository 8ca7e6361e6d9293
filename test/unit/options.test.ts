import { describe, expect, it } from 'vitest';
import { UsageError, numberArg, parseOptions, required } from '../../shared/runtime/options.ts';

// shared/runtime/options.ts: node:util parseArgs, strict, with checked numbers (the CLI, services and benches).
const TABLE = {
  count: { type: 'integer', short: 'c', arg: 'N', min: 1, help: 'count' },
  interval: { type: 'number', short: 'i', arg: 'S', min: 0, help: 'interval' },
  listen: { type: 'boolean', short: 'l', help: 'listen' },
  verbose: { type: 'boolean', short: 'v', help: 'verbose' },
  except: { type: 'string', multiple: true, arg: 'NAME', help: 'except' },
  inspect: { type: 'string', optionalValue: true, arg: 'HOST:PORT', help: 'inspect' },
  id: { type: 'string', arg: 'NAME', help: 'id' },
} as const;

describe('command-line options', () => {
  it('parses short and long forms, anywhere among the positionals', () => {
    const r = parseOptions(['lpar1', '-c', '3', '10.1.0.2', '--interval=0.5', '-lv', '--except', 'a', '--except', 'b'], TABLE);
    expect(r.positionals).toEqual(['lpar1', '10.1.0.2']);
    expect(r.values).toEqual({ count: 3, interval: 0.5, listen: true, verbose: true, except: ['a', 'b'] });
  });

  it('takes an optional value (--inspect or --inspect=HOST:PORT) without swallowing the next argument', () => {
    expect(parseOptions(['--inspect', 'x'], TABLE)).toEqual({ values: { inspect: '' }, positionals: ['x'] });
    expect(parseOptions(['--inspect=127.0.0.1:0'], TABLE).values).toEqual({ inspect: '127.0.0.1:0' });
  });

  it('refuses unknown options and bad numbers, naming the option', () => {
    expect(() => parseOptions(['--bogus'], TABLE)).toThrow(/Unknown option '--bogus'/);
    expect(() => parseOptions(['-x'], TABLE)).toThrow(/Unknown option '-x'/);
    expect(() => parseOptions(['-c', 'abc'], TABLE)).toThrow(/option -c, --count: "abc" is not a whole number >= 1/);
    expect(() => parseOptions(['-c', '1.5'], TABLE)).toThrow(/-c, --count: "1.5"/);
    expect(() => parseOptions(['-c', '0'], TABLE)).toThrow(/-c, --count: "0"/);
    expect(() => parseOptions(['-i', ''], TABLE)).toThrow(/-i, --interval: "" is not a number/);
    expect(() => parseOptions(['-c'], TABLE)).toThrow(UsageError);
    expect(() => parseOptions(['--listen=yes'], TABLE)).toThrow(/'-l, --listen' does not take an argument/);
  });

  it('reads required options and numeric positionals with errors that name them', () => {
    expect(() => required(parseOptions([], TABLE).values, 'id')).toThrow(/missing required option --id/);
    expect(numberArg('PORT', '80', { integer: true, min: 1, max: 65535 })).toBe(80);
    expect(() => numberArg('PORT', '70000', { integer: true, min: 1, max: 65535 })).toThrow(/PORT: "70000" is not a whole number from 1 to 65535/);
  });
});
