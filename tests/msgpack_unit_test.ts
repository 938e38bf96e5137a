/**
 * Unit tests of the MessagePack codec (`src/protocol/msgpack_codec.ts`) and
 * its decoder (`src/protocol/_msgpack_decode.ts`) on hand-made bytes: every
 * format byte, each length at its boundary and one past, every refusal with
 * its byte offset, and the encoder's substitutes and refusals. No I/O: the
 * mutation runner's tests for `msgpack_codec` and `msgpack_decode`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  createMsgpackCodec,
  msgpackCodec,
} from "../src/protocol/msgpack_codec.ts";

const decode = (bytes: number[] | Uint8Array) =>
  msgpackCodec.decode(
    bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes),
  );

/** `SyntaxError` (or `type`) with exactly this message. */
function refuses(
  bytes: number[] | Uint8Array,
  message: string,
  type: ErrorConstructor = SyntaxError,
): void {
  assert.throws(
    () => decode(bytes),
    (e) => {
      assert.ok(e instanceof type, `${e}`);
      assert.equal((e as Error).message, message);
      return true;
    },
    message,
  );
}

const be16 = (n: number) => [n >>> 8, n & 0xff];
const be32 = (
  n: number,
) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

Deno.test("msgpack decode: fixints, nil, booleans and every integer width with its sign", () => {
  const cases: [number[], unknown][] = [
    [[0x00], 0],
    [[0x7f], 127],
    [[0xe0], -32],
    [[0xff], -1],
    [[0xc0], null],
    [[0xc2], false],
    [[0xc3], true],
    [[0xcc, 0xff], 255],
    [[0xcd, 0xff, 0xfe], 65534],
    [[0xce, 0xff, 0xff, 0xff, 0xfe], 4294967294],
    [[0xcf, 0, 0, 0, 1, 0, 0, 0, 2], 4294967298n],
    [[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 2n ** 64n - 1n],
    [[0xd0, 0x80], -128],
    [[0xd0, 0x7f], 127],
    [[0xd1, 0x80, 0x00], -32768],
    [[0xd1, 0x7f, 0xff], 32767],
    [[0xd2, 0x80, 0, 0, 0], -2147483648],
    [[0xd2, 0x7f, 0xff, 0xff, 0xff], 2147483647],
    [[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], -2n],
    [[0xca, 0x3f, 0xc0, 0, 0], 1.5],
    [[0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18], Math.PI],
  ];
  for (const [bytes, value] of cases) {
    assert.deepEqual(decode(bytes), value, bytes.join(","));
  }
});

Deno.test("msgpack decode: strings of every header, ASCII and UTF-8, at the short-path boundary", () => {
  const ascii = (n: number) => "a".repeat(n);
  const text = (s: string) => [...new TextEncoder().encode(s)];
  assert.equal(decode([0xa0]), "");
  assert.equal(decode([0xa3, ...text("abc")]), "abc");
  for (const n of [23, 24, 25, 31]) {
    assert.equal(decode([0xa0 | n, ...text(ascii(n))]), ascii(n), `${n}`);
  }
  // Non-ASCII within and beyond the 24-byte short path.
  assert.equal(decode([0xa2, ...text("é")]), "é");
  const mixed = "ab" + "é".repeat(11); // 24 bytes
  assert.equal(decode([0xb8, ...text(mixed)]), mixed);
  const long = "é".repeat(20); // 40 bytes
  assert.equal(decode([0xd9, 40, ...text(long)]), long);
  assert.equal(decode([0xd9, 3, ...text("xyz")]), "xyz");
  assert.equal(decode([0xda, ...be16(3), ...text("xyz")]), "xyz");
  assert.equal(decode([0xdb, ...be32(3), ...text("xyz")]), "xyz");
  const big = ascii(300);
  assert.equal(decode([0xda, ...be16(300), ...text(big)]), big);
  // A value after a string: the position moved past it exactly.
  assert.deepEqual(decode([0x92, 0xa1, 0x61, 0x01]), ["a", 1]);
  assert.deepEqual(decode([0x92, 0xa2, 0xc3, 0xa9, 0x01]), ["é", 1]);
  const utf8Long = text("é".repeat(13)); // 26 bytes
  assert.deepEqual(decode([0x92, 0xba, ...utf8Long, 0x02]), [
    "é".repeat(13),
    2,
  ]);
  refuses(
    [0xa2, 0xc3, 0x28],
    "Cannot decode value: string that is not UTF-8 at byte 1",
  );
  refuses(
    [0xd9, 26, ...new Array(25).fill(0x61), 0xff],
    "Cannot decode value: string that is not UTF-8 at byte 2",
  );
});

Deno.test("msgpack decode: bin 8/16/32 are copies of exactly their bytes", () => {
  const input = new Uint8Array([0xc4, 2, 7, 8]);
  const bin = decode(input) as Uint8Array;
  assert.deepEqual(bin, new Uint8Array([7, 8]));
  assert.equal(bin.buffer.byteLength, 2);
  input[2] = 0;
  assert.equal(bin[0], 7);
  assert.deepEqual(decode([0xc5, ...be16(1), 9]), new Uint8Array([9]));
  assert.deepEqual(decode([0xc6, ...be32(1), 9]), new Uint8Array([9]));
  const many = new Array(256).fill(5);
  assert.deepEqual(decode([0xc5, ...be16(256), ...many]), new Uint8Array(many));
  assert.deepEqual(decode([0x92, 0xc4, 1, 3, 4]), [new Uint8Array([3]), 4]);
});

Deno.test("msgpack decode: arrays and maps of every header; keys of every string header", () => {
  assert.deepEqual(decode([0x90]), []);
  assert.deepEqual(decode([0x93, 1, 2, 3]), [1, 2, 3]);
  assert.deepEqual(
    decode([0x9f, ...new Array(15).fill(1)]),
    new Array(15).fill(1),
  );
  assert.deepEqual(decode([0xdc, ...be16(2), 1, 2]), [1, 2]);
  assert.deepEqual(decode([0xdd, ...be32(2), 1, 2]), [1, 2]);
  assert.deepEqual(decode([0x80]), {});
  assert.deepEqual(decode([0x82, 0xa1, 0x61, 1, 0xa1, 0x62, 2]), {
    a: 1,
    b: 2,
  });
  assert.deepEqual(decode([0xde, ...be16(1), 0xa1, 0x61, 1]), { a: 1 });
  assert.deepEqual(decode([0xdf, ...be32(1), 0xa1, 0x61, 1]), { a: 1 });
  assert.deepEqual(decode([0x81, 0xd9, 1, 0x6b, 1]), { k: 1 });
  assert.deepEqual(decode([0x81, 0xda, 0, 1, 0x6b, 1]), { k: 1 });
  assert.deepEqual(decode([0x81, 0xdb, 0, 0, 0, 1, 0x6b, 1]), { k: 1 });
  // A 15-entry fixmap.
  const entries = [];
  for (let i = 0; i < 15; i++) entries.push(0xa1, 0x61 + i, i);
  const map = decode([0x8f, ...entries]) as Record<string, number>;
  assert.equal(Object.keys(map).length, 15);
  assert.equal(map.o, 14);
  // __proto__ stays an own data property.
  const proto = decode([
    0x81,
    0xa9,
    ...new TextEncoder().encode("__proto__"),
    0x80,
  ]);
  assert.ok(Object.hasOwn(proto as object, "__proto__"));
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  refuses(
    [0x81, 0x01, 0x01],
    "Cannot decode value: map key that is not a string at byte 1",
  );
  refuses(
    [0x81, 0xc0, 0x01],
    "Cannot decode value: map key that is not a string at byte 1",
  );
  refuses(
    [0x81, 0xc4, 0x01, 0x61, 0x01],
    "Cannot decode value: map key that is not a string at byte 1",
  );
});

Deno.test("msgpack decode: arrays, maps and keyed objects too long for what is left are refused before allocating", () => {
  refuses(
    [0x92, 1],
    "Cannot decode value: truncated array of 2 elements at byte 0",
  );
  refuses(
    [0xdd, 0xff, 0xff, 0xff, 0xff],
    "Cannot decode value: truncated array of 4294967295 elements at byte 0",
  );
  // Two bytes per entry: exactly enough is decoded, one fewer is refused.
  refuses(
    [0x82, 0xa0, 1, 0xa0],
    "Cannot decode value: truncated map of 2 entries at byte 0",
  );
  assert.deepEqual(decode([0x82, 0xa0, 1, 0xa1, 0x62, 2]), { "": 1, b: 2 });
  assert.deepEqual(decode([0x81, 0xa0, 1]), { "": 1 });
  refuses(
    [0x91],
    "Cannot decode value: truncated array of 1 elements at byte 0",
  );
  assert.deepEqual(decode([0x91, 0xc0]), [null]);
  refuses(
    [0x81, 0xa0],
    "Cannot decode value: truncated map of 1 entries at byte 0",
  );
});

Deno.test("msgpack decode: truncated headers and data name what is missing and where", () => {
  refuses(
    [0xcc],
    "Cannot decode value: truncated value (1 bytes needed, 0 left) at byte 1",
  );
  refuses(
    [0xcd, 1],
    "Cannot decode value: truncated length (2 bytes needed, 1 left) at byte 1",
  );
  refuses(
    [0xce, 1, 2, 3],
    "Cannot decode value: truncated length (4 bytes needed, 3 left) at byte 1",
  );
  refuses(
    [0xcb, 1, 2, 3, 4, 5, 6, 7],
    "Cannot decode value: truncated number (8 bytes needed, 7 left) at byte 1",
  );
  refuses(
    [0xca, 1, 2, 3],
    "Cannot decode value: truncated number (4 bytes needed, 3 left) at byte 1",
  );
  refuses(
    [0xa3, 0x61, 0x62],
    "Cannot decode value: truncated string (3 bytes needed, 2 left) at byte 1",
  );
  refuses(
    [0xc4, 3, 1, 2],
    "Cannot decode value: truncated bin (3 bytes needed, 2 left) at byte 2",
  );
  refuses(
    [0xd4],
    "Cannot decode value: truncated extension type (1 bytes needed, 0 left) at byte 1",
  );
  refuses(
    [0xd5, 0x5b, 0x31],
    "Cannot decode value: truncated extension data (2 bytes needed, 1 left) at byte 2",
  );
  refuses(
    [0xc1],
    "Cannot decode value: unsupported format byte 0xc1 at byte 0",
  );
  refuses(
    [0x01, 0x02],
    "Cannot decode value: 1 bytes after the value at byte 1",
  );
  refuses(
    [0xc0, 0xc0, 0xc0],
    "Cannot decode value: 2 bytes after the value at byte 1",
  );
  refuses([], "Cannot decode value: empty payload");
});

Deno.test("msgpack decode: extensions -1 (timestamps), 0 (undefined), 90 (-0), 91 (bigint), 92 (keyed object)", () => {
  const ts32 = decode([0xd6, 0xff, ...be32(1000)]) as Date;
  assert.equal(ts32.getTime(), 1_000_000);
  // 64-bit: 30-bit nanoseconds, 34-bit seconds (the top two bits used).
  const nanos = 5_000_000;
  const hi = ((nanos << 2) | 1) >>> 0;
  const ts64 = decode([0xd7, 0xff, ...be32(hi), ...be32(2)]) as Date;
  assert.equal(ts64.getTime(), (0x100000000 + 2) * 1000 + 5);
  refuses(
    [0xd7, 0xff, ...be32(((1_000_000_000 << 2) >>> 0) | 0), 0, 0, 0, 0],
    "Cannot decode value: timestamp with nanoseconds ≥ 10⁹ at byte 0",
  );
  assert.equal(
    (decode([
      0xd7,
      0xff,
      ...be32((999_999_999 << 2) >>> 0),
      0,
      0,
      0,
      1,
    ]) as Date).getTime(),
    1999,
  );
  // 96-bit: nanoseconds, signed 64-bit seconds.
  const ts96 = decode([
    0xc7,
    12,
    0xff,
    ...be32(2_000_000),
    ...be32(0xffffffff),
    ...be32(0xffffffff),
  ]) as Date;
  assert.equal(ts96.getTime(), -1000 + 2);
  const ts96b = decode([
    0xc7,
    12,
    0xff,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
  ]) as Date;
  assert.equal(ts96b.getTime(), 0x100000000 * 1000);
  refuses(
    [0xc7, 12, 0xff, ...be32(1_000_000_000), 0, 0, 0, 0, 0, 0, 0, 0],
    "Cannot decode value: timestamp with nanoseconds ≥ 10⁹ at byte 0",
  );
  assert.ok(Number.isNaN((decode([0xd4, 0xff, 0xff]) as Date).getTime()));
  refuses(
    [0xd4, 0xff, 0x00],
    "Cannot decode value: timestamp with 1 bytes of data at byte 0",
  );
  refuses(
    [0xd5, 0xff, 0, 0],
    "Cannot decode value: timestamp with 2 bytes of data at byte 0",
  );

  assert.deepEqual(decode([0x91, 0xd4, 0x00, 0x00]), [undefined]);
  refuses(
    [0xd4, 0x00, 0x01],
    "Cannot decode value: extension type 0 with 1 bytes of data at byte 0",
  );
  refuses(
    [0xd5, 0x00, 0, 0],
    "Cannot decode value: extension type 0 with 2 bytes of data at byte 0",
  );
  assert.ok(Object.is(decode([0xc7, 0, 90]), -0));
  refuses(
    [0xd4, 90, 0],
    "Cannot decode value: extension type 90 with 1 bytes of data at byte 0",
  );

  const digits = new TextEncoder().encode("-123456789012345678901234567890");
  assert.equal(
    decode([0xc7, digits.length, 91, ...digits]),
    -123456789012345678901234567890n,
  );
  refuses(
    [0xd5, 91, 0x31, 0x78],
    "Cannot decode value: malformed bigint at byte 0",
  );
  refuses([0xc7, 0, 91], "Cannot decode value: malformed bigint at byte 0");

  // Keyed object: ext 92 [0] then an array key, value, ….
  const k = 0x61;
  assert.deepEqual(decode([0xd4, 92, 0, 0x92, 0xa1, k, 1]), { a: 1 });
  assert.deepEqual(decode([0xd4, 92, 0, 0xdc, 0, 2, 0xa1, k, 1]), { a: 1 });
  assert.deepEqual(decode([0xd4, 92, 0, 0xdd, 0, 0, 0, 2, 0xa1, k, 1]), {
    a: 1,
  });
  const keyed = decode([
    0xd4,
    92,
    0,
    0x92,
    0xa9,
    ...new TextEncoder().encode("__proto__"),
    1,
  ]);
  assert.ok(Object.hasOwn(keyed as object, "__proto__"));
  refuses(
    [0xd4, 92, 1, 0x90],
    "Cannot decode value: extension type 92 with 1 bytes of data at byte 0",
  );
  refuses(
    [0xd5, 92, 0, 0, 0x90],
    "Cannot decode value: extension type 92 with 2 bytes of data at byte 0",
  );
  refuses(
    [0xd4, 92, 0, 0x80],
    "Cannot decode value: keyed object without an array at byte 0",
  );
  refuses(
    [0xd4, 92, 0, 0x91, 0xa0],
    "Cannot decode value: keyed object with an odd array at byte 0",
  );
  refuses(
    [0xd4, 92, 0, 0x92, 0xa0],
    "Cannot decode value: truncated keyed object at byte 0",
  );
  refuses(
    [0xd4, 92, 0, 0x92, 0x01, 0x01],
    "Cannot decode value: map key that is not a string at byte 4",
  );

  refuses(
    [0xd4, 5, 0],
    "Cannot decode value: unsupported extension type 5 at byte 0",
  );
  refuses(
    [0xd4, 0x80, 0],
    "Cannot decode value: unsupported extension type -128 at byte 0",
  );
  refuses(
    [0xc8, 0, 1, 7, 0],
    "Cannot decode value: unsupported extension type 7 at byte 0",
  );
  refuses(
    [0xc9, 0, 0, 0, 1, 7, 0],
    "Cannot decode value: unsupported extension type 7 at byte 0",
  );
  refuses(
    [0xd8, 7, ...new Array(16).fill(0)],
    "Cannot decode value: unsupported extension type 7 at byte 0",
  );
});

Deno.test("msgpack decode: the bigint digit cap at its boundary, counted without the sign, and the nesting cap", () => {
  const codec = createMsgpackCodec({ maxBigIntDigits: 30 });
  const at = (s: string) => {
    const d = new TextEncoder().encode(s);
    return new Uint8Array([0xc7, d.length, 91, ...d]);
  };
  assert.equal(codec.decode(at("9".repeat(30))), 10n ** 30n - 1n);
  assert.equal(codec.decode(at("-" + "9".repeat(30))), -(10n ** 30n - 1n));
  assert.throws(
    () => codec.decode(at("1" + "0".repeat(30))),
    (e) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot decode value: bigint of 31 digits exceeds the limit of 30 digits at byte 0",
  );
  assert.throws(
    () => codec.decode(at("-" + "1".repeat(31))),
    /bigint of 31 digits/,
  );
  // 1000 levels of nesting decode, 1001 do not.
  const nest = (n: number) =>
    new Uint8Array([...new Array(n).fill(0x91), 0xc0]);
  let value = msgpackCodec.decode(nest(1000));
  for (let i = 0; i < 1000; i++) value = (value as unknown[])[0];
  assert.equal(value, null);
  assert.throws(
    () => msgpackCodec.decode(nest(1001)),
    (e) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot decode value: nesting deeper than 1000 levels at byte 1000",
  );
  // Depth is per path: siblings do not add up.
  const wide = new Uint8Array([
    0xdc,
    ...be16(1001),
    ...new Array(1001).fill(0x90),
  ]);
  assert.equal((msgpackCodec.decode(wide) as unknown[]).length, 1001);
  const maps = new Uint8Array([
    0xdc,
    ...be16(1001),
    ...new Array(1001).fill(0x80),
  ]);
  assert.equal((msgpackCodec.decode(maps) as unknown[]).length, 1001);
  const keyedNest = (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(0xd4, 92, 0, 0x92, 0xa0);
    return new Uint8Array([...out, 0xc0]);
  };
  assert.doesNotThrow(() => msgpackCodec.decode(keyedNest(1000)));
  assert.throws(() => msgpackCodec.decode(keyedNest(1001)), RangeError);
  const mapNest = (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(0x81, 0xa0);
    return new Uint8Array([...out, 0xc0]);
  };
  assert.doesNotThrow(() => msgpackCodec.decode(mapNest(1000)));
  assert.throws(() => msgpackCodec.decode(mapNest(1001)), RangeError);
});

Deno.test("msgpack codec: round-trips the value model, substitutes -0, big bigints and null-prototype objects", () => {
  const nullProto = Object.assign(Object.create(null), { a: 1 });
  const protoKey = JSON.parse('{"__proto__": {"x": 1}, "b": -0}');
  const values: unknown[] = [
    null,
    true,
    "s",
    1.5,
    NaN,
    Infinity,
    -Infinity,
    -0,
    undefined,
    2n ** 64n - 1n,
    -(2n ** 63n),
    2n ** 64n,
    -(2n ** 63n) - 1n,
    new Date(5),
    new Date(NaN),
    new Uint8Array([1, 2]),
    [1, [2, -0], undefined],
    { a: { b: -0, c: 10n ** 30n } },
    { a: 1, b: -0, c: 3 },
    [1, 2, -0, 4],
  ];
  for (const value of values) {
    const back = msgpackCodec.decode(msgpackCodec.encode(value));
    assert.deepEqual(back, value);
    if (typeof value === "number") assert.ok(Object.is(back, value));
  }
  const arr = msgpackCodec.decode(
    msgpackCodec.encode([1, 2, -0, 4]),
  ) as number[];
  assert.ok(Object.is(arr[2], -0));
  assert.ok(Object.is(arr[0], 1));
  const obj = msgpackCodec.decode(
    msgpackCodec.encode({ a: 1, b: -0, c: 3 }),
  ) as Record<string, number>;
  assert.deepEqual(Object.keys(obj), ["a", "b", "c"]);
  assert.ok(Object.is(obj.b, -0));
  // A null-prototype object comes back with Object.prototype.
  const np = msgpackCodec.decode(msgpackCodec.encode(nullProto));
  assert.equal(Object.getPrototypeOf(np), Object.prototype);
  assert.deepEqual({ ...(np as object) }, { a: 1 });
  const np2 = msgpackCodec.decode(msgpackCodec.encode({ x: nullProto }));
  assert.deepEqual(np2, { x: { a: 1 } });
  // An own __proto__ key stays an own key, and values under it are prepared.
  const pk = msgpackCodec.decode(msgpackCodec.encode(protoKey)) as Record<
    string,
    unknown
  >;
  assert.ok(Object.hasOwn(pk, "__proto__"));
  assert.deepEqual(Object.getOwnPropertyDescriptor(pk, "__proto__")!.value, {
    x: 1,
  });
  assert.ok(Object.is(pk.b, -0));
  // Holes become undefined.
  // deno-lint-ignore no-sparse-arrays
  assert.deepEqual(msgpackCodec.decode(msgpackCodec.encode([1, , 3])), [
    1,
    undefined,
    3,
  ]);
  // Shared references are copied, not refused; the input is not changed.
  const shared = { n: -0 };
  const input = [shared, shared];
  const out = msgpackCodec.decode(msgpackCodec.encode(input)) as unknown[];
  assert.deepEqual(out, [{ n: -0 }, { n: -0 }]);
  assert.ok(Object.is(shared.n, -0));
  assert.equal(input[0], shared);
  assert.equal(msgpackCodec.name, "msgpack");
});

Deno.test("msgpack codec: refuses values outside the model with a TypeError naming the path", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = { again: cyclic };
  const cycleArr: unknown[] = [];
  cycleArr.push([cycleArr]);
  class Point {
    x = 1;
  }
  const cases: [unknown, RegExp][] = [
    [{ f: () => 1 }, /\$\.f/],
    [[1, Symbol("s")], /\$\[1\]/],
    [{ m: new Map() }, /\$\.m/],
    [{ a: [new Set()] }, /\$\.a\[0\]/],
    [{ p: new Point() }, /\$\.p/],
    [new Int8Array(1), /\$/],
    [cyclic, /\$\.self\.again.*cycle/],
    [cycleArr, /\$\[0\]\[0\].*cycle/],
    [{ [Symbol("k")]: 1 }, /\$\[Symbol\(k\)\].*symbol key/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(() => msgpackCodec.encode(value), (e) => {
      assert.ok(e instanceof TypeError, `${e}`);
      assert.match((e as Error).message, pattern);
      return true;
    });
  }
  const protoFn = { ["__proto__"]: 1 } as Record<string, unknown>;
  Object.defineProperty(protoFn, "__proto__", {
    value: { f: () => 1 },
    enumerable: true,
  });
  assert.throws(() => msgpackCodec.encode(protoFn), /\$\.__proto__\.f/);
  // A non-enumerable symbol key is ignored.
  const hidden = {};
  Object.defineProperty(hidden, Symbol("h"), { value: 1, enumerable: false });
  assert.deepEqual(msgpackCodec.decode(msgpackCodec.encode(hidden)), {});
  // Nesting: 1000 levels encode, deeper is refused.
  const deep = (n: number) => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = [v];
    return v;
  };
  assert.doesNotThrow(() => msgpackCodec.encode(deep(999)));
  assert.throws(() => msgpackCodec.encode(deep(1001)), TypeError);
  for (const bad of [0, -1]) {
    assert.throws(
      () => createMsgpackCodec({ maxBigIntDigits: bad }),
      (e) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot create MessagePack codec: maxBigIntDigits must be at least 1, got ${bad}`,
    );
  }
  const one = createMsgpackCodec({ maxBigIntDigits: 1 });
  assert.throws(() => one.decode(one.encode([10n ** 30n])), RangeError);
});

Deno.test("msgpack decode: edge cases at each boundary (0x80 in a short string, the largest nanoseconds, empty keyed objects, sibling keyed objects)", () => {
  refuses(
    [0xa1, 0x80],
    "Cannot decode value: string that is not UTF-8 at byte 1",
  );
  refuses(
    [0xa1, 0x7f + 1],
    "Cannot decode value: string that is not UTF-8 at byte 1",
  );
  assert.equal(decode([0xa1, 0x7f]), "\x7f");
  const ts = decode([
    0xc7,
    12,
    0xff,
    ...be32(999_999_999),
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
  ]) as Date;
  assert.equal(ts.getTime(), 1999);
  // A 2-byte timestamp is refused whatever its data.
  refuses(
    [0xd5, 0xff, 0xff, 0x00],
    "Cannot decode value: timestamp with 2 bytes of data at byte 0",
  );
  // Keyed objects: an empty fixarray is an empty object; a fixstr is not an array.
  assert.deepEqual(decode([0xd4, 92, 0, 0x90]), {});
  refuses(
    [0xd4, 92, 0, 0xa0],
    "Cannot decode value: keyed object without an array at byte 0",
  );
  refuses(
    [0xd4, 92, 0, 0x8f],
    "Cannot decode value: keyed object without an array at byte 0",
  );
  // Depth is released after each keyed object: 1001 siblings decode.
  const siblings: number[] = [];
  for (let i = 0; i < 1001; i++) siblings.push(0xd4, 92, 0, 0x90);
  const out = decode([0xdc, ...be16(1001), ...siblings]) as unknown[];
  assert.equal(out.length, 1001);
  assert.deepEqual(out[1000], {});
});

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");

Deno.test("msgpack encode: exact bytes of the substitutes (-0, bigints at the 64-bit bounds and past them, an own __proto__ key) and of values beside them", () => {
  const enc = (value: unknown) => hex(msgpackCodec.encode(value));
  const NZ = "c7 00 5a"; // ext 90, no data: -0
  assert.equal(enc([true, -0]), `92 c3 ${NZ}`);
  assert.equal(enc([false, "s", -0]), `93 c2 a1 73 ${NZ}`);
  assert.equal(enc([undefined, -0]), `92 d4 00 00 ${NZ}`);
  assert.equal(enc({ a: null, b: -0 }), `82 a1 61 c0 a1 62 ${NZ}`);
  assert.equal(enc([1.5, -0, 0]), `93 cb 3f f8 00 00 00 00 00 00 ${NZ} 00`);
  assert.equal(enc([-(2n ** 63n), -0]), `92 d3 80 00 00 00 00 00 00 00 ${NZ}`);
  assert.equal(
    enc([2n ** 64n - 1n, -0]),
    `92 cf ff ff ff ff ff ff ff ff ${NZ}`,
  );
  assert.equal(
    enc([2n ** 64n, -0]),
    `92 c7 14 5b ${
      hex(new TextEncoder().encode("18446744073709551616"))
    } ${NZ}`,
  );
  assert.equal(
    enc([-(2n ** 63n) - 1n, -0]),
    `92 c7 14 5b ${
      hex(new TextEncoder().encode("-9223372036854775809"))
    } ${NZ}`,
  );
  // An own __proto__ key travels as ext 92 (keyed object), not as a map
  // whose decoding by another peer could set a prototype.
  assert.equal(
    enc(JSON.parse('{"__proto__": {"x": 1}, "b": 2}')),
    `d4 5c 00 94 a9 ${
      hex(new TextEncoder().encode("__proto__"))
    } 81 a1 78 01 a1 62 02`,
  );
  // A null-prototype object is sent as a plain map.
  assert.equal(
    enc(Object.assign(Object.create(null), { a: 1 })),
    "81 a1 61 01",
  );
  // Values needing nothing are sent as they are, also beside ones that do.
  const dates = [new Date(0), new Uint8Array([7])];
  assert.equal(enc([...dates, -0]), `93 d6 ff 00 00 00 00 c4 01 07 ${NZ}`);
});

Deno.test("msgpack encode: refusal messages name the exact path; errors other than refusals pass through unchanged", () => {
  const cases: [unknown, string][] = [
    [
      { a: [new Set()] },
      "Cannot encode value at $.a[0]: a Set is not supported",
    ],
    [
      [1, Symbol("s")],
      "Cannot encode value at $[1]: a symbol is not supported",
    ],
    [{ f: () => 1 }, "Cannot encode value at $.f: a function is not supported"],
    [
      new Int8Array(1),
      "Cannot encode value at $: an instance of Int8Array is not supported",
    ],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => msgpackCodec.encode(value),
      (e) => e instanceof TypeError && e.message === message,
      message,
    );
  }
  class Bytes extends Uint8Array {}
  class When extends Date {}
  for (const value of [[new Bytes(1), -0], [new When(0), -0]]) {
    assert.throws(
      () => msgpackCodec.encode(value),
      /^TypeError: Cannot encode value at \$\[0\]: an instance of (Bytes|When) is not supported$/,
    );
  }
  const own = new RangeError("from a getter");
  const getter = {
    b: -0,
    get a() {
      throw own;
    },
  };
  assert.throws(() => msgpackCodec.encode(getter), (e) => e === own);
  assert.throws(() => msgpackCodec.encode([[getter]]), (e) => e === own);
});
