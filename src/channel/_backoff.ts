/**
 * The one exponential back-off with jitter of the channel (ejection periods,
 * probe intervals).
 *
 * @module
 */

/** Share of a back-off period that jitter adds or removes (±20 %). */
export const JITTER = 0.2;

/**
 * Returns `base * 2^(n - 1)`, capped at `max`, spread by ±20 % jitter so that
 * many clients do not retry in lockstep (and never above `max`).
 *
 * @param n Which period (1 for the first).
 * @param base The first period, in ms.
 * @param max The longest period, in ms.
 * @param random Source of randomness in `[0, 1)`.
 * @returns The period in ms.
 *
 * @example Periods double up to the cap
 * ```ts
 * import { backoff } from "./_backoff.ts";
 * import assert from "node:assert/strict";
 *
 * const middle = () => 0.5; // no jitter
 * assert.deepEqual([1, 2, 3, 4].map((n) => backoff(n, 100, 500, middle)), [100, 200, 400, 500]);
 * ```
 */
export function backoff(
  n: number,
  base: number,
  max: number,
  random: () => number = Math.random,
): number {
  const period = Math.min(max, base * 2 ** Math.max(0, n - 1));
  return Math.min(max, period * (1 - JITTER + 2 * JITTER * random()));
}
