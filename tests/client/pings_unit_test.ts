/**
 * The caller's pings of one connection (`src/client/_pings.ts`) as a unit,
 * on a fake clock (tests/_timers.ts) and a scripted link: one ping frame
 * per call, every waiting ping woken by a pong, the timeout (its timer
 * cleared on the pong, none for `Infinity`), a closed connection, and
 * invalid timeouts, each with its exact error.
 */
import assert from "node:assert/strict";
import { Pings } from "../../src/client/_pings.ts";
import { ConnectionError } from "../../src/errors.ts";
import { FakeClock } from "../_timers.ts";

/** Pings over a scripted link. */
function pings() {
  const state = {
    sent: 0,
    closed: false,
    error: undefined as Error | undefined,
  };
  const p = new Pings({
    name: "unit:9",
    send: () => void state.sent++,
    closed: () => state.closed,
    closeError: () => state.error,
  });
  return { p, state };
}

/** Settles `promise` into "resolved" or its error, without waiting. */
function outcome(promise: Promise<void>) {
  const seen: { value?: "resolved" | unknown } = {};
  promise.then(() => seen.value = "resolved", (e) => seen.value = e);
  return seen;
}

const flush = () => new Promise<void>((resolve) => queueMicrotask(resolve));

Deno.test("pings: each ping sends one frame; one pong wakes every waiting ping and clears their timers", async () => {
  using clock = new FakeClock();
  const { p, state } = pings();
  const a = outcome(p.ping(100));
  const b = outcome(p.ping(200));
  assert.equal(state.sent, 2);
  assert.equal(clock.pending.length, 2);
  p.pong();
  await flush();
  assert.equal(a.value, "resolved");
  assert.equal(b.value, "resolved");
  assert.equal(clock.pending.length, 0);
  // A pong with no ping waiting does nothing; a later ping waits again.
  p.pong();
  const c = outcome(p.ping(100));
  await flush();
  assert.equal(c.value, undefined);
  p.pong();
  await flush();
  assert.equal(c.value, "resolved");
});

Deno.test("pings: no pong within the timeout fails that ping alone (written: false); the others still wait", async () => {
  using clock = new FakeClock();
  const { p } = pings();
  const short = outcome(p.ping(50));
  const long = outcome(p.ping(100));
  assert.deepEqual(clock.pending.map((t) => t.ms), [50, 100]);
  clock.advance(49);
  await flush();
  assert.equal(short.value, undefined);
  clock.advance(1);
  await flush();
  const e = (short as { value?: unknown }).value;
  assert.ok(e instanceof ConnectionError);
  assert.equal(e.message, "Cannot ping unit:9: no answer within 50 ms");
  assert.equal(e.written, false);
  assert.equal(long.value, undefined);
  p.pong();
  await flush();
  assert.equal(long.value, "resolved");
  // The timed-out ping is not woken again (it is gone from the waiters).
  clock.advance(1000);
  await flush();
  assert.equal(short.value, e);
});

Deno.test("pings: Infinity arms no timer; a closed connection fails a new ping and wakes the waiting ones with its error", async () => {
  using clock = new FakeClock();
  const { p, state } = pings();
  const waiting = outcome(p.ping(Infinity));
  assert.equal(clock.timers.length, 0);
  const cause = new Error("reset");
  state.closed = true;
  state.error = cause;
  p.pong(); // what the connection calls when it closes
  await flush();
  const e = (waiting as { value?: unknown }).value;
  assert.ok(e instanceof ConnectionError);
  assert.equal(e.message, "Cannot ping unit:9: connection closed");
  assert.equal(e.written, false);
  assert.equal(e.cause, cause);
  const sent = state.sent;
  await assert.rejects(
    p.ping(100),
    (err: unknown) =>
      err instanceof ConnectionError && !err.written && err.cause === cause &&
      err.message === "Cannot ping unit:9: connection closed",
  );
  assert.equal(state.sent, sent, "nothing sent on a closed connection");
});

Deno.test("pings: a NaN, negative or non-number timeout is a RangeError, nothing sent; 0 is a timeout", async () => {
  using clock = new FakeClock();
  const { p, state } = pings();
  for (const timeout of [NaN, -1, "5" as unknown as number]) {
    await assert.rejects(
      p.ping(timeout),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message.startsWith(
          "Cannot ping unit:9: timeout must be a number of ms >= 0 or Infinity",
        ),
      String(timeout),
    );
  }
  assert.equal(state.sent, 0);
  const zero = outcome(p.ping(0));
  assert.equal(state.sent, 1);
  clock.advance(0);
  await flush();
  assert.ok(zero.value instanceof ConnectionError);
});
