/**
 * The options of a client connection, of one call and of one stream.
 *
 * @module
 */

import type { ErrorRegistry } from "../errors.ts";
import type { Codec } from "../protocol/codec.ts";
import type { ParentCall } from "../_call_scope.ts";
import type { ClientInterceptor } from "../_interceptors.ts";

/**
 * Options of {@linkcode Connection.connect}.
 *
 * @example Registered errors and a fast keepalive
 * ```ts
 * import { Connection, type ConnectionOptions } from "./connection.ts";
 * import { serve } from "../server/server.ts";
 * import { ErrorRegistry } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * class InvalidOperation extends Error {}
 * await using server = serve({
 *   fail(): never {
 *     throw new InvalidOperation("No");
 *   },
 * }, { hostname: "127.0.0.1" });
 * const options: ConnectionOptions = {
 *   connectTimeout: 2000,
 *   errors: new ErrorRegistry().register(InvalidOperation),
 *   keepaliveInterval: 5000,
 *   keepaliveTimeout: 2000,
 * };
 * await using conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port }, options);
 * await assert.rejects(conn.call("fail", []), InvalidOperation);
 * ```
 */
export interface ConnectionOptions {
  /**
   * Milliseconds to open the socket and receive the server's preface. Short,
   * so that an address that accepts and never answers (or never completes
   * the TCP handshake) costs one attempt, not a call's whole deadline.
   *
   * @default {2000}
   */
  connectTimeout?: number;
  /** Aborts the connection attempt (not the calls made on it later). */
  signal?: AbortSignal;
  /** Extra CA certificates (PEM) for TLS endpoints. */
  caCerts?: string[];
  /**
   * Payload codecs offered to the server, preferred first (one codec: only
   * that one). The server picks the first it also supports, at connection
   * start; `jsonCodec` alone is handy for debugging.
   *
   * @default {[msgpackCodec, jsonCodec]}
   */
  codec?: Codec | readonly Codec[];
  /**
   * Error classes to revive by name (the seed's `InvalidOperation`).
   *
   * @default {new ErrorRegistry()}
   */
  errors?: ErrorRegistry;
  /**
   * Largest frame accepted (value of the length field, in bytes), announced
   * to the server in the settings exchange: the server then fails a call
   * whose result would be larger with `ResourceExhaustedError` instead of
   * sending it. Requests are checked against this and the server's limit.
   *
   * @default {4194304}
   */
  maxFrameSize?: number;
  /**
   * Most requests sent and unanswered at once; further calls wait in a local
   * queue (unsent, so `written: false` if the connection drops) until a
   * response frees a slot. Capped by the `maxInFlightPerConnection` the
   * server announces, so a client does not run into its refusal.
   *
   * @default {1024}
   */
  maxInFlight?: number;
  /**
   * Milliseconds without any received frame, while calls are in flight,
   * after which a ping is sent (gRPC style: a connection that keeps
   * receiving frames is never pinged, so keepalive costs nothing under
   * load). `0` disables keepalive.
   *
   * @default {1000}
   */
  keepaliveInterval?: number;
  /**
   * Milliseconds to wait for any frame after a keepalive ping before the
   * peer is declared dead and the connection closed. With the defaults a
   * silent peer (a hung or stopped process) is detected 2-3 s after its
   * last frame.
   *
   * @default {2000}
   */
  keepaliveTimeout?: number;
  /**
   * Milliseconds without any received frame, with no call in flight, after
   * which an idle connection is pinged.
   *
   * @default {30000}
   */
  idleKeepaliveInterval?: number;
  /**
   * Interceptors around every call on this connection; the first is the
   * outermost. With none, calls take the path they take without the
   * feature.
   *
   * @default {[]}
   */
  interceptors?: readonly ClientInterceptor[];
  /**
   * Streaming calls: the items the server may send on one stream before
   * this client grants more (announced as the `streamWindow` setting;
   * granted again as the consumer reads). An unread stream holds at most
   * this many items (each at most `maxFrameSize`) on this side.
   *
   * @default {256}
   */
  streamWindow?: number;
}

/**
 * Options of {@linkcode Connection.prototype.call}.
 *
 * @example Timeout and cancellation
 * ```ts
 * import { type CallOptions, Connection } from "./connection.ts";
 * import { serve } from "../server/server.ts";
 * import { DeadlineExceededError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({
 *   slow: () => new Promise((r) => setTimeout(r, 200)),
 * }, { hostname: "127.0.0.1" });
 * await using conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * const options: CallOptions = { timeout: 20, signal: new AbortController().signal };
 * await assert.rejects(conn.call("slow", [], options), DeadlineExceededError);
 * await new Promise((r) => setTimeout(r, 250)); // let the server's timer end
 * ```
 */
export interface CallOptions {
  /**
   * Milliseconds until the call rejects with
   * {@linkcode DeadlineExceededError} (and a cancel is sent): any number
   * `>= 0` (`0`: already expired, nothing is sent; beyond 2^31-1 ms: a long
   * deadline, timed by chained timers, never early; beyond
   * 2^32-1 ms, `MAX_WIRE_DEADLINE`: the server is told "no deadline") or
   * `Infinity`. `NaN`, negative and non-number values reject the call with
   * a `RangeError` before anything is sent.
   *
   * @default {Infinity (no deadline)}
   */
  timeout?: number;
  /**
   * Aborting it rejects the call with {@linkcode CancelledError} (its
   * `cause` is `signal.reason`) and sends a cancel.
   */
  signal?: AbortSignal;
  /**
   * String key/value pairs sent with the call (`ctx.metadata` on the
   * server). Keys: 1-64 characters of `a-z 0-9 - _ .`; `zkrpc-*` is
   * reserved, `traceparent`/`tracestate` are set by telemetry when it is
   * on. At most `MAX_METADATA_SIZE` (8192) encoded bytes: a larger or
   * malformed one rejects the call before anything is sent.
   */
  metadata?: Readonly<Record<string, string>>;
  /**
   * The call this one is made for: its remaining deadline caps this call's
   * timeout. By default, a call made inside a handler that takes a context
   * (`withContext()`) inherits that call's deadline; `null` opts out.
   *
   * @default {the running handler's call, if any}
   */
  parent?: ParentCall | null;
}

/**
 * Options of `Connection.prototype.stream` (and of a channel's `stream`):
 * those of a call, plus the caller's own stream of items.
 *
 * @example Upload rows and read the answers
 * ```ts
 * import type { StreamOptions } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * async function* rows() {
 *   yield { id: 1 };
 *   yield { id: 2 };
 * }
 * const options: StreamOptions = { input: rows(), timeout: 5000 };
 * assert.equal(options.timeout, 5000);
 * ```
 */
export interface StreamOptions extends CallOptions {
  /**
   * Items sent to the handler, which reads them as `ctx.input` (a
   * `withContext()` handler). Pulled lazily: one item per credit of the
   * server's window (its `streamWindow`, default 256), so a slow handler
   * never makes this side buffer. If it throws, the call is cancelled and
   * fails with that error. Without it, `ctx.input` is `undefined`.
   */
  input?: AsyncIterable<unknown> | ReadableStream<unknown>;
}

/**
 * Detail of the `"close"` event of a {@linkcode Connection}. `error` is
 * `undefined` after a local `close()` and after a graceful server shutdown
 * (EOF after `goaway` with no call pending).
 *
 * @example Listen for close
 * ```ts
 * import { Connection, type ConnectionCloseDetail } from "./connection.ts";
 * import { serve } from "../server/server.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ ok: () => true }, { hostname: "127.0.0.1" });
 * const conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * const closed = new Promise<ConnectionCloseDetail>((resolve) =>
 *   conn.addEventListener("close", (e) => resolve((e as CustomEvent<ConnectionCloseDetail>).detail), { once: true })
 * );
 * conn.close();
 * assert.equal((await closed).error, undefined);
 * ```
 */
export interface ConnectionCloseDetail {
  /** Why the connection closed; `undefined` after a local `close()`. */
  error: Error | undefined;
}
