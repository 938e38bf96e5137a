/**
 * Internal helpers shared by the client modules.
 *
 * @module
 */

/** The message of an error, or the thrown value as a string. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * An error's message as the tail of another sentence: its first letter in
 * lower case.
 *
 * @example
 * ```ts
 * import { lowerFirst } from "./_util.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(lowerFirst("Connection reset"), "connection reset");
 * ```
 */
export function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
