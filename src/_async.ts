/**
 * The one small async toolkit of zkrpc: a timer of any length, the check of
 * a caller's timeout, a deadline race (and a bounded wait that never
 * rejects), an abortable promise, an abortable delay and exponential
 * back-off with jitter. Shaped like `@std/async` (`deadline`, `abortable`,
 * `delay`, and the back-off of `retry`), so that it can be swapped for it.
 *
 * Every timer whose duration a caller or a peer chooses is armed through
 * {@linkcode setLongTimeout}: a plain `setTimeout` fires a delay above
 * 2^31-1 ms (or `Infinity`, or `NaN`) after 1 ms.
 *
 * @module
 */

/**
 * The longest delay one `setTimeout` holds, in ms (about 24.8 days): Deno
 * fires a longer one, `Infinity` or `NaN` after 1 ms (with a
 * `TimeoutOverflowWarning`).
 */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * A timer armed by {@linkcode setLongTimeout}; `clear()` stops it (and is a
 * no-op once it fired or was cleared).
 */
export interface LongTimeout {
  /** Stops the timer: its callback will not run. */
  clear(): void;
}

type Timer = ReturnType<typeof setTimeout>;

/** What {@linkcode setLongTimeout} returns for `Infinity`: no timer at all. */
const NO_TIMER: LongTimeout = Object.freeze({ clear() {} });

class ChainedTimeout implements LongTimeout {
  #callback: () => void;
  #at: number;
  #hop: number;
  #id: Timer | undefined;

  constructor(callback: () => void, ms: number, hop: number) {
    this.#callback = callback;
    this.#hop = hop;
    this.#at = performance.now() + ms;
    this.#id = setTimeout(this.#tick, Math.min(ms, hop));
  }

  #tick = (): void => {
    // Timers may fire up to a millisecond early: re-arm for what is left.
    const left = this.#at - performance.now();
    if (left >= 1) {
      this.#id = setTimeout(this.#tick, Math.min(left, this.#hop));
      return;
    }
    this.#id = undefined;
    this.#callback();
  };

  clear(): void {
    clearTimeout(this.#id);
    this.#id = undefined;
  }
}

class PlainTimeout implements LongTimeout {
  #id: Timer;

  constructor(callback: () => void, ms: number) {
    this.#id = setTimeout(callback, ms);
  }

  clear(): void {
    clearTimeout(this.#id);
  }
}

/** Options of {@linkcode setLongTimeout}. */
export interface LongTimeoutOptions {
  /**
   * Longest single timer of the chain, in ms (smaller only in tests, to
   * exercise the chaining).
   *
   * @default {MAX_TIMER_DELAY}
   */
  maxDelay?: number;
}

/**
 * Calls `callback` once after `ms`, for any `ms`: up to
 * {@linkcode MAX_TIMER_DELAY} with one `setTimeout`, beyond it with chained
 * timers (as `@std/async`'s `delay` does), never early; `Infinity` arms no
 * timer at all (it never fires, and keeps nothing alive). A negative delay
 * is 0.
 *
 * @param callback What to run.
 * @param ms The delay in ms: a number, `Infinity` for never.
 * @param options `maxDelay` of one timer of the chain.
 * @returns The timer, to `clear()`.
 * @throws {RangeError} When `ms` is `NaN`.
 *
 * @example A 30-day timer does not fire after 1 ms; Infinity arms none
 * ```ts
 * import { setLongTimeout } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * let fired = false;
 * const month = setLongTimeout(() => fired = true, 30 * 24 * 3600 * 1000);
 * await new Promise((resolve) => setTimeout(resolve, 20));
 * assert.equal(fired, false);
 * month.clear();
 * setLongTimeout(() => fired = true, Infinity); // nothing to clear
 * ```
 */
export function setLongTimeout(
  callback: () => void,
  ms: number,
  options: LongTimeoutOptions = {},
): LongTimeout {
  if (ms === Infinity) return NO_TIMER;
  if (Number.isNaN(ms)) {
    throw new RangeError("Cannot arm a timer: the delay is NaN");
  }
  const hop = options.maxDelay ?? MAX_TIMER_DELAY;
  return ms > hop
    ? new ChainedTimeout(callback, ms, hop)
    : new PlainTimeout(callback, Math.max(0, ms));
}

/**
 * Whether `timeout` is a valid timeout of a call or a wait: `undefined`
 * (none given), `Infinity` (no deadline) or a number of ms `>= 0`. `NaN`, a
 * negative number and anything that is not a number are not (see
 * {@linkcode timeoutError}).
 *
 * @param timeout The value given as `timeout`.
 * @returns `true` when valid.
 *
 * @example Finite, long and infinite timeouts are valid; NaN is not
 * ```ts
 * import { isValidTimeout } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   [0, 1e12, Infinity, undefined, NaN, -1, "100"].map(isValidTimeout),
 *   [true, true, true, true, false, false, false],
 * );
 * ```
 */
export function isValidTimeout(timeout: unknown): boolean {
  return timeout === undefined || (typeof timeout === "number" && timeout >= 0);
}

/**
 * The `RangeError` for a timeout that {@linkcode isValidTimeout} refuses,
 * naming what could not be done and what was given (its type, for a value
 * that is not a number).
 *
 * @param timeout The invalid value.
 * @param what What could not be done (`call method "x"`).
 * @param name The option's name.
 * @returns The error, to throw or reject with.
 *
 * @example Refuse NaN at the call site
 * ```ts
 * import { timeoutError } from "./_async.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   timeoutError(NaN, 'call method "x"').message,
 *   'Cannot call method "x": timeout must be a number of ms >= 0 or Infinity, got NaN',
 * );
 * ```
 */
export function timeoutError(
  timeout: unknown,
  what: string,
  name = "timeout",
): RangeError {
  const shown = typeof timeout === "number"
    ? String(timeout)
    : timeout === null
    ? "null"
    : `a ${typeof timeout}`;
  return new RangeError(
    `Cannot ${what}: ${name} must be a number of ms >= 0 or Infinity, got ${shown}`,
  );
}

/**
 * Resolves or rejects like `promise`, or rejects with a `TimeoutError`
 * `DOMException` after `ms` (as `@std/async`'s `deadline`; `Infinity`: never,
 * with no timer), or with the signal's reason when `signal` aborts first. The
 * timer is cleared as soon as the race is decided.
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
  return race<T>(
    ms,
    options.signal,
    (_, reject) =>
      reject(new DOMException("Signal timed out.", "TimeoutError")),
    (resolve, reject) => promise.then(resolve, reject),
  );
}

/**
 * The one race behind {@linkcode deadline}, {@linkcode abortable} and
 * {@linkcode delay}: a promise that `start` may settle, that `onTime`
 * settles after `ms` (`Infinity`: no timer), and that rejects with the
 * signal's reason when `signal` aborts first. Whatever settles it first
 * clears the timer and the abort listener.
 */
function race<T>(
  ms: number,
  signal: AbortSignal | undefined,
  onTime: (
    resolve: (value: T) => void,
    reject: (reason: unknown) => void,
  ) => void,
  start?: (
    resolve: (value: T) => void,
    reject: (reason: unknown) => void,
  ) => void,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const release = () => {
      timer.clear();
      signal?.removeEventListener("abort", onAbort);
    };
    const settleResolve = (value: T) => {
      release();
      resolve(value);
    };
    const settleReject = (reason: unknown) => {
      release();
      reject(reason);
    };
    const onAbort = () => settleReject(signal!.reason);
    const timer = setLongTimeout(
      () => onTime(settleResolve, settleReject),
      ms,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    start?.(settleResolve, settleReject);
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
  return deadline(promise, Infinity, { signal });
}

/**
 * Resolves after `ms` (any length, see {@linkcode setLongTimeout};
 * `Infinity`: never), or rejects with the signal's reason when `signal`
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
  return race<void>(ms, options.signal, (resolve) => resolve());
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
   * Share of a period that jitter adds or removes (+/-), so that many clients
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
 * - 1)`, capped at `maxTimeout`, spread by +/- `jitter` (and never above
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
