/**
 * Checked reading of a received control message's fields: what each
 * protocol's decoders are written with. A message between processes is a
 * msgpack map (shared/control/codec.ts); whoever sent it, its fields are
 * untrusted until a decoder has checked each one. A decoder returns the
 * typed message or a reason naming the first bad field, never throws, and
 * nothing downstream casts a received field.
 */
import type { ControlMessage } from '../control/codec.ts';

/** A checked message, or why it was refused. */
export type Decoded<T> = { ok: true; msg: T } | { ok: false; reason: string };

/** One decoder per message type of a channel: `t` selects it. */
export type DecoderTable<U extends { t: string }> = { [T in U['t']]: (f: Fields) => Extract<U, { t: T }> };

/** Bounds on strings a peer may send: names of nodes and virtual LANs, and free text. */
export const NAME_MAX = 64;
export const TEXT_MAX = 256;

class FieldError extends Error {}

/** The fields of one received map, each read with its check; the first failing check refuses the message. */
export class Fields {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly at = '',
  ) {}

  private fail(name: string, want: string): never {
    throw new FieldError(`field "${this.at}${name}" must be ${want}`);
  }

  has(name: string): boolean {
    return this.o[name] !== undefined && this.o[name] !== null;
  }

  str(name: string, max = NAME_MAX): string {
    const v = this.o[name];
    if (typeof v !== 'string' || v.length > max) this.fail(name, `a string of at most ${max} characters`);
    return v;
  }

  /** A non-empty string of at most `max` characters. */
  name(name: string, max = NAME_MAX): string {
    const v = this.str(name, max);
    if (v.length === 0) this.fail(name, 'a non-empty string');
    return v;
  }

  optStr(name: string, max = NAME_MAX): string | undefined {
    return this.has(name) ? this.str(name, max) : undefined;
  }

  /** A string, or null (sent as absent or nil). */
  strOrNull(name: string, max = NAME_MAX): string | null {
    return this.has(name) ? this.str(name, max) : null;
  }

  int(name: string, min: number, max: number): number {
    const v = this.o[name];
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) this.fail(name, `an integer in ${min}..${max}`);
    return v as number;
  }

  optInt(name: string, min: number, max: number): number | undefined {
    return this.has(name) ? this.int(name, min, max) : undefined;
  }

  /** For a field a peer of another build may send differently: the value when it is an integer in min..max, else undefined (the receiver's default applies). */
  maybeInt(name: string, min: number, max: number): number | undefined {
    const v = this.o[name];
    return Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : undefined;
  }

  /** As maybeInt, for a boolean. */
  maybeBool(name: string): boolean | undefined {
    const v = this.o[name];
    return typeof v === 'boolean' ? v : undefined;
  }

  bool(name: string): boolean {
    const v = this.o[name];
    if (typeof v !== 'boolean') this.fail(name, 'true or false');
    return v;
  }

  optBool(name: string): boolean | undefined {
    return this.has(name) ? this.bool(name) : undefined;
  }

  oneOf<const V extends string>(name: string, values: readonly V[]): V {
    const v = this.o[name];
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(name, `one of ${values.join(', ')}`);
    return v as V;
  }

  bytes(name: string, length?: number): Buffer {
    const v = this.o[name];
    if (!(v instanceof Uint8Array) || (length !== undefined && v.length !== length)) this.fail(name, length === undefined ? 'bytes' : `${length} bytes`);
    return Buffer.from(v.buffer, v.byteOffset, v.length);
  }

  /** A nested map, read with its own checks. */
  obj<T>(name: string, read: (f: Fields) => T): T {
    const v = this.o[name];
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) this.fail(name, 'a map');
    return read(new Fields(v as Record<string, unknown>, `${this.at}${name}.`));
  }

  /** An array of `min`..`max` maps, each read with its own checks. */
  list<T>(name: string, max: number, read: (f: Fields) => T, min = 0): T[] {
    const v = this.o[name];
    if (!Array.isArray(v) || v.length > max || v.length < min) this.fail(name, min === max ? `a list of ${max} entries` : `a list of ${min}..${max} entries`);
    return v.map((e, i) => {
      if (e === null || typeof e !== 'object' || Array.isArray(e)) this.fail(`${name}[${i}]`, 'a map');
      return read(new Fields(e as Record<string, unknown>, `${this.at}${name}[${i}].`));
    });
  }

  /** An array of `count.min`..`count.max` integers in min..max. */
  ints(name: string, count: { min: number; max: number }, min: number, max: number): number[] {
    const v = this.o[name];
    const want = count.min === count.max ? `${count.max}` : `${count.min}..${count.max}`;
    if (!Array.isArray(v) || v.length < count.min || v.length > count.max || v.some((e) => !Number.isInteger(e) || e < min || e > max)) this.fail(name, `a list of ${want} integers in ${min}..${max}`);
    return v as number[];
  }

  /** An array of at most `max` arrays (tuples), each read by `read`, which calls `bad` to refuse one. */
  rows<T>(name: string, max: number, read: (row: unknown[], bad: (want: string) => never) => T): T[] {
    const v = this.o[name];
    if (!Array.isArray(v) || v.length > max) this.fail(name, `a list of at most ${max} entries`);
    return v.map((row, i) => {
      const bad = (want: string): never => this.fail(`${name}[${i}]`, want);
      return Array.isArray(row) ? read(row, bad) : bad('a list');
    });
  }

  /** A string that `parse` accepts (an address, say): `parse` throws on a bad one. */
  parsed(name: string, max: number, parse: (s: string) => unknown, want: string): string {
    const v = this.str(name, max);
    try {
      parse(v);
    } catch {
      this.fail(name, want);
    }
    return v;
  }

  /** A map of named counters (a status's `stats`): every value a finite number. */
  counters(name: string): Record<string, number> {
    const v = this.record(name);
    for (const [k, n] of Object.entries(v)) if (typeof n !== 'number' || !Number.isFinite(n)) this.fail(`${name}.${k.slice(0, NAME_MAX)}`, 'a number');
    return v as Record<string, number>;
  }

  /** A map of any shape, passed on as data the receiver does not interpret (an app's options). */
  record(name: string): Record<string, unknown> {
    const v = this.o[name];
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) this.fail(name, 'a map');
    return v as Record<string, unknown>;
  }
}

/** Reads one received map with `read`: the typed value, or the reason (prefixed by `what`) it is refused. */
export function readFields<T>(what: string, msg: Record<string, unknown>, read: (f: Fields) => T): Decoded<T> {
  try {
    return { ok: true, msg: read(new Fields(msg)) };
  } catch (err) {
    if (err instanceof FieldError) return { ok: false, reason: `${what}: ${err.message}` };
    throw err;
  }
}

/** Runs the decoder `table` names for `msg.t`: the typed message, or the reason it is refused. */
export function decodeWith<U extends { t: string }>(channel: string, table: DecoderTable<U>, msg: ControlMessage): Decoded<U> {
  const t = msg.t;
  if (!Object.hasOwn(table, t)) return { ok: false, reason: `no ${channel} message "${t.slice(0, NAME_MAX)}"` };
  return readFields(`${channel} "${t}"`, msg, (table as Record<string, (f: Fields) => U>)[t]);
}
