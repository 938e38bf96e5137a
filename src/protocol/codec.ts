/**
 * Payload codecs. {@linkcode jsonCodec} is the default: JSON extended with
 * tags so that `undefined`, `Uint8Array`, `bigint`, `Date`, `NaN`,
 * `±Infinity` and `-0` round-trip. Anything else that JSON would silently
 * mangle (functions, symbols, `Map`, `Set`, class instances, cycles) fails
 * with a `TypeError` on the encoding side, before anything is sent.
 *
 * @module
 */

/**
 * Turns values into payload bytes and back. Both peers must use the same
 * codec. `encode` must throw a `TypeError` for values it cannot carry.
 *
 * @example A codec that only carries strings
 * ```ts
 * import type { Codec } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const stringCodec: Codec = {
 *   name: "string",
 *   encode(value: unknown): Uint8Array {
 *     if (typeof value !== "string") throw new TypeError("Cannot encode value: only strings");
 *     return new TextEncoder().encode(value);
 *   },
 *   decode: (bytes: Uint8Array): unknown => new TextDecoder().decode(bytes),
 * };
 * assert.equal(stringCodec.decode(stringCodec.encode("hi")), "hi");
 * ```
 */
export interface Codec {
  /**
   * The codec's name, announced in the settings exchange: a client and a
   * server connect only when their codecs have the same name.
   */
  readonly name: string;
  /**
   * Encodes a value.
   *
   * @param value The value.
   * @returns Fresh bytes the caller may keep.
   */
  encode(value: unknown): Uint8Array;
  /**
   * Decodes a value. `bytes` may be a view into a reused buffer: the codec
   * must not keep a reference to it.
   *
   * @param bytes The payload.
   * @returns The value.
   */
  decode(bytes: Uint8Array): unknown;
}

/**
 * The reserved key that marks a tagged value in {@linkcode jsonCodec}.
 *
 * @example An object using the key is escaped
 * ```ts
 * import { jsonCodec, TAG_KEY } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const value = { [TAG_KEY]: "bigint", v: "1" };
 * assert.deepEqual(jsonCodec.decode(jsonCodec.encode(value)), value);
 * ```
 */
export const TAG_KEY = "$zk";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const objectProto = Object.prototype;

function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return "a symbol";
  if (value instanceof Map) return "a Map";
  if (value instanceof Set) return "a Set";
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  const name = typeof ctor === "function" && ctor.name ? ctor.name : "unknown";
  return `an instance of ${name}`;
}

function fail(path: string, what: string): never {
  throw new TypeError(
    `Cannot encode value at ${path}: ${what} is not supported`,
  );
}

// The platform's base64 (Uint8Array.prototype.toBase64 / Uint8Array.fromBase64,
// in Deno since V8 shipped them) is ~250x faster than btoa over a byte string
// for 4 KiB payloads: it dominated the payload benchmarks.
interface Base64Bytes {
  toBase64(): string;
}
interface Base64BytesConstructor {
  fromBase64(text: string): Uint8Array;
}

function bytesToBase64(bytes: Uint8Array): string {
  return (bytes as unknown as Base64Bytes).toBase64();
}

function base64ToBytes(text: string): Uint8Array {
  return (Uint8Array as unknown as Base64BytesConstructor).fromBase64(text);
}

function toJson(value: unknown, path: string, seen: Set<object>): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return {
        [TAG_KEY]: "num",
        v: String(Object.is(value, -0) ? "-0" : value),
      };
    case "undefined":
      return { [TAG_KEY]: "undef" };
    case "bigint":
      return { [TAG_KEY]: "bigint", v: value.toString() };
    case "function":
    case "symbol":
      return fail(path, describe(value));
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj)) fail(path, "a cycle");
  if (Array.isArray(obj)) {
    seen.add(obj);
    const out = new Array(obj.length);
    for (let i = 0; i < obj.length; i++) {
      out[i] = toJson(obj[i], `${path}[${i}]`, seen);
    }
    seen.delete(obj);
    return out;
  }
  if (obj instanceof Uint8Array && obj.constructor === Uint8Array) {
    return { [TAG_KEY]: "bytes", v: bytesToBase64(obj) };
  }
  if (obj instanceof Date && obj.constructor === Date) {
    const t = obj.getTime();
    return { [TAG_KEY]: "date", v: Number.isNaN(t) ? null : t };
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== objectProto && proto !== null) fail(path, describe(obj));
  seen.add(obj);
  const out: Record<string, unknown> = {};
  let tagged = false;
  for (const key of Object.keys(obj)) {
    if (key === TAG_KEY) tagged = true;
    out[key] = toJson(
      (obj as Record<string, unknown>)[key],
      `${path}.${key}`,
      seen,
    );
  }
  for (const sym of Object.getOwnPropertySymbols(obj)) {
    if (Object.prototype.propertyIsEnumerable.call(obj, sym)) {
      fail(`${path}[${String(sym)}]`, "a symbol key");
    }
  }
  seen.delete(obj);
  // An object that itself has the reserved key is escaped, not mistaken for a tag.
  return tagged ? { [TAG_KEY]: "obj", v: out } : out;
}

function fromJson(value: unknown, maxDigits: number): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      value[i] = fromJson(value[i], maxDigits);
    }
    return value;
  }
  const obj = value as Record<string, unknown>;
  const tag = obj[TAG_KEY];
  if (tag !== undefined) {
    const v = obj.v;
    switch (tag) {
      case "undef":
        return undefined;
      case "num":
        return v === "-0" ? -0 : Number(v);
      case "bigint":
        return decodeBigInt(v, maxDigits);
      case "bytes":
        return base64ToBytes(v as string);
      case "date":
        return new Date(v === null ? NaN : v as number);
      case "obj":
        if (typeof v !== "object" || v === null) {
          throw new SyntaxError(
            'Cannot decode value: tag "obj" without an object',
          );
        }
        return fromPlain(v as Record<string, unknown>, maxDigits);
      default:
        throw new SyntaxError(`Cannot decode value: unknown tag "${tag}"`);
    }
  }
  return fromPlain(obj, maxDigits);
}

const DECIMAL = /^-?[0-9]+$/;

// BigInt() of a decimal string costs time quadratic in its length (~200 ms
// for a million digits): the digit count is checked first.
function decodeBigInt(v: unknown, maxDigits: number): bigint {
  if (typeof v !== "string" || !DECIMAL.test(v)) {
    throw new SyntaxError("Cannot decode value: malformed bigint");
  }
  const digits = v.length - (v.charCodeAt(0) === 45 ? 1 : 0);
  if (digits > maxDigits) {
    throw new RangeError(
      `Cannot decode value: bigint of ${digits} digits exceeds the limit of ${maxDigits} digits`,
    );
  }
  return BigInt(v);
}

function fromPlain(
  obj: Record<string, unknown>,
  maxDigits: number,
): Record<string, unknown> {
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (typeof v === "object" && v !== null) {
      const r = fromJson(v, maxDigits);
      if (key === "__proto__") {
        Object.defineProperty(obj, key, {
          value: r,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else obj[key] = r;
    }
  }
  return obj;
}

/**
 * Options of {@linkcode createJsonCodec}.
 *
 * @example Allow larger bigints
 * ```ts
 * import { createJsonCodec, type JsonCodecOptions } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const options: JsonCodecOptions = { maxBigIntDigits: 20_000 };
 * const codec = createJsonCodec(options);
 * const big = 10n ** 10_000n;
 * assert.equal(codec.decode(codec.encode(big)), big);
 * ```
 */
export interface JsonCodecOptions {
  /**
   * Most decimal digits of a `bigint` accepted when decoding; a larger one is
   * a `RangeError` (the call fails, the connection lives). Parsing a decimal
   * bigint costs time that grows with the square of its length, so this
   * bounds what one payload can cost. Both peers should agree.
   *
   * @default {4096}
   */
  maxBigIntDigits?: number;
}

const DEFAULT_MAX_BIGINT_DIGITS = 4096;

/**
 * Creates the JSON codec with its own limits; {@linkcode jsonCodec} is
 * `createJsonCodec()`. Every decode path costs time linear in the payload
 * size: `JSON.parse`, base64, and a bigint's digits are capped.
 *
 * Round-trips: `null`, booleans, strings, numbers including `NaN`,
 * `±Infinity` and `-0`, `undefined` (also as an object property or array
 * element), `bigint`, `Uint8Array`, `Date` (also invalid dates), arrays and
 * plain objects (prototype `Object.prototype` or `null`; revived with
 * `Object.prototype`). Throws a `TypeError` naming the path for functions,
 * symbols, `Map`, `Set`, other typed arrays, class instances and cycles.
 * Shared (non-cyclic) references are copied.
 *
 * @param options Decoding limits.
 * @returns A codec named `"json"`.
 *
 * @example Refuse a huge bigint
 * ```ts
 * import { createJsonCodec } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const codec = createJsonCodec({ maxBigIntDigits: 10 });
 * assert.throws(() => codec.decode(codec.encode(10n ** 20n)), RangeError);
 * ```
 */
export function createJsonCodec(options: JsonCodecOptions = {}): Codec {
  const maxDigits = options.maxBigIntDigits ?? DEFAULT_MAX_BIGINT_DIGITS;
  if (!(maxDigits >= 1)) {
    throw new RangeError(
      `Cannot create JSON codec: maxBigIntDigits must be at least 1, got ${maxDigits}`,
    );
  }
  return {
    name: "json",
    encode(value: unknown): Uint8Array {
      return utf8Encode(
        JSON.stringify(
          isSimple(value) ? value : toJson(value, "$", new Set()),
        ),
      );
    },
    decode(bytes: Uint8Array): unknown {
      const text = utf8Decode(bytes);
      const parsed = JSON.parse(text);
      return text.includes(`"${TAG_KEY}"`)
        ? fromJson(parsed, maxDigits)
        : parsed;
    },
  };
}

/**
 * The default codec: UTF-8 JSON with tagged values, at the default limits
 * of {@linkcode createJsonCodec} (bigints up to 4096 digits).
 *
 * @example Round-trip a value
 * ```ts
 * import { jsonCodec } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const value = { n: 10n, when: new Date(0), bytes: new Uint8Array([1, 2]), u: undefined };
 * assert.deepEqual(jsonCodec.decode(jsonCodec.encode(value)), value);
 * assert.throws(() => jsonCodec.encode({ m: new Map() }), TypeError);
 * ```
 */
export const jsonCodec: Codec = createJsonCodec();

// Fast path: a primitive JSON carries as is, or a flat array of them (the
// usual params list). Anything else takes the checking, tagging walk.
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

function isSimple(value: unknown): boolean {
  if (isSimplePrimitive(value)) return true;
  if (!Array.isArray(value) || value.length > 64) return false;
  for (let i = 0; i < value.length; i++) {
    if (!(i in value) || !isSimplePrimitive(value[i])) return false;
  }
  return true;
}

// Short ASCII text is encoded and decoded in JS: cheaper than a call into the
// runtime's TextEncoder/TextDecoder for the small payloads of typical calls.
const SHORT = 256;

// Small outputs are carved from a shared slab: allocating a fresh
// ArrayBuffer per call costs more than encoding a short payload. A region is
// never handed out twice, so callers may keep what they get.
const SLAB_SIZE = 65536;
let slab = new Uint8Array(SLAB_SIZE);
let slabOffset = 0;

function utf8Encode(text: string): Uint8Array {
  const n = text.length;
  if (n <= SHORT) {
    if (slabOffset + n * 3 > SLAB_SIZE) {
      slab = new Uint8Array(SLAB_SIZE);
      slabOffset = 0;
    }
    const start = slabOffset;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) {
        const { written } = encoder.encodeInto(text, slab.subarray(start));
        slabOffset = start + written;
        return slab.subarray(start, start + written);
      }
      slab[start + i] = c;
    }
    slabOffset = start + n;
    return slab.subarray(start, start + n);
  }
  return encoder.encode(text);
}

function utf8Decode(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n <= SHORT) {
    for (let i = 0; i < n; i++) {
      if (bytes[i]! >= 0x80) return decoder.decode(bytes);
    }
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return decoder.decode(bytes);
}
