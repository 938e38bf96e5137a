/**
 * Call metadata on the wire (protocol version 2, request header flag 2):
 * string key/value pairs sent with a call, with their limits.
 *
 * @module
 */

import { strictUtf8 } from "./_values.ts";

/**
 * Most bytes the encoded metadata of one call may take (the entries, without
 * the u16 length in front). A call whose metadata is larger is rejected
 * before anything is sent.
 *
 * @example The limit
 * ```ts
 * import { MAX_METADATA_SIZE } from "./metadata.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_METADATA_SIZE, 8192);
 * ```
 */
export const MAX_METADATA_SIZE = 8192;

/**
 * Keys zkrpc itself writes: `traceparent` and `tracestate` (W3C trace
 * context, set by the telemetry interceptor when OpenTelemetry is on; it
 * replaces values a caller set). Keys starting with `zkrpc-` are reserved
 * for zkrpc and refused in a caller's metadata.
 *
 * @example Reserved keys
 * ```ts
 * import { RESERVED_METADATA_KEYS } from "./metadata.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(RESERVED_METADATA_KEYS.includes("traceparent"));
 * ```
 */
export const RESERVED_METADATA_KEYS: readonly string[] = [
  "traceparent",
  "tracestate",
];

/** Metadata keys: 1-64 of `a-z 0-9 - _ .` (lower case, like HTTP/2 headers). */
const KEY = /^[a-z0-9_.-]{1,64}$/;

const utf8 = new TextEncoder();

/** The metadata of a call without any: shared, frozen. */
export const EMPTY_METADATA: Readonly<Record<string, string>> = Object.freeze(
  Object.create(null),
);

/**
 * Encodes metadata as `u8 key length, key, u16 value length, value` entries.
 *
 * @example Encode and decode
 * ```ts
 * import { decodeMetadata, encodeMetadata } from "./metadata.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeMetadata({ tenant: "acme" });
 * assert.deepEqual({ ...decodeMetadata(bytes) }, { tenant: "acme" });
 * ```
 *
 * @param metadata The key/value pairs.
 * @param what What the caller was doing, for error messages.
 * @returns The bytes (without the u16 length in front).
 * @throws {TypeError} On a malformed or reserved key, or a non-string value.
 * @throws {RangeError} When the entries exceed {@linkcode MAX_METADATA_SIZE}.
 */
export function encodeMetadata(
  metadata: Readonly<Record<string, string>>,
  what = "send metadata",
): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const key of Object.keys(metadata)) {
    const value = metadata[key];
    if (!KEY.test(key)) {
      throw new TypeError(
        `Cannot ${what}: metadata key "${
          key.slice(0, 70)
        }" must be 1-64 characters of a-z, 0-9, "-", "_", "."`,
      );
    }
    if (key.startsWith("zkrpc-")) {
      throw new TypeError(
        `Cannot ${what}: metadata key "${key}" is reserved (keys starting with "zkrpc-" are zkrpc's own)`,
      );
    }
    if (typeof value !== "string") {
      throw new TypeError(
        `Cannot ${what}: metadata value of "${key}" must be a string, got ${typeof value}`,
      );
    }
    const bytes = utf8.encode(value);
    size += 3 + key.length + bytes.length;
    if (size > MAX_METADATA_SIZE) {
      throw new RangeError(
        `Cannot ${what}: metadata exceeds the limit of ${MAX_METADATA_SIZE} bytes`,
      );
    }
    const entry = new Uint8Array(3 + key.length + bytes.length);
    entry[0] = key.length;
    for (let i = 0; i < key.length; i++) entry[1 + i] = key.charCodeAt(i);
    entry[1 + key.length] = bytes.length >>> 8;
    entry[2 + key.length] = bytes.length & 0xff;
    entry.set(bytes, 3 + key.length);
    parts.push(entry);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const part of parts) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

/**
 * Decodes metadata entries into a frozen null-prototype record.
 *
 * @example Decode
 * ```ts
 * import { decodeMetadata, encodeMetadata } from "./metadata.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeMetadata(encodeMetadata({ a: "1" })).a, "1");
 * ```
 *
 * @param bytes The entries.
 * @returns The key/value pairs.
 * @throws {TypeError} When the bytes are not well-formed entries.
 */
export function decodeMetadata(
  bytes: Uint8Array,
): Readonly<Record<string, string>> {
  if (bytes.length > MAX_METADATA_SIZE) {
    throw new TypeError(
      `metadata of ${bytes.length} bytes exceeds the limit of ${MAX_METADATA_SIZE} bytes`,
    );
  }
  const out: Record<string, string> = Object.create(null);
  let o = 0;
  // Errors name the byte offset and the limit, never the peer's bytes.
  while (o < bytes.length) {
    const keyLength = bytes[o]!;
    const valueAt = o + 1 + keyLength + 2;
    if (valueAt > bytes.length) {
      throw new TypeError(`truncated metadata entry at byte ${o}`);
    }
    const key = String.fromCharCode(
      ...bytes.subarray(o + 1, o + 1 + keyLength),
    );
    if (!KEY.test(key)) {
      throw new TypeError(
        `malformed metadata key at byte ${o} (1-64 of a-z, 0-9, "-", "_", ".")`,
      );
    }
    const valueLength = (bytes[valueAt - 2]! << 8) | bytes[valueAt - 1]!;
    if (valueAt + valueLength > bytes.length) {
      throw new TypeError(`truncated metadata value at byte ${valueAt}`);
    }
    const value = strictUtf8(bytes.subarray(valueAt, valueAt + valueLength));
    if (value === undefined) {
      throw new TypeError(`metadata value at byte ${valueAt} is not UTF-8`);
    }
    out[key] = value;
    o = valueAt + valueLength;
  }
  return Object.freeze(out);
}

/**
 * A request's metadata, or why it is refused (too large, malformed, not
 * UTF-8, a reserved `zkrpc-` key): the reason names the limit or the rule,
 * never the peer's bytes. The call fails; the connection stays.
 *
 * @param bytes The metadata bytes of a request.
 * @returns The pairs, or the reason to refuse them.
 *
 * @example A reserved key is refused, without echoing the bytes
 * ```ts
 * import { encodeMetadata, readMetadata } from "./metadata.ts";
 * import assert from "node:assert/strict";
 *
 * const read = readMetadata(encodeMetadata({ a: "b" }, "test"));
 * assert.equal(typeof read === "string" ? read : read.a, "b");
 * assert.equal(typeof readMetadata(new Uint8Array([200])), "string");
 * ```
 */
export function readMetadata(
  bytes: Uint8Array,
): Readonly<Record<string, string>> | string {
  let metadata: Readonly<Record<string, string>>;
  try {
    metadata = decodeMetadata(bytes);
  } catch (error) {
    // decodeMetadata's messages name offsets and limits, never the peer's bytes.
    return error instanceof TypeError ? error.message : "malformed metadata";
  }
  for (const key in metadata) {
    if (key.startsWith("zkrpc-")) {
      return `metadata keys starting with "zkrpc-" are reserved (zkrpc's own)`;
    }
  }
  return metadata;
}
