/**
 * The decoder subset and the value model (issue 21, findings 1, 3 and 8):
 * the MessagePack decoder reads exactly the subset of docs/protocol.md §7.1,
 * never outside the payload; both codecs carry and refuse the same values;
 * every bigint path and every nesting is capped; decode errors carry no data
 * of the payload.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Packr } from "msgpackr/pack";
import { createJsonCodec, jsonCodec } from "../src/protocol/codec.ts";
import {
  createMsgpackCodec,
  msgpackCodec,
} from "../src/protocol/msgpack_codec.ts";
import type { Codec } from "../src/protocol/codec.ts";
import { decodeMetadata } from "../src/protocol/metadata.ts";
import { concat } from "./_core_helpers.ts";
import {
  assertNoSecret,
  extHeader,
  hostileBytes,
  SECRET,
  SECRET_BYTES,
  u8,
} from "./_hostile_payloads.ts";

const CODECS: Codec[] = [msgpackCodec, jsonCodec];

/** Asserts `decode` refuses with a decode error that quotes nothing. */
function assertRefused(
  codec: Codec,
  bytes: Uint8Array,
  type: typeof SyntaxError | typeof RangeError = SyntaxError,
  pattern?: RegExp,
): void {
  assert.throws(() => codec.decode(bytes), (e: unknown) => {
    assert.ok(e instanceof type, `${codec.name}: ${e}`);
    assert.match((e as Error).message, /^Cannot decode value: /);
    if (pattern) assert.match((e as Error).message, pattern);
    assertNoSecret((e as Error).message, codec.name);
    return true;
  });
}

const str8 = (text: Uint8Array) => concat(u8(0xd9, text.length), text);

Deno.test("msgpack decoder: every extension type outside the subset is refused, in every ext format", () => {
  const accepted = new Set(["-1/1", "-1/4", "-1/8", "-1/12", "0/1", "90/0"]);
  for (let type = -128; type <= 127; type++) {
    for (const n of [0, 1, 2, 3, 4, 8, 12, 16, 17]) {
      // The data: the secret's bytes (an ext-0 or timestamp accepts only
      // particular data, set below), then a trailing value for 92.
      const data = SECRET_BYTES.subarray(0, n);
      const bytes = concat(extHeader(type, n), data);
      if (type === 91 || type === 92) continue; // below
      if (accepted.has(`${type}/${n}`)) continue;
      assertRefused(msgpackCodec, bytes);
    }
  }
  // The accepted forms, with exactly their data.
  assert.equal(msgpackCodec.decode(u8(0xd4, 0, 0)), undefined);
  assertRefused(msgpackCodec, u8(0xd4, 0, 1));
  assert.ok(Object.is(msgpackCodec.decode(u8(0xc7, 0, 90)), -0));
  assert.ok(
    Number.isNaN((msgpackCodec.decode(u8(0xd4, 0xff, 0xff)) as Date).getTime()),
  );
  assertRefused(msgpackCodec, u8(0xd4, 0xff, 0x00));
  assert.deepEqual(
    msgpackCodec.decode(u8(0xd6, 0xff, 0, 0, 0, 1)),
    new Date(1000),
  );
  // Timestamp 64 and 96 with nanoseconds of 10^9 or more.
  assertRefused(
    msgpackCodec,
    u8(0xd7, 0xff, 0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 0),
  );
  assertRefused(
    msgpackCodec,
    concat(u8(0xc7, 12, 0xff, 0x3b, 0x9a, 0xca, 0x00), new Uint8Array(8)),
  );
  // 91: ASCII digits only; 92: fixext 1 (data 0) then an even array of
  // string keys.
  assert.equal(
    msgpackCodec.decode(
      concat(extHeader(91, 3), new TextEncoder().encode("-12")),
    ),
    -12n,
  );
  for (const text of ["", "-", "1a", " 1", "+1", "1.0", SECRET]) {
    const digits = new TextEncoder().encode(text);
    assertRefused(msgpackCodec, concat(extHeader(91, digits.length), digits));
  }
  assert.deepEqual(
    Object.entries(
      msgpackCodec.decode(u8(0xd4, 92, 0, 0x92, 0xa1, 0x78, 1)) as object,
    ),
    [["x", 1]],
  );
  assertRefused(msgpackCodec, u8(0xd4, 92, 1, 0x92, 0xa1, 0x78, 1));
  assertRefused(msgpackCodec, u8(0xd4, 92, 0, 0x91, 0xa1, 0x78));
  assertRefused(msgpackCodec, u8(0xd4, 92, 0, 0x92, 0x01, 0x01));
  assertRefused(msgpackCodec, u8(0xd4, 92, 0, 0xa1, 0x78));
});

Deno.test("msgpack decoder: msgpackr's own types and encodings (bundled strings, records, its bigint, Error, RegExp, Set, typed arrays, DataView, cycles) are refused", () => {
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  const cases: Array<[string, Packr, unknown]> = [
    [
      "structured clone of a cycle",
      new Packr({ structuredClone: true }),
      cyclic,
    ],
    ["record", new Packr({ useRecords: true }), [{ a: 1 }, { a: 2 }]],
    ["bundled strings", new Packr({ bundleStrings: true, useRecords: false }), [
      "a".repeat(40),
      SECRET,
    ]],
    ["msgpackr bigint", new Packr({ useBigIntExtension: true }), 2n ** 100n],
  ];
  const more = new Packr({ moreTypes: true, useRecords: false });
  for (
    const value of [
      new Error(SECRET),
      /secret/g,
      new Set([1]),
      new Float32Array(2),
      new Int8Array(2),
      new BigInt64Array(1),
      new DataView(new ArrayBuffer(4)),
      new ArrayBuffer(4),
    ]
  ) cases.push([Object.prototype.toString.call(value), more, value]);
  for (const [what, packr, value] of cases) {
    const bytes = packr.pack(value);
    assert.throws(
      () => msgpackCodec.decode(new Uint8Array(bytes)),
      (e: unknown) => {
        assert.ok(e instanceof SyntaxError, `${what}: ${e}`);
        assertNoSecret((e as Error).message, what);
        return true;
      },
      what,
    );
  }
  // A Map is written as a MessagePack map: it arrives as a plain object.
  assert.deepEqual(msgpackCodec.decode(more.pack(new Map([["k", 1]]))), {
    k: 1,
  });
  // Format 0xc1 (never used) and non-string map keys.
  assertRefused(
    msgpackCodec,
    u8(0xc1),
    SyntaxError,
    /format byte 0xc1 at byte 0/,
  );
  assertRefused(msgpackCodec, u8(0x81, 0x01, 0x02), SyntaxError, /map key/);
  assertRefused(msgpackCodec, u8(0x81, 0xc0, 0x02), SyntaxError, /map key/);
});

Deno.test("msgpack decoder: bounded by the payload: truncations, huge claimed lengths and trailing bytes are refused without reading past the view", () => {
  const value = [{
    s: SECRET,
    b: new Uint8Array([1, 2, 3]),
    n: 2n ** 70n,
    d: new Date(5),
    f: 1.5,
  }, "x".repeat(300)];
  const bytes = msgpackCodec.encode(value);
  // Every prefix, as a view into a buffer that continues with the rest of
  // the value: the decoder must not read the bytes after the view.
  const whole = new Uint8Array(bytes);
  for (let n = 1; n < whole.length; n++) {
    assertRefused(msgpackCodec, whole.subarray(0, n));
  }
  assert.deepEqual(msgpackCodec.decode(whole), value);
  // Claimed lengths far beyond the payload fail at once, before allocating.
  for (const head of [0xc6, 0xc9, 0xdb, 0xdd, 0xdf]) {
    assertRefused(
      msgpackCodec,
      u8(head, 0xff, 0xff, 0xff, 0xff, 0xa1),
      SyntaxError,
      /truncated/,
    );
  }
  // Trailing bytes after the value: named by count and position only.
  assertRefused(
    msgpackCodec,
    concat(u8(0x01), SECRET_BYTES),
    SyntaxError,
    /bytes after the value at byte 1$/,
  );
  // Strings must be UTF-8 (both codecs).
  assertRefused(msgpackCodec, u8(0xa3, 0x61, 0xff, 0x62));
  assertRefused(jsonCodec, u8(0x22, 0x61, 0xff, 0x22));
  assert.equal(
    msgpackCodec.decode(concat(u8(0xa3), new TextEncoder().encode("\ufffd"))),
    "\ufffd",
  );
});

Deno.test("msgpack decoder: a decoded Uint8Array owns exactly its bytes, whatever buffer the payload was in", () => {
  const payload = msgpackCodec.encode([
    new Uint8Array([1, 2, 3]),
    SECRET,
    new Uint8Array(0),
    new Uint8Array(5000).fill(9),
  ]);
  const around = concat(SECRET_BYTES, payload, SECRET_BYTES);
  const view = around.subarray(
    SECRET_BYTES.length,
    SECRET_BYTES.length + payload.length,
  );
  const [small, , empty, large] = msgpackCodec.decode(view) as Uint8Array[];
  for (
    const [bytes, length] of [[small, 3], [empty, 0], [large, 5000]] as const
  ) {
    assert.equal(bytes!.constructor, Uint8Array);
    assert.equal(bytes!.byteOffset, 0);
    assert.equal(bytes!.buffer.byteLength, length);
  }
  around.fill(0);
  assert.deepEqual(small, new Uint8Array([1, 2, 3]));
});

Deno.test("bigints are capped on every path of both codecs, before any digit is parsed", () => {
  const digits = 4 * 1024 * 1024;
  const text = "9".repeat(digits);
  const ext = concat(extHeader(91, digits), new TextEncoder().encode(text));
  assertRefused(
    msgpackCodec,
    ext,
    RangeError,
    /bigint of 4194304 digits exceeds the limit of 4096 digits at byte 0/,
  );
  assertRefused(
    jsonCodec,
    new TextEncoder().encode(`{"$zk":"bigint","v":"${text}"}`),
    RangeError,
    /exceeds the limit of 4096 digits/,
  );
  // msgpackr's own bigint extension (0x42) is not in the subset at all.
  const msgpackr42 = concat(
    extHeader(0x42, digits / 4),
    new Uint8Array(digits / 4).fill(0x7f),
  );
  assertRefused(
    msgpackCodec,
    msgpackr42,
    SyntaxError,
    /unsupported extension type 66 at byte 0/,
  );
  // Exactly at the cap decodes; one more digit does not (a sign is no digit).
  for (
    const codec of [
      createMsgpackCodec({ maxBigIntDigits: 50 }),
      createJsonCodec({ maxBigIntDigits: 50 }),
    ]
  ) {
    const at = -(10n ** 49n);
    assert.equal(codec.decode(codec.encode(at)), at);
    assertRefused(codec, codec.encode(10n ** 50n), RangeError);
  }
  // 64-bit integers are bigints without any ext (capped by their width).
  assert.equal(
    msgpackCodec.decode(u8(0xcf, 255, 255, 255, 255, 255, 255, 255, 255)),
    2n ** 64n - 1n,
  );
  assert.equal(
    msgpackCodec.decode(u8(0xd3, 128, 0, 0, 0, 0, 0, 0, 0)),
    -(2n ** 63n),
  );
});

/** `depth` arrays nested in each other around a 1. */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return v;
}

Deno.test("nesting: 1000 levels encode and decode in both codecs; 1001 are refused when encoding and when decoding", () => {
  for (const codec of CODECS) {
    const ok = nested(1000);
    assert.deepEqual(codec.decode(codec.encode(ok)), ok);
    // Leaves (Uint8Array, Date, bigint, special numbers) are no levels.
    const leaves = [
      new Uint8Array(1),
      new Date(0),
      2n ** 80n,
      NaN,
      -0,
      undefined,
      { $zk: 1 },
    ];
    let deep: unknown = leaves;
    for (let i = 1; i < 999; i++) deep = [deep];
    assert.deepEqual(codec.decode(codec.encode(deep)), deep);
    assert.throws(
      () => codec.encode(nested(1001)),
      /Cannot encode value at \$.*: nesting deeper than 1000 levels is not supported/,
    );
  }
  // Crafted payloads: 1001 levels, and 4 MiB of them.
  for (const depth of [1001, 4 * 1024 * 1024]) {
    assertRefused(
      msgpackCodec,
      concat(new Uint8Array(depth).fill(0x91), u8(1)),
      RangeError,
      /nesting deeper than 1000 levels/,
    );
    const json = "[".repeat(depth) + "1" + "]".repeat(depth);
    assertRefused(
      jsonCodec,
      new TextEncoder().encode(json),
      RangeError,
      /nesting deeper than 1000 levels/,
    );
  }
  // Brackets inside JSON strings are no levels.
  const text = JSON.stringify(["[".repeat(3000), '\\"[{'.repeat(500)]);
  assert.deepEqual(
    jsonCodec.decode(new TextEncoder().encode(text)),
    JSON.parse(text),
  );
});

Deno.test("objects with more than 65,535 keys and arrays of more than 65,535 elements encode (map 32, array 32) in both codecs", () => {
  const wide: Record<string, number> = {};
  for (let i = 0; i < 70_000; i++) wide[`k${i}`] = i;
  const long = Array.from({ length: 70_000 }, (_, i) => i);
  for (const codec of CODECS) {
    assert.deepEqual(codec.decode(codec.encode(wide)), wide);
    assert.deepEqual(codec.decode(codec.encode([wide, long])), [wide, long]);
  }
  assert.equal(msgpackCodec.encode(wide)[0], 0xdf);
  assert.equal(msgpackCodec.encode(long)[0], 0xdd);
});

class Point {
  x = 1;
}

Deno.test("one value model: both codecs refuse the same values at encode time, with the same message naming the path and the type", () => {
  const cyclic: unknown[] = [1];
  cyclic.push([cyclic]);
  const refused: Array<[unknown, string]> = [
    [new Error("e"), "an instance of Error"],
    [new TypeError("e"), "an instance of TypeError"],
    [/re/g, "an instance of RegExp"],
    [new Set([1]), "a Set"],
    [new Map(), "a Map"],
    [new WeakMap(), "an instance of WeakMap"],
    [new Int8Array(1), "an instance of Int8Array"],
    [new Uint8ClampedArray(1), "an instance of Uint8ClampedArray"],
    [new Float64Array(1), "an instance of Float64Array"],
    [new BigUint64Array(1), "an instance of BigUint64Array"],
    [new DataView(new ArrayBuffer(1)), "an instance of DataView"],
    [new ArrayBuffer(1), "an instance of ArrayBuffer"],
    [Promise.resolve(1), "an instance of Promise"],
    [new String("s"), "an instance of String"],
    [new Point(), "an instance of Point"],
    [new (class Bytes extends Uint8Array {})(1), "an instance of Bytes"],
    [new (class When extends Date {})(0), "an instance of When"],
    [() => 1, "a function"],
    [Symbol("s"), "a symbol"],
  ];
  for (const [value, what] of refused) {
    const messages = CODECS.map((codec) => {
      try {
        codec.encode({ a: [0, { b: value }] });
      } catch (e) {
        assert.ok(e instanceof TypeError, `${codec.name}: ${e}`);
        return e.message;
      }
      assert.fail(`${codec.name} encoded ${what}`);
    });
    assert.equal(
      messages[0],
      `Cannot encode value at $.a[1].b: ${what} is not supported`,
    );
    assert.equal(messages[1], messages[0]);
  }
  for (const codec of CODECS) {
    assert.throws(
      () => codec.encode(cyclic),
      /at \$\[1\]\[0\]: a cycle is not supported/,
    );
  }
});

/**
 * Values of the model (docs/protocol.md §7.0), plain objects only, with
 * strings (and keys) from `text`.
 */
function modelValue(text: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  return fc.letrec((tie) => ({
    leaf: fc.oneof(
      fc.constant(null),
      fc.constant(undefined),
      fc.boolean(),
      fc.double(),
      fc.integer(),
      text,
      fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
      fc.uint8Array({ maxLength: 40 }),
      fc.date({ noInvalidDate: false }),
    ),
    value: fc.oneof(
      { depthSize: "small" },
      tie("leaf"),
      fc.array(tie("value"), { maxLength: 5 }),
      fc.dictionary(text, tie("value"), {
        maxKeys: 5,
        noNullPrototype: true,
      }),
    ),
  })).value;
}

Deno.test("one value model: both codecs deliver the same value for anything of the model (property)", () => {
  const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }));
  fc.assert(
    fc.property(modelValue(text), (value) => {
      assert.deepEqual(msgpackCodec.decode(msgpackCodec.encode(value)), value);
      assert.deepEqual(jsonCodec.decode(jsonCodec.encode(value)), value);
    }),
    { numRuns: 300 },
  );
});

Deno.test("one value model: for any JavaScript value, both codecs deliver the same value or refuse it with the same error (property)", () => {
  const roundTrip = (codec: Codec, value: unknown) => {
    try {
      return { value: codec.decode(codec.encode(value)) };
    } catch (e) {
      assert.ok(e instanceof TypeError, `${codec.name}: ${e}`);
      return { refused: e.message };
    }
  };
  fc.assert(
    fc.property(
      fc.anything({
        withBigInt: true,
        withDate: true,
        withTypedArray: true,
        withSparseArray: true,
        withNullPrototype: true,
        withObjectString: true,
        withMap: true,
        withSet: true,
        withBoxedValues: true,
        withUnicodeString: true,
        maxDepth: 4,
      }),
      (value) => {
        assert.deepEqual(
          roundTrip(msgpackCodec, value),
          roundTrip(jsonCodec, value),
        );
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("one value model: strings with lone surrogates arrive the same through both codecs, with U+FFFD in their place (property)", () => {
  assert.deepEqual(
    jsonCodec.decode(jsonCodec.encode({ "k\ud800": "\udc00x" })),
    {
      "k\ufffd": "\ufffdx",
    },
  );
  fc.assert(
    fc.property(modelValue(fc.string({ unit: "binary" })), (value) => {
      const viaMsgpack = msgpackCodec.decode(msgpackCodec.encode(value));
      const viaJson = jsonCodec.decode(jsonCodec.encode(value));
      assert.deepEqual(viaJson, viaMsgpack);
    }),
    { numRuns: 300 },
  );
});

Deno.test("msgpack decoder: arbitrary bytes decode to a value of the model or fail with a decode error that quotes nothing (property)", () => {
  fc.assert(
    fc.property(hostileBytes, (bytes) => {
      // The payload sits between copies of the secret, as in a read buffer.
      const around = concat(SECRET_BYTES, bytes, SECRET_BYTES);
      const view = around.subarray(
        SECRET_BYTES.length,
        SECRET_BYTES.length + bytes.length,
      );
      let value: unknown;
      try {
        value = msgpackCodec.decode(view);
      } catch (e) {
        assert.ok(
          e instanceof SyntaxError || e instanceof RangeError,
          String(e),
        );
        assert.match(e.message, /^Cannot decode value: /);
        assertNoSecret(e.message, "decode error");
        return;
      }
      // Whatever was accepted is a value of the model: both codecs carry it.
      assert.deepEqual(jsonCodec.decode(jsonCodec.encode(value)), value);
      assert.deepEqual(msgpackCodec.decode(msgpackCodec.encode(value)), value);
      assertNoSecret(
        new TextDecoder().decode(jsonCodec.encode(value)),
        "value",
      );
    }),
    { numRuns: 3000 },
  );
});

Deno.test("decode errors of both codecs name what, where and the limit, never the payload's values", () => {
  const secretStr = str8(SECRET_BYTES);
  const msgpackCases = [
    concat(u8(0x92), secretStr, u8(0xc1)), // bad format after a string
    concat(u8(0x92), secretStr), // truncated
    concat(u8(0x81), secretStr, u8(0xd4, 0x62, 0)), // unknown ext as value
    concat(secretStr, secretStr), // trailing
    concat(u8(0x81), u8(0x01), secretStr), // non-string key
  ];
  for (const bytes of msgpackCases) assertRefused(msgpackCodec, bytes);
  const json = (text: string) => new TextEncoder().encode(text);
  const jsonCases = [
    `["${SECRET}" 1]`,
    `{"${SECRET}": }`,
    `["${SECRET}"`,
    `{"$zk":"${SECRET}"}`,
    `{"$zk":"bigint","v":"${SECRET}"}`,
    `{"$zk":"bytes","v":"${SECRET}!"}`,
    `{"$zk":"num","v":"${SECRET}"}`,
    `{"$zk":"date","v":"${SECRET}"}`,
    `{"$zk":"obj","v":"${SECRET}"}`,
  ];
  for (const text of jsonCases) assertRefused(jsonCodec, json(text));
  assertRefused(
    jsonCodec,
    json(`["${SECRET}" 1]`),
    SyntaxError,
    /^Cannot decode value: malformed JSON at character \d+$/,
  );
  // Metadata (request header) errors: offsets, not keys or values.
  const meta = (key: string, value: Uint8Array) =>
    concat(
      u8(key.length),
      new TextEncoder().encode(key),
      u8(value.length >> 8, value.length & 0xff),
      value,
    );
  for (
    const bytes of [
      meta(SECRET, u8(1)), // key with capitals
      concat(meta("k", SECRET_BYTES), u8(60), SECRET_BYTES), // truncated entry
      meta("k", concat(SECRET_BYTES, u8(0xff))), // value not UTF-8
    ]
  ) {
    assert.throws(() => decodeMetadata(bytes), (e: unknown) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /at byte \d+/);
      assertNoSecret(e.message, "metadata error");
      return true;
    });
  }
});
