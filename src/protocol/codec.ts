/**
 * Payload codecs. {@linkcode jsonCodec} is the default: JSON extended with
 * tags so that `undefined`, `Uint8Array`, `bigint`, `Date`, `NaN`,
 * `+/-Infinity` and `-0` round-trip. Anything else that JSON would silently
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

import {
  checkMaxDigits,
  decodeBigInt,
  DEFAULT_MAX_BIGINT_DIGITS,
  describe,
  fail,
  isSimple,
  malformedValue,
  MAX_NESTING,
  setOwn,
  strictUtf8,
  TOO_DEEP,
} from "./_values.ts";

const encoder = new TextEncoder();
const objectProto = Object.prototype;

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

function base64ToBytes(text: unknown): Uint8Array {
  if (typeof text !== "string") malformedValue('tag "bytes" without base64');
  try {
    return (Uint8Array as unknown as Base64BytesConstructor).fromBase64(text);
  } catch {
    return malformedValue('tag "bytes" with malformed base64');
  }
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
  if (seen.size >= MAX_NESTING && !isLeafObject(obj)) fail(path, TOO_DEEP);
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

// Uint8Array and Date are leaves: no nesting level of their own.
function isLeafObject(obj: object): boolean {
  return obj instanceof Uint8Array || obj instanceof Date;
}

const SPECIAL_NUMBERS: Record<string, number> = {
  "NaN": NaN,
  "Infinity": Infinity,
  "-Infinity": -Infinity,
  "-0": -0,
};

function tooDeep(): never {
  throw new RangeError(
    `Cannot decode value: nesting deeper than ${MAX_NESTING} levels`,
  );
}

// Revives the tags of a parsed value; `depth` counts the arrays and objects
// around it (tag wrappers are not levels of the value).
function fromJson(value: unknown, maxDigits: number, depth: number): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    if (depth >= MAX_NESTING) tooDeep();
    for (let i = 0; i < value.length; i++) {
      value[i] = fromJson(value[i], maxDigits, depth + 1);
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
        if (typeof v !== "string" || !Object.hasOwn(SPECIAL_NUMBERS, v)) {
          return malformedValue('tag "num" with a malformed value');
        }
        return SPECIAL_NUMBERS[v];
      case "bigint":
        return decodeBigInt(v, maxDigits);
      case "bytes":
        return base64ToBytes(v);
      case "date":
        if (v !== null && typeof v !== "number") {
          return malformedValue('tag "date" with a malformed value');
        }
        return new Date(v === null ? NaN : v);
      case "obj":
        if (typeof v !== "object" || v === null || Array.isArray(v)) {
          return malformedValue('tag "obj" without an object');
        }
        return fromPlain(v as Record<string, unknown>, maxDigits, depth);
      default:
        // The tag is the peer's: never quoted back.
        return malformedValue(`unknown "${TAG_KEY}" tag`);
    }
  }
  return fromPlain(obj, maxDigits, depth);
}

function fromPlain(
  obj: Record<string, unknown>,
  maxDigits: number,
  depth: number,
): Record<string, unknown> {
  if (depth >= MAX_NESTING) tooDeep();
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (typeof v === "object" && v !== null) {
      setOwn(obj, key, fromJson(v, maxDigits, depth + 1));
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

/**
 * Creates the JSON codec with its own limits; {@linkcode jsonCodec} is
 * `createJsonCodec()`. Every decode path costs time linear in the payload
 * size: `JSON.parse`, base64, and a bigint's digits are capped.
 *
 * Round-trips: `null`, booleans, strings, numbers including `NaN`,
 * `+/-Infinity` and `-0`, `undefined` (also as an object property or array
 * element), `bigint`, `Uint8Array`, `Date` (also invalid dates), arrays and
 * plain objects (prototype `Object.prototype` or `null`; revived with
 * `Object.prototype`). Throws a `TypeError` naming the path for functions,
 * symbols, `Map`, `Set`, `Error`, `RegExp`, other typed arrays, `DataView`,
 * class instances, cycles and nesting deeper than 1000 levels (the value
 * model of `docs/protocol.md` section 7.0, shared with `msgpackCodec`). Shared
 * (non-cyclic) references are copied. Decode errors (not UTF-8, malformed
 * JSON, a malformed or unknown tag, too deep) name the problem and its
 * position, never a value of the payload.
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
  checkMaxDigits("JSON", maxDigits);
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
      const tagged = text.includes(`"${TAG_KEY}"`);
      // Tag wrappers add up to one level per level of the value (an escaped
      // object two): a tagged payload is scanned with room for them, and
      // its value's own levels are counted by fromJson.
      if (bytes.length > 2 * MAX_NESTING) {
        checkJsonNesting(bytes, tagged ? 2 * MAX_NESTING + 1 : MAX_NESTING);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        // JSON.parse quotes the input in its message: keep only the position.
        const at = /at position (\d+)/.exec(String(error))?.[1];
        return malformedValue(
          at === undefined
            ? "malformed JSON"
            : `malformed JSON at character ${at}`,
        );
      }
      // UTF-8 cannot carry a lone surrogate: MessagePack text arrives with
      // U+FFFD in its place, and so does JSON's (only an escape can hold one).
      if (SURROGATE_ESCAPE.test(text)) parsed = wellFormed(parsed);
      return tagged ? fromJson(parsed, maxDigits, 0) : parsed;
    },
  };
}

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

// Replaces lone surrogates in every string and key of a parsed value with
// U+FFFD (its depth is capped by checkJsonNesting).
function wellFormed(value: unknown): unknown {
  if (typeof value === "string") return value.toWellFormed();
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = wellFormed(value[i]);
    return value;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.every((key) => key.isWellFormed())) {
    for (const key of keys) setOwn(obj, key, wellFormed(obj[key]));
    return obj;
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) setOwn(out, key.toWellFormed(), wellFormed(obj[key]));
  return out;
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
      if (bytes[i]! >= 0x80) return decodeUtf8(bytes);
    }
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return decodeUtf8(bytes);
}

function decodeUtf8(bytes: Uint8Array): string {
  return strictUtf8(bytes) ?? malformedValue("payload is not UTF-8");
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

// Refuses JSON nested deeper than MAX_NESTING before parsing it (JSON.parse
// itself has no limit; the MessagePack decoder has the same one). Only
// payloads longer than 2 * MAX_NESTING bytes can be that deep. Strings are
// skipped with indexOf (native), so the scan costs little per byte.
function checkJsonNesting(bytes: Uint8Array, max: number): void {
  let depth = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    if (c === QUOTE) {
      // Skip to the closing quote: one not preceded by an odd number of
      // backslashes.
      for (;;) {
        i = bytes.indexOf(QUOTE, i + 1);
        if (i < 0) return; // unterminated: JSON.parse refuses it
        let k = i - 1;
        while (bytes[k] === BACKSLASH) k--;
        if ((i - 1 - k) % 2 === 0) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        throw new RangeError(
          `Cannot decode value: nesting deeper than ${MAX_NESTING} levels at byte ${i}`,
        );
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}
