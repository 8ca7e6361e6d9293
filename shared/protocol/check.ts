/**
 * Checked decoding of control messages (shared/control/codec.ts gives a
 * msgpack map with a string `t`; everything else in it is untrusted). What
 * shared/wire's views do for bytes, this does for messages: a message is
 * checked once, field by field, into a typed value, or refused with a reason
 * that names the field ("ping: field "count": an integer in 1..1000000 (got
 * "3")"), so a service never reads `Number(m.count ?? 1)` off a bag.
 *
 * A decoder is a `Check<T>`: a function of the value and the field's name
 * that returns the typed value or throws a FieldError. Checks compose
 * (`shape`, `arrayOf`, `variant`), and `Infer` gives the TypeScript type of a
 * shape, so a message's type and its decoder are written once.
 *
 * Absent and nil are the same for an optional field: msgpack has no
 * `undefined`, and a sender's `{x: undefined}` arrives either way. The typed
 * value leaves such a field out.
 */

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly want: string,
    got: unknown,
  ) {
    super(`field "${field}": ${want} (got ${describe(got)})`);
    this.name = 'FieldError';
  }
}

/** A refused message: the text an error reply carries. */
export class MessageError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'MessageError';
  }
}

export type Check<T> = (v: unknown, field: string) => T;
/** A check whose field may be absent (or nil): `shape` makes its key optional. */
export type OptionalCheck<T> = Check<T | undefined> & { readonly optional: true };

/** What a got-value looks like in a reason: short, whatever the sender put there. */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'nil';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === 'object' ? 'a map' : typeof v;
}

/** Bounds on strings a peer may send: names of nodes and virtual LANs, and free text. */
export const NAME_MAX = 64;
export const TEXT_MAX = 256;

/** A string of at most `max` characters (empty allowed). */
export function bounded(max: number): Check<string> {
  return (v, f) => {
    if (typeof v !== 'string' || v.length > max) throw new FieldError(f, `a string of at most ${max} characters`, v);
    return v;
  };
}

export const str: Check<string> = (v, f) => {
  if (typeof v !== 'string') throw new FieldError(f, 'a string', v);
  return v;
};

/** A string of 1..max characters: names of nodes, VLANs, purposes. */
export function name(max = 256): Check<string> {
  return (v, f) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new FieldError(f, `a string of 1..${max} characters`, v);
    return v;
  };
}

export function int(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Check<number> {
  return (v, f) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new FieldError(f, `an integer in ${min}..${max}`, v);
    return v;
  };
}

export function num(min = -Infinity, max = Infinity): Check<number> {
  return (v, f) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new FieldError(f, `a number in ${min}..${max}`, v);
    return v;
  };
}

export const port: Check<number> = int(0, 65535);

export const bool: Check<boolean> = (v, f) => {
  if (typeof v !== 'boolean') throw new FieldError(f, 'true or false', v);
  return v;
};

/** Binary (msgpack bin): a Buffer over the same bytes, no copy. */
export const bytes: Check<Buffer> = (v, f) => {
  if (!(v instanceof Uint8Array)) throw new FieldError(f, 'binary data', v);
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
};

/** Bytes written as hex text (an even number of hex digits). */
export const hex: Check<Buffer> = (v, f) => {
  if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) throw new FieldError(f, 'hex digits, two per byte', v);
  return Buffer.from(v, 'hex');
};

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An IPv4 address in dotted-quad form. */
export const ipv4: Check<string> = (v, f) => {
  if (typeof v !== 'string' || !DOTTED_QUAD.test(v)) throw new FieldError(f, 'an IPv4 address (a.b.c.d)', v);
  return v;
};

/** An IPv4 prefix, a.b.c.d/n. */
export const cidr: Check<string> = (v, f) => {
  const slash = typeof v === 'string' ? v.indexOf('/') : -1;
  if (slash < 0 || !DOTTED_QUAD.test((v as string).slice(0, slash)) || !/^(3[0-2]|[12]?\d)$/.test((v as string).slice(slash + 1))) throw new FieldError(f, 'an IPv4 prefix (a.b.c.d/n)', v);
  return v as string;
};

/** A string of at most `max` characters that `parse` accepts (an address, say): `parse` throws on a bad one. */
export function parsed(max: number, parse: (s: string) => unknown, want: string): Check<string> {
  return (v, f) => {
    if (typeof v !== 'string' || v.length > max) throw new FieldError(f, want, v);
    try {
      parse(v);
    } catch {
      throw new FieldError(f, want, v);
    }
    return v;
  };
}

/**
 * For a field a peer of another build may send differently: the value when
 * it passes `c`, else nothing (the receiver's default applies).
 */
export function lenient<T>(c: Check<T>): OptionalCheck<T> {
  return opt((v, f) => {
    try {
      return c(v, f);
    } catch {
      return undefined as unknown as T;
    }
  });
}

/** An optional field with the value it takes when absent (or nil): the decoded value always has it. */
export function withDefault<T>(c: Check<T>, fallback: T): Check<T> {
  return (v, f) => (v === undefined || v === null ? fallback : c(v, f));
}

export function oneOf<const T extends string>(values: readonly T[], want?: (got: unknown) => string): Check<T> {
  return (v, f) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw new FieldError(f, want ? want(v) : `one of ${values.join(', ')}`, v);
    return v as T;
  };
}

export function literal<const T extends string | number | boolean>(value: T): Check<T> {
  return (v, f) => {
    if (v !== value) throw new FieldError(f, JSON.stringify(value), v);
    return value;
  };
}

export function arrayOf<T>(item: Check<T>, max = 1 << 20, min = 0): Check<T[]> {
  const want = min === 0 ? `an array of at most ${max}` : min === max ? `an array of ${max}` : `an array of ${min}..${max}`;
  return (v, f) => {
    if (!Array.isArray(v) || v.length > max || v.length < min) throw new FieldError(f, want, v);
    return v.map((x, i) => item(x, `${f}[${i}]`));
  };
}

/** A map of string keys to values of one kind. */
export function recordOf<T>(item: Check<T>): Check<Record<string, T>> {
  return (v, f) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new FieldError(f, 'a map', v);
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) out[k] = item(x, `${f}.${k}`);
    return out;
  };
}

/** Any value: for what a field carries through unread (an app's own report, a user module's options). */
export const anything: Check<unknown> = (v) => v;

export function either<A, B>(a: Check<A>, b: Check<B>, want: string): Check<A | B> {
  return (v, f) => {
    try {
      return a(v, f);
    } catch {
      try {
        return b(v, f);
      } catch {
        throw new FieldError(f, want, v);
      }
    }
  };
}

export function opt<T>(c: Check<T>): OptionalCheck<T> {
  const check = ((v: unknown, f: string) => (v === undefined || v === null ? undefined : c(v, f))) as OptionalCheck<T>;
  (check as { optional: boolean }).optional = true;
  return check;
}

export function nullable<T>(c: Check<T>): Check<T | null> {
  return (v, f) => (v === null || v === undefined ? null : c(v, f));
}

type Shape = Record<string, Check<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Out<C> = C extends Check<infer T> ? T : never;
type RequiredKeys<S> = { [K in keyof S]: S[K] extends { readonly optional: true } ? never : K }[keyof S];
type OptionalKeys<S> = { [K in keyof S]: S[K] extends { readonly optional: true } ? K : never }[keyof S];
/** The type a shape decodes to: optional checks give optional keys. */
export type Infer<S extends Shape> = Simplify<{ [K in RequiredKeys<S>]: Out<S[K]> } & { [K in OptionalKeys<S>]?: Exclude<Out<S[K]>, undefined> }>;

/**
 * A map with the given fields (others are ignored: a newer sender may add
 * some). The value has only the shape's keys, and no key for an absent
 * optional field.
 */
export function shape<S extends Shape>(fields: S, prefix = ''): Check<Infer<S>> {
  const entries = Object.entries(fields);
  return (v, f) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new FieldError(f, 'a map', v);
    const m = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const at = f === '' ? prefix : `${f}.`;
    for (const [k, c] of entries) {
      const x = c(m[k], `${at}${k}`);
      if (x !== undefined) out[k] = x;
    }
    return out as Infer<S>;
  };
}

/**
 * A map with the given fields checked and every other field kept as it is:
 * for a reply that carries something open-ended beside its fixed fields (an
 * app's own report next to its name).
 */
export function openShape<S extends Shape>(fields: S): Check<Infer<S> & Record<string, unknown>> {
  const closed = shape(fields);
  return (v, f) => {
    const checked = closed(v, f);
    return { ...(v as Record<string, unknown>), ...checked };
  };
}

/**
 * A map whose field `key` picks one of several shapes (a message's `t`, a
 * fault's `action`, a route's `op`). The value carries `key` too.
 */
export function variant<K extends string, V extends Record<string, Shape>>(
  key: K,
  variants: V,
  want?: (got: unknown) => string,
): Check<{ [N in keyof V]: Simplify<{ [P in K]: N } & Infer<V[N]>> }[keyof V]> {
  const checks = new Map(Object.entries(variants).map(([n, s]) => [n, shape(s)]));
  const names = [...checks.keys()];
  return ((v: unknown, f: string) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new FieldError(f, 'a map', v);
    const tag = (v as Record<string, unknown>)[key];
    const c = typeof tag === 'string' ? checks.get(tag) : undefined;
    if (!c) throw new FieldError(f === '' ? key : `${f}.${key}`, want ? want(tag) : `one of ${names.join(', ')}`, tag);
    return { [key]: tag, ...(c(v, f) as object) };
  }) as never;
}

/** Runs a check on a whole message: the value, or the reason prefixed with what the message is. */
export function decodeWith<T>(check: Check<T>, what: string, raw: unknown): Decoded<T> {
  try {
    return { ok: true, value: check(raw, '') };
  } catch (err) {
    if (err instanceof FieldError) return { ok: false, reason: `${what}: ${err.message}` };
    throw err;
  }
}

/** The value of a decode, or a MessageError with its reason (what a verb handler throws: it becomes the error reply). */
export function orThrow<T>(d: Decoded<T>): T {
  if (!d.ok) throw new MessageError(d.reason);
  return d.value;
}

/** A message's fields: a shape, or a check of its own (a message with a variant inside, as a route's `op`). */
export type MessageBody = Shape | Check<object>;
type BodyOf<B> = B extends Check<infer T> ? T : B extends Shape ? Infer<B> : never;

/** Messages of one channel by their `t`: the typed message of each. */
export type MessageMap<V extends Record<string, MessageBody>> = { [N in keyof V & string]: Simplify<{ t: N } & BodyOf<V[N]>> };

/**
 * The decoders of one channel's messages, one body per `t`. `decode` takes
 * any message of the set; `decodeOf(t, raw)` one whose `t` is known already
 * (a handler registered for `t`), so the value has that member's type.
 */
export class MessageSet<V extends Record<string, MessageBody>> {
  private readonly checks: Map<string, Check<unknown>>;
  readonly names: ReadonlyArray<keyof V & string>;

  constructor(
    private readonly what: string,
    bodies: V,
  ) {
    this.checks = new Map(Object.entries(bodies).map(([n, b]) => [n, typeof b === 'function' ? b : shape(b)]));
    this.names = [...this.checks.keys()] as Array<keyof V & string>;
  }

  has(t: string): t is keyof V & string {
    return this.checks.has(t);
  }

  decode(raw: unknown): Decoded<MessageMap<V>[keyof V & string]> {
    const t = typeof raw === 'object' && raw !== null ? (raw as { t?: unknown }).t : undefined;
    if (typeof t !== 'string' || !this.checks.has(t)) return { ok: false, reason: `${this.what}: field "t": one of ${this.names.join(', ')} (got ${describe(t)})` };
    return this.decodeOf(t as keyof V & string, raw);
  }

  decodeOf<N extends keyof V & string>(t: N, raw: unknown): Decoded<MessageMap<V>[N]> {
    const check = this.checks.get(t);
    if (!check) return { ok: false, reason: `${this.what}: no message "${t}"` };
    const d = decodeWith(check, t, raw);
    // The body's check passed every field of member `t`; the tag is the one asked for.
    return d.ok ? { ok: true, value: { t, ...(d.value as object) } as MessageMap<V>[N] } : d;
  }
}

/** The message type of a set. */
export type MessagesOf<S> = S extends MessageSet<infer V> ? MessageMap<V> : never;
