// Checks shared by the payload codecs (codec.ts, msgpack_codec.ts): what a
// codec refuses, with which message, and the bigint digit cap.

/** Default of `maxBigIntDigits` of both codecs. */
export const DEFAULT_MAX_BIGINT_DIGITS = 4096;

/**
 * Deepest nesting of arrays and objects either built-in codec encodes or
 * decodes: a deeper value is refused when encoding (`TypeError` naming the
 * path) and when decoding (`RangeError`, that call fails), so that no decode
 * recurses without bound. `Uint8Array`, `Date` and tagged scalars are no
 * levels.
 *
 * @example 1000 levels travel, 1001 do not
 * ```ts
 * import { jsonCodec, MAX_NESTING, msgpackCodec } from "../../protocol.ts";
 * import assert from "node:assert/strict";
 *
 * const nest = (n: number) => {
 *   let v: unknown = 1;
 *   for (let i = 0; i < n; i++) v = [v];
 *   return v;
 * };
 * for (const codec of [jsonCodec, msgpackCodec]) {
 *   assert.deepEqual(codec.decode(codec.encode(nest(MAX_NESTING))), nest(MAX_NESTING));
 *   assert.throws(() => codec.encode(nest(MAX_NESTING + 1)), TypeError);
 * }
 * ```
 */
export const MAX_NESTING = 1000;

/** The encoding refusal for a value nested deeper than {@linkcode MAX_NESTING}. */
export const TOO_DEEP = `nesting deeper than ${MAX_NESTING} levels`;

/** Names an unsupported value for an encoding error. */
export function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return "a symbol";
  if (value instanceof Map) return "a Map";
  if (value instanceof Set) return "a Set";
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  const name = typeof ctor === "function" && ctor.name ? ctor.name : "unknown";
  return `an instance of ${name}`;
}

/** Throws the encoding `TypeError` naming the path. */
export function fail(path: string, what: string): never {
  throw new TypeError(
    `Cannot encode value at ${path}: ${what} is not supported`,
  );
}

/**
 * A decoding error built from a peer's bytes: its message names what was
 * wrong and where, never a value read from the payload (it is sent back to
 * the peer as "cannot decode params: ...").
 */
export function malformedValue(what: string): never {
  throw new SyntaxError(`Cannot decode value: ${what}`);
}

/**
 * Sets an own enumerable property of a decoded object, also for the key
 * `__proto__` (an assignment would set the prototype instead).
 */
export function setOwn(
  obj: Record<string, unknown>,
  key: string,
  value: unknown,
): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else obj[key] = value;
}

const lax = new TextDecoder();
const fatal = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes UTF-8, or returns undefined when the bytes are not UTF-8. The
 * lenient decoder is several times faster than a fatal one; only text that
 * decodes with a U+FFFD (a replacement, or a real one) is checked again.
 */
export function strictUtf8(bytes: Uint8Array): string | undefined {
  const text = lax.decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  try {
    return fatal.decode(bytes);
  } catch {
    return undefined;
  }
}

const DECIMAL = /^-?[0-9]+$/;

/**
 * Parses a decimal bigint, refusing more than `maxDigits` digits first:
 * BigInt() of a decimal string costs time quadratic in its length (~200 ms
 * for a million digits).
 */
export function decodeBigInt(v: unknown, maxDigits: number): bigint {
  if (typeof v !== "string") malformedValue("malformed bigint");
  // The cap first: the regular expression below is linear, but a 4 MiB
  // string is refused without reading it.
  const digits = v.length - (v.charCodeAt(0) === 45 ? 1 : 0);
  if (digits > maxDigits) {
    throw new RangeError(
      `Cannot decode value: bigint of ${digits} digits exceeds the limit of ${maxDigits} digits`,
    );
  }
  if (!DECIMAL.test(v)) malformedValue("malformed bigint");
  return BigInt(v);
}

/** Checks `maxBigIntDigits` of a codec's options. */
export function checkMaxDigits(codec: string, maxDigits: number): void {
  if (!(maxDigits >= 1)) {
    throw new RangeError(
      `Cannot create ${codec} codec: maxBigIntDigits must be at least 1, got ${maxDigits}`,
    );
  }
}

// Fast path: a primitive every codec carries as is, or a flat array of them
// (the usual params list). Anything else takes the codec's checking walk.
function isSimplePrimitive(v: unknown): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v) && (v !== 0 || !Object.is(v, -0));
    case "object":
      return v === null;
  }
  return false;
}

/** True for a primitive or a flat array (<= 64) of primitives needing no tag. */
export function isSimple(value: unknown): boolean {
  if (isSimplePrimitive(value)) return true;
  if (!Array.isArray(value) || value.length > 64) return false;
  for (let i = 0; i < value.length; i++) {
    if (!(i in value) || !isSimplePrimitive(value[i])) return false;
  }
  return true;
}
