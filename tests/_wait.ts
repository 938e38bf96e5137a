/**
 * The tests' deadlines: {@linkcode within}, {@linkcode waitFor} and
 * {@linkcode nextEvent}, from `src/testing/wait.ts` (shared with the
 * benchmarks and the testing module).
 *
 * @module
 */

export {
  nextEvent,
  waitFor,
  type WaitForOptions,
  WaitTimeoutError,
  within,
} from "../src/testing/wait.ts";

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
