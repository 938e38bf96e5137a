/**
 * Helpers for timer tests: count the timers a piece of code arms, run code
 * under fake timers fired by the test, and wait
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

/** A timer armed under {@linkcode withFakeTimers}. */
export interface FakeTimer {
  ms: number;
  cleared: boolean;
  fire(): void;
}

/**
 * Runs `body` with `setTimeout`/`clearTimeout` recording the timers armed
 * (fired by the test, never by time) and `Date.now()` reading `clock.now`.
 */
export async function withFakeTimers(
  body: (timers: FakeTimer[], clock: { now: number }) => Promise<void> | void,
): Promise<void> {
  const timers: FakeTimer[] = [];
  const clock = { now: 10_000 };
  const saved = [
    globalThis.setTimeout,
    globalThis.clearTimeout,
    Date.now,
  ] as const;
  globalThis.setTimeout = ((cb: () => void, ms: number) => {
    const timer = { ms, cleared: false, fire: () => cb() };
    timers.push(timer);
    return timers.length;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((id: number) => {
    if (id > 0) timers[id - 1]!.cleared = true;
  }) as typeof clearTimeout;
  Date.now = () => clock.now;
  try {
    await body(timers, clock);
  } finally {
    [globalThis.setTimeout, globalThis.clearTimeout, Date.now] = saved;
  }
}
