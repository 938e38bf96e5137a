// Internal: the encode a connection uses right before it copies the bytes
// into its frame batch.
import type { Codec } from "./codec.ts";

/**
 * Key of a codec's optional cheaper encode whose bytes stay valid only until
 * that codec (or any codec sharing its encoder) encodes again. Connections
 * use it, because they copy the bytes into their frame batch at once.
 */
export const encodeScratch: unique symbol = Symbol("zkrpc.encodeScratch");

/** A codec that may offer {@linkcode encodeScratch}. */
export type ScratchCodec = Codec & {
  [encodeScratch]?: (value: unknown) => Uint8Array;
};

/**
 * Encodes `value` with `codec`'s scratch encode when it has one, else with
 * `encode`: the bytes must be copied (or dropped) before the next encode.
 *
 * @param codec The connection's codec.
 * @param value The value.
 * @returns Bytes valid until the next encode.
 */
export function encodeForWrite(codec: Codec, value: unknown): Uint8Array {
  const scratch = (codec as ScratchCodec)[encodeScratch];
  return scratch === undefined ? codec.encode(value) : scratch(value);
}

/**
 * Key of a codec's optional decode of a range of a buffer (a frame's
 * payload where the frame decoder holds it): the same value as `decode` of
 * that range, without a view of it. Connections use it.
 */
export const decodeRange: unique symbol = Symbol("zkrpc.decodeRange");

/** A codec that may offer {@linkcode decodeRange}. */
export type RangeCodec = Codec & {
  [decodeRange]?: (bytes: Uint8Array, start: number, stop: number) => unknown;
};

/**
 * Decodes the range `start`..`stop` of `bytes` with `codec`: its range
 * decode when it has one, else `decode` of a view of the range.
 *
 * @param codec The connection's codec.
 * @param bytes The buffer holding the payload.
 * @param start Where the payload starts.
 * @param stop Where it ends (exclusive).
 * @returns The value.
 */
export function decodeFrom(
  codec: Codec,
  bytes: Uint8Array,
  start: number,
  stop: number,
): unknown {
  const range = (codec as RangeCodec)[decodeRange];
  return range === undefined
    ? codec.decode(bytes.subarray(start, stop))
    : range(bytes, start, stop);
}
