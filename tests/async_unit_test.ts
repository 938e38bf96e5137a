/**
 * `src/_async.ts` with its timers and clock replaced (`withFakeTimers`):
 * which timers `setLongTimeout()` arms and re-arms, for exactly how long;
 * `deadline()`, `delay()`, `abortable()` and `settleWithin()` settling by
 * their timer, their promise or their signal, and releasing the other two;
 * the timeout checks and their messages; `backoff()`'s exact delays.
 */
import assert from "node:assert/strict";
import {
  abortable,
  backoff,
  deadline,
  delay,
  isTimeoutError,
  isValidTimeout,
  MAX_TIMER_DELAY,
  setLongTimeout,
  settleWithin,
  timeoutError,
} from "../src/_async.ts";
import { countedSignal } from "./_core_helpers.ts";
import { withFakeTimers } from "./_timers.ts";

/** Lets queued promise reactions run (no timer: the timers are fake). */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

Deno.test("MAX_TIMER_DELAY is the largest delay setTimeout keeps: 2^31-1 ms", () => {
  assert.equal(MAX_TIMER_DELAY, 2 ** 31 - 1);
});

Deno.test("setLongTimeout() up to maxDelay arms one timer for exactly the delay; a negative delay is 0", async () => {
  await withFakeTimers((timers) => {
    let fired = 0;
    setLongTimeout(() => fired++, 30, { maxDelay: 30 });
    setLongTimeout(() => fired++, MAX_TIMER_DELAY);
    setLongTimeout(() => fired++, -5);
    setLongTimeout(() => fired++, 0);
    assert.deepEqual(timers.map((t) => t.ms), [30, MAX_TIMER_DELAY, 0, 0]);
    timers[0]!.fire();
    assert.equal(fired, 1, "a plain timer runs its callback when it fires");
    const timer = setLongTimeout(() => fired++, 7);
    timer.clear();
    assert.equal(timers[4]!.cleared, true);
  });
});

Deno.test("setLongTimeout() past maxDelay hops, re-arms for what is left and fires once at its time", async () => {
  await withFakeTimers((timers, clock) => {
    let fired = 0;
    setLongTimeout(() => fired++, 25, { maxDelay: 10 });
    assert.deepEqual(timers.map((t) => t.ms), [10]);
    clock.now += 10;
    timers[0]!.fire();
    assert.deepEqual(timers.map((t) => t.ms), [10, 10]);
    clock.now += 10;
    timers[1]!.fire();
    // 5 ms left: less than a hop.
    assert.deepEqual(timers.map((t) => t.ms), [10, 10, 5]);
    assert.equal(fired, 0);
    // A timer firing early leaves 1 ms: armed again, not fired.
    clock.now += 4;
    timers[2]!.fire();
    assert.deepEqual(timers.map((t) => t.ms), [10, 10, 5, 1]);
    assert.equal(fired, 0);
    // Less than a millisecond left: due.
    clock.now += 0.5;
    timers[3]!.fire();
    assert.equal(timers.length, 4, "no timer after the last hop");
    assert.equal(fired, 1);
  });
});

Deno.test("setLongTimeout() one past maxDelay is chained; clear() clears the current hop", async () => {
  await withFakeTimers((timers, clock) => {
    let fired = 0;
    const timer = setLongTimeout(() => fired++, MAX_TIMER_DELAY + 1);
    assert.deepEqual(timers.map((t) => t.ms), [MAX_TIMER_DELAY]);
    clock.now += MAX_TIMER_DELAY;
    timers[0]!.fire();
    assert.deepEqual(timers.map((t) => t.ms), [MAX_TIMER_DELAY, 1]);
    timer.clear();
    assert.equal(timers[1]!.cleared, true, "the pending hop is cleared");
    assert.equal(fired, 0);
  });
});

Deno.test("setLongTimeout(Infinity) arms nothing and clears nothing; NaN is a RangeError", async () => {
  await withFakeTimers((timers) => {
    const timer = setLongTimeout(() => {}, Infinity);
    timer.clear();
    assert.equal(timers.length, 0);
    assert.throws(() => setLongTimeout(() => {}, NaN), {
      name: "RangeError",
      message: "Cannot arm a timer: the delay is NaN",
    });
    assert.equal(timers.length, 0);
  });
});

Deno.test("isValidTimeout(): undefined and numbers >= 0 (Infinity too), nothing else", () => {
  for (const ok of [undefined, 0, -0, 0.5, 1, 2 ** 40, Infinity]) {
    assert.equal(isValidTimeout(ok), true, String(ok));
  }
  for (const bad of [-1, -0.001, -Infinity, NaN, null, "5", 5n, {}]) {
    assert.equal(isValidTimeout(bad), false, String(bad));
  }
});

Deno.test("timeoutError() names what failed, the option and the value given", () => {
  const cases: [unknown, string][] = [
    [-1, "-1"],
    [NaN, "NaN"],
    [null, "null"],
    ["5", "a string"],
    [undefined, "a undefined"],
    [{}, "a object"],
  ];
  for (const [value, shown] of cases) {
    const error = timeoutError(value, 'call method "m"');
    assert.ok(error instanceof RangeError);
    assert.equal(
      error.message,
      `Cannot call method "m": timeout must be a number of ms >= 0 or Infinity, got ${shown}`,
    );
  }
  assert.equal(
    timeoutError(-2, "connect", "connectTimeout").message,
    "Cannot connect: connectTimeout must be a number of ms >= 0 or Infinity, got -2",
  );
});

Deno.test("deadline(): the promise's value or error, then its timer is cleared and its listener removed", async () => {
  await withFakeTimers(async (timers) => {
    const { controller, listeners } = countedSignal();
    const value = deadline(Promise.resolve(7), 50, {
      signal: controller.signal,
    });
    assert.equal(listeners(), 1);
    assert.equal(await value, 7);
    assert.deepEqual(timers.map((t) => [t.ms, t.cleared]), [[50, true]]);
    assert.equal(listeners(), 0);
    const failure = new Error("no");
    const error = deadline(Promise.reject(failure), 50, {
      signal: controller.signal,
    });
    await assert.rejects(error, (e) => e === failure);
    assert.equal(timers[1]!.cleared, true);
    assert.equal(listeners(), 0);
  });
});

Deno.test("deadline(): the timer rejects with a TimeoutError DOMException; a later settle changes nothing", async () => {
  await withFakeTimers(async (timers) => {
    const { controller, listeners } = countedSignal();
    const late = Promise.withResolvers<number>();
    const raced = deadline(late.promise, 20, { signal: controller.signal });
    assert.ok(await stillPendingWithoutTimers(raced));
    timers[0]!.fire();
    await assert.rejects(raced, (error: unknown) => {
      assert.ok(error instanceof DOMException);
      assert.equal(error.name, "TimeoutError");
      assert.equal(error.message, "Signal timed out.");
      return true;
    });
    assert.equal(listeners(), 0, "the abort listener is removed");
    late.resolve(1);
    controller.abort(new Error("late"));
    await settled();
  });
});

Deno.test("deadline(): an abort rejects with the signal's reason and clears the timer; an aborted signal arms nothing", async () => {
  await withFakeTimers(async (timers) => {
    const { controller, listeners } = countedSignal();
    const raced = deadline(new Promise(() => {}), 20, {
      signal: controller.signal,
    });
    const reason = new Error("stop");
    controller.abort(reason);
    await assert.rejects(raced, (error) => error === reason);
    assert.equal(timers[0]!.cleared, true);
    assert.equal(listeners(), 0);
    const again = deadline(new Promise(() => {}), 20, {
      signal: controller.signal,
    });
    await assert.rejects(again, (error) => error === reason);
    assert.equal(timers.length, 1, "no timer for an aborted signal");
    assert.equal(listeners(), 0);
  });
});

Deno.test("delay(): resolves when its timer fires, rejects with the reason when aborted first", async () => {
  await withFakeTimers(async (timers) => {
    const waited = delay(15);
    assert.ok(await stillPendingWithoutTimers(waited));
    assert.deepEqual(timers.map((t) => t.ms), [15]);
    timers[0]!.fire();
    assert.equal(await waited, undefined);
    const controller = new AbortController();
    const stopped = delay(15, { signal: controller.signal });
    const reason = new Error("stop");
    controller.abort(reason);
    await assert.rejects(stopped, (error) => error === reason);
    assert.equal(timers[1]!.cleared, true);
    await assert.rejects(
      delay(15, { signal: controller.signal }),
      (error) => error === reason,
    );
    assert.equal(timers.length, 2);
  });
});

Deno.test("abortable(): the promise's outcome, or the signal's reason, with no timer", async () => {
  await withFakeTimers(async (timers) => {
    const controller = new AbortController();
    assert.equal(await abortable(Promise.resolve(3), controller.signal), 3);
    const waiting = abortable(new Promise(() => {}), controller.signal);
    const reason = new Error("stop");
    controller.abort(reason);
    await assert.rejects(waiting, (error) => error === reason);
    assert.equal(timers.length, 0);
  });
});

Deno.test("settleWithin(): true when the promise settles either way, false when the time runs out", async () => {
  await withFakeTimers(async (timers) => {
    assert.equal(await settleWithin(Promise.resolve(), 10), true);
    assert.equal(await settleWithin(Promise.reject(new Error("x")), 10), true);
    // A rejection that looks like a timeout but is not the timer's.
    assert.equal(
      await settleWithin(
        Promise.reject(new DOMException("no", "AbortError")),
        10,
      ),
      true,
    );
    const late = settleWithin(new Promise(() => {}), 10);
    timers[3]!.fire();
    assert.equal(timers[3]!.ms, 10);
    assert.equal(await late, false);
  });
});

Deno.test("isTimeoutError(): only a DOMException named TimeoutError", () => {
  assert.equal(
    isTimeoutError(new DOMException("Signal timed out.", "TimeoutError")),
    true,
  );
  assert.equal(isTimeoutError(new DOMException("x", "AbortError")), false);
  const named = new Error("x");
  named.name = "TimeoutError";
  assert.equal(isTimeoutError(named), false);
  assert.equal(isTimeoutError(undefined), false);
});

Deno.test("backoff(): min × multiplier^(attempt-1), jittered ± jitter, capped at max", () => {
  const at = (random: number, attempt: number, extra = {}) =>
    backoff(attempt, {
      minTimeout: 100,
      maxTimeout: 1000,
      random: () => random,
      ...extra,
    });
  // Default multiplier 2, jitter 0.2: random 0.5 is the period itself.
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => at(0.5, n)), [
    100,
    200,
    400,
    800,
    1000,
  ]);
  // Attempt 0 (or less) is the first period.
  assert.equal(at(0.5, 0), 100);
  assert.equal(at(0.5, -3), 100);
  // Jitter bounds: random 0 is 80 %, random 1 is 120 % (capped at max).
  assert.equal(at(0, 2), 160);
  assert.equal(Math.round(at(1, 2)), 240);
  assert.equal(at(0.25, 2), 180);
  assert.equal(at(1, 5), 1000);
  assert.equal(at(0, 5), 800, "jitter applies to the capped period");
  // Options.
  assert.equal(at(0.5, 3, { multiplier: 3 }), 900);
  assert.equal(at(0, 2, { jitter: 0.5 }), 100);
  assert.equal(at(1, 2, { jitter: 0 }), 200);
  const value = backoff(1, { minTimeout: 100, maxTimeout: 1000 });
  assert.ok(value >= 80 && value <= 120, `Math.random by default: ${value}`);
});

/**
 * Whether `promise` is still pending once queued reactions ran (the timers
 * are fake, so `stillPending()`'s 0 ms timer cannot be used).
 */
async function stillPendingWithoutTimers(
  promise: Promise<unknown>,
): Promise<boolean> {
  let done = false;
  promise.then(() => done = true, () => done = true);
  await settled();
  return !done;
}
