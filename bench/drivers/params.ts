/**
 * The parameters a zkrpc call sends for a payload spec.
 *
 * @module
 */
import type { PayloadSpec } from "./types.ts";

/**
 * Builds the call parameters: `[10, 2]` for divide, `[bytes]` for echo.
 *
 * @param payload The payload spec.
 * @returns The params array (reused across calls).
 */
export function callParams(payload: PayloadSpec): unknown[] {
  if (payload.method !== "echo") return [10, 2];
  const bytes = new Uint8Array(payload.bytes ?? 0);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i & 0xff;
  return [bytes];
}
