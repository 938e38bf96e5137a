/**
 * Internal: what a connection makes of a server's `error` frame - the error
 * a call rejects with, or the refusal of the whole connection (id 0).
 * Split out of `connection.ts`.
 *
 * @module
 */

import {
  type ErrorPayload,
  type ErrorRegistry,
  ProtocolError,
  ServerClosingError,
} from "../errors.ts";
import type { Codec } from "../protocol/codec.ts";
import { errorMessage as message } from "../_util.ts";

/** Decodes an `error` frame's payload; throws when it is not one. */
function errorPayload(codec: Codec, bytes: Uint8Array): ErrorPayload {
  const payload = codec.decode(bytes) as ErrorPayload;
  if (
    typeof payload?.name !== "string" ||
    typeof payload.message !== "string"
  ) throw new TypeError("expected { name, message }");
  return payload;
}

/**
 * The error of an `error` frame with id 0: the server refused the
 * connection (the caller throws it from its read loop).
 *
 * @param codec The connection's codec.
 * @param bytes The frame's payload.
 * @param name The server, `host:port`.
 * @returns The `ProtocolError` to end the connection with.
 *
 * @example
 * ```ts
 * import { refusalOf } from "./_answers.ts";
 * import { jsonCodec } from "../protocol/codec.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = jsonCodec.encode({ name: "ProtocolError", message: "no" });
 * assert.match(refusalOf(jsonCodec, bytes, "h:1").message, /refused by the server: no$/);
 * ```
 */
export function refusalOf(
  codec: Codec,
  bytes: Uint8Array,
  name: string,
): ProtocolError {
  let reason: string;
  try {
    reason = errorPayload(codec, bytes).message;
  } catch (error) {
    return new ProtocolError(
      `Cannot read error frame from ${name}: ${message(error)}`,
    );
  }
  return new ProtocolError(
    `Connection to ${name} refused by the server: ${reason}`,
  );
}

/**
 * The error a call rejects with for its `error` frame: the revived error,
 * or a `ProtocolError` when the payload is not an error (that call's
 * failure, not the connection's).
 *
 * @param codec The connection's codec.
 * @param errors The caller's error classes.
 * @param bytes The frame's payload.
 * @param method The call's method.
 * @param name The server, `host:port`.
 * @param draining Whether the server sent `goaway` before.
 * @returns The error.
 *
 * @example
 * ```ts
 * import { replyError } from "./_answers.ts";
 * import { jsonCodec } from "../protocol/codec.ts";
 * import { ErrorRegistry, ServerClosingError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = jsonCodec.encode({ name: "ServerClosingError", message: "bye" });
 * const error = replyError(jsonCodec, new ErrorRegistry(), bytes, "m", "h:1", true);
 * assert.ok(error instanceof ServerClosingError && error.notRun);
 * ```
 */
export function replyError(
  codec: Codec,
  errors: ErrorRegistry,
  bytes: Uint8Array,
  method: string,
  name: string,
  draining: boolean,
): Error {
  let payload: ErrorPayload;
  try {
    payload = errorPayload(codec, bytes);
  } catch (error) {
    return new ProtocolError(
      `Cannot call method "${method}": cannot read the error reply from ${name}: ${
        message(error)
      }`,
    );
  }
  const error = errors.revive(payload, { method, target: name });
  // A "closing" refusal is trusted as "not run" only after a goaway (the
  // server refuses unrun what arrives after it; TCP keeps order).
  return draining && error instanceof ServerClosingError
    ? new ServerClosingError(error.message, { notRun: true })
    : error;
}
