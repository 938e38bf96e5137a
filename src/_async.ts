/**
 * The one small async toolkit of zkrpc: a deadline race (and a bounded
 * wait that never rejects), an abortable promise, an abortable delay and
 * exponential back-off with jitter. Shaped
 * like `@std/async` (`deadline`, `abortable`, `delay`, and the back-off of
 * `retry`), so that it can be swapped for it.
 *
 * @module
 */

type Timer = ReturnType<typeof setTimeout>;

/**
 * Resolves or rejects like `promise`, or rejects with a `TimeoutError`
 * `DOMException` after `ms` (as `@std/async`'s `deadline`), or with the
 * signal's reason when `signal` aborts first. The timer is cleared as soon as
 * the race is decided.
 *
 * @param promise What to wait for.
 * @param ms The longest wait, in ms.
 * @param options `signal` to give up earlier.
 * @returns The promise's value.
 *
 * @example Give up on a slow promise
 * ```ts
 * import { deadline } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await deadline(Promise.resolve(1), 1000), 1);
 * await assert.rejects(deadline(new Promise(() => {}), 1), { name: "TimeoutError" });
 * ```
 */
export function deadline<T>(
  promise: Promise<T>,
  ms: number,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<T> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => settle(() => reject(signal!.reason));
    const settle = (then: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      then();
    };
    const timer: Timer = setTimeout(
      () =>
        settle(() =>
          reject(new DOMException("Signal timed out.", "TimeoutError"))
        ),
      ms,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => settle(() => resolve(value)),
      (error) => settle(() => reject(error)),
    );
  });
}

/**
 * Waits for `promise` at most `ms`; never rejects. For "give it a moment,
 * then go on" (draining, closing sockets).
 *
 * @param promise What to wait for; its rejection is ignored.
 * @param ms The longest wait, in ms.
 * @returns Whether the promise settled in time.
 *
 * @example Wait for a close that may never come
 * ```ts
 * import { settleWithin } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await settleWithin(Promise.resolve(), 1000), true);
 * assert.equal(await settleWithin(new Promise(() => {}), 1), false);
 * ```
 */
export function settleWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  return deadline(promise, ms).then(
    () => true,
    (error) => !isTimeoutError(error),
  );
}

/**
 * Whether `error` is the `TimeoutError` `DOMException` that
 * {@linkcode deadline} (and `AbortSignal.timeout`) rejects with.
 *
 * @param error What a wait rejected with.
 * @returns `true` for a timeout.
 *
 * @example Tell a timeout from other failures
 * ```ts
 * import { deadline, isTimeoutError } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * const error = await deadline(new Promise(() => {}), 1).catch((e) => e);
 * assert.equal(isTimeoutError(error), true);
 * assert.equal(isTimeoutError(new Error("refused")), false);
 * ```
 */
export function isTimeoutError(error: unknown): error is DOMException {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/**
 * Resolves like `promise`, or rejects with the signal's reason when `signal`
 * aborts first (as `@std/async`'s `abortable`).
 *
 * @param promise What to wait for.
 * @param signal When to give up.
 * @returns The promise's value.
 *
 * @example Stop waiting when aborted
 * ```ts
 * import { abortable } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * const waiting = abortable(new Promise(() => {}), controller.signal);
 * controller.abort(new Error("stop"));
 * await assert.rejects(waiting, { message: "stop" });
 * ```
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

/**
 * Resolves after `ms`, or rejects with the signal's reason when `signal`
 * aborts first (as `@std/async`'s `delay`).
 *
 * @param ms How long, in ms.
 * @param options `signal` to cut it short.
 * @returns When the time is up.
 *
 * @example An abortable pause
 * ```ts
 * import { delay } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * await delay(1);
 * const controller = new AbortController();
 * const pause = delay(60_000, { signal: controller.signal });
 * controller.abort(new Error("closed"));
 * await assert.rejects(pause, { message: "closed" });
 * ```
 */
export function delay(
  ms: number,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** How {@linkcode backoff} grows, named as `@std/async`'s `RetryOptions`. */
export interface BackoffOptions {
  /** The first period, in ms. */
  minTimeout: number;
  /** The longest period, in ms; jitter never exceeds it. */
  maxTimeout: number;
  /** Growth per attempt. @default {2} */
  multiplier?: number;
  /**
   * Share of a period that jitter adds or removes (±), so that many clients
   * do not retry in lockstep.
   *
   * @default {0.2}
   */
  jitter?: number;
  /** Source of randomness in `[0, 1)`. @default {Math.random} */
  random?: () => number;
}

/**
 * The period before attempt `attempt + 1`: `minTimeout * multiplier^(attempt
 * - 1)`, capped at `maxTimeout`, spread by ± `jitter` (and never above
 * `maxTimeout`).
 *
 * @param attempt Which period (1 for the first).
 * @param options Growth, cap and jitter.
 * @returns The period in ms.
 *
 * @example Periods double up to the cap
 * ```ts
 * import { backoff } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * const options = { minTimeout: 100, maxTimeout: 500, random: () => 0.5 }; // no jitter
 * assert.deepEqual([1, 2, 3, 4].map((n) => backoff(n, options)), [100, 200, 400, 500]);
 * ```
 */
export function backoff(attempt: number, options: BackoffOptions): number {
  const { minTimeout, maxTimeout } = options;
  const jitter = options.jitter ?? 0.2;
  const random = options.random ?? Math.random;
  const period = Math.min(
    maxTimeout,
    minTimeout * (options.multiplier ?? 2) ** Math.max(0, attempt - 1),
  );
  return Math.min(maxTimeout, period * (1 - jitter + 2 * jitter * random()));
}
