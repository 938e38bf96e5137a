/**
 * Unit tests of the metadata wire format (`src/protocol/metadata.ts`): the
 * exact bytes, every key rule, the 8 KiB limit at its boundary and one past
 * (both directions), and the decoder's refusals naming offsets, never the
 * peer's bytes. No I/O: the mutation runner's tests for `metadata`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  decodeMetadata,
  EMPTY_METADATA,
  encodeMetadata,
  MAX_METADATA_SIZE,
  readMetadata,
  RESERVED_METADATA_KEYS,
} from "../src/protocol/metadata.ts";

/** Metadata of one entry whose encoding takes exactly `size` bytes. */
function ofSize(size: number, key = "k"): Record<string, string> {
  return { [key]: "v".repeat(size - 3 - key.length) };
}

Deno.test("metadata constants: the 8 KiB limit, the reserved trace keys and a frozen empty record", () => {
  assert.equal(MAX_METADATA_SIZE, 8192);
  assert.deepEqual([...RESERVED_METADATA_KEYS], ["traceparent", "tracestate"]);
  assert.ok(Object.isFrozen(EMPTY_METADATA));
  assert.equal(Object.getPrototypeOf(EMPTY_METADATA), null);
  assert.deepEqual(Object.keys(EMPTY_METADATA), []);
});

Deno.test("encodeMetadata writes u8 key length, key, u16 big-endian value length, UTF-8 value, in key order", () => {
  assert.deepEqual(encodeMetadata({}), new Uint8Array(0));
  const value = "é".repeat(150); // 300 bytes: both length bytes matter
  const bytes = encodeMetadata({ ab: "x", c: value });
  const utf8 = new TextEncoder().encode(value);
  assert.deepEqual(
    bytes,
    new Uint8Array([
      2,
      0x61,
      0x62,
      0,
      1,
      0x78,
      1,
      0x63,
      0x01,
      0x2c,
      ...utf8,
    ]),
  );
  assert.deepEqual({ ...decodeMetadata(bytes) }, { ab: "x", c: value });
});

Deno.test("encodeMetadata: exactly 8 KiB is accepted, one byte more is a RangeError naming the limit", () => {
  assert.equal(encodeMetadata(ofSize(MAX_METADATA_SIZE)).length, 8192);
  // Over two entries: the running total counts every entry.
  const two = { ...ofSize(4096, "a"), ...ofSize(4096, "b") };
  assert.equal(encodeMetadata(two).length, 8192);
  assert.throws(
    () => encodeMetadata(ofSize(MAX_METADATA_SIZE + 1)),
    (e) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot send metadata: metadata exceeds the limit of 8192 bytes",
  );
  assert.throws(
    () => encodeMetadata({ ...two, c: "" }, "call x"),
    (e) => e instanceof RangeError && e.message.startsWith("Cannot call x:"),
  );
  // Multi-byte characters count as bytes, not characters.
  assert.throws(
    () => encodeMetadata({ k: "é".repeat(4095) }), // 3 + 1 + 8190 bytes
    RangeError,
  );
  assert.equal(encodeMetadata({ k: "é".repeat(4094) }).length, 8192);
});

Deno.test("encodeMetadata refuses malformed keys, reserved keys and non-string values with a TypeError", () => {
  for (const key of ["", "A", "a b", "ä", "k".repeat(65), "a/b", "a:b"]) {
    assert.throws(
      () => encodeMetadata({ [key]: "v" }),
      (e) =>
        e instanceof TypeError &&
        e.message.startsWith('Cannot send metadata: metadata key "') &&
        e.message.endsWith(
          '" must be 1-64 characters of a-z, 0-9, "-", "_", "."',
        ),
      JSON.stringify(key),
    );
  }
  // Long keys are cut in the message.
  assert.throws(
    () => encodeMetadata({ ["K".repeat(200)]: "v" }),
    (e) =>
      e instanceof Error && e.message.includes(`"${"K".repeat(70)}"`) &&
      !e.message.includes("K".repeat(71)),
  );
  for (const key of ["k".repeat(64), "a-b_c.9", "0"]) {
    assert.equal(
      decodeMetadata(encodeMetadata({ [key]: "v" }))[key],
      "v",
      key,
    );
  }
  assert.throws(
    () => encodeMetadata({ "zkrpc-x": "v" }, "go"),
    (e) =>
      e instanceof TypeError &&
      e.message ===
        'Cannot go: metadata key "zkrpc-x" is reserved (keys starting with "zkrpc-" are zkrpc\'s own)',
  );
  assert.equal(encodeMetadata({ "zkrpc": "v" }).length, 9);
  assert.equal(encodeMetadata({ "x-zkrpc-": "v" }).length, 12);
  for (const value of [1, null, undefined, {}]) {
    assert.throws(
      () => encodeMetadata({ k: value as unknown as string }),
      (e) =>
        e instanceof TypeError &&
        e.message ===
          `Cannot send metadata: metadata value of "k" must be a string, got ${typeof value}`,
    );
  }
});

Deno.test("decodeMetadata returns a frozen null-prototype record; the limit holds at 8 KiB and one past", () => {
  const decoded = decodeMetadata(encodeMetadata({ a: "1", b: "" }));
  assert.ok(Object.isFrozen(decoded));
  assert.equal(Object.getPrototypeOf(decoded), null);
  assert.deepEqual({ ...decoded }, { a: "1", b: "" });
  assert.deepEqual({ ...decodeMetadata(new Uint8Array(0)) }, {});
  const full = encodeMetadata(ofSize(MAX_METADATA_SIZE));
  assert.equal(decodeMetadata(full).k!.length, 8188);
  const over = new Uint8Array(MAX_METADATA_SIZE + 1);
  over.set(full);
  assert.throws(
    () => decodeMetadata(over),
    (e) =>
      e instanceof TypeError &&
      e.message === "metadata of 8193 bytes exceeds the limit of 8192 bytes",
  );
});

Deno.test("decodeMetadata refuses truncated entries, malformed keys and non-UTF-8 values by offset, never echoing bytes", () => {
  const good = encodeMetadata({ a: "1" }); // 5 bytes
  const cases: [Uint8Array, string][] = [
    [new Uint8Array([1]), "truncated metadata entry at byte 0"],
    [new Uint8Array([1, 0x61, 0]), "truncated metadata entry at byte 0"],
    [
      new Uint8Array([...good, 1, 0x62, 0]),
      "truncated metadata entry at byte 5",
    ],
    [
      new Uint8Array([1, 0x61, 0, 2, 0x78]),
      "truncated metadata value at byte 4",
    ],
    [
      new Uint8Array([...good, 1, 0x62, 1, 0, 0x78]),
      "truncated metadata value at byte 9",
    ],
    [
      new Uint8Array([1, 0x41, 0, 0]),
      'malformed metadata key at byte 0 (1-64 of a-z, 0-9, "-", "_", ".")',
    ],
    [
      new Uint8Array([...good, 0, 0, 0]),
      'malformed metadata key at byte 5 (1-64 of a-z, 0-9, "-", "_", ".")',
    ],
    [
      new Uint8Array([1, 0x61, 0, 1, 0xff]),
      "metadata value at byte 4 is not UTF-8",
    ],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(
      () => decodeMetadata(bytes),
      (e) => e instanceof TypeError && e.message === message,
      message,
    );
  }
  // Exactly the entry's length: nothing is truncated.
  assert.deepEqual(
    { ...decodeMetadata(new Uint8Array([1, 0x61, 0, 1, 0x78])) },
    { a: "x" },
  );
  // A value length using the high byte.
  const long = new Uint8Array(4 + 256);
  long.set([1, 0x61, 1, 0]);
  long.fill(0x7a, 4);
  assert.equal(decodeMetadata(long).a, "z".repeat(256));
  // A key of 64 characters is the longest.
  const key64 = new Uint8Array([64, ...new Uint8Array(64).fill(0x6b), 0, 0]);
  assert.equal(decodeMetadata(key64)["k".repeat(64)], "");
  const key65 = new Uint8Array([65, ...new Uint8Array(65).fill(0x6b), 0, 0]);
  assert.throws(
    () => decodeMetadata(key65),
    /malformed metadata key at byte 0/,
  );
});

Deno.test("readMetadata: the pairs, or the reason to refuse them (a decode error's message, a reserved zkrpc- key), never the peer's bytes", () => {
  const ok = readMetadata(encodeMetadata({ a: "b", "x-zkrpc-": "c" }));
  assert.equal(typeof ok, "object");
  assert.deepEqual({ ...ok as object }, { a: "b", "x-zkrpc-": "c" });
  assert.deepEqual({ ...readMetadata(new Uint8Array(0)) as object }, {});
  assert.equal(
    readMetadata(new Uint8Array([1])),
    "truncated metadata entry at byte 0",
  );
  assert.equal(
    readMetadata(new Uint8Array([1, 0x41, 0, 0])),
    'malformed metadata key at byte 0 (1-64 of a-z, 0-9, "-", "_", ".")',
  );
  // A reserved key, first or after others: refused by rule.
  const zkrpcKey = new TextEncoder().encode("zkrpc-secret");
  const reserved = new Uint8Array([
    ...encodeMetadata({ a: "1" }),
    zkrpcKey.length,
    ...zkrpcKey,
    0,
    1,
    0x78,
  ]);
  assert.equal(
    readMetadata(reserved),
    'metadata keys starting with "zkrpc-" are reserved (zkrpc\'s own)',
  );
  const alone = new Uint8Array([zkrpcKey.length, ...zkrpcKey, 0, 0]);
  assert.equal(typeof readMetadata(alone), "string");
  // "zkrpc" without the dash, or the dash not at the start, is allowed.
  for (const key of ["zkrpc", "zkrpcx", "a-zkrpc-"]) {
    const k = new TextEncoder().encode(key);
    const read = readMetadata(new Uint8Array([k.length, ...k, 0, 0]));
    assert.equal(typeof read, "object", key);
  }
});
