/**
 * Deadlines for tests, benchmarks and the testing module: every awaited
 * condition gets one, and a wait that would hang fails instead, naming what
 * it was waiting for. (The tests import it through `tests/_wait.ts`.)
 *
 * - {@linkcode within} bounds a promise (a registration, a close, a reply).
 * - {@linkcode waitFor} polls a condition until it holds.
 * - {@linkcode nextEvent} waits for an event of an `EventTarget`.
 *
 * Deadlines are generous (10x or more what the wait takes on a loaded
 * machine): they exist to turn a hang into a failure, never to measure time.
 *
 * @module
 */

/**
 * What a wait that ran out of time throws.
 *
 * @example Tell a timed-out wait from other failures
 * ```ts
 * import { waitFor, WaitTimeoutError } from "./wait.ts";
 * import assert from "node:assert/strict";
 *
 * const error = await waitFor(() => false, "never", 20).catch((e) => e);
 * assert.ok(error instanceof WaitTimeoutError);
 * assert.equal(error.what, "never");
 * ```
 */
export class WaitTimeoutError extends Error {
  /** What the test was waiting for. */
  readonly what: string;
  /** The deadline, in ms. */
  readonly timeout: number;

  constructor(what: string, timeout: number) {
    super(`Timed out after ${timeout} ms waiting for ${what}`);
    this.name = "WaitTimeoutError";
    this.what = what;
    this.timeout = timeout;
  }
}

/**
 * Resolves or rejects as `promise` does, or rejects with a
 * {@linkcode WaitTimeoutError} naming `what` after `ms` milliseconds (the
 * timer is cleared either way).
 *
 * @param promise What to wait for.
 * @param ms The deadline, in ms.
 * @param what What it is, for the message.
 * @returns The promise's value.
 *
 * @example Bound a wait
 * ```ts
 * import { within } from "./wait.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await within(Promise.resolve(1), 1000, "one"), 1);
 * ```
 */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WaitTimeoutError(what, ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** How {@linkcode waitFor} waits. */
export interface WaitForOptions {
  /** What the test waits for, for the failure message. */
  what: string;
  /** Deadline in ms. @default 5000 */
  timeout?: number;
  /** Time between two checks, in ms. @default 10 */
  interval?: number;
}

/**
 * Checks `condition` every `interval` ms until it holds; throws a
 * {@linkcode WaitTimeoutError} after `timeout` ms. A condition that throws
 * fails the wait at once.
 *
 * @param condition What must become true.
 * @param options What it is (for the message) and the deadline; a string is
 * `{ what }`, and `timeout` may then be given as the third argument.
 * @param timeout The deadline in ms, when `options` is a string.
 *
 * @example Poll until a flag is set
 * ```ts
 * import { waitFor } from "./wait.ts";
 *
 * let ready = false;
 * setTimeout(() => ready = true, 10);
 * await waitFor(() => ready, { what: "the flag", timeout: 5000 });
 * ```
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitForOptions | string,
  timeout?: number,
): Promise<void> {
  const { what, timeout: limit = timeout ?? 5000, interval = 10 } =
    typeof options === "string" ? { what: options } : options;
  const deadline = performance.now() + limit;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new WaitTimeoutError(what, limit);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * The next `type` event of `target`; rejects with a
 * {@linkcode WaitTimeoutError} after `timeout` ms (and stops listening).
 *
 * @param target What dispatches the event.
 * @param type The event's type.
 * @param timeout The deadline in ms.
 * @returns The event.
 *
 * @example Wait for one event
 * ```ts
 * import { nextEvent } from "./wait.ts";
 * import assert from "node:assert/strict";
 *
 * const target = new EventTarget();
 * const next = nextEvent(target, "change", 1000);
 * target.dispatchEvent(new Event("change"));
 * assert.equal((await next).type, "change");
 * ```
 */
export function nextEvent<E extends Event = Event>(
  target: EventTarget,
  type: string,
  timeout = 15_000,
): Promise<E> {
  return new Promise((resolve, reject) => {
    const onEvent = (event: Event) => {
      clearTimeout(timer);
      resolve(event as E);
    };
    const timer = setTimeout(() => {
      target.removeEventListener(type, onEvent);
      reject(new WaitTimeoutError(`a "${type}" event`, timeout));
    }, timeout);
    target.addEventListener(type, onEvent, { once: true });
  });
}
