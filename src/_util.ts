/**
 * Internal helpers shared by the client modules.
 *
 * @module
 */

/** The message of an error, or the thrown value as a string. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
