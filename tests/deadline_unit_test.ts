/**
 * Deadlines as a unit, with the clock injected: a deadline from a timeout
 * and its parent (the earlier wins; `Infinity` inherits), the time left
 * (never negative), the wire's form (whole milliseconds rounded up, none
 * beyond `MAX_WIRE_DEADLINE`) and back, and `atDeadline()` firing once the
 * deadline has passed.
 */
import assert from "node:assert/strict";
import {
  atDeadline,
  deadlineFrom,
  fromWire,
  MAX_WIRE_DEADLINE,
  NO_DEADLINE,
  remaining,
  toWire,
} from "../src/_deadline.ts";
import { within } from "./_wait.ts";

const NOW = 1_000_000;

Deno.test("deadlineFrom(): now + timeout, capped by the parent; Infinity inherits the parent", () => {
  assert.equal(deadlineFrom(500, NO_DEADLINE, NOW), NOW + 500);
  assert.equal(deadlineFrom(0, NO_DEADLINE, NOW), NOW, "0 is already due");
  assert.equal(deadlineFrom(500, NOW + 200, NOW), NOW + 200, "parent earlier");
  assert.equal(deadlineFrom(500, NOW + 900, NOW), NOW + 500, "own earlier");
  assert.equal(deadlineFrom(500, NOW + 500, NOW), NOW + 500);
  assert.equal(deadlineFrom(Infinity, NOW + 7, NOW), NOW + 7);
  assert.equal(deadlineFrom(Infinity, undefined, NOW), NO_DEADLINE);
  assert.equal(deadlineFrom(500, undefined, NOW), NOW + 500, "no parent");
  // The clock defaults to Date.now() (far past NOW).
  assert.ok(deadlineFrom(500) > NOW + 500);
});

Deno.test("deadlineFrom(): a negative, NaN or non-number timeout is a RangeError naming it", () => {
  for (
    const [timeout, shown] of [
      [-1, "-1"],
      [-0.5, "-0.5"],
      [NaN, "NaN"],
      ["5", "a string"],
      [null, "null"],
    ] as const
  ) {
    assert.throws(
      () => deadlineFrom(timeout as number, NO_DEADLINE, NOW),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot set a deadline: timeout must be a number of ms >= 0 or Infinity, got ${shown}`,
      shown,
    );
  }
});

Deno.test("remaining(): time left, never negative; Infinity for no deadline", () => {
  assert.equal(remaining(NOW + 250, NOW), 250);
  assert.equal(remaining(NOW, NOW), 0);
  assert.equal(remaining(NOW - 5, NOW), 0, "past: 0, not -5");
  assert.equal(remaining(NO_DEADLINE, NOW), Infinity);
  const left = remaining(Date.now() + 10_000);
  assert.ok(left > 0 && left <= 10_000, String(left));
});

Deno.test("toWire(): whole ms rounded up; undefined beyond MAX_WIRE_DEADLINE; fromWire() inverts it", () => {
  assert.equal(toWire(NOW + 10.2, NOW), 11, "rounded up, never early");
  assert.equal(toWire(NOW + 10, NOW), 10);
  assert.equal(toWire(NOW - 3, NOW), 0, "expired: 0");
  assert.equal(toWire(NOW + MAX_WIRE_DEADLINE, NOW), MAX_WIRE_DEADLINE);
  assert.equal(toWire(NOW + MAX_WIRE_DEADLINE + 1, NOW), undefined);
  assert.equal(toWire(NO_DEADLINE, NOW), undefined);
  assert.equal(MAX_WIRE_DEADLINE, 2 ** 32 - 1);
  assert.equal(fromWire(undefined, NOW), NO_DEADLINE);
  assert.equal(fromWire(0, NOW), NOW);
  assert.equal(fromWire(250, NOW), NOW + 250);
  assert.equal(fromWire(toWire(NOW + 250, NOW), NOW), NOW + 250);
  const wire = toWire(Date.now() + 10_000)!;
  assert.ok(wire > 0 && wire <= 10_000, String(wire));
  assert.ok(fromWire(250) > NOW + 250, "the clock defaults to now");
});

Deno.test("atDeadline(): fires once the deadline has passed; a past deadline fires at once; clear() stops it", async () => {
  const past = Promise.withResolvers<void>();
  atDeadline(Date.now() - 1000, () => past.resolve());
  await within(past.promise, 1000, "a past deadline fires");
  const fired = Promise.withResolvers<void>();
  atDeadline(Date.now() + 30, () => fired.resolve());
  await within(fired.promise, 5000, "a future deadline fires");
  let calls = 0;
  const cleared = atDeadline(Date.now() + 10, () => calls++);
  cleared.clear();
  const after = Promise.withResolvers<void>();
  atDeadline(Date.now() + 40, () => after.resolve());
  await within(after.promise, 5000, "a later deadline");
  assert.equal(calls, 0, "cleared: never fires");
  const never = atDeadline(NO_DEADLINE, () => calls++);
  never.clear();
});
