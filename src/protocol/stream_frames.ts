/**
 * Payloads of the streaming frames (`open`, `item`, `end`, `window`) and
 * the flow-control defaults both sides share. See "Streams" in
 * `docs/protocol.md`.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";

/**
 * The default window of a stream, in items: how many items one side accepts
 * on one stream before the other must wait for a `window` frame. Each side
 * announces its own as the `streamWindow` setting.
 */
export const DEFAULT_STREAM_WINDOW = 256;

/** The largest window a side may announce or grant in total (2^31-1 items). */
export const MAX_STREAM_WINDOW = 0x7fff_ffff;

/**
 * Encodes the payload of a `window` frame: a u32 count of further items the
 * sender accepts.
 *
 * @param items The increment, 1 to {@linkcode MAX_STREAM_WINDOW}.
 * @returns The 4-byte payload.
 *
 * @example Round-trip an increment
 * ```ts
 * import { decodeWindow, encodeWindow } from "./stream_frames.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeWindow(encodeWindow(32)), 32);
 * ```
 */
export function encodeWindow(items: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, items);
  return out;
}

/**
 * Decodes the payload of a `window` frame.
 *
 * @param payload The frame's payload.
 * @returns The increment.
 * @throws {ProtocolError} When the payload is not 4 bytes or the increment
 * is 0 or above {@linkcode MAX_STREAM_WINDOW}.
 *
 * @example Refuse an empty increment
 * ```ts
 * import { decodeWindow } from "./stream_frames.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => decodeWindow(new Uint8Array(4)), /increment 0/);
 * ```
 */
export function decodeWindow(payload: Uint8Array): number {
  if (payload.length !== 4) {
    throw new ProtocolError(
      `Cannot read window frame: payload of ${payload.length} bytes, expected 4`,
    );
  }
  const items = ((payload[0]! << 24) | (payload[1]! << 16) |
    (payload[2]! << 8) | payload[3]!) >>> 0;
  if (items === 0 || items > MAX_STREAM_WINDOW) {
    throw new ProtocolError(
      `Cannot read window frame: increment ${items} is outside 1 to ${MAX_STREAM_WINDOW}`,
    );
  }
  return items;
}

/**
 * Decodes the payload of an `open` frame: one byte of `StreamMode` bits,
 * at least one set, no other.
 *
 * @param payload The frame's payload.
 * @returns The mode bits.
 * @throws {ProtocolError} On any other payload.
 *
 * @example A server stream
 * ```ts
 * import { decodeOpen } from "./stream_frames.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeOpen(new Uint8Array([1])), 1);
 * assert.throws(() => decodeOpen(new Uint8Array([4])), /mode 4/);
 * ```
 */
export function decodeOpen(payload: Uint8Array): number {
  const mode = payload[0];
  if (payload.length !== 1 || mode === undefined || mode === 0 || mode > 3) {
    throw new ProtocolError(
      `Cannot read open frame: mode ${
        mode ?? "(empty)"
      } of ${payload.length} bytes, expected one byte 1 to 3`,
    );
  }
  return mode;
}

/**
 * Replenishes a receive window: counts items handed to the consumer and
 * says when to grant them back (once half the window was consumed, so one
 * `window` frame covers many items, as HTTP/2 implementations do).
 *
 * @example Grant after half the window
 * ```ts
 * import { Replenisher } from "./stream_frames.ts";
 * import assert from "node:assert/strict";
 *
 * const window = new Replenisher(4);
 * assert.equal(window.consumed(), 0);
 * assert.equal(window.consumed(), 2);
 * ```
 */
export class Replenisher {
  #window: number;
  #pending = 0;
  /** Items the peer may still send before the next grant. */
  credit: number;

  /**
   * Constructs a new replenisher.
   *
   * @param window The initial window in items.
   */
  constructor(window: number) {
    this.#window = window;
    this.credit = window;
  }

  /**
   * Counts one item received; `false` when the peer exceeded its credit.
   *
   * @returns Whether the item was within the window.
   */
  received(): boolean {
    return --this.credit >= 0;
  }

  /**
   * Counts one item consumed.
   *
   * @returns The increment to send in a `window` frame now, or 0.
   */
  consumed(): number {
    if (++this.#pending * 2 < this.#window) return 0;
    const grant = this.#pending;
    this.#pending = 0;
    this.credit += grant;
    return grant;
  }
}
