/**
 * Internal: turns one call (method, params, options) into the parts of its
 * request - the method prefix (cached), the encoded params, the metadata and
 * the deadline - or into the error that refuses it before anything is sent.
 *
 * @module
 */

import { DeadlineExceededError } from "../errors.ts";
import { errorMessage as message, lowerFirst } from "../_util.ts";
import { isValidTimeout, timeoutError } from "../_async.ts";
import { inheritedDeadline, type ParentCall } from "../_call_scope.ts";
import { type Deadline, MAX_WIRE_DEADLINE } from "../_deadline.ts";
import type { Codec } from "../protocol/codec.ts";
import { MIN_FRAME_LENGTH } from "../protocol/frame.ts";
import { encodeMetadata } from "../protocol/metadata.ts";
import { methodPrefix, requestSize } from "../protocol/request.ts";
import { encodeForWrite } from "../protocol/scratch_encode.ts";

/** Method prefixes kept per connection (more methods are encoded per call). */
const MAX_CACHED_PREFIXES = 1024;

/** What a request is built from (a subset of `CallOptions`). */
export interface RequestOptions {
  timeout?: number | undefined;
  metadata?: Readonly<Record<string, string>> | undefined;
  parent?: ParentCall | null | undefined;
}

/**
 * Builds the requests of one connection. `build()` fills `prefix`,
 * `payload`, `metadata` and `deadline`, valid until the next `build()` (the
 * payload may be the codec's scratch bytes: copy or send it at once).
 *
 * @example A call too large for the server's frames is refused
 * ```ts
 * import { RequestBuilder } from "./_request_builder.ts";
 * import { jsonCodec } from "../protocol/codec.ts";
 * import assert from "node:assert/strict";
 *
 * const builder = new RequestBuilder(jsonCodec, 1024, 64);
 * assert.equal(builder.build("echo", ["short"], {}, Date.now()), undefined);
 * assert.equal(builder.deadline, Infinity);
 * const error = builder.build("echo", ["x".repeat(100)], {}, Date.now());
 * assert.ok(error instanceof RangeError);
 * ```
 */
export class RequestBuilder {
  /** The method, from `methodPrefix`. */
  prefix: Uint8Array = new Uint8Array(0);
  /** The encoded params. */
  payload: Uint8Array = new Uint8Array(0);
  /** Encoded metadata; `undefined` when there is none. */
  metadata: Uint8Array | undefined = undefined;
  /** The call's deadline (its timeout capped by its parent's). */
  deadline: Deadline = Infinity;
  #peerMaxFrameSize: number;
  #codec: Codec;
  #maxFrameSize: number;
  #prefixes = new Map<string, Uint8Array>();

  /**
   * Constructs a builder.
   *
   * @param codec The connection's codec.
   * @param maxFrameSize This client's frame limit.
   * @param peerMaxFrameSize The server's frame limit.
   */
  constructor(codec: Codec, maxFrameSize: number, peerMaxFrameSize: number) {
    this.#codec = codec;
    this.#maxFrameSize = maxFrameSize;
    this.#peerMaxFrameSize = peerMaxFrameSize;
  }

  /**
   * Builds a request, or returns why it cannot be sent (a `RangeError` for
   * a bad timeout, a long method name or an oversized request, a
   * `TypeError` for params that are not an array or do not encode,
   * `DeadlineExceededError` when the deadline has passed, the metadata's
   * error).
   *
   * @returns `undefined` when built.
   */
  build(
    method: string,
    params: unknown[],
    options: RequestOptions,
    now: number,
  ): Error | undefined {
    if (!isValidTimeout(options.timeout)) {
      return timeoutError(options.timeout, `call method "${method}"`);
    }
    if (!Array.isArray(params)) {
      return new TypeError(
        `Cannot call method "${method}": params must be an array`,
      );
    }
    let prefix = this.#prefixes.get(method);
    if (prefix === undefined) {
      const encoded = methodPrefix(method);
      if (typeof encoded === "string") {
        return new RangeError(
          `Cannot call method "${method.slice(0, 40)}\u2026": ${encoded}`,
        );
      }
      prefix = encoded;
      if (this.#prefixes.size < MAX_CACHED_PREFIXES) {
        this.#prefixes.set(method, prefix);
      }
    }
    let payload: Uint8Array;
    try {
      payload = encodeForWrite(this.#codec, params);
    } catch (error) {
      return new TypeError(
        `Cannot call method "${method}": ${lowerFirst(message(error))}`,
        { cause: error },
      );
    }
    const deadline = inheritedDeadline(
      options.timeout ?? Infinity,
      options.parent,
      now,
    );
    if (deadline <= now) {
      return new DeadlineExceededError(
        options.timeout === 0
          ? `Cannot call method "${method}": deadline of 0 ms exceeded (request not sent)`
          : `Cannot call method "${method}": the calling handler's deadline has passed`,
      );
    }
    let metadata: Uint8Array | undefined;
    if (options.metadata !== undefined) {
      try {
        metadata = encodeMetadata(options.metadata, `call method "${method}"`);
      } catch (error) {
        return error as Error;
      }
      if (metadata.length === 0) metadata = undefined;
    }
    const size = MIN_FRAME_LENGTH + requestSize(
      deadline - now > MAX_WIRE_DEADLINE ? undefined : 0,
      prefix,
      payload.length,
      metadata,
    );
    const peer = this.#peerMaxFrameSize;
    if (size > this.#maxFrameSize || size > peer) {
      const [whose, limit] = peer < this.#maxFrameSize
        ? ["the server's ", peer]
        : ["the ", this.#maxFrameSize];
      return new RangeError(
        `Cannot call method "${method}": request of ${size} bytes exceeds ${whose}frame limit of ${limit} bytes`,
      );
    }
    this.prefix = prefix;
    this.payload = payload;
    this.metadata = metadata;
    this.deadline = deadline;
    return undefined;
  }
}
