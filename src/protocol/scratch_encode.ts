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
