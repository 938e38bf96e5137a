/**
 * Deadlines for tests: every awaited condition gets one, and a test that
 * would hang fails instead, naming what it was waiting for.
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

/** What a wait that ran out of time throws. */
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

/**
 * Whether `promise` is still pending after the event loop has run what is
 * queued now (its microtasks and a 0 ms timer): "the call is waiting" as an
 * observation, not a sleep. A promise that settles by itself without I/O
 * (a call failing fast) is no longer pending by then. Marks `promise` as
 * handled; await it afterwards for its outcome.
 */
export async function stillPending(
  promise: Promise<unknown>,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => false, () => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), 0);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
