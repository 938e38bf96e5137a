/**
 * The binary payload codec: MessagePack, written by
 * [msgpackr](https://github.com/kriszyp/msgpackr) (its pure JavaScript
 * build) and read by zkrpc's own strict decoder, which accepts exactly the
 * subset of `docs/protocol.md` section 7.1 and never reads outside the payload. It
 * carries the same values as {@linkcode jsonCodec}, with `Uint8Array` as raw
 * MessagePack `bin` (no base64), and is what clients offer first.
 *
 * @module
 */
import {
  addExtension,
  Packr,
  RESET_BUFFER_MODE,
  REUSE_BUFFER_MODE,
} from "msgpackr/pack";
import type { Codec } from "./codec.ts";
import {
  decodeRange,
  encodeScratch,
  type RangeCodec,
  type ScratchCodec,
} from "./scratch_encode.ts";
import { encodeSimple } from "./_msgpack_simple.ts";
import {
  decodeMsgpack,
  EXT_BIG_DECIMAL,
  EXT_NEGATIVE_ZERO,
  EXT_PROTO_KEYED,
} from "./_msgpack_decode.ts";
import {
  checkMaxDigits,
  DEFAULT_MAX_BIGINT_DIGITS,
  describe,
  fail,
  isSimple,
  MAX_NESTING,
  TOO_DEEP,
} from "./_values.ts";

// Encoding is msgpackr's (fast, and configured below to write only the
// subset of docs/protocol.md section 7.1); decoding is our own strict decoder
// (_msgpack_decode.ts), which reads nothing but that subset.
//
// -0, bigints beyond 64 bits and objects with an own "__proto__" key travel
// as MessagePack extensions of these module-private classes (ext types
// 90-92): msgpackr writes -0 as the integer 0, refuses larger bigints and
// renames a "__proto__" key.
class NegativeZero {}
class BigDecimal {
  constructor(readonly text: string) {}
}
class ProtoKeyed {
  constructor(readonly entries: unknown[]) {}
}
const NEGATIVE_ZERO = new NegativeZero();
const EMPTY = new Uint8Array(0);
const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;
const encoder = new TextEncoder();

addExtension({
  Class: NegativeZero,
  type: EXT_NEGATIVE_ZERO,
  pack: () => EMPTY,
});
addExtension({
  Class: BigDecimal,
  type: EXT_BIG_DECIMAL,
  pack: (b: BigDecimal) => encoder.encode(b.text),
});
addExtension({
  Class: ProtoKeyed,
  type: EXT_PROTO_KEYED,
  write: (p: ProtoKeyed) => p.entries,
});

const objectProto = Object.prototype;

// An encoding failure on its way up: each level adds its path segment, so
// that no path string is built unless something fails.
class Refusal {
  segments: string[] = [];
  constructor(readonly what: string) {}
}

function refuse(what: string): never {
  throw new Refusal(what);
}

function within(
  segment: string | number,
  value: unknown,
  seen: Set<object>,
): unknown {
  try {
    return prepare(value, seen);
  } catch (e) {
    if (e instanceof Refusal) {
      e.segments.push(typeof segment === "number" ? `[${segment}]` : segment);
    }
    throw e;
  }
}

// Checks a value like the JSON codec does and returns what msgpackr encodes
// faithfully: the value itself when nothing in it needs a substitute, else a
// copy with -0, large bigints and null-prototype objects replaced.
function prepareRoot(value: unknown): unknown {
  try {
    return prepare(value, new Set());
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    return fail(`$${e.segments.reverse().join("")}`, e.what);
  }
}

function prepare(value: unknown, seen: Set<object>): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return value;
    case "number":
      return value === 0 && Object.is(value, -0) ? NEGATIVE_ZERO : value;
    case "bigint":
      return value >= MIN_INT64 && value <= MAX_UINT64
        ? value
        : new BigDecimal(value.toString());
    case "function":
    case "symbol":
      return refuse(describe(value));
  }
  if (value === null) return null;
  const obj = value as object;
  const ctor = (obj as { constructor?: unknown }).constructor;
  if (
    (ctor === Uint8Array && obj instanceof Uint8Array) ||
    (ctor === Date && obj instanceof Date)
  ) return obj;
  if (seen.has(obj)) refuse("a cycle");
  if (seen.size >= MAX_NESTING) refuse(TOO_DEEP);
  if (Array.isArray(obj)) {
    seen.add(obj);
    let out: unknown[] | undefined;
    for (let i = 0; i < obj.length; i++) {
      const v = obj[i];
      const p = within(i, v, seen);
      if (p !== v || !(i in obj)) {
        out ??= obj.slice(0, i);
        out[i] = p;
      } else if (out) out[i] = p;
    }
    seen.delete(obj);
    return out ?? obj;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== objectProto && proto !== null) refuse(describe(obj));
  for (const sym of Object.getOwnPropertySymbols(obj)) {
    if (Object.prototype.propertyIsEnumerable.call(obj, sym)) {
      throw Object.assign(new Refusal("a symbol key"), {
        segments: [`[${String(sym)}]`],
      });
    }
  }
  seen.add(obj);
  const keys = Object.keys(obj);
  if (Object.hasOwn(obj, "__proto__")) {
    const entries: unknown[] = [];
    for (const key of keys) {
      const v = (obj as Record<string, unknown>)[key];
      entries.push(key, within(`.${key}`, v, seen));
    }
    seen.delete(obj);
    return new ProtoKeyed(entries);
  }
  let out: Record<string, unknown> | undefined = proto === null
    ? {}
    : undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = (obj as Record<string, unknown>)[key];
    const p = within(`.${key}`, v, seen);
    if (out === undefined && p !== v) {
      out = {};
      for (let j = 0; j < i; j++) {
        out[keys[j]!] = (obj as Record<string, unknown>)[keys[j]!];
      }
    }
    if (out !== undefined) out[key] = p;
  }
  seen.delete(obj);
  return out ?? obj;
}

/**
 * Options of {@linkcode createMsgpackCodec}.
 *
 * @example Allow larger bigints
 * ```ts
 * import { createMsgpackCodec, type MsgpackCodecOptions } from "./msgpack_codec.ts";
 * import assert from "node:assert/strict";
 *
 * const options: MsgpackCodecOptions = { maxBigIntDigits: 20_000 };
 * const codec = createMsgpackCodec(options);
 * const big = 10n ** 10_000n;
 * assert.equal(codec.decode(codec.encode(big)), big);
 * ```
 */
export interface MsgpackCodecOptions {
  /**
   * Most decimal digits of a `bigint` beyond 64 bits accepted when decoding;
   * a larger one is a `RangeError` (the call fails, the connection lives).
   * Both peers should agree.
   *
   * @default {4096}
   */
  maxBigIntDigits?: number;
}

/**
 * Creates the MessagePack codec with its own limits; {@linkcode msgpackCodec}
 * is `createMsgpackCodec()`. Every decode path costs time linear in the
 * payload size (a bigint's digits are capped, checked on its length; nesting
 * is capped at {@linkcode MAX_NESTING} levels).
 *
 * Round-trips the same values as `jsonCodec` (the value model of
 * `docs/protocol.md` section 7.0): `null`, booleans, strings, numbers including
 * `NaN`, `+/-Infinity` and `-0`, `undefined`, `bigint`, `Uint8Array` (as raw
 * bytes; a decoded one owns a buffer holding exactly its bytes), `Date` (also
 * invalid dates), arrays and plain objects of any size (prototype
 * `Object.prototype` or `null`; revived with `Object.prototype`; an own
 * `__proto__` key stays an own property). Throws a `TypeError` naming the path
 * for functions, symbols, `Map`, `Set`, `Error`, `RegExp`, other typed arrays,
 * `DataView`, class instances, cycles and nesting deeper than
 * {@linkcode MAX_NESTING}. Shared (non-cyclic) references are copied.
 * Decoding refuses anything outside the subset (other extension types,
 * msgpackr's records and bundled strings, non-string map keys, trailing
 * bytes) with a `SyntaxError` whose message names the problem and its byte
 * offset, never a value of the payload.
 *
 * @param options Decoding limits.
 * @returns A codec named `"msgpack"`.
 *
 * @example Refuse a huge bigint
 * ```ts
 * import { createMsgpackCodec } from "./msgpack_codec.ts";
 * import assert from "node:assert/strict";
 *
 * const codec = createMsgpackCodec({ maxBigIntDigits: 30 });
 * assert.throws(() => codec.decode(codec.encode(10n ** 40n)), RangeError);
 * // msgpackr's bundled strings (ext 0x62) are not part of the format.
 * assert.throws(
 *   () => codec.decode(new Uint8Array([0xd6, 0x62, 0xff, 0xff, 0xff, 0xf0])),
 *   /unsupported extension type 98 at byte 0/,
 * );
 * ```
 */
export function createMsgpackCodec(options: MsgpackCodecOptions = {}): Codec {
  const maxDigits = options.maxBigIntDigits ?? DEFAULT_MAX_BIGINT_DIGITS;
  checkMaxDigits("MessagePack", maxDigits);
  // Plain maps (no records), map 32 beyond 65,535 keys, no msgpackr-only
  // types; prepareRoot() lets through only values of the subset.
  const packr = new Packr({
    useRecords: false,
    moreTypes: false,
    variableMapSize: true,
  });
  // REUSE_BUFFER_MODE hands back msgpackr's whole buffer with the range
  // written. A plain view of that range costs less than the Buffer msgpackr
  // would make of it. Without RESET_BUFFER_MODE later encodes write after
  // the range (the bytes may be kept); with it the next encode starts at the
  // same place, so msgpackr keeps one buffer instead of allocating a new one
  // whenever the old one fills up.
  const pack = (value: unknown, mode: number): Uint8Array => {
    const out = packr.pack(
      isSimple(value) ? value : prepareRoot(value),
      mode,
    ) as unknown as Uint8Array & { start: number; end: number };
    return new Uint8Array(
      out.buffer,
      out.byteOffset + out.start,
      out.end - out.start,
    );
  };
  const codec: ScratchCodec & RangeCodec = {
    name: "msgpack",
    encode: (value: unknown): Uint8Array => pack(value, REUSE_BUFFER_MODE),
    // The usual params list and result without msgpackr: the same bytes.
    [encodeScratch]: (value: unknown): Uint8Array =>
      encodeSimple(value) ??
        pack(value, REUSE_BUFFER_MODE | RESET_BUFFER_MODE),
    decode: (bytes: Uint8Array): unknown => decodeMsgpack(bytes, maxDigits),
    [decodeRange]: (bytes: Uint8Array, start: number, stop: number): unknown =>
      decodeMsgpack(bytes, maxDigits, start, stop),
  };
  return codec;
}

/**
 * The binary codec at the default limits of {@linkcode createMsgpackCodec}:
 * offered first by clients and picked by servers unless configured otherwise.
 *
 * @example Round-trip a value
 * ```ts
 * import { msgpackCodec } from "./msgpack_codec.ts";
 * import assert from "node:assert/strict";
 *
 * const value = { n: 10n, when: new Date(0), bytes: new Uint8Array([1, 2]), z: -0 };
 * assert.deepEqual(msgpackCodec.decode(msgpackCodec.encode(value)), value);
 * assert.throws(() => msgpackCodec.encode({ m: new Map() }), TypeError);
 * ```
 */
export const msgpackCodec: Codec = createMsgpackCodec();
