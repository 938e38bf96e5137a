/**
 * The hot paths of issue 25 as units: frames read where they lie
 * (`FrameDecoder.advance`), request headers and params decoded from a range
 * of a larger buffer, and the msgpack scratch encode of simple values
 * (`_msgpack_simple.ts`), which must write msgpackr's bytes; the call
 * promise and sink of `client/_calls.ts`; `copyBytes`.
 */
import assert from "node:assert/strict";
import { Packr } from "msgpackr/pack";
import {
  decodeSettings,
  encodeFrame,
  encodeSettings,
  FrameDecoder,
  FrameType,
} from "../src/protocol/frame.ts";
import { encodeSimple } from "../src/protocol/_msgpack_simple.ts";
import { decodeMsgpack } from "../src/protocol/_msgpack_decode.ts";
import {
  createMsgpackCodec,
  msgpackCodec,
} from "../src/protocol/msgpack_codec.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { decodeFrom, encodeForWrite } from "../src/protocol/scratch_encode.ts";
import {
  methodPrefix,
  methodStartOf,
  readRequestHeader,
  readRequestHeaderAt,
  requestSize,
  writeRequest,
} from "../src/protocol/request.ts";
import { ProtocolError } from "../src/errors.ts";
import {
  callPromise,
  type CallSink,
  CallTable,
  resolvers,
} from "../src/client/_calls.ts";
import { copyBytes } from "../src/protocol/_copy.ts";

const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  variableMapSize: true,
});

/** Asserts `encodeSimple(value)` gives exactly msgpackr's bytes. */
function assertSameBytes(value: unknown, what: string): Uint8Array {
  const mine = encodeSimple(value);
  assert.ok(mine !== undefined, `${what} is encoded`);
  assert.deepEqual([...mine], [...packr.pack(value)], what);
  return mine;
}

// First in this file: the scratch buffer (1 KiB, never shrinking, one per
// module instance) grows here and nowhere before.
Deno.test("encodeSimple grows its buffer inside a value, keeping the bytes before and writing every width after", () => {
  // Views of these lengths are cached while the buffer is 1 KiB.
  const small = [1.5, -70_000, -300, 70_000, 300];
  assertSameBytes(small, "before growing");
  assertSameBytes(2.5, "a float alone");
  // A float whose 9 bytes end 4 bytes past the first 1 KiB.
  assertSameBytes(["x".repeat(1015), 1.5], "a float past 1 KiB");
  // Several doublings at once, in the middle of an array.
  const big = new Uint8Array(5000).map((_, i) => i);
  assertSameBytes([-1.25, -40_000, big, 0xfffe, -2], "a bin past 4 KiB");
  // Same lengths as before growing, other values: the new buffer's bytes.
  assertSameBytes([-1.5, -70_001, -301, 70_001, 301], "after growing");
  assertSameBytes(-2.5, "a float alone after growing");
  // The buffer grows to 64 KiB exactly, no further.
  const most = assertSameBytes(new Uint8Array(65533), "64 KiB of bin 16");
  assert.equal(most.length, 65536);
  assert.equal(encodeSimple(new Uint8Array(65534)), undefined);
  // The longest cached view (1 KiB) and one past it.
  for (const n of [1021, 1022]) {
    const bytes = assertSameBytes("y".repeat(n), `${n} ASCII characters`);
    assert.equal(bytes.length, n + 3);
    assert.deepEqual(
      [...assertSameBytes("z".repeat(n), `${n} other characters`)],
      [0xda, n >>> 8, n & 0xff, ...Array(n).fill(0x7a)],
    );
  }
});

Deno.test("encodeSimple writes msgpackr's bytes at every integer, string and array size boundary", () => {
  const numbers = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x10000,
    2 ** 32 - 1,
    2 ** 32,
    -1,
    -0x20,
    -0x21,
    -0x80,
    -0x81,
    -0x8000,
    -0x8001,
    -(2 ** 31),
    -(2 ** 31) - 1,
    1.5,
    -2.25,
    1e300,
    Number.MAX_SAFE_INTEGER,
  ];
  const strings = ["", "a", "x".repeat(31), "x".repeat(32), "x".repeat(255)];
  const values: unknown[] = [
    ...numbers,
    ...strings,
    "x".repeat(256),
    true,
    false,
    null,
    [],
    [10, 2],
    Array(15).fill(1),
    Array(16).fill(1),
    Array(64).fill("ab"),
    [1.5, "s", true, null, -7],
  ];
  for (const value of values) {
    const mine = encodeSimple(value);
    assert.ok(mine !== undefined, `${JSON.stringify(value)} is encoded`);
    assert.deepEqual(
      [...mine],
      [...packr.pack(value)],
      `bytes of ${JSON.stringify(value).slice(0, 40)}`,
    );
    assert.deepEqual(msgpackCodec.decode(mine), value);
  }
});

Deno.test("encodeSimple writes msgpackr's bytes for bins and non-finite numbers, up to 64 KiB in all", () => {
  const values: unknown[] = [NaN, Infinity, -Infinity, [NaN, 1]];
  for (const n of [0, 1, 255, 256, 4096, 65_000]) {
    values.push(new Uint8Array(n).fill(7), [new Uint8Array(n).fill(9), 1]);
  }
  for (const value of values) {
    const mine = encodeSimple(value);
    assert.ok(mine !== undefined, `${String(value).slice(0, 20)} is encoded`);
    assert.deepEqual(mine, new Uint8Array(packr.pack(value)));
  }
  // 3 + 65,533 bytes is 64 KiB exactly; one byte more goes to msgpackr.
  assert.equal(encodeSimple(new Uint8Array(65533))?.length, 65536);
  assert.equal(encodeSimple(new Uint8Array(65534)), undefined);
});

Deno.test("encodeSimple leaves -0, undefined, bigints, non-ASCII text, objects, holes and long lists to msgpackr, which still encodes them; other typed arrays stay refused", () => {
  const left: unknown[] = [
    -0,
    [1, -0],
    undefined,
    [undefined],
    10n,
    "é",
    ["a", "€"],
    { a: 1 },
    // deno-lint-ignore no-sparse-arrays
    [, 1],
    Array(65).fill(1),
  ];
  for (const value of left) {
    assert.equal(encodeSimple(value), undefined, String(value));
    const back = msgpackCodec.decode(encodeForWrite(msgpackCodec, value));
    // A hole travels as undefined.
    assert.deepEqual(back, Array.isArray(value) ? Array.from(value) : value);
  }
  // Not encoded here, and refused by the codec's checking walk.
  assert.equal(encodeSimple(new Uint16Array(2)), undefined);
  assert.throws(
    () => encodeForWrite(msgpackCodec, [new Uint16Array(2)]),
    /Uint16Array is not supported/,
  );
});

Deno.test("encodeSimple allocates no view per encode up to 1 KiB: the same length gives the same view, showing the new bytes", () => {
  for (const n of [2, 30, 1021]) {
    const first = encodeSimple("a".repeat(n - (n < 32 ? 1 : n < 256 ? 2 : 3)));
    const second = encodeSimple("b".repeat(n - (n < 32 ? 1 : n < 256 ? 2 : 3)));
    assert.ok(first !== undefined && second !== undefined);
    assert.equal(first.length, n);
    assert.equal(second, first, `one view of ${n} bytes`);
    assert.equal(second[n - 1], 0x62);
  }
  // 1 KiB exactly is the longest: [bin 16 of 1020] is 1 + 3 + 1020 bytes.
  const a = encodeSimple([new Uint8Array(1020)]);
  const b = encodeSimple([new Uint8Array(1020).fill(1)]);
  assert.equal(a?.length, 1024);
  assert.equal(b, a);
  assert.equal(b?.[1023], 1);
});

Deno.test("encodeSimple: ASCII ends at 0x7f, exact Uint8Arrays only, 64 KiB in all for a string and for an array ending in a float", () => {
  assertSameBytes("\x00\x7f", "0x00 and 0x7f");
  assert.equal(encodeSimple("\x80"), undefined);
  assert.equal(encodeSimple(["a", "b\x80"]), undefined);
  // Only a Uint8Array itself: a subclass, or an object posing as one, is
  // left to msgpackr.
  class Bytes extends Uint8Array {}
  assert.equal(encodeSimple(new Bytes(2)), undefined);
  assert.equal(encodeSimple([1, new Bytes(2)]), undefined);
  const posing = { constructor: Uint8Array, length: 1, 0: 5 };
  assert.equal(encodeSimple(posing), undefined);
  // str 16: 3 + 65,533 bytes is 64 KiB; one more character is refused.
  const longest = assertSameBytes("q".repeat(65533), "a 64 KiB string");
  assert.equal(longest.length, 65536);
  assert.equal(encodeSimple("q".repeat(65534)), undefined);
  // fixarray + bin 16 header + bin + float 64: 64 KiB, then one past.
  const fits = [new Uint8Array(65523).fill(3), -0.5];
  assert.equal(assertSameBytes(fits, "an array of 64 KiB").length, 65536);
  assert.equal(encodeSimple([new Uint8Array(65524), -0.5]), undefined);
});

Deno.test("FrameDecoder.advance gives each frame's type, id and payload range in order, then false until more bytes come", () => {
  const decoder = new FrameDecoder();
  const one = encodeFrame(FrameType.Result, 7, new Uint8Array([1, 2, 3]));
  const two = encodeFrame(FrameType.Error, 0xffffffff, new Uint8Array(0));
  decoder.push(new Uint8Array([...one, ...two.subarray(0, 8)]));
  assert.equal(decoder.advance(), true);
  assert.equal(decoder.type, FrameType.Result);
  assert.equal(decoder.id, 7);
  assert.equal(decoder.end - decoder.start, 3);
  assert.deepEqual(
    [...decoder.bytes.subarray(decoder.start, decoder.end)],
    [1, 2, 3],
  );
  assert.deepEqual(decoder.frame(), {
    type: FrameType.Result,
    id: 7,
    payload: new Uint8Array([1, 2, 3]),
  });
  assert.equal(decoder.advance(), false);
  decoder.push(two.subarray(8));
  assert.equal(decoder.advance(), true);
  assert.equal(decoder.type, FrameType.Error);
  assert.equal(decoder.id, 0xffffffff);
  assert.equal(decoder.start, decoder.end);
  assert.equal(decoder.advance(), false);
  decoder.push(encodeFrame(13 as FrameType, 1));
  assert.throws(() => decoder.advance(), /unknown frame type 13/);
});

Deno.test("settings: the stream window (key 4) is written after maxInFlight when above 0, read back, and absent at 0", () => {
  const base = { maxFrameSize: 70_000, codecs: ["json"], maxInFlight: 9 };
  const head = [
    1,
    4,
    0,
    1,
    0x11,
    0x70,
    2,
    4,
    106,
    115,
    111,
    110,
    3,
    4,
    0,
    0,
    0,
    9,
  ];
  const windowed = encodeSettings({ ...base, streamWindow: 0x01020304 });
  assert.deepEqual([...windowed], [...head, 4, 4, 1, 2, 3, 4]);
  assert.deepEqual(decodeSettings(windowed), {
    ...base,
    streamWindow: 0x01020304,
  });
  for (
    const plain of [
      encodeSettings(base),
      encodeSettings({ ...base, streamWindow: 0 }),
    ]
  ) {
    assert.deepEqual([...plain], head);
    assert.deepEqual(decodeSettings(plain), base);
  }
  // A stream window of 0 read from the wire is absent; maxInFlight stays.
  const zero = decodeSettings(new Uint8Array([...head, 4, 4, 0, 0, 0, 0]));
  assert.deepEqual(zero, base);
  assert.equal("streamWindow" in zero, false);
});

Deno.test("a range decode reads only its range and counts error positions from its start", () => {
  const value = [1, "two", { three: 3 }];
  const payload = msgpackCodec.encode(value);
  const around = new Uint8Array(payload.length + 10).fill(0xc1);
  around.set(payload, 4);
  const stop = 4 + payload.length;
  assert.deepEqual(decodeMsgpack(around, 100, 4, stop), value);
  assert.deepEqual(decodeFrom(msgpackCodec, around, 4, stop), value);
  // One byte short: truncated inside the range, though bytes follow it.
  assert.throws(
    () => decodeMsgpack(around, 100, 4, stop - 1),
    /truncated .* at byte \d+/,
  );
  assert.throws(() => decodeMsgpack(around, 100, 4, 4), /empty payload/);
  // 0xc1 at the range's first byte is reported at byte 0, not 3.
  assert.throws(
    () => decodeMsgpack(around, 100, 3, stop),
    /unsupported format byte 0xc1 at byte 0$/,
  );
  const json = jsonCodec.encode(value);
  const jsonAround = new Uint8Array([32, ...json, 32, 32]);
  assert.deepEqual(
    decodeFrom(jsonCodec, jsonAround, 1, 1 + json.length),
    value,
  );
});

Deno.test("a range decode counts nesting and bigint positions from its start and keeps the codec's digit cap", () => {
  // 1001 levels at byte 5 of a buffer: the 1001st is at byte 1000 of the range.
  const nested = new Uint8Array([
    ...Array(5).fill(0xee),
    ...Array(1001).fill(0x91),
    0xc0,
    0xee,
  ]);
  assert.throws(
    () => decodeMsgpack(nested, 100, 5, 5 + 1002),
    (e) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot decode value: nesting deeper than 1000 levels at byte 1000",
  );
  const bigint = (digits: string) => {
    const d = new TextEncoder().encode(digits);
    // 7 bytes before, then [1, bigint] with the bigint at byte 2 of the range.
    return new Uint8Array([
      ...Array(7).fill(0xee),
      0x92,
      1,
      0xc7,
      d.length,
      91,
      ...d,
      0xee,
    ]);
  };
  const capped = createMsgpackCodec({ maxBigIntDigits: 30 });
  const fits = bigint("9".repeat(30));
  assert.deepEqual(decodeFrom(capped, fits, 7, fits.length - 1), [
    1,
    10n ** 30n - 1n,
  ]);
  const over = bigint("1" + "0".repeat(30));
  assert.throws(
    () => decodeFrom(capped, over, 7, over.length - 1),
    (e) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot decode value: bigint of 31 digits exceeds the limit of 30 digits at byte 2",
  );
  // The default cap lets the same bigint through.
  assert.deepEqual(decodeFrom(msgpackCodec, over, 7, over.length - 1), [
    1,
    10n ** 30n,
  ]);
});

Deno.test("readRequestHeaderAt reads a body inside a larger buffer as readRequestHeader reads it alone", () => {
  const prefix = methodPrefix("divide") as Uint8Array;
  const params = msgpackCodec.encode([10, 2]);
  const metadata = new Uint8Array([1, 2, 3]);
  for (const timeout of [undefined, 0, 5000]) {
    for (const meta of [undefined, metadata]) {
      const size = requestSize(timeout, prefix, params.length, meta);
      const buf = new Uint8Array(size + 7).fill(0xee);
      writeRequest(buf, 5, timeout, prefix, params, meta);
      const alone = readRequestHeader(buf.slice(5, 5 + size));
      const at = readRequestHeaderAt(buf, 5, 5 + size);
      assert.equal(at.timeout, alone.timeout);
      assert.deepEqual(at.metadata, alone.metadata);
      assert.equal(methodStartOf(at, 5), methodStartOf(alone, 0) + 5);
      assert.equal(at.paramsStart, alone.paramsStart + 5);
      assert.deepEqual(
        buf.subarray(methodStartOf(at, 5), at.paramsStart),
        prefix.subarray(1),
      );
      assert.deepEqual(alone.method, prefix.subarray(1));
    }
  }
  // Cut inside the range, with bytes after it: the range's end counts.
  const buf = new Uint8Array([0xee, 1, 0, 0, 0xee, 0xee, 0xee]);
  assert.throws(
    () => readRequestHeaderAt(buf, 1, 4),
    (e) => e instanceof ProtocolError && /truncated deadline/.test(e.message),
  );
  assert.throws(() => readRequestHeaderAt(buf, 1, 1), /header flags \(empty\)/);
  assert.equal(
    readRequestHeaderAt(new Uint8Array([9, 2, 0, 5, 9]), 1, 4).unreadable,
    "truncated metadata",
  );
  assert.throws(
    () => readRequestHeaderAt(new Uint8Array([0, 3, 97, 98, 99, 100]), 0, 3),
    /truncated method name/,
  );
});

Deno.test("readRequestHeaderAt of a body cut at every byte reads only its range: each part's boundary at and one past", () => {
  const prefix = methodPrefix("div") as Uint8Array;
  const metadata = new Uint8Array([7, 8, 9]);
  const params = msgpackCodec.encode([10, 2]);
  const cases = [
    [5000, metadata],
    [undefined, metadata],
    [5000, undefined],
    [undefined, undefined],
    [undefined, new Uint8Array(0)],
  ] as const;
  for (const [timeout, meta] of cases) {
    const size = requestSize(timeout, prefix, params.length, meta);
    // 6 bytes before the body; after a cut, the rest of the body follows.
    const buf = new Uint8Array(size + 6).fill(0xee);
    writeRequest(buf, 6, timeout, prefix, params, meta);
    const deadlineEnd = 1 + (timeout === undefined ? 0 : 4);
    const metaEnd = deadlineEnd + (meta === undefined ? 0 : 2 + meta.length);
    const nameEnd = metaEnd + prefix.length;
    for (let k = 0; k <= size; k++) {
      const read = () => readRequestHeaderAt(buf, 6, 6 + k);
      const at = `cut at ${k} of ${size}, timeout ${timeout}, ${meta?.length}`;
      if (k === 0) {
        assert.throws(read, /unknown header flags \(empty\)/, at);
      } else if (k < deadlineEnd) {
        assert.throws(read, /truncated deadline/, at);
      } else if (k < metaEnd) {
        const header = read();
        assert.equal(header.unreadable, "truncated metadata", at);
        assert.equal(header.timeout, timeout, at);
        assert.equal(header.metadata, undefined, at);
        assert.equal(header.paramsStart, 6 + k, at);
      } else if (k < nameEnd) {
        assert.throws(
          read,
          (e) =>
            e instanceof ProtocolError &&
            e.message === "Cannot read request: truncated method name",
          at,
        );
      } else {
        const header = read();
        assert.equal(header.unreadable, undefined, at);
        assert.equal(header.timeout, timeout, at);
        assert.deepEqual(header.metadata, meta, at);
        assert.equal(header.paramsStart, 6 + nameEnd, at);
        assert.equal(methodStartOf(header, 6), 6 + metaEnd + 1, at);
      }
    }
  }
});

Deno.test("readRequestHeaderAt: an empty method name and empty metadata at the range's end; a header given is filled and returned; readRequestHeader's method is empty when unreadable", () => {
  // flags 0, a name of 0 bytes, then the range ends: no params yet.
  const empty = readRequestHeaderAt(new Uint8Array([0xee, 0, 0, 0xee]), 1, 3);
  assert.equal(empty.unreadable, undefined);
  assert.equal(empty.paramsStart, 3);
  assert.equal(methodStartOf(empty, 1), 3);
  // Empty metadata ending the range: the name's length is missing.
  assert.throws(
    () => readRequestHeaderAt(new Uint8Array([2, 0, 0, 1, 120]), 0, 3),
    /truncated method name/,
  );
  // A header to fill: the same object, every field replaced.
  const into = readRequestHeader(new Uint8Array([3, 0, 0, 0, 9, 0, 1, 5, 0]));
  assert.equal(into.timeout, 9);
  assert.deepEqual(into.metadata, new Uint8Array([5]));
  const body = new Uint8Array([0xee, 2, 0, 4, 1]);
  const filled = readRequestHeaderAt(body, 1, 5, into);
  assert.equal(filled, into);
  assert.deepEqual(
    [filled.timeout, filled.metadata, filled.unreadable, filled.paramsStart],
    [undefined, undefined, "truncated metadata", 5],
  );
  const again = readRequestHeaderAt(new Uint8Array([0, 1, 120]), 0, 3, into);
  assert.equal(again, into);
  assert.deepEqual(
    [again.timeout, again.metadata, again.unreadable, again.paramsStart],
    [undefined, undefined, undefined, 3],
  );
  // Unreadable: no method name is read, even with bytes after the metadata.
  const unreadable = readRequestHeader(new Uint8Array([2, 0, 9, 1, 120, 0x90]));
  assert.equal(unreadable.unreadable, "truncated metadata");
  assert.equal(unreadable.method.length, 0);
});

Deno.test("a call opened with a sink gets its value from resolve() at once and its error from reject() one microtask later; callPromise hands over its resolvers", async () => {
  const seen: string[] = [];
  const sink: CallSink = {
    onValue: (value) => seen.push(`value ${value}`),
    onError: (error) => seen.push(`error ${(error as Error).message}`),
  };
  const table = new CallTable(8, () => 1, () => {});
  const prefix = new Uint8Array([1, 120]);
  const params = new Uint8Array([0x90]);
  const noop = () => {};
  const openWithSink = () =>
    table.open(
      "x",
      prefix,
      undefined,
      Infinity,
      noop,
      noop,
      params,
      0,
      undefined,
      sink,
    );
  const a = openWithSink();
  const b = openWithSink();
  assert.equal(a.sink, sink);
  table.settle(a);
  a.resolve(7);
  assert.deepEqual(seen, ["value 7"]);
  table.settle(b);
  b.reject(new Error("no"));
  assert.deepEqual(
    seen,
    ["value 7"],
    "not from inside the connection's bookkeeping",
  );
  await Promise.resolve();
  assert.deepEqual(seen, ["value 7", "error no"]);
  // Without a sink the functions given are the call's own.
  const got: unknown[] = [];
  const c = table.open(
    "x",
    prefix,
    undefined,
    Infinity,
    (v) => got.push(v),
    noop,
    params,
  );
  assert.equal(c.sink, undefined);
  c.resolve(1);
  assert.deepEqual(got, [1]);
  table.clear();
  const promise = callPromise();
  const resolve = resolvers.resolve;
  resolvers.clear();
  assert.notEqual(
    resolvers.resolve,
    resolve,
    "clear() drops the call's function",
  );
  resolve("done");
  assert.equal(await promise, "done");
});

Deno.test("copyBytes copies below and from 16 bytes, at the offset, touching nothing else", () => {
  for (const n of [0, 1, 15, 16, 17, 100]) {
    const src = Uint8Array.from({ length: n }, (_, i) => i + 1);
    const target = new Uint8Array(n + 4).fill(0xee);
    copyBytes(target, 2, src);
    assert.deepEqual([...target.subarray(2, 2 + n)], [...src], `${n} bytes`);
    assert.deepEqual([target[0], target[1], target[n + 2], target[n + 3]], [
      0xee,
      0xee,
      0xee,
      0xee,
    ]);
  }
});
