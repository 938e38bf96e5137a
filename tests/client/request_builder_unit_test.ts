/**
 * The client's request builder (`src/client/_request_builder.ts`) as a
 * unit: every refusal with its exact error (timeout, params, method name,
 * encoding, a passed deadline, metadata), the frame limits at their
 * boundary and one past (the client's, the server's, with and without the
 * 4-byte deadline, which `MAX_WIRE_DEADLINE` decides at its boundary), the
 * parent's deadline, and the per-connection cache of method prefixes.
 */
import assert from "node:assert/strict";
import { RequestBuilder } from "../../src/client/_request_builder.ts";
import { DeadlineExceededError } from "../../src/errors.ts";
import { jsonCodec } from "../../src/protocol/codec.ts";
import { MAX_WIRE_DEADLINE } from "../../src/_deadline.ts";
import { lowerFirst } from "../../src/_util.ts";

const NOW = 1_000_000;

/** The frame size of `echo(["x" * n])` with JSON, without a deadline. */
const size = (n: number) => 5 + 1 + 5 + n + 4;

Deno.test("request builder: a request of exactly the frame limit is built; one byte more is a RangeError naming the limit", () => {
  for (const limit of [100, 1000]) {
    const b = new RequestBuilder(jsonCodec, limit, limit);
    const n = limit - size(0);
    assert.equal(b.build("echo", ["x".repeat(n)], {}, NOW), undefined);
    assert.equal(b.payload.length, n + 4);
    const e = b.build("echo", ["x".repeat(n + 1)], {}, NOW);
    assert.ok(e instanceof RangeError);
    assert.equal(
      e.message,
      `Cannot call method "echo": request of ${
        limit + 1
      } bytes exceeds the frame limit of ${limit} bytes`,
    );
  }
});

Deno.test("request builder: the smaller of the two frame limits applies, and the message says whose it is", () => {
  const own = new RequestBuilder(jsonCodec, 100, 200);
  const server = new RequestBuilder(jsonCodec, 200, 100);
  for (const b of [own, server]) {
    assert.equal(
      b.build("echo", ["x".repeat(100 - size(0))], {}, NOW),
      undefined,
    );
  }
  const n = 101 - size(0);
  assert.equal(
    (own.build("echo", ["x".repeat(n)], {}, NOW) as Error).message,
    'Cannot call method "echo": request of 101 bytes exceeds the frame limit of 100 bytes',
  );
  assert.equal(
    (server.build("echo", ["x".repeat(n)], {}, NOW) as Error).message,
    `Cannot call method "echo": request of 101 bytes exceeds the server's frame limit of 100 bytes`,
  );
});

Deno.test("request builder: a deadline adds 4 bytes to the request, up to MAX_WIRE_DEADLINE ms; beyond it none is sent", () => {
  const b = new RequestBuilder(jsonCodec, 100, 100);
  const params = ["x".repeat(100 - size(0))];
  assert.equal(b.build("echo", params, { timeout: Infinity }, NOW), undefined);
  const timed = b.build("echo", params, { timeout: 1000 }, NOW);
  assert.match((timed as Error).message, /request of 104 bytes/);
  assert.match(
    (b.build("echo", params, { timeout: MAX_WIRE_DEADLINE }, NOW) as Error)
      .message,
    /request of 104 bytes/,
  );
  assert.equal(
    b.build("echo", params, { timeout: MAX_WIRE_DEADLINE + 1 }, NOW),
    undefined,
  );
  assert.equal(b.deadline, NOW + MAX_WIRE_DEADLINE + 1);
  const fits = ["x".repeat(96 - size(0))];
  assert.equal(b.build("echo", fits, { timeout: 1000 }, NOW), undefined);
  assert.equal(b.deadline, NOW + 1000);
});

Deno.test("request builder: a timeout of 0, or a parent whose deadline passed, is DeadlineExceededError before anything is built", () => {
  const b = new RequestBuilder(jsonCodec, 1000, 1000);
  const zero = b.build("m", [], { timeout: 0 }, NOW);
  assert.ok(zero instanceof DeadlineExceededError);
  assert.equal(
    zero.message,
    'Cannot call method "m": deadline of 0 ms exceeded (request not sent)',
  );
  for (const deadline of [NOW, NOW - 1]) {
    const late = b.build("m", [], { parent: { deadline } }, NOW);
    assert.ok(late instanceof DeadlineExceededError);
    assert.equal(
      late.message,
      `Cannot call method "m": the calling handler's deadline has passed`,
    );
  }
  // One millisecond left is enough.
  assert.equal(b.build("m", [], { timeout: 1 }, NOW), undefined);
  assert.equal(b.deadline, NOW + 1);
});

Deno.test("request builder: the parent's deadline caps the timeout; null opts out; none given means no deadline", () => {
  const b = new RequestBuilder(jsonCodec, 1000, 1000);
  const parent = { deadline: NOW + 50 };
  assert.equal(b.build("m", [], { timeout: 100, parent }, NOW), undefined);
  assert.equal(b.deadline, NOW + 50);
  assert.equal(b.build("m", [], { timeout: 20, parent }, NOW), undefined);
  assert.equal(b.deadline, NOW + 20);
  assert.equal(b.build("m", [], { parent }, NOW), undefined);
  assert.equal(b.deadline, NOW + 50);
  assert.equal(
    b.build("m", [], { timeout: 100, parent: null }, NOW),
    undefined,
  );
  assert.equal(b.deadline, NOW + 100);
  assert.equal(b.build("m", [], {}, NOW), undefined);
  assert.equal(b.deadline, Infinity);
});

Deno.test("request builder: bad timeouts, params that are not an array or do not encode, and long method names are refused", () => {
  const b = new RequestBuilder(jsonCodec, 1000, 1000);
  for (const timeout of [NaN, -1, "5" as unknown as number]) {
    const e = b.build("m", [], { timeout }, NOW);
    assert.ok(e instanceof RangeError);
    assert.match(
      e.message,
      /^Cannot call method "m": timeout must be a number of ms >= 0 or Infinity, got /,
    );
  }
  const notArray = b.build("m", { 0: 1 } as unknown as unknown[], {}, NOW);
  assert.ok(notArray instanceof TypeError);
  assert.equal(
    notArray.message,
    'Cannot call method "m": params must be an array',
  );
  const unencodable = b.build("m", [Symbol("s")], {}, NOW);
  assert.ok(unencodable instanceof TypeError);
  assert.ok(unencodable.cause instanceof Error);
  assert.equal(
    unencodable.message,
    `Cannot call method "m": ${lowerFirst(unencodable.cause.message)}`,
  );
  // 255 UTF-8 bytes: fine; 256: refused, the name cut to 40 characters.
  assert.equal(b.build("é".repeat(127) + "a", [], {}, NOW), undefined);
  const long = "é".repeat(128);
  const tooLong = b.build(long, [], {}, NOW);
  assert.ok(tooLong instanceof RangeError);
  assert.ok(
    tooLong.message.startsWith(`Cannot call method "${long.slice(0, 40)}…": `),
    tooLong.message,
  );
});

Deno.test("request builder: metadata is encoded (none for an empty object); bad metadata is that call's error", () => {
  const b = new RequestBuilder(jsonCodec, 1 << 20, 1 << 20);
  assert.equal(b.build("m", [], { metadata: { a: "1" } }, NOW), undefined);
  assert.deepEqual([...b.metadata!], [1, 97, 0, 1, 49]);
  assert.equal(b.build("m", [], { metadata: {} }, NOW), undefined);
  assert.equal(b.metadata, undefined);
  assert.equal(b.build("m", [], { metadata: { a: "1" } }, NOW), undefined);
  assert.equal(b.build("m", [], {}, NOW), undefined);
  assert.equal(b.metadata, undefined);
  const reserved = b.build("m", [], { metadata: { "zkrpc-x": "1" } }, NOW);
  assert.ok(reserved instanceof TypeError);
  assert.match(reserved.message, /^Cannot call method "m": .*is reserved/);
  // Counted in the frame size: a length (2) and the entries (here 4 + n).
  const small = new RequestBuilder(jsonCodec, 20, 20);
  assert.equal(small.build("m", [], {}, NOW), undefined); // 5+1+2+2 = 10
  assert.equal(
    small.build("m", [], { metadata: { a: "1234" } }, NOW),
    undefined,
  );
  const over = small.build("m", [], { metadata: { a: "12345" } }, NOW);
  assert.match((over as Error).message, /request of 21 bytes/);
});

Deno.test("request builder: a refused call leaves the last built request as it was", () => {
  const b = new RequestBuilder(jsonCodec, 100, 100);
  assert.equal(
    b.build("a", [1], { timeout: 10, metadata: { k: "v" } }, NOW),
    undefined,
  );
  const { prefix, payload, metadata, deadline } = b;
  assert.ok(
    b.build("b", ["x".repeat(200)], { timeout: 5 }, NOW) instanceof RangeError,
  );
  assert.ok(
    b.build("c", [], { timeout: 0 }, NOW) instanceof DeadlineExceededError,
  );
  assert.equal(b.prefix, prefix);
  assert.equal(b.payload, payload);
  assert.equal(b.metadata, metadata);
  assert.equal(b.deadline, deadline);
  assert.deepEqual([...b.prefix], [1, 97]);
});

Deno.test("request builder: method prefixes are cached, up to 1024 methods", () => {
  const b = new RequestBuilder(jsonCodec, 1000, 1000);
  const prefixOf = (method: string) => {
    assert.equal(b.build(method, [], {}, NOW), undefined);
    return b.prefix;
  };
  for (let i = 0; i < 1024; i++) prefixOf(`m${i}`);
  assert.equal(prefixOf("m0"), prefixOf("m0"));
  assert.equal(prefixOf("m1023"), prefixOf("m1023"));
  // The 1025th method is encoded per call.
  const first = prefixOf("m1024");
  const second = prefixOf("m1024");
  assert.notEqual(first, second);
  assert.deepEqual(first, second);
});
