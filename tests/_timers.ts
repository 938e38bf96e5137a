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

/** A timer armed under a {@linkcode FakeClock} (or {@linkcode withFakeTimers}). */
export interface FakeTimer {
  /** The delay it was armed with. */
  ms: number;
  /** When it is due, on the fake clock. */
  due: number;
  /** Whether `clearTimeout` was called on it. */
  cleared: boolean;
  /** Whether its callback ran. */
  fired: boolean;
  /** Runs its callback now (whether or not it was cleared or is due). */
  fire(): void;
}

/**
 * Replaces `setTimeout`, `clearTimeout`, `Date.now()` and
 * `performance.now()` (which reads `now - start`) until disposed:
 * time moves only by {@linkcode FakeClock.advance}, which fires the timers
 * that fall due, in order (timers armed by a callback included). Code under
 * a fake clock must not wait for real time (`within` would not end).
 *
 * @example
 * ```ts ignore
 * using clock = new FakeClock();
 * setTimeout(() => fired = true, 10);
 * clock.advance(10); // fired
 * ```
 */
export class FakeClock implements Disposable {
  /** The fake `Date.now()`. */
  now: number;
  /** Every timer armed, in order. */
  readonly timers: FakeTimer[] = [];
  #start: number;
  #saved = [globalThis.setTimeout, globalThis.clearTimeout, Date.now] as const;

  /** @param start The clock's first reading. */
  constructor(start = 1_000_000) {
    this.now = start;
    this.#start = start;
    globalThis.setTimeout = ((cb: () => void, ms = 0) => {
      const delay = Math.max(0, ms);
      const timer: FakeTimer = {
        ms,
        due: this.now + delay,
        cleared: false,
        fired: false,
        fire: () => {
          timer.fired = true;
          cb();
        },
      };
      this.timers.push(timer);
      return this.timers.length;
    }) as unknown as typeof setTimeout;
    globalThis.clearTimeout = ((id?: number) => {
      const timer = id === undefined ? undefined : this.timers[id - 1];
      if (timer) timer.cleared = true;
    }) as typeof clearTimeout;
    Date.now = () => this.now;
    performance.now = () => this.now - this.#start;
  }

  /** Timers neither fired nor cleared. */
  get pending(): FakeTimer[] {
    return this.timers.filter((t) => !t.cleared && !t.fired);
  }

  /**
   * Moves the clock `ms` forward, firing each timer at its due time.
   *
   * @param ms Milliseconds.
   */
  advance(ms: number): void {
    const end = this.now + ms;
    while (true) {
      let next = -1;
      for (let i = 0; i < this.timers.length; i++) {
        const t = this.timers[i]!;
        if (t.cleared || t.fired || t.due > end) continue;
        if (next < 0 || t.due < this.timers[next]!.due) next = i;
      }
      if (next < 0) break;
      const timer = this.timers[next]!;
      this.now = Math.max(this.now, timer.due);
      timer.fire();
    }
    this.now = end;
  }

  /** Restores the real timers and clock. */
  [Symbol.dispose](): void {
    [globalThis.setTimeout, globalThis.clearTimeout, Date.now] = this.#saved;
    // The own property hides Performance.prototype.now: remove it.
    delete (performance as { now?: unknown }).now;
  }
}

/**
 * Runs `body` under a {@linkcode FakeClock} starting at 10,000 whose
 * `performance.now()` reads `clock.now` too: timers are fired by the test
 * (`timers[i].fire()` or `clock.advance(ms)`), never by time; everything is
 * restored afterwards.
 */
export async function withFakeTimers(
  body: (timers: FakeTimer[], clock: FakeClock) => Promise<void> | void,
): Promise<void> {
  using clock = new FakeClock(10_000);
  performance.now = () => clock.now;
  await body(clock.timers, clock);
}
