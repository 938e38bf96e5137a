/**
 * jsonCodec's wire format exactly: which values go as plain JSON, how the
 * others are tagged, and the UTF-8 paths around the 256-character cut-over.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createJsonCodec, jsonCodec, TAG_KEY } from "../src/protocol/codec.ts";
import { createMsgpackCodec } from "../src/protocol/msgpack_codec.ts";
import { encodeForWrite } from "../src/protocol/scratch_encode.ts";

const wire = (value: unknown) =>
  new TextDecoder().decode(jsonCodec.encode(value));
const parse = (text: string) =>
  jsonCodec.decode(new TextEncoder().encode(text));

Deno.test("jsonCodec sends plain JSON for plain values", () => {
  assert.equal(jsonCodec.name, "json");
  assert.equal(TAG_KEY, "$zk");
  assert.equal(wire([1, "two", true, null]), '[1,"two",true,null]');
  assert.equal(wire("x"), '"x"');
  assert.equal(wire(0), "0");
  assert.equal(wire(false), "false");
  assert.equal(wire(null), "null");
  assert.equal(wire({ a: [1, { b: "c" }] }), '{"a":[1,{"b":"c"}]}');
  assert.equal(wire([]), "[]");
  assert.equal(wire({}), "{}");
  assert.equal(wire({ n: null, a: [null] }), '{"n":null,"a":[null]}');
});

Deno.test("jsonCodec tags the values JSON cannot carry", () => {
  const cases: Array<[unknown, string]> = [
    [undefined, '{"$zk":"undef"}'],
    [NaN, '{"$zk":"num","v":"NaN"}'],
    [Infinity, '{"$zk":"num","v":"Infinity"}'],
    [-Infinity, '{"$zk":"num","v":"-Infinity"}'],
    [-0, '{"$zk":"num","v":"-0"}'],
    [12n, '{"$zk":"bigint","v":"12"}'],
    [-3n, '{"$zk":"bigint","v":"-3"}'],
    [new Uint8Array([1, 2, 255]), '{"$zk":"bytes","v":"AQL/"}'],
    [new Date(5), '{"$zk":"date","v":5}'],
    [new Date(NaN), '{"$zk":"date","v":null}'],
    [[NaN], '[{"$zk":"num","v":"NaN"}]'],
    [[-0], '[{"$zk":"num","v":"-0"}]'],
    [[Infinity, 1], '[{"$zk":"num","v":"Infinity"},1]'],
    [[undefined], '[{"$zk":"undef"}]'],
    [{ u: undefined }, '{"u":{"$zk":"undef"}}'],
    [{ $zk: 1, v: 2 }, '{"$zk":"obj","v":{"$zk":1,"v":2}}'],
  ];
  for (const [value, text] of cases) {
    assert.equal(wire(value), text, text);
    const back = parse(text);
    if (typeof value === "number" && Number.isNaN(value)) {
      assert.ok(Number.isNaN(back));
    } else {
      assert.deepEqual(back, value, text);
    }
  }
  assert.ok(Object.is(parse('{"$zk":"num","v":"-0"}'), -0));
  assert.ok(Object.is((parse('[{"$zk":"num","v":"-0"}]') as number[])[0], -0));
  // Zero is zero, not negative zero, on the plain path.
  assert.ok(
    Object.is((jsonCodec.decode(jsonCodec.encode([0])) as number[])[0], 0),
  );
});

Deno.test("jsonCodec keeps holes and long arrays right", () => {
  // deno-lint-ignore no-sparse-arrays
  const holes = [, 1];
  assert.equal(wire(holes), '[{"$zk":"undef"},1]');
  const long = Array.from({ length: 65 }, (_, i) => i);
  assert.deepEqual(jsonCodec.decode(jsonCodec.encode(long)), long);
  const at64 = Array.from({ length: 64 }, (_, i) => i);
  assert.equal(wire(at64), JSON.stringify(at64));
  const mixed = [...at64, undefined];
  assert.deepEqual(jsonCodec.decode(jsonCodec.encode(mixed)), mixed);
  // Nested arrays and objects go through the tagging walk.
  assert.equal(wire([[undefined]]), '[[{"$zk":"undef"}]]');
  assert.equal(wire([{ a: 1n }]), '[{"a":{"$zk":"bigint","v":"1"}}]');
});

Deno.test("jsonCodec rejects typed arrays, dates and objects of other classes", () => {
  class MyBytes extends Uint8Array {}
  class MyDate extends Date {}
  for (
    const [value, name] of [
      [new MyBytes(1), "MyBytes"],
      [new MyDate(0), "MyDate"],
      [new Int8Array(1), "Int8Array"],
      [Object.create({ inherited: 1 }), "Object"],
    ] as const
  ) {
    assert.throws(
      () => jsonCodec.encode({ x: value }),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message ===
          `Cannot encode value at $.x: an instance of ${name} is not supported`,
      name,
    );
  }
  const nameless = Object.create(
    Object.create(null, { constructor: { value: undefined } }),
  );
  assert.throws(
    () => jsonCodec.encode([nameless]),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot encode value at $[0]: an instance of unknown is not supported",
  );
  assert.throws(
    () => jsonCodec.encode([new Map()]),
    /^TypeError: Cannot encode value at \$\[0\]: a Map is not supported$/,
  );
  assert.throws(
    () => jsonCodec.encode({ [Symbol("k")]: 1 }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot encode value at $[Symbol(k)]: a symbol key is not supported",
  );
  // A non-enumerable symbol key is not part of the value.
  const hidden = Object.defineProperty({ a: 1 }, Symbol("h"), { value: 2 });
  assert.equal(wire(hidden), '{"a":1}');
  // A null-prototype object is plain.
  assert.equal(wire(Object.assign(Object.create(null), { a: 1 })), '{"a":1}');
});

Deno.test("jsonCodec reports a cycle, not a shared reference, at its path", () => {
  const shared = { s: 1 };
  assert.equal(
    wire({ a: shared, b: [shared, shared] }),
    '{"a":{"s":1},"b":[{"s":1},{"s":1}]}',
  );
  const list: unknown[] = [];
  list.push({ back: list });
  assert.throws(
    () => jsonCodec.encode({ list }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot encode value at $.list[0].back: a cycle is not supported",
  );
});

Deno.test("jsonCodec.decode keeps a __proto__ key as data, never as a prototype", () => {
  const decoded = parse(
    '{"__proto__":{"polluted":{"$zk":"undef"}},"n":{"$zk":"bigint","v":"1"}}',
  ) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.ok(Object.hasOwn(decoded, "__proto__"));
  const descriptor = Object.getOwnPropertyDescriptor(decoded, "__proto__")!;
  assert.deepEqual(
    [descriptor.enumerable, descriptor.writable, descriptor.configurable],
    [true, true, true],
  );
  assert.deepEqual({ ...(descriptor.value as object) }, {
    polluted: undefined,
  });
  assert.equal(decoded.n, 1n);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // Plain values next to tagged ones come back as they were.
  assert.deepEqual(
    parse('[null,"s",1,{"n":null},{"$zk":"undef"}]'),
    [null, "s", 1, { n: null }, undefined],
  );
  // Nested tags inside arrays and escaped objects are revived too.
  assert.deepEqual(
    parse(
      '{"$zk":"obj","v":{"$zk":[{"$zk":"bigint","v":"2"}],"k":{"$zk":"undef"}}}',
    ),
    { $zk: [2n], k: undefined },
  );
});

Deno.test("jsonCodec encodes ASCII, non-ASCII and long text, and keeps every result", () => {
  for (
    const text of [
      "",
      "\x7f",
      "\x80",
      "é",
      "𝄞",
      "a".repeat(254), // 256 bytes once quoted
      "a".repeat(255),
      "é".repeat(254),
      "é".repeat(300),
      "b".repeat(5000),
    ]
  ) {
    const bytes = jsonCodec.encode(text);
    assert.deepEqual(bytes, new TextEncoder().encode(JSON.stringify(text)));
    assert.equal(jsonCodec.decode(bytes), text);
  }
  // Short results of every length, enough to wrap the internal buffer
  // several times: each is whole when made...
  for (let i = 0; i < 3000; i++) {
    const text = "x".repeat(i % 254);
    assert.equal(
      new TextDecoder().decode(jsonCodec.encode(text)),
      JSON.stringify(text),
      `${i}`,
    );
  }
  // ...and none is overwritten by a later one.
  const kept = Array.from({ length: 2000 }, (_, i) => {
    const text = `${i}:${i % 2 ? "é" : "e"}${"x".repeat(i % 250)}`;
    return [text, jsonCodec.encode(text)] as const;
  });
  for (const [text, bytes] of kept) {
    assert.equal(new TextDecoder().decode(bytes), JSON.stringify(text));
  }
});

Deno.test("jsonCodec.decode rejects bytes that are not UTF-8, short or long", () => {
  for (const length of [1, 10, 256, 257, 1000]) {
    const bytes = new Uint8Array(length).fill(0x22); // '"'
    bytes[Math.floor(length / 2)] = 0xff;
    assert.throws(() => jsonCodec.decode(bytes), SyntaxError, `${length}`);
  }
  // A lone continuation byte (0x80) is not UTF-8 either.
  assert.throws(
    () => jsonCodec.decode(new Uint8Array([0x22, 0x80, 0x22])),
    SyntaxError,
  );
  assert.equal(jsonCodec.decode(new Uint8Array([0x22, 0x7f, 0x22])), "\x7f");
  assert.equal(
    jsonCodec.decode(new Uint8Array([0x22, 0xc2, 0x80, 0x22])),
    "\x80",
  );
  assert.throws(() => parse("{not json"), SyntaxError);
  assert.throws(
    () => parse('{"$zk":"weird"}'),
    (e: unknown) =>
      e instanceof SyntaxError &&
      e.message === 'Cannot decode value: unknown "$zk" tag', // not the peer's tag
  );
});

/** `value` behind a proxy that records whether JSON.stringify saw it itself. */
function watched(
  value: unknown[],
): { proxy: unknown[]; direct: () => boolean } {
  let direct = false;
  const proxy = new Proxy(value, {
    get(target, key, receiver) {
      if (key === "toJSON") direct = true; // only JSON.stringify asks
      return Reflect.get(target, key, receiver);
    },
  });
  return { proxy, direct: () => direct };
}

Deno.test("jsonCodec sends a flat list of up to 64 plain values without the tagging walk (the per-call fast path)", () => {
  const fast: unknown[][] = [
    [],
    [1, "a", true, false, null, 0, -5.5],
    Array.from({ length: 64 }, (_, i) => i),
  ];
  for (const list of fast) {
    const { proxy, direct } = watched(list);
    assert.equal(wire(proxy), JSON.stringify(list));
    assert.ok(direct(), `fast path for ${JSON.stringify(list)}`);
  }
  const slow: unknown[][] = [
    Array.from({ length: 65 }, (_, i) => i),
    [1, -0],
    [NaN],
    [Infinity],
    [undefined],
    // deno-lint-ignore no-sparse-arrays
    [1, , 2],
    [1n],
    [[1]],
    [{ a: 1 }],
    [new Date(0)],
  ];
  for (const list of slow) {
    const { proxy, direct } = watched(list);
    assert.equal(wire(proxy), wire(Array.from(list)));
    assert.ok(!direct(), `tagging walk for ${list.length} values`);
  }
});

Deno.test("jsonCodec carves outputs of up to 256 characters from a shared buffer", () => {
  for (
    const [text, shared] of [
      ["x".repeat(254), true],
      ["x".repeat(255), false],
      ["é".repeat(200), true],
      ["é".repeat(255), false],
    ] as const
  ) {
    // The JSON text is the string plus two quotes.
    const bytes = jsonCodec.encode(text);
    assert.equal(bytes.buffer.byteLength === 65536, shared, `${text.length}`);
    assert.equal(jsonCodec.decode(bytes), text);
  }
});

Deno.test("a bigint of exactly maxBigIntDigits digits decodes and one more digit is refused", () => {
  const codec = createJsonCodec({ maxBigIntDigits: 5 });
  const tagged = (v: string) => `{"$zk":"bigint","v":"${v}"}`;
  assert.equal(parse(tagged("99999")), 99999n); // jsonCodec: default limit
  assert.equal(
    codec.decode(new TextEncoder().encode(tagged("99999"))),
    99999n,
  );
  assert.equal(
    codec.decode(new TextEncoder().encode(tagged("-99999"))),
    -99999n,
  ); // the sign is not a digit
  for (const v of ["100000", "-100000"]) {
    assert.throws(
      () => codec.decode(new TextEncoder().encode(tagged(v))),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          "Cannot decode value: bigint of 6 digits exceeds the limit of 5 digits",
      v,
    );
  }
  const limit = "9".repeat(4096);
  assert.equal(parse(tagged(limit)), BigInt(limit));
  assert.throws(() => parse(tagged(limit + "9")), RangeError);
  assert.equal(createJsonCodec().name, "json");
  assert.equal(
    createJsonCodec({ maxBigIntDigits: 1 }).decode(
      new TextEncoder().encode(tagged("7")),
    ),
    7n,
  );
  for (const bad of [0, -1, NaN]) {
    assert.throws(
      () => createJsonCodec({ maxBigIntDigits: bad }),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot create JSON codec: maxBigIntDigits must be at least 1, got ${bad}`,
    );
  }
});

Deno.test("jsonCodec.decode refuses malformed tagged values with a SyntaxError", () => {
  for (
    const v of ['"1.5"', '"1e3"', '"abc"', "12", '""', '"-"', '" 1"', "null"]
  ) {
    assert.throws(
      () => parse(`{"$zk":"bigint","v":${v}}`),
      (e: unknown) =>
        e instanceof SyntaxError &&
        e.message === "Cannot decode value: malformed bigint",
      v,
    );
  }
  for (const v of ['"x"', "1", "null"]) {
    assert.throws(
      () => parse(`{"$zk":"obj","v":${v}}`),
      (e: unknown) =>
        e instanceof SyntaxError &&
        e.message === 'Cannot decode value: tag "obj" without an object',
      v,
    );
  }
});

Deno.test("msgpack scratch encode: same bytes as encode, and kept results survive later encodes", () => {
  const codec = createMsgpackCodec();
  const kept = codec.encode({ keep: new Uint8Array(3000).fill(7) });
  const keptCopy = kept.slice();
  for (let i = 0; i < 50; i++) {
    const value = [i, "x".repeat(i * 40), new Uint8Array(i * 100).fill(i)];
    const scratch = encodeForWrite(codec, value);
    assert.deepEqual(scratch, codec.encode(value));
    assert.deepEqual(codec.decode(scratch), value);
  }
  assert.deepEqual(kept, keptCopy);
});

Deno.test("encodeForWrite uses encode for a codec without a scratch encode", () => {
  const value = { a: [1, "two", null] };
  assert.deepEqual(encodeForWrite(jsonCodec, value), jsonCodec.encode(value));
});

Deno.test("msgpack decode: decoded bytes are copies that survive later decodes and reuse of the input", () => {
  const codec = createMsgpackCodec();
  const input = new Uint8Array(64 * 1024);
  const kept: Array<[Uint8Array, number]> = [];
  // Small payloads (slab-pooled) and large ones (own copy), across slabs.
  for (const size of [1, 100, 4000, 9000, 70_000, 3, 8000]) {
    for (let i = 0; i < 20; i++) {
      const fill = (size + i) % 251;
      const encoded = codec.encode([new Uint8Array(size).fill(fill)]);
      const view = input.length >= encoded.length
        ? input.subarray(0, encoded.length)
        : new Uint8Array(encoded.length);
      view.set(encoded);
      const [bytes] = codec.decode(view) as [Uint8Array];
      view.fill(0); // the frame buffer is reused for the next frame
      kept.push([bytes, fill]);
    }
  }
  for (const [bytes, fill] of kept) {
    assert.ok(bytes.every((b) => b === fill));
  }
});
