/**
 * The request header module (`src/protocol/request.ts`) and the deadline's
 * wire form (`src/_deadline.ts`): what the client writes, the server reads
 * back, for every combination of deadline and metadata, and each way a
 * header can be broken.
 */
import assert from "node:assert/strict";
import {
  MAX_METHOD_BYTES,
  methodPrefix,
  readRequestHeader,
  requestSize,
  writeRequest,
} from "../../src/protocol/request.ts";
import {
  deadlineFrom,
  fromWire,
  MAX_WIRE_DEADLINE,
  remaining,
  toWire,
} from "../../src/_deadline.ts";
import { ProtocolError } from "../../src/errors.ts";

const utf8 = new TextEncoder();

function prefixOf(method: string): Uint8Array {
  const prefix = methodPrefix(method);
  assert.ok(prefix instanceof Uint8Array, `${method}: ${prefix}`);
  return prefix;
}

/** A request body as the client writes it. */
function body(
  timeout: number | undefined,
  method: string,
  params: Uint8Array,
  metadata?: Uint8Array,
): Uint8Array {
  const prefix = prefixOf(method);
  const size = requestSize(timeout, prefix, params.length, metadata);
  const out = new Uint8Array(size + 3); // written at an offset
  const end = writeRequest(out, 3, timeout, prefix, params, metadata);
  assert.equal(end, out.length, "writeRequest ends where requestSize said");
  return out.subarray(3);
}

Deno.test("a request header reads back as written, for every deadline and metadata combination", () => {
  const params = new Uint8Array([0x92, 1, 2]);
  for (const timeout of [undefined, 0, 1, 2 ** 31, MAX_WIRE_DEADLINE]) {
    for (const metadata of [undefined, new Uint8Array([1, 107, 0, 1, 118])]) {
      for (const method of ["a", "ünïcode", "m".repeat(MAX_METHOD_BYTES)]) {
        const bytes = body(timeout, method, params, metadata);
        const header = readRequestHeader(bytes);
        const what = `${timeout} ${metadata?.length} ${method.length}`;
        assert.equal(header.unreadable, undefined, what);
        assert.equal(header.timeout, timeout, what);
        assert.deepEqual(header.metadata, metadata, what);
        assert.deepEqual(header.method, utf8.encode(method), what);
        assert.deepEqual(bytes.subarray(header.paramsStart), params, what);
      }
    }
  }
});

Deno.test("a method name over 255 bytes cannot be sent", () => {
  assert.equal(
    methodPrefix("é".repeat(128)), // 256 bytes
    `method name is longer than ${MAX_METHOD_BYTES} bytes`,
  );
});

Deno.test("a broken header ends the connection; truncated metadata fails only its call", () => {
  const ok = body(500, "add", new Uint8Array([0x90]));
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /unknown header flags \(empty\)/],
    ["unknown flag", new Uint8Array([4, 1, 97]), /unknown header flags 4/],
    ["truncated deadline", ok.subarray(0, 3), /truncated deadline/],
    ["no method", new Uint8Array([0]), /truncated method name/],
    ["short method", new Uint8Array([0, 5, 97]), /truncated method name/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(() => readRequestHeader(bytes), (error: unknown) => {
      assert.ok(error instanceof ProtocolError, what);
      assert.match(error.message, message, what);
      return true;
    });
  }
  // Metadata longer than the frame: only this call is unreadable.
  const cut = readRequestHeader(new Uint8Array([2, 0, 9, 1, 97]));
  assert.equal(cut.unreadable, "truncated metadata");
});

Deno.test("a deadline crosses the wire as the ms left, rounded up, or none beyond a u32", () => {
  const now = 1_000_000;
  const cases: [number, number | undefined][] = [
    [now, 0], // due now: 0 ms left, still sent
    [now - 50, 0], // passed: clamped, never negative
    [now + 0.2, 1], // rounded up: the server never gives up first
    [now + 2 ** 31, 2 ** 31],
    [now + MAX_WIRE_DEADLINE, MAX_WIRE_DEADLINE],
    [now + MAX_WIRE_DEADLINE + 1, undefined],
    [Infinity, undefined],
  ];
  for (const [deadline, wire] of cases) {
    assert.equal(toWire(deadline, now), wire, `deadline ${deadline}`);
    // The server's instant is at least the caller's (same clock).
    const seen = fromWire(wire, now);
    assert.ok(
      wire === undefined ? seen === Infinity : seen >= Math.max(deadline, now),
      `deadline ${deadline}: seen ${seen}`,
    );
  }
});

Deno.test("deadlineFrom() caps by the parent and refuses invalid timeouts; remaining() is clamped", () => {
  const now = 5000;
  assert.equal(deadlineFrom(100, Infinity, now), 5100);
  assert.equal(deadlineFrom(100, 5050, now), 5050);
  assert.equal(deadlineFrom(Infinity, 5050, now), 5050);
  assert.equal(deadlineFrom(Infinity, Infinity, now), Infinity);
  assert.equal(deadlineFrom(0, Infinity, now), now);
  assert.equal(deadlineFrom(2 ** 40, Infinity, now), now + 2 ** 40);
  for (const bad of [NaN, -1, "100" as unknown as number]) {
    assert.throws(() => deadlineFrom(bad, Infinity, now), RangeError);
  }
  assert.equal(remaining(now - 1, now), 0);
  assert.equal(remaining(now + 7, now), 7);
  assert.equal(remaining(Infinity, now), Infinity);
});

Deno.test("each header part read exactly to the end of the body is whole; one byte short is truncated", () => {
  const parse = (bytes: number[]) => () =>
    readRequestHeader(new Uint8Array(bytes));
  // A deadline ending the body is whole: what is missing is the method.
  assert.throws(parse([1, 0, 0, 0, 7]), /truncated method name/);
  assert.throws(parse([1, 0, 0, 7]), /truncated deadline/);
  // Metadata ending the body is whole, even when empty: the method is missing.
  assert.throws(parse([2, 0, 1, 9]), /truncated method name/);
  assert.throws(parse([2, 0, 0]), /truncated method name/);
  assert.equal(
    readRequestHeader(new Uint8Array([2, 0, 2, 9])).unreadable,
    "truncated metadata",
  );
  // A method name ending the body is whole (no params), an empty one too.
  const empty = readRequestHeader(new Uint8Array([0, 0]));
  assert.deepEqual([empty.method, empty.paramsStart], [new Uint8Array(0), 2]);
  const named = readRequestHeader(new Uint8Array([0, 2, 97, 98]));
  assert.deepEqual([named.method, named.paramsStart], [utf8.encode("ab"), 4]);
  assert.throws(parse([0, 3, 97, 98]), /truncated method name/);
  // Both flags, each part exactly as long as it says.
  const both = readRequestHeader(
    new Uint8Array([3, 0, 0, 1, 0, 0, 1, 5, 1, 97, 0x90]),
  );
  assert.deepEqual(
    [both.timeout, both.metadata, both.method, both.paramsStart],
    [256, new Uint8Array([5]), utf8.encode("a"), 10],
  );
});

Deno.test("readRequestHeader() fills the header it is given and returns it", () => {
  const into = readRequestHeader(body(9, "x", new Uint8Array([0x90])));
  const again = readRequestHeader(
    body(undefined, "yz", new Uint8Array([0x90])),
    into,
  );
  assert.equal(again, into);
  assert.deepEqual({ ...into }, {
    timeout: undefined,
    metadata: undefined,
    unreadable: undefined,
    method: utf8.encode("yz"),
    paramsStart: 4,
  });
  const cut = readRequestHeader(new Uint8Array([2, 0, 9, 1]), into);
  assert.equal(cut, into);
  assert.deepEqual([into.unreadable, into.method, into.paramsStart], [
    "truncated metadata",
    new Uint8Array(0),
    4,
  ]);
});
