/**
 * The one deadline of zkrpc: an absolute instant, from the stub to the wire
 * and back on the server.
 *
 * A {@linkcode Deadline} is a plain number of epoch milliseconds
 * (`Date.now()` scale), `Infinity` for "no deadline" (no timer is ever armed
 * for it). A call turns its `timeout` into a deadline once
 * ({@linkcode deadlineFrom}, capped by the parent call's deadline), keeps
 * that instant on every hop, asks {@linkcode remaining} (clamped, never
 * negative) when it arms a timer, and crosses the wire with
 * {@linkcode toWire} / {@linkcode fromWire}: the request header carries the
 * milliseconds left as a u32, or "none". The server rebuilds the same kind of
 * instant, which a handler reads as `CallContext.deadline`.
 *
 * @example One call's deadline, hop by hop
 * ```ts
 * import { deadlineFrom, fromWire, remaining, toWire } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * const now = 1_000_000;
 * const parent = now + 500; // the handler's own caller gives up in 500 ms
 * const deadline = deadlineFrom(2000, parent, now); // capped by the parent
 * assert.equal(remaining(deadline, now), 500);
 * const wire = toWire(deadline, now); // 500 (ms left), in the header
 * assert.equal(fromWire(wire, now + 3), now + 503); // what the server sees
 * assert.equal(toWire(deadlineFrom(Infinity)), undefined); // "none"
 * ```
 *
 * @module
 */

import { isValidTimeout, setLongTimeout, timeoutError } from "./_async.ts";
import type { LongTimeout } from "./_async.ts";

/**
 * An absolute instant in epoch milliseconds (`Date.now()` scale) after which
 * the caller no longer waits; `Infinity` means no deadline.
 *
 * A number, not an object, so that the hot path allocates nothing and a
 * deadline compares with `<` and `Math.min`.
 *
 * @example Earliest of two deadlines
 * ```ts
 * import type { Deadline } from "./_deadline.ts";
 * import { NO_DEADLINE } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * const mine: Deadline = Date.now() + 1000;
 * assert.equal(Math.min(mine, NO_DEADLINE), mine);
 * ```
 */
export type Deadline = number;

/**
 * The deadline of a call without one: `Infinity`.
 *
 * @example A call without timeout
 * ```ts
 * import { deadlineFrom, NO_DEADLINE } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(deadlineFrom(Infinity), NO_DEADLINE);
 * ```
 */
export const NO_DEADLINE: Deadline = Infinity;

/**
 * The most milliseconds left the request header carries: a u32 (about 49.7
 * days). With more left, a request says "none" ({@linkcode toWire}): the
 * server never gives up before the caller does, and the caller's own timer
 * still ends the call and sends `cancel`.
 *
 * @example Beyond the wire's range, the header says "none"
 * ```ts
 * import { MAX_WIRE_DEADLINE, toWire } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toWire(MAX_WIRE_DEADLINE + 1, 0), undefined);
 * ```
 */
export const MAX_WIRE_DEADLINE = 0xffff_ffff;

/**
 * The deadline of a call made now with `timeout`, capped by `parent` (the
 * deadline of the call it is made for: a nested call never outlives its
 * caller's patience).
 *
 * @param timeout The call's own timeout in ms, valid for
 * `isValidTimeout` (`Infinity`: none of its own).
 * @param parent The parent call's deadline.
 * @param now The current time in epoch ms.
 * @returns The deadline (`Infinity` when neither sets one; may have passed
 * already when the parent's has).
 * @throws {RangeError} When `timeout` is not a valid timeout (`NaN`,
 * negative, not a number).
 *
 * @default parent `NO_DEADLINE`; now `Date.now()`
 *
 * @example A 2^32 ms timeout is a deadline like any other
 * ```ts
 * import { deadlineFrom } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(deadlineFrom(2 ** 32, Infinity, 0), 2 ** 32);
 * assert.equal(deadlineFrom(100, 50, 0), 50); // the parent's is earlier
 * assert.throws(() => deadlineFrom(NaN), RangeError);
 * ```
 */
export function deadlineFrom(
  timeout: number,
  parent: Deadline = NO_DEADLINE,
  now: number = Date.now(),
): Deadline {
  if (timeout === Infinity) return parent;
  if (!isValidTimeout(timeout)) throw timeoutError(timeout, "set a deadline");
  return Math.min(now + timeout, parent);
}

/**
 * The milliseconds left until `deadline`, never negative: `0` once it has
 * passed, `Infinity` when there is none.
 *
 * @param deadline The deadline.
 * @param now The current time in epoch ms.
 * @returns The ms left, `>= 0`.
 *
 * @default now `Date.now()`
 *
 * @example Clamped at zero
 * ```ts
 * import { remaining } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   [remaining(150, 100), remaining(50, 100), remaining(Infinity, 100)],
 *   [50, 0, Infinity],
 * );
 * ```
 */
export function remaining(
  deadline: Deadline,
  now: number = Date.now(),
): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - now);
}

/**
 * What the request header says for `deadline`: the whole milliseconds left
 * (rounded up, so the server never gives up first; at least 0), or
 * `undefined` ("none") when there is no deadline or more than
 * {@linkcode MAX_WIRE_DEADLINE} ms are left.
 *
 * @param deadline The call's deadline.
 * @param now The current time in epoch ms.
 * @returns The u32 to send, or `undefined` for none.
 *
 * @default now `Date.now()`
 *
 * @example Rounded up, and none beyond a u32
 * ```ts
 * import { toWire } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toWire(100.2, 0), 101);
 * assert.equal(toWire(2 ** 32, 0), undefined);
 * assert.equal(toWire(Infinity, 0), undefined);
 * ```
 */
export function toWire(
  deadline: Deadline,
  now: number = Date.now(),
): number | undefined {
  const left = Math.ceil(remaining(deadline, now));
  return left > MAX_WIRE_DEADLINE ? undefined : left;
}

/**
 * The deadline the server rebuilds from a request header: arrival time plus
 * the milliseconds the client sent; `Infinity` for "none".
 *
 * @param ms The u32 of the header, or `undefined` for none.
 * @param now The arrival time in epoch ms.
 * @returns The deadline.
 *
 * @default now `Date.now()`
 *
 * @example A request that says 500 ms
 * ```ts
 * import { fromWire } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fromWire(500, 1000), 1500);
 * assert.equal(fromWire(undefined, 1000), Infinity);
 * ```
 */
export function fromWire(
  ms: number | undefined,
  now: number = Date.now(),
): Deadline {
  return ms === undefined ? NO_DEADLINE : now + ms;
}

/**
 * Calls `callback` once at `deadline` (never early, for any distance, see
 * `setLongTimeout`); no timer at all for `Infinity`.
 *
 * @param deadline When.
 * @param callback What to run.
 * @returns The timer, to `clear()`.
 *
 * @example Nothing is armed without a deadline
 * ```ts
 * import { atDeadline } from "./_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * let fired = false;
 * atDeadline(Infinity, () => fired = true).clear();
 * const soon = Promise.withResolvers<void>();
 * atDeadline(Date.now() + 1, soon.resolve);
 * await soon.promise;
 * assert.equal(fired, false);
 * ```
 */
export function atDeadline(
  deadline: Deadline,
  callback: () => void,
): LongTimeout {
  return setLongTimeout(callback, remaining(deadline));
}
