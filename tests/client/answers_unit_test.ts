/**
 * `client/_answers.ts` as a unit: what a connection makes of a server's
 * `error` frame — the refusal of the whole connection (id 0) and the error
 * a call rejects with, including a `ServerClosingError` trusted as "not run"
 * only after a `goaway`. The real-socket paths are in
 * tests/connection_test.ts and tests/server_test.ts.
 */
import assert from "node:assert/strict";
import { refusalOf, replyError } from "../../src/client/_answers.ts";
import { jsonCodec } from "../../src/protocol/codec.ts";
import { msgpackCodec } from "../../src/protocol/msgpack_codec.ts";
import {
  ErrorRegistry,
  ProtocolError,
  RemoteError,
  ServerClosingError,
} from "../../src/errors.ts";

const NOT_AN_ERROR = "expected { name, message }";

/** Payloads that decode but are not `{ name: string, message: string }`. */
const notErrors: unknown[] = [
  null,
  7,
  "text",
  {},
  { name: "E" },
  { message: "m" },
  { name: 1, message: "m" },
  { name: "E", message: 2 },
  { name: null, message: "m" },
];

Deno.test("refusalOf names the server and the server's reason, in a ProtocolError", () => {
  for (const codec of [jsonCodec, msgpackCodec]) {
    const bytes = codec.encode({ name: "ProtocolError", message: "no room" });
    const error = refusalOf(codec, bytes, "127.0.0.1:4000");
    assert.ok(error instanceof ProtocolError);
    assert.equal(
      error.message,
      "Connection to 127.0.0.1:4000 refused by the server: no room",
    );
  }
});

Deno.test("refusalOf of a payload that is not an error, or not decodable, says it cannot read the frame and why", () => {
  for (const payload of notErrors) {
    const error = refusalOf(jsonCodec, jsonCodec.encode(payload), "h:1");
    assert.ok(error instanceof ProtocolError, JSON.stringify(payload));
    assert.equal(
      error.message,
      `Cannot read error frame from h:1: ${NOT_AN_ERROR}`,
      JSON.stringify(payload),
    );
  }
  const bytes = new TextEncoder().encode("{not json");
  let reason = "";
  try {
    jsonCodec.decode(bytes);
  } catch (error) {
    reason = (error as Error).message;
  }
  assert.notEqual(reason, "");
  const error = refusalOf(jsonCodec, bytes, "h:2");
  assert.ok(error instanceof ProtocolError);
  assert.equal(error.message, `Cannot read error frame from h:2: ${reason}`);
});

Deno.test("replyError revives the payload as the caller's class, with the method and the server", () => {
  class QuotaError extends Error {}
  const errors = new ErrorRegistry().register(QuotaError);
  const bytes = msgpackCodec.encode({ name: "QuotaError", message: "full" });
  for (const draining of [false, true]) {
    const error = replyError(
      msgpackCodec,
      errors,
      bytes,
      "put",
      "h:1",
      draining,
    );
    assert.ok(error instanceof QuotaError, `draining ${draining}`);
    assert.equal(error.message, "full");
  }
  // Unregistered: a RemoteError naming the remote name, method and server.
  const unknown = jsonCodec.encode({ name: "Nope", message: "bad" });
  const error = replyError(
    jsonCodec,
    new ErrorRegistry(),
    unknown,
    "divide",
    "10.0.0.1:7",
    true,
  );
  assert.ok(error instanceof RemoteError);
  assert.equal(error.remoteName, "Nope");
  assert.match(error.message, /"divide"/);
  assert.match(error.message, /10\.0\.0\.1:7/);
});

Deno.test("replyError trusts a ServerClosingError as not run only after a goaway, keeping its message", () => {
  const bytes = jsonCodec.encode({
    name: "ServerClosingError",
    message: "Server is closing",
  });
  for (const draining of [false, true]) {
    const error = replyError(
      jsonCodec,
      new ErrorRegistry(),
      bytes,
      "m",
      "h:1",
      draining,
    );
    assert.ok(error instanceof ServerClosingError);
    assert.equal(error.notRun, draining, `after a goaway: ${draining}`);
    assert.equal(error.message, "Server is closing");
  }
});

Deno.test("replyError of a payload that is not an error is that call's ProtocolError naming the method, the server and why", () => {
  for (const draining of [false, true]) {
    for (const payload of notErrors) {
      const error = replyError(
        jsonCodec,
        new ErrorRegistry(),
        jsonCodec.encode(payload),
        "sum",
        "h:9",
        draining,
      );
      assert.ok(error instanceof ProtocolError, JSON.stringify(payload));
      assert.equal(
        error.message,
        `Cannot call method "sum": cannot read the error reply from h:9: ${NOT_AN_ERROR}`,
      );
    }
  }
  const error = replyError(
    msgpackCodec,
    new ErrorRegistry(),
    new Uint8Array([0xc1]),
    "sum",
    "h:9",
    false,
  );
  assert.ok(error instanceof ProtocolError);
  assert.match(
    error.message,
    /^Cannot call method "sum": cannot read the error reply from h:9: .*0xc1/,
  );
});
