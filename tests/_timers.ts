/**
 * Helpers for timer tests: count the timers a piece of code arms, and wait
 * past the moment an overflowed timer (a delay above 2^31-1 ms, which Deno
 * fires after 1 ms) would have fired, by timer order rather than by time.
 *
 * @module
 */

/**
 * Counts the timers armed while `body` runs (every `setTimeout` of the
 * process), then restores `setTimeout`.
 */
export async function countTimers(body: () => Promise<void>): Promise<number> {
  const original = globalThis.setTimeout;
  let armed = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    armed++;
    return original(...args);
  }) as typeof setTimeout;
  try {
    await body();
  } finally {
    globalThis.setTimeout = original;
  }
  return armed;
}

/**
 * Resolves on a timer due in 5 ms, armed now: an overflowed timer armed
 * before it (due after 1 ms) has fired by then.
 */
export function afterOverflow(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 5));
}
