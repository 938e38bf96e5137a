/**
 * The binary payload codec: MessagePack through
 * [msgpackr](https://github.com/kriszyp/msgpackr) (its pure JavaScript
 * build). It carries the same values as {@linkcode jsonCodec}, with
 * `Uint8Array` as raw MessagePack `bin` (no base64), and is what clients
 * offer first.
 *
 * @module
 */
import {
  addExtension,
  Packr,
  RESET_BUFFER_MODE,
  REUSE_BUFFER_MODE,
} from "msgpackr/pack";
import { Unpackr } from "msgpackr/unpack";
import type { Codec } from "./codec.ts";
import { encodeScratch, type ScratchCodec } from "./_scratch_encode.ts";
import {
  checkMaxDigits,
  decodeBigInt,
  DEFAULT_MAX_BIGINT_DIGITS,
  describe,
  fail,
  isSimple,
} from "./_values.ts";

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
const decoder = new TextDecoder("utf-8", { fatal: true });
// The digit cap of the codec decoding right now (decode is synchronous).
let maxDigitsNow = DEFAULT_MAX_BIGINT_DIGITS;

addExtension({
  Class: NegativeZero,
  type: 90,
  pack: () => EMPTY,
  unpack: () => -0,
});
addExtension({
  Class: BigDecimal,
  type: 91,
  pack: (b: BigDecimal) => encoder.encode(b.text),
  unpack: (bytes: Uint8Array) =>
    decodeBigInt(decoder.decode(bytes), maxDigitsNow),
});
addExtension({
  Class: ProtoKeyed,
  type: 92,
  write: (p: ProtoKeyed) => p.entries,
  read: (entries: unknown) => {
    if (!Array.isArray(entries) || entries.length % 2 !== 0) {
      throw new SyntaxError("Cannot decode value: malformed keyed object");
    }
    const out: Record<string, unknown> = {};
    for (let i = 0; i < entries.length; i += 2) {
      Object.defineProperty(out, String(entries[i]), {
        value: entries[i + 1],
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    return out;
  },
});

const objectProto = Object.prototype;

// Payloads are decoded from a copy, so that decoded `Uint8Array`s can be
// views of it (msgpackr's `copyBuffers: false`) instead of one fresh
// allocation each, which costs about as much as a small call. Payloads of
// up to POOLED_MAX bytes are copied into the current slab, at increasing
// offsets (never reused: a decoded view may live on); a full slab is
// dropped and a new one started, like Node's pool behind
// `Buffer.allocUnsafe`. A larger payload gets its own copy.
const SLAB_SIZE = 64 * 1024;
const POOLED_MAX = 8 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;
// The range to read (reused: decode is synchronous).
const range = { start: 0, end: 0 };

// The array to unpack `bytes` from, with `range` set to where they are.
// msgpackr caches a DataView on the array it reads, so one view per slab
// keeps that to one per slab.
function decodeSource(bytes: Uint8Array): Uint8Array {
  const length = bytes.length;
  if (length > POOLED_MAX) {
    range.start = 0;
    range.end = length;
    return bytes.slice();
  }
  if (slabUsed + length > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabUsed = 0;
  }
  slab.set(bytes, slabUsed);
  range.start = slabUsed;
  range.end = slabUsed + length;
  slabUsed = (range.end + 7) & ~7;
  return slab;
}

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
 * payload size (a bigint's digits are capped).
 *
 * Round-trips the same values as `jsonCodec`: `null`, booleans, strings,
 * numbers including `NaN`, `±Infinity` and `-0`, `undefined`, `bigint`,
 * `Uint8Array` (as raw bytes; a decoded one is a copy, never a view of the
 * frame buffer; from a payload of up to 8 KiB it is a view of a shared 64 KiB
 * slab, like a pooled Node `Buffer`: `slice()` it before transferring its
 * `buffer`),
 * `Date` (also invalid dates), arrays and plain objects (prototype
 * `Object.prototype` or `null`; revived with `Object.prototype`; an own
 * `__proto__` key stays an own property). Throws a `TypeError` naming the path
 * for functions, symbols, `Map`, `Set`, other typed arrays, class instances
 * and cycles. Shared (non-cyclic) references are copied.
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
 * ```
 */
export function createMsgpackCodec(options: MsgpackCodecOptions = {}): Codec {
  const maxDigits = options.maxBigIntDigits ?? DEFAULT_MAX_BIGINT_DIGITS;
  checkMaxDigits("MessagePack", maxDigits);
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const unpackr = new Unpackr({
    useRecords: false,
    mapsAsObjects: true,
    copyBuffers: false,
    int64AsType: "bigint",
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
  const codec: ScratchCodec = {
    name: "msgpack",
    encode: (value: unknown): Uint8Array => pack(value, REUSE_BUFFER_MODE),
    [encodeScratch]: (value: unknown): Uint8Array =>
      pack(value, REUSE_BUFFER_MODE | RESET_BUFFER_MODE),
    decode(bytes: Uint8Array): unknown {
      maxDigitsNow = maxDigits;
      if (bytes.length === 0) {
        throw new SyntaxError("Cannot decode value: empty payload");
      }
      return unpackr.unpack(decodeSource(bytes), range);
    },
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
