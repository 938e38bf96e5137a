/**
 * The framing layer byte by byte: preface checks, header layout and the
 * decoder's limits and buffer management, at their boundaries.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  checkPingSize,
  checkPreface,
  decodeSettings,
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  encodeSettings,
  FrameDecoder,
  FrameType,
  HEADER_SIZE,
  MAX_PING_PAYLOAD,
  MIN_FRAME_LENGTH,
  PREFACE,
  PREFACE_SIZE,
  PROTOCOL_VERSION,
  RequestFlag,
  writeHeader,
} from "../src/protocol/frame.ts";
import { ProtocolError } from "../src/errors.ts";

const ascii = (text: string) => new TextEncoder().encode(text);

Deno.test("the preface is the magic bytes then the protocol version", () => {
  assert.deepEqual(
    [...PREFACE],
    [0x89, 0x5a, 0x4b, 0x52, 0x50, 0x43, 0x0d, 0x0a, PROTOCOL_VERSION],
  );
  assert.equal(PROTOCOL_VERSION, 2);
  assert.equal(PREFACE_SIZE, 9);
  assert.equal(HEADER_SIZE, 9);
  assert.equal(MIN_FRAME_LENGTH, 5);
  assert.equal(DEFAULT_MAX_FRAME_SIZE, 4 * 1024 * 1024);
  assert.deepEqual(FrameType, {
    Request: 1,
    Result: 2,
    Error: 3,
    Cancel: 4,
    Ping: 5,
    Pong: 6,
    Goaway: 7,
    Settings: 8,
    Open: 9,
    Item: 10,
    End: 11,
    Window: 12,
  });
});

Deno.test("checkPreface() waits for more bytes only while the prefix matches", () => {
  for (let n = 0; n < PREFACE_SIZE; n++) {
    assert.equal(checkPreface(PREFACE.subarray(0, n)), "incomplete", `${n}`);
  }
  assert.equal(checkPreface(PREFACE), "ok");
  // Extra bytes after the preface (the first frame) do not matter.
  assert.equal(checkPreface(new Uint8Array([...PREFACE, 0, 0, 0, 5])), "ok");
  // A wrong byte anywhere in the magic is refused at once.
  for (let i = 0; i < PREFACE_SIZE - 1; i++) {
    const wrong = PREFACE.slice(0, i + 1);
    wrong[i] = wrong[i]! ^ 0x01;
    assert.equal(checkPreface(wrong), "bad", `byte ${i}`);
  }
  for (const version of [0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, 255]) {
    const other = PREFACE.slice();
    other[PREFACE_SIZE - 1] = version;
    assert.equal(checkPreface(other), "version", `${version}`);
  }
});

Deno.test("checkPreface() recognises an HTTP request from its first bytes", () => {
  for (
    const text of [
      "GET / HTTP/1.1\r\n",
      "OPTIONS * HTTP/1.1",
      "ABCDEFGHIJ x", // the longest method the check accepts
      "PUT ",
      "G", // one byte is enough to tell
      "GE",
      "POST",
      "ABCDEFGHIJ", // 10 capitals, no space yet
    ]
  ) {
    assert.equal(checkPreface(ascii(text)), "http", JSON.stringify(text));
  }
  for (
    const text of [
      "get / HTTP/1.1", // lower case
      "AB / HTTP/1.1", // a 2-letter method
      "ABCDEFGHIJK / HTTP/1.1", // an 11-letter method
      "ABCDEFGHIJK", // 11 capitals: too long to be a method
      "SSH-2.0-OpenSSH",
      "\x16\x03\x01", // TLS
      "A1",
      "1GET / HTTP/1.1", // a method must start the request
    ]
  ) {
    assert.equal(checkPreface(ascii(text)), "bad", JSON.stringify(text));
  }
});

Deno.test("writeHeader() writes the length, type and id big-endian", () => {
  const out = new Uint8Array(12).fill(0xee);
  writeHeader(out, 2, FrameType.Goaway, 0x8a0b0c0d, 0x01020304 - 5);
  assert.deepEqual(
    [...out],
    [0xee, 0xee, 1, 2, 3, 4, 7, 0x8a, 0x0b, 0x0c, 0x0d, 0xee],
  );
  const max = new Uint8Array(9);
  writeHeader(max, 0, FrameType.Request, 0xffffffff, 0xffffffff - 5);
  assert.deepEqual([...max], [255, 255, 255, 255, 1, 255, 255, 255, 255]);
});

Deno.test("encodeFrame() is the header followed by the payload", () => {
  assert.deepEqual(
    [...encodeFrame(FrameType.Ping, 258)],
    [0, 0, 0, 5, 5, 0, 0, 1, 2],
  );
  assert.deepEqual(
    [...encodeFrame(FrameType.Result, 1, new Uint8Array([7, 8, 9]))],
    [0, 0, 0, 8, 2, 0, 0, 0, 1, 7, 8, 9],
  );
});

Deno.test("FrameDecoder checks maxFrameSize when it is created", () => {
  for (const bad of [4, 0, -1, NaN, 0x100000000]) {
    assert.throws(
      () => new FrameDecoder({ maxFrameSize: bad }),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot create frame decoder: maxFrameSize must be between 5 and 4294967295, got ${bad}`,
      String(bad),
    );
  }
  for (const good of [5, 0xffffffff]) {
    new FrameDecoder({ maxFrameSize: good, initialSize: 64 });
  }
});

Deno.test("FrameDecoder sizes its first buffer between 64 bytes and maxFrameSize + 4", () => {
  assert.equal(new FrameDecoder().capacity, 65536);
  assert.equal(new FrameDecoder({ initialSize: 10 }).capacity, 64);
  assert.equal(new FrameDecoder({ initialSize: 100 }).capacity, 100);
  assert.equal(
    new FrameDecoder({ maxFrameSize: 100, initialSize: 1000 }).capacity,
    104,
  );
  assert.equal(
    new FrameDecoder({ maxFrameSize: 20, initialSize: 1000 }).capacity,
    64,
  );
});

Deno.test("FrameDecoder accepts a length field exactly at maxFrameSize and rejects one more", () => {
  const at = new FrameDecoder({ maxFrameSize: 100, initialSize: 64 });
  at.push(encodeFrame(FrameType.Result, 1, new Uint8Array(95)));
  assert.equal(at.next()?.payload.length, 95);
  const past = new FrameDecoder({ maxFrameSize: 100, initialSize: 64 });
  assert.throws(
    () => past.push(encodeFrame(FrameType.Result, 1, new Uint8Array(96))),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        "Cannot read frame: length 101 exceeds the limit of 100 bytes",
  );
});

Deno.test("FrameDecoder accepts a length field of 5 and rejects 4", () => {
  const five = new FrameDecoder();
  five.push(new Uint8Array([0, 0, 0, 5, 5, 0, 0, 0, 1]));
  assert.deepEqual(
    (({ type, id, payload }) => [type, id, payload.length])(five.next()!),
    [5, 1, 0],
  );
  const four = new FrameDecoder();
  assert.throws(
    () => four.push(new Uint8Array([0, 0, 0, 4])),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message === "Cannot read frame: length 4 is below the minimum of 5",
  );
});

Deno.test("FrameDecoder knows frame types 1 to 12 and no others", () => {
  for (let type = 0; type <= 13; type++) {
    const decoder = new FrameDecoder();
    const frame = encodeFrame(FrameType.Ping, 1);
    frame[4] = type;
    decoder.push(frame);
    if (type >= 1 && type <= 12) {
      assert.equal(decoder.next()?.type, type);
    } else {
      assert.throws(
        () => decoder.next(),
        (e: unknown) =>
          e instanceof ProtocolError &&
          e.message === `Cannot read frame: unknown frame type ${type}`,
      );
    }
  }
});

Deno.test("FrameDecoder returns nothing until a frame is complete, then exactly it", () => {
  const frame = encodeFrame(FrameType.Result, 0x80000001, ascii("hello"));
  const decoder = new FrameDecoder();
  for (let i = 0; i < frame.length - 1; i++) {
    decoder.push(frame.subarray(i, i + 1));
    assert.equal(decoder.next(), undefined, `after ${i + 1} bytes`);
    assert.equal(decoder.buffered, i + 1);
  }
  decoder.push(frame.subarray(frame.length - 1));
  const got = decoder.next()!;
  assert.equal(got.type, FrameType.Result);
  assert.equal(got.id, 0x80000001);
  assert.equal(new TextDecoder().decode(got.payload), "hello");
  assert.equal(decoder.buffered, 0);
  assert.equal(decoder.next(), undefined);
  // Two frames back to back, the second partial.
  decoder.push(encodeFrame(FrameType.Ping, 2));
  decoder.push(encodeFrame(FrameType.Pong, 3).subarray(0, 6));
  assert.equal(decoder.next()?.id, 2);
  assert.equal(decoder.buffered, 6);
  assert.equal(decoder.next(), undefined);
});

Deno.test("FrameDecoder.peek(), peekAll() and skip() read the raw bytes before frames", () => {
  // Raw bytes go in through writable()/commit(): push() checks a frame head.
  const decoder = new FrameDecoder({ initialSize: 64 });
  const bytes = new Uint8Array([...PREFACE, ...encodeFrame(FrameType.Ping, 9)]);
  decoder.writable().set(bytes);
  decoder.commit(bytes.length);
  assert.equal(decoder.peek(19), undefined);
  assert.deepEqual([...decoder.peek(18)!], [
    ...PREFACE,
    ...encodeFrame(FrameType.Ping, 9),
  ]);
  assert.deepEqual([...decoder.peek(9)!], [...PREFACE]);
  assert.equal(decoder.peekAll().length, 18);
  decoder.skip(PREFACE_SIZE);
  assert.equal(decoder.buffered, 9);
  assert.equal(decoder.peek(10), undefined);
  assert.equal(decoder.peek(9)?.length, 9);
  assert.deepEqual([...decoder.peekAll()], [...encodeFrame(FrameType.Ping, 9)]);
  assert.equal(decoder.next()?.id, 9);
  // Skipping more than is buffered empties it.
  decoder.writable().set([1, 2, 3]);
  decoder.commit(3);
  decoder.skip(10);
  assert.equal(decoder.buffered, 0);
  assert.equal(decoder.peekAll().length, 0);
  decoder.push(encodeFrame(FrameType.Ping, 4));
  assert.equal(decoder.next()?.id, 4);
});

Deno.test("FrameDecoder reads in place through writable() and commit()", () => {
  const decoder = new FrameDecoder({ initialSize: 64 });
  const frame = encodeFrame(FrameType.Request, 7, ascii("abc"));
  const space = decoder.writable();
  assert.equal(space.length, 64);
  space.set(frame);
  decoder.commit(frame.length);
  assert.equal(decoder.buffered, frame.length);
  assert.equal(decoder.writable().length, 64 - frame.length);
  const got = decoder.next()!;
  assert.deepEqual([got.type, got.id, [...got.payload]], [1, 7, [97, 98, 99]]);
});

Deno.test("FrameDecoder compacts consumed bytes instead of growing", () => {
  const decoder = new FrameDecoder({ initialSize: 8192 });
  const frame = encodeFrame(FrameType.Result, 1, new Uint8Array(3000));
  // Two frames consumed, a third partial near the end of the buffer.
  decoder.push(frame);
  decoder.push(frame);
  decoder.push(frame.subarray(0, 100));
  assert.equal(decoder.next()?.payload.length, 3000);
  assert.equal(decoder.next()?.payload.length, 3000);
  decoder.push(frame.subarray(100));
  assert.equal(decoder.next()?.payload.length, 3000);
  assert.equal(decoder.capacity, 8192);
});

Deno.test("FrameDecoder doubles its buffer, never past what the frame needs or maxFrameSize + 4", () => {
  const decoder = new FrameDecoder({ maxFrameSize: 1000, initialSize: 64 });
  decoder.push(encodeFrame(FrameType.Result, 1, new Uint8Array(995))); // length 1000
  assert.equal(decoder.capacity, 1004);
  assert.equal(decoder.next()?.payload.length, 995);
  // A small frame grows the buffer only to its own size.
  const small = new FrameDecoder({ maxFrameSize: 10_000, initialSize: 64 });
  small.push(encodeFrame(FrameType.Result, 1, new Uint8Array(70)));
  assert.equal(small.capacity, 79);
  // Four bytes past a full buffer: exactly those, not double.
  const tight = new FrameDecoder({ maxFrameSize: 10_000, initialSize: 64 });
  tight.push(encodeFrame(FrameType.Result, 1, new Uint8Array(59)));
  assert.equal(tight.capacity, 68);
  assert.equal(tight.next()?.payload.length, 59);
  // A claimed length is not trusted: the buffer doubles as bytes arrive.
  const claimed = new FrameDecoder({ maxFrameSize: 10_000, initialSize: 64 });
  const frame = encodeFrame(FrameType.Result, 1, new Uint8Array(500));
  claimed.push(frame.subarray(0, 70));
  assert.equal(claimed.capacity, 128);
  claimed.push(frame.subarray(70));
  assert.equal(claimed.capacity, 509);
  assert.equal(claimed.next()?.payload.length, 500);
});

Deno.test("FrameDecoder gives a buffer past 1 MiB back once at most half its first size is buffered", () => {
  const exact = new FrameDecoder({ maxFrameSize: 2 << 20, initialSize: 4096 });
  exact.push(encodeFrame(FrameType.Result, 1, new Uint8Array((1 << 20) - 9)));
  assert.equal(exact.capacity, 1 << 20); // exactly 1 MiB: kept
  exact.next();
  exact.writable();
  assert.equal(exact.capacity, 1 << 20);

  const frame = encodeFrame(FrameType.Result, 1, new Uint8Array(1 << 20));
  const next = encodeFrame(FrameType.Result, 2, new Uint8Array(5000));
  for (const [pipelined, shrinks] of [[2048, true], [2049, false]] as const) {
    const decoder = new FrameDecoder({
      maxFrameSize: 2 << 20,
      initialSize: 4096,
    });
    decoder.push(frame);
    decoder.push(next.subarray(0, pipelined));
    assert.ok(decoder.capacity > 1 << 20);
    assert.equal(decoder.next()?.payload.length, 1 << 20);
    decoder.writable();
    assert.equal(decoder.capacity === 4096, shrinks, `${pipelined} buffered`);
    // The pipelined bytes are kept either way.
    decoder.push(next.subarray(pipelined));
    const got = decoder.next()!;
    assert.deepEqual([got.id, got.payload.length], [2, 5000]);
  }
});

Deno.test("FrameDecoder refuses to read past a full buffer it may not grow", () => {
  // maxFrameSize + 4 is already the capacity: a buffer holding a whole legal
  // frame's prefix but not consumed cannot grow further.
  const decoder = new FrameDecoder({ maxFrameSize: 60, initialSize: 64 });
  decoder.push(encodeFrame(FrameType.Result, 1, new Uint8Array(55)));
  assert.equal(decoder.buffered, 64);
  assert.throws(
    () => decoder.writable(),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message === "Cannot read frame: decoder buffer is full",
  );
  assert.equal(decoder.next()?.payload.length, 55);
});

Deno.test("checkPingSize() accepts a ping or pong payload of exactly 64 bytes and refuses 65", () => {
  assert.equal(MAX_PING_PAYLOAD, 64);
  assert.deepEqual(RequestFlag, { Deadline: 1, Metadata: 2 });
  for (const type of [FrameType.Ping, FrameType.Pong]) {
    checkPingSize({ type, id: 1, payload: new Uint8Array(64) });
    assert.throws(
      () => checkPingSize({ type, id: 1, payload: new Uint8Array(65) }),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message ===
          `Cannot read frame: ${
            type === FrameType.Ping ? "ping" : "pong"
          } payload of 65 bytes exceeds the limit of 64 bytes`,
    );
  }
});

Deno.test("encodeSettings() writes each setting as key, length, value", () => {
  assert.deepEqual(
    [...encodeSettings({
      maxFrameSize: 0x01020304,
      codecs: ["json", "mp"],
      maxInFlight: 0x0a0b0c0d,
    })],
    [
      1,
      4,
      1,
      2,
      3,
      4,
      2,
      7,
      ...new TextEncoder().encode("json,mp"),
      3,
      4,
      10,
      11,
      12,
      13,
    ],
  );
  assert.deepEqual(
    [...encodeSettings({ maxFrameSize: 5, codecs: [], maxInFlight: 0 })],
    [1, 4, 0, 0, 0, 5, 2, 0, 3, 4, 0, 0, 0, 0],
  );
  // Codec names: 255 bytes fit the one-byte length, 256 do not.
  const names = (n: number) => ["x".repeat(n)];
  const settings = { maxFrameSize: 100, maxInFlight: 0 };
  assert.deepEqual(
    decodeSettings(encodeSettings({ ...settings, codecs: names(255) })).codecs,
    names(255),
  );
  assert.throws(
    () => encodeSettings({ ...settings, codecs: names(256) }),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot encode settings: codec names are longer than 255 bytes",
  );
});

Deno.test("decodeSettings() reads known settings, skips later versions' and refuses malformed ones", () => {
  assert.deepEqual(decodeSettings(new Uint8Array(0)), {
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
    codecs: [],
    maxInFlight: 0,
  });
  const all = { maxFrameSize: 0xffffffff, codecs: ["json"], maxInFlight: 7 };
  assert.deepEqual(decodeSettings(encodeSettings(all)), all);
  // An unknown key of any length is skipped.
  assert.deepEqual(
    decodeSettings(new Uint8Array([99, 3, 1, 2, 3, 3, 4, 0, 0, 1, 0])),
    { maxFrameSize: DEFAULT_MAX_FRAME_SIZE, codecs: [], maxInFlight: 256 },
  );
  // The smallest legal maxFrameSize, and one less.
  assert.equal(
    decodeSettings(new Uint8Array([1, 4, 0, 0, 0, 5])).maxFrameSize,
    5,
  );
  const refuses = (bytes: number[], message: string) =>
    assert.throws(
      () => decodeSettings(new Uint8Array(bytes)),
      (e: unknown) => e instanceof ProtocolError && e.message === message,
      JSON.stringify(bytes),
    );
  refuses(
    [1, 4, 0, 0, 0, 4],
    "Cannot read settings: maxFrameSize 4 is below the minimum of 5",
  );
  refuses([1], "Cannot read settings: truncated entry at byte 0");
  refuses([1, 4, 0, 0, 0], "Cannot read settings: truncated entry at byte 0");
  refuses([99, 2, 0], "Cannot read settings: truncated entry at byte 0");
  refuses(
    [99, 0, 98, 1],
    "Cannot read settings: truncated entry at byte 2",
  );
  refuses(
    [1, 3, 0, 0, 5],
    "Cannot read settings: setting 1 has 3 bytes, expected 4",
  );
  refuses(
    [3, 5, 0, 0, 0, 0, 1],
    "Cannot read settings: setting 3 has 5 bytes, expected 4",
  );
  refuses([2, 1, 0xff], "Cannot read settings: codec names are not UTF-8");
  // Empty values: an empty codec list, an unknown key with no bytes last.
  assert.deepEqual(decodeSettings(new Uint8Array([2, 0])).codecs, []);
  assert.deepEqual(
    decodeSettings(new Uint8Array([3, 4, 0, 0, 0, 9, 99, 0])).maxInFlight,
    9,
  );
  // An entry that ends exactly at the end of the payload is whole.
  assert.deepEqual(
    decodeSettings(new Uint8Array([2, 2, 0x61, 0x62])).codecs,
    ["ab"],
  );
  assert.deepEqual(
    decodeSettings(new Uint8Array([2, 3, 0x61, 0x2c, 0x62])).codecs,
    ["a", "b"],
  );
});
