/**
 * The request header of protocol version 2, encoded, sized and decoded in
 * this one module (the client writes it, the server reads it):
 *
 * ```text
 * u8 flags                      RequestFlag.Deadline | RequestFlag.Metadata
 * [u32 ms left]                 when flags & Deadline (else: no deadline)
 * [u16 length, metadata bytes]  when flags & Metadata
 * u8 method length, method      UTF-8, at most 255 bytes
 * params                        the codec's encoding of the argument array
 * ```
 *
 * @example Write a request body and read its header back
 * ```ts
 * import {
 *   methodPrefix,
 *   readRequestHeader,
 *   requestSize,
 *   writeRequest,
 * } from "./request.ts";
 * import assert from "node:assert/strict";
 *
 * const prefix = methodPrefix("add");
 * assert.ok(prefix instanceof Uint8Array);
 * const params = new Uint8Array([0x92, 1, 2]);
 * const body = new Uint8Array(requestSize(500, prefix, params.length));
 * writeRequest(body, 0, 500, prefix, params);
 * const header = readRequestHeader(body);
 * assert.equal(header.timeout, 500);
 * assert.deepEqual(header.method, new TextEncoder().encode("add"));
 * assert.deepEqual(body.subarray(header.paramsStart), params);
 * ```
 *
 * @module
 */

import { copyBytes } from "./_copy.ts";
import { ProtocolError } from "../errors.ts";
import { RequestFlag } from "./frame.ts";

/** The longest method name a request carries, in UTF-8 bytes. */
export const MAX_METHOD_BYTES = 255;

const utf8 = new TextEncoder();

/**
 * The method name as the header carries it: a u8 length, then the UTF-8
 * bytes; or, for a name over {@linkcode MAX_METHOD_BYTES}, why it cannot be
 * sent (a string, to put in the caller's error).
 *
 * @param method The method name.
 * @returns The bytes, or the reason.
 *
 * @example A name and a name too long
 * ```ts
 * import { methodPrefix } from "./request.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(methodPrefix("ok"), new Uint8Array([2, 111, 107]));
 * assert.equal(typeof methodPrefix("x".repeat(256)), "string");
 * ```
 */
export function methodPrefix(method: string): Uint8Array | string {
  const bytes = utf8.encode(method);
  if (bytes.length > MAX_METHOD_BYTES) {
    return `method name is longer than ${MAX_METHOD_BYTES} bytes`;
  }
  const prefix = new Uint8Array(bytes.length + 1);
  prefix[0] = bytes.length;
  prefix.set(bytes, 1);
  return prefix;
}

/**
 * The size of a request's body (the frame's payload) in bytes.
 *
 * @param timeout The u32 of ms left, or `undefined` for no deadline (see
 * `toWire` of `_deadline.ts`).
 * @param prefix The method, from {@linkcode methodPrefix}.
 * @param paramsLength The encoded params' length.
 * @param metadata Encoded metadata, if any.
 * @returns The body's size.
 *
 * @example The smallest request: flags, method, params
 * ```ts
 * import { requestSize } from "./request.ts";
 * import assert from "node:assert/strict";
 *
 * const prefix = new Uint8Array([1, 120]); // "x"
 * assert.equal(requestSize(undefined, prefix, 1), 4);
 * assert.equal(requestSize(100, prefix, 1, new Uint8Array(3)), 4 + 4 + 5);
 * ```
 */
export function requestSize(
  timeout: number | undefined,
  prefix: Uint8Array,
  paramsLength: number,
  metadata?: Uint8Array,
): number {
  return (timeout === undefined ? 1 : 5) +
    (metadata === undefined ? 0 : 2 + metadata.length) + prefix.length +
    paramsLength;
}

/**
 * Writes a request's body at `offset` of `target`, which has room for
 * {@linkcode requestSize} bytes.
 *
 * @param target Where to write.
 * @param offset The body's first byte.
 * @param timeout The u32 of ms left, or `undefined` for no deadline.
 * @param prefix The method, from {@linkcode methodPrefix}.
 * @param params The encoded params.
 * @param metadata Encoded metadata (at most 65535 bytes), if any.
 * @returns The offset after the body.
 *
 * @example A request without deadline or metadata
 * ```ts
 * import { writeRequest } from "./request.ts";
 * import assert from "node:assert/strict";
 *
 * const body = new Uint8Array(4);
 * writeRequest(body, 0, undefined, new Uint8Array([1, 120]), new Uint8Array([0x90]));
 * assert.deepEqual([...body], [0, 1, 120, 0x90]);
 * ```
 */
export function writeRequest(
  target: Uint8Array,
  offset: number,
  timeout: number | undefined,
  prefix: Uint8Array,
  params: Uint8Array,
  metadata?: Uint8Array,
): number {
  let o = offset + 1;
  let flags = 0;
  if (timeout !== undefined) {
    flags = RequestFlag.Deadline;
    target[o] = timeout >>> 24;
    target[o + 1] = timeout >>> 16;
    target[o + 2] = timeout >>> 8;
    target[o + 3] = timeout;
    o += 4;
  }
  if (metadata !== undefined) {
    flags |= RequestFlag.Metadata;
    target[o] = metadata.length >>> 8;
    target[o + 1] = metadata.length;
    target.set(metadata, o + 2);
    o += 2 + metadata.length;
  }
  target[offset] = flags;
  copyBytes(target, o, prefix);
  copyBytes(target, o + prefix.length, params);
  return o + prefix.length + params.length;
}

/**
 * A request header as read by {@linkcode readRequestHeader}; views into the
 * body, nothing copied.
 */
export interface RequestHeader {
  /** The ms left that the client sent; `undefined`: no deadline. */
  timeout: number | undefined;
  /** The raw metadata bytes; `undefined` when none were sent. */
  metadata: Uint8Array | undefined;
  /**
   * Set when only this call is unreadable (its metadata is cut short inside
   * a whole frame): the call fails, the connection stays; the other fields
   * are then not read.
   */
  unreadable: string | undefined;
  /**
   * The method name's UTF-8 bytes (set by {@linkcode readRequestHeader};
   * with {@linkcode readRequestHeaderAt} the name is the bytes from
   * {@linkcode methodStartOf} to `paramsStart`).
   */
  method: Uint8Array;
  /** Where the params start (in the body, or in the buffer). */
  paramsStart: number;
}

/**
 * Reads the header of a request's body.
 *
 * @param body The frame's payload.
 * @param into A header to fill and return instead of a new one (a reader
 *   that reads one request at a time reuses one: no object per request).
 * @returns The header.
 * @throws {ProtocolError} For unknown flags, a truncated deadline or a
 * truncated method name (the connection cannot go on).
 *
 * @example Unknown flags end the connection
 * ```ts
 * import { readRequestHeader } from "./request.ts";
 * import { ProtocolError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => readRequestHeader(new Uint8Array([8, 0])), ProtocolError);
 * assert.equal(readRequestHeader(new Uint8Array([2, 0, 9])).unreadable, "truncated metadata");
 * // A reader reuses one header object for every request.
 * const header = readRequestHeader(new Uint8Array([0, 1, 120]));
 * assert.equal(readRequestHeader(new Uint8Array([0, 1, 121, 7]), header), header);
 * assert.deepEqual([...header.method], [121]);
 * assert.equal(header.paramsStart, 3);
 * ```
 */
export function readRequestHeader(
  body: Uint8Array,
  into?: RequestHeader,
): RequestHeader {
  const header = readRequestHeaderAt(body, 0, body.length, into);
  header.method = header.unreadable === undefined
    ? body.subarray(methodStartOf(header, 0), header.paramsStart)
    : body.subarray(0, 0);
  return header;
}

/**
 * {@linkcode readRequestHeader} of the body at `start`..`stop` of `bytes`
 * (a frame's payload where the frame decoder holds it), without views:
 * `paramsStart` is an offset into `bytes`, the method name lies from
 * {@linkcode methodStartOf} to it, and `method` is left as it was (the
 * metadata, when there is some, is a view).
 *
 * @param bytes The buffer holding the body.
 * @param start Where the body starts.
 * @param stop Where it ends (exclusive).
 * @param into A header to fill and return instead of a new one.
 * @returns The header.
 * @throws {ProtocolError} As {@linkcode readRequestHeader}.
 *
 * @example
 * ```ts
 * import { methodStartOf, readRequestHeaderAt } from "./request.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([9, 9, 0, 1, 120, 0x90]);
 * const header = readRequestHeaderAt(bytes, 2, 6);
 * assert.equal(methodStartOf(header, 2), 4);
 * assert.equal(header.paramsStart, 5);
 * assert.equal(header.timeout, undefined);
 * ```
 */
export function readRequestHeaderAt(
  bytes: Uint8Array,
  start: number,
  stop: number,
  into?: RequestHeader,
): RequestHeader {
  const flags = start < stop ? bytes[start]! : undefined;
  let o = start + 1;
  let timeout: number | undefined;
  let metadata: Uint8Array | undefined;
  if (flags !== 0) {
    if (flags === undefined || (flags & ~3) !== 0) {
      throw new ProtocolError(
        `Cannot read request: unknown header flags ${flags ?? "(empty)"}`,
      );
    }
    if (flags & RequestFlag.Deadline) {
      if (stop < o + 4) {
        throw new ProtocolError("Cannot read request: truncated deadline");
      }
      timeout = ((bytes[o]! << 24) | (bytes[o + 1]! << 16) |
        (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
      o += 4;
    }
    if (flags & RequestFlag.Metadata) {
      if (stop < o + 2 || stop < o + 2 + ((bytes[o]! << 8) | bytes[o + 1]!)) {
        return fill(
          into,
          timeout,
          metadata,
          "truncated metadata",
          EMPTY,
          stop,
        );
      }
      const end = o + 2 + ((bytes[o]! << 8) | bytes[o + 1]!);
      metadata = bytes.subarray(o + 2, end);
      o = end;
    }
  }
  if (stop < o + 1 || stop < o + 1 + bytes[o]!) {
    throw new ProtocolError("Cannot read request: truncated method name");
  }
  return fill(
    into,
    timeout,
    metadata,
    undefined,
    EMPTY,
    o + 1 + bytes[o]!,
  );
}

/**
 * Where the method name of a header read by {@linkcode readRequestHeaderAt}
 * starts: after the flags, the deadline and the metadata it has, and the
 * name's length byte.
 *
 * @param header A readable header (`unreadable` undefined).
 * @param start Where its body starts.
 * @returns The offset of the name's first byte.
 *
 * @example
 * ```ts
 * import { methodStartOf, readRequestHeaderAt } from "./request.ts";
 * import assert from "node:assert/strict";
 *
 * // flags: deadline; 4 bytes of deadline; name "x"
 * const body = new Uint8Array([1, 0, 0, 0, 9, 1, 120, 0x90]);
 * assert.equal(methodStartOf(readRequestHeaderAt(body, 0, body.length), 0), 6);
 * ```
 */
export function methodStartOf(header: RequestHeader, start: number): number {
  return start + 2 + (header.timeout === undefined ? 0 : 4) +
    (header.metadata === undefined ? 0 : 2 + header.metadata.length);
}

const EMPTY = new Uint8Array(0);

function fill(
  into: RequestHeader | undefined,
  timeout: number | undefined,
  metadata: Uint8Array | undefined,
  unreadable: string | undefined,
  method: Uint8Array,
  paramsStart: number,
): RequestHeader {
  if (into === undefined) {
    return { timeout, metadata, unreadable, method, paramsStart };
  }
  into.timeout = timeout;
  into.metadata = metadata;
  into.unreadable = unreadable;
  into.paramsStart = paramsStart;
  return into;
}
