import assert from "node:assert/strict";
import { createJsonCodec, jsonCodec, TAG_KEY } from "../src/protocol/codec.ts";
import {
  checkPreface,
  encodeFrame,
  FrameDecoder,
  FrameType,
  PREFACE,
} from "../src/protocol/frame.ts";
import { FrameWriter } from "../src/protocol/frame_writer.ts";
import { ProtocolError } from "../src/errors.ts";
import {
  createMsgpackCodec,
  msgpackCodec,
} from "../src/protocol/msgpack_codec.ts";
import { SUPPORTED_VALUES } from "./_core_helpers.ts";

Deno.test("jsonCodec round-trips every supported value", () => {
  for (const [name, value] of Object.entries(SUPPORTED_VALUES)) {
    const back = jsonCodec.decode(jsonCodec.encode(value));
    if (name === "null-prototype object") {
      assert.deepEqual({ ...(back as object) }, { ...(value as object) }, name);
    } else {
      assert.deepEqual(back, value, name);
    }
  }
  assert.ok(Object.is(jsonCodec.decode(jsonCodec.encode(-0)), -0));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("jsonCodec and msgpackCodec reject unsupported values with a TypeError naming the path", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const cases: Array<[unknown, RegExp]> = [
    [() => 1, /at \$: a function is not supported/],
    [{ f() {} }, /at \$\.f: a function is not supported/],
    [Symbol("s"), /a symbol is not supported/],
    [[1, new Map()], /at \$\[1\]: a Map is not supported/],
    [{ s: new Set([1]) }, /at \$\.s: a Set is not supported/],
    [new (class Point {})(), /an instance of Point is not supported/],
    [new Uint16Array(2), /an instance of Uint16Array is not supported/],
    [cyclic, /at \$\.self: a cycle is not supported/],
    [{ [Symbol("k")]: 1 }, /a symbol key is not supported/],
  ];
  for (const codec of [jsonCodec, msgpackCodec]) {
    for (const [value, pattern] of cases) {
      assert.throws(() => codec.encode(value), (e: unknown) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, pattern);
        assert.match(e.message, /^Cannot encode value at /);
        return true;
      });
    }
  }
  // Shared references that are not cycles are fine.
  const shared = { x: 1 };
  assert.deepEqual(jsonCodec.decode(jsonCodec.encode([shared, shared])), [
    shared,
    shared,
  ]);
});

Deno.test("jsonCodec.decode rejects an unknown tag", () => {
  const bytes = new TextEncoder().encode(`{"${TAG_KEY}":"weird"}`);
  assert.throws(() => jsonCodec.decode(bytes), SyntaxError);
});

Deno.test("checkPreface accepts the preface and classifies wrong peers early", () => {
  const enc = new TextEncoder();
  assert.equal(checkPreface(PREFACE), "ok");
  assert.equal(checkPreface(PREFACE.subarray(0, 4)), "incomplete");
  assert.equal(checkPreface(new Uint8Array(0)), "incomplete");
  assert.equal(
    checkPreface(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n")),
    "http",
  );
  assert.equal(checkPreface(enc.encode("POST")), "http");
  assert.equal(checkPreface(new Uint8Array([0x16, 0x03, 0x01])), "bad");
  const v1 = PREFACE.slice();
  v1[8] = 1;
  assert.equal(checkPreface(v1), "version");
});

Deno.test("FrameDecoder decodes frames split at every byte boundary", () => {
  const frames = [
    encodeFrame(FrameType.Request, 1, new TextEncoder().encode("\x03abc[1]")),
    encodeFrame(FrameType.Ping, 0),
    encodeFrame(FrameType.Result, 0xffffffff, new Uint8Array(300).fill(7)),
    encodeFrame(FrameType.Goaway, 0, new TextEncoder().encode("bye")),
  ];
  const all = new Uint8Array(frames.reduce((s, f) => s + f.length, 0));
  let o = 0;
  for (const f of frames) {
    all.set(f, o);
    o += f.length;
  }
  for (let split = 0; split <= all.length; split++) {
    const decoder = new FrameDecoder({ initialSize: 64 });
    const got: Array<[number, number, number]> = [];
    for (const part of [all.subarray(0, split), all.subarray(split)]) {
      decoder.push(part);
      for (let f = decoder.next(); f; f = decoder.next()) {
        got.push([f.type, f.id, f.payload.length]);
      }
    }
    assert.deepEqual(got, [
      [FrameType.Request, 1, 7],
      [FrameType.Ping, 0, 0],
      [FrameType.Result, 0xffffffff, 300],
      [FrameType.Goaway, 0, 3],
    ], `split at ${split}`);
    assert.equal(decoder.buffered, 0);
  }
});

Deno.test("FrameDecoder rejects a 4 GiB length prefix without allocating", () => {
  const decoder = new FrameDecoder({ maxFrameSize: 1024 * 1024 });
  const before = decoder.capacity;
  decoder.push(new Uint8Array([0xff, 0xff, 0xff]));
  assert.throws(
    () => decoder.push(new Uint8Array([0xff, 1, 0, 0, 0, 1])),
    (e: unknown) =>
      e instanceof ProtocolError &&
      /length 4294967295 exceeds the limit of 1048576 bytes/.test(e.message),
  );
  assert.equal(decoder.capacity, before);
  // The zero-copy path checks too, on next().
  const d2 = new FrameDecoder();
  const space = d2.writable();
  space.set([0xff, 0xff, 0xff, 0xff, 1]);
  d2.commit(5);
  assert.throws(() => d2.next(), ProtocolError);
  assert.ok(d2.capacity <= 65536);
});

Deno.test("FrameDecoder grows only as far as a legal frame needs", () => {
  const decoder = new FrameDecoder({
    maxFrameSize: 200_000,
    initialSize: 1024,
  });
  const frame = encodeFrame(
    FrameType.Result,
    5,
    new Uint8Array(150_000).fill(1),
  );
  for (let o = 0; o < frame.length; o += 4000) {
    decoder.push(frame.subarray(o, o + 4000));
  }
  const f = decoder.next();
  assert.equal(f?.payload.length, 150_000);
  assert.ok(decoder.capacity <= 200_004);
});

Deno.test("FrameDecoder rejects a length below 5 and an unknown frame type", () => {
  const d1 = new FrameDecoder();
  assert.throws(
    () => d1.push(new Uint8Array([0, 0, 0, 4, 1, 0, 0, 0])),
    ProtocolError,
  );
  const d2 = new FrameDecoder();
  const bad = encodeFrame(FrameType.Ping, 1);
  bad[4] = 99;
  d2.push(bad);
  assert.throws(() => d2.next(), /unknown frame type 99/);
});

Deno.test("FrameWriter writes the first frame at once and batches the frames queued during a write", async () => {
  const writes: Uint8Array[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const writer = new FrameWriter({
    async write(p: Uint8Array): Promise<number> {
      writes.push(p.slice());
      if (writes.length === 1) await gate;
      return p.length;
    },
  });
  const b1 = writer.push(FrameType.Ping, 1);
  assert.equal(writer.started, b1); // handed to the socket inside push
  assert.equal(writes.length, 1);
  const b2 = writer.push(FrameType.Ping, 2);
  const b3 = writer.push(
    FrameType.Request,
    3,
    new Uint8Array([1, 2]),
    new Uint8Array([0]),
  );
  assert.equal(b3, b2); // both wait for the first write, in one batch
  assert.ok(b2 > writer.started); // batch 2 not written yet
  await Promise.resolve();
  assert.equal(writes.length, 1);
  release();
  await writer.drained();
  assert.equal(writes.length, 2);
  assert.equal(writes[0]!.length, 9);
  assert.equal(writes[1]!.length, 21);
  assert.equal(writer.started, b2);
});

Deno.test("FrameDecoder gives memory back after a large frame", () => {
  const decoder = new FrameDecoder({
    maxFrameSize: 4 << 20,
    initialSize: 4096,
  });
  decoder.push(encodeFrame(FrameType.Result, 1, new Uint8Array(2 << 20)));
  assert.equal(decoder.next()?.payload.length, 2 << 20);
  assert.ok(decoder.capacity > 1 << 20);
  decoder.writable();
  assert.equal(decoder.capacity, 4096);
});

Deno.test("jsonCodec.encode results stay valid after later encodes", () => {
  const kept = Array.from(
    { length: 5000 },
    (_, i) => jsonCodec.encode([i, "é"]),
  );
  kept.forEach((bytes, i) =>
    assert.deepEqual(jsonCodec.decode(bytes), [i, "é"])
  );
});

Deno.test("createJsonCodec caps bigint digits and rejects malformed bigints", () => {
  const codec = createJsonCodec({ maxBigIntDigits: 5 });
  assert.equal(codec.decode(codec.encode(-99999n)), -99999n);
  assert.throws(
    () => codec.decode(codec.encode(100000n)),
    /bigint of 6 digits exceeds the limit of 5 digits/,
  );
  const tagged = (v: unknown) =>
    new TextEncoder().encode(JSON.stringify({ [TAG_KEY]: "bigint", v }));
  for (const bad of ["0x10", " 1", "1e3", "", 5, null, ["1"]]) {
    assert.throws(() => codec.decode(tagged(bad)), SyntaxError, String(bad));
  }
  assert.equal(jsonCodec.decode(jsonCodec.encode(10n ** 4095n)), 10n ** 4095n);
  assert.throws(
    () => jsonCodec.decode(jsonCodec.encode(10n ** 4096n)),
    RangeError,
  );
  assert.throws(() => createJsonCodec({ maxBigIntDigits: 0 }), RangeError);
});

Deno.test("FrameDecoder holds what a peer sent, not what a length prefix claims", () => {
  const decoder = new FrameDecoder({ initialSize: 16384 });
  const frame = encodeFrame(FrameType.Request, 1, new Uint8Array(3 << 20));
  decoder.push(frame.subarray(0, 20_000)); // 3 MiB announced, 20 kB sent
  assert.equal(decoder.next(), undefined);
  assert.ok(decoder.capacity <= 40_000, `capacity ${decoder.capacity}`);
});

Deno.test("FrameDecoder shrinks after a large frame even when the next one is already arriving", () => {
  const decoder = new FrameDecoder({ initialSize: 4096 });
  const big = encodeFrame(FrameType.Result, 1, new Uint8Array(1 << 20));
  const next = encodeFrame(FrameType.Result, 2, new Uint8Array(100));
  decoder.push(big);
  decoder.push(next.subarray(0, 50)); // pipelined: never fully empty
  assert.equal(decoder.next()?.id, 1);
  assert.ok(decoder.capacity > 1 << 20);
  decoder.writable();
  assert.equal(decoder.capacity, 4096);
  decoder.push(next.subarray(50));
  assert.equal(decoder.next()?.payload.length, 100);
});

Deno.test("msgpackCodec round-trips every supported value", () => {
  for (const [name, value] of Object.entries(SUPPORTED_VALUES)) {
    const back = msgpackCodec.decode(msgpackCodec.encode(value));
    if (name === "null-prototype object") {
      assert.deepEqual({ ...(back as object) }, { ...(value as object) }, name);
    } else {
      assert.deepEqual(back, value, name);
    }
  }
  for (const v of [-0, [1, -0], { z: -0 }]) {
    assert.deepEqual(msgpackCodec.decode(msgpackCodec.encode(v)), v);
  }
  assert.ok(Object.is(msgpackCodec.decode(msgpackCodec.encode(-0)), -0));
  for (
    const n of [
      2n ** 63n,
      -(2n ** 63n),
      2n ** 64n - 1n,
      2n ** 64n,
      -(2n ** 64n),
    ]
  ) {
    assert.equal(msgpackCodec.decode(msgpackCodec.encode(n)), n);
  }
  for (const n of [2 ** 53, -(2 ** 40), 2 ** 64]) {
    assert.equal(msgpackCodec.decode(msgpackCodec.encode(n)), n);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("msgpackCodec carries Uint8Array as raw bytes and decodes an owned copy", () => {
  const bytes = new Uint8Array(4096).fill(7);
  const encoded = msgpackCodec.encode(["echo", [bytes]]);
  assert.ok(encoded.length < 4096 + 32, `${encoded.length} bytes`);
  const input = new Uint8Array(encoded);
  const back = msgpackCodec.decode(input) as [string, [Uint8Array]];
  input.fill(0);
  assert.equal(back[1][0].constructor, Uint8Array);
  assert.deepEqual(back[1][0], bytes);
  // Earlier results stay intact after later encodes.
  const first = msgpackCodec.encode(["x", 1]);
  const copy = first.slice();
  for (let i = 0; i < 10_000; i++) {
    msgpackCodec.encode(["y".repeat(i % 100), i]);
  }
  assert.deepEqual(first, copy);
});

Deno.test("msgpackCodec caps bigint digits and fails on malformed input", () => {
  const codec = createMsgpackCodec({ maxBigIntDigits: 30 });
  assert.equal(codec.decode(codec.encode(10n ** 29n)), 10n ** 29n);
  assert.throws(() => codec.decode(codec.encode(10n ** 30n)), RangeError);
  assert.throws(() =>
    msgpackCodec.decode(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]))
  );
  assert.throws(() => msgpackCodec.decode(new Uint8Array([0xd4, 77, 0])));
  assert.throws(() => createMsgpackCodec({ maxBigIntDigits: 0 }), RangeError);
});

Deno.test("msgpackCodec decodes a payload that is a view into a larger buffer, reading only its range", () => {
  const a = msgpackCodec.encode(["a", 1]);
  const b = msgpackCodec.encode({ b: new Uint8Array([1, 2, 3]) });
  // Two payloads back to back in one buffer, with junk around them.
  const buffer = new Uint8Array(a.length + b.length + 8).fill(0xc1);
  buffer.set(a, 2);
  buffer.set(b, 4 + a.length);
  const viewA = buffer.subarray(2, 2 + a.length);
  const viewB = buffer.subarray(4 + a.length, 4 + a.length + b.length);
  const other = new Uint8Array(msgpackCodec.encode([true]));
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(msgpackCodec.decode(viewA), ["a", 1]);
    assert.deepEqual(msgpackCodec.decode(other), [true]);
    assert.deepEqual(msgpackCodec.decode(viewB), {
      b: new Uint8Array([1, 2, 3]),
    });
  }
  // A truncated view does not read past its end into the next bytes.
  assert.throws(() => msgpackCodec.decode(viewA.subarray(0, viewA.length - 1)));
  assert.throws(() => msgpackCodec.decode(buffer.subarray(2, 2)), SyntaxError);
});
