/**
 * Internal: copies a few bytes faster than `TypedArray.prototype.set`,
 * whose fixed cost dominates the copy of a method name or a small params
 * list.
 *
 * @module
 */

/** Below this length a loop copies; from it on, `set`. */
const LOOP_BELOW = 16;

/**
 * Copies `src` into `target` at `offset` (which has room for it).
 *
 * @param target Where to copy.
 * @param offset The first byte written.
 * @param src The bytes.
 *
 * @example
 * ```ts
 * import { copyBytes } from "./_copy.ts";
 * import assert from "node:assert/strict";
 *
 * const target = new Uint8Array(4);
 * copyBytes(target, 1, new Uint8Array([7, 8]));
 * assert.deepEqual([...target], [0, 7, 8, 0]);
 * ```
 */
export function copyBytes(
  target: Uint8Array,
  offset: number,
  src: Uint8Array,
): void {
  const n = src.length;
  if (n >= LOOP_BELOW) {
    target.set(src, offset);
    return;
  }
  for (let i = 0; i < n; i++) target[offset + i] = src[i]!;
}
