/**
 * A call's context on the server as units, no socket: `HandlerContext`
 * (its lazy signal, the deadline timer armed only when the signal is read
 * and fired by the test, abort once, done), `RunningHandlers` (the count a
 * graceful close waits for) and `withContext` / `contextHandlerOf`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { HandlerContext } from "../../src/server/_handler_context.ts";
import { RunningHandlers } from "../../src/server/_running.ts";
import {
  type CallContext,
  contextHandlerOf,
  withContext,
} from "../../src/server/call_context.ts";
import { CancelledError } from "../../src/errors.ts";
import { stillPending } from "../_wait.ts";
import { withFakeTimers } from "../_timers.ts";

const ADDR: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 9 };

Deno.test("handler context: method, address, metadata and the deadline from the header's ms left", async () => {
  await withFakeTimers((timers, clock) => {
    const metadata = { tenant: "acme" };
    const ctx = new HandlerContext("add", ADDR, 250, metadata);
    assert.equal(ctx.method, "add");
    assert.equal(ctx.remoteAddr, ADDR);
    assert.equal(ctx.metadata, metadata);
    assert.equal(ctx.deadline, clock.now + 250);
    assert.equal(ctx.input, undefined);
    assert.equal(ctx.expired, false);
    assert.equal(timers.length, 0, "no timer before the signal is read");
    const none = new HandlerContext("add", ADDR, undefined, {});
    assert.equal(none.deadline, Infinity);
    assert.equal(none.signal.aborted, false);
    assert.equal(timers.length, 0, "no timer without a deadline");
  });
});

Deno.test("handler context: reading the signal arms one timer for the time left; at the deadline the call expires with CancelledError", async () => {
  await withFakeTimers((timers, clock) => {
    const ctx = new HandlerContext("slow", ADDR, 250, {});
    clock.now += 100;
    const signal = ctx.signal;
    assert.equal(ctx.signal, signal, "one signal");
    assert.equal(timers.length, 1);
    assert.equal(timers[0]!.ms, 150);
    assert.equal(signal.aborted, false);
    timers[0]!.fire();
    assert.equal(ctx.expired, true);
    assert.equal(signal.aborted, true);
    assert.ok(signal.reason instanceof CancelledError);
    assert.equal(
      signal.reason.message,
      'Call "slow" cancelled: the caller\'s deadline passed',
    );
    // Aborting later keeps the first reason.
    ctx.abort(new Error("later"));
    assert.ok(signal.reason instanceof CancelledError);
  });
});

Deno.test("handler context: a deadline already passed arms a 0 ms timer", async () => {
  await withFakeTimers((timers, clock) => {
    const ctx = new HandlerContext("m", ADDR, 0, {});
    clock.now += 50;
    void ctx.signal;
    assert.equal(timers.length, 1);
    assert.equal(timers[0]!.ms, 0);
  });
});

Deno.test("handler context: done() and abort() clear the deadline timer; abort is once and keeps its first reason", async () => {
  await withFakeTimers((timers) => {
    const a = new HandlerContext("m", ADDR, 1000, {});
    void a.signal;
    a.done();
    assert.equal(timers[0]!.cleared, true);
    assert.equal(a.signal.aborted, false);
    a.done(); // twice is harmless
    const b = new HandlerContext("m", ADDR, 1000, {});
    const signal = b.signal;
    const first = new Error("first");
    b.abort(first);
    assert.equal(timers[1]!.cleared, true);
    assert.equal(signal.reason, first);
    b.abort(new Error("second"));
    assert.equal(signal.reason, first);
    assert.equal(b.expired, false, "an abort is not an expiry");
  });
});

Deno.test("handler context: aborted before its signal is read, the signal comes aborted with the reason and no timer", async () => {
  await withFakeTimers((timers) => {
    const ctx = new HandlerContext("m", ADDR, 1000, {});
    const reason = new Error("client gone");
    ctx.abort(reason);
    ctx.abort(new Error("again"));
    const signal = ctx.signal;
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, reason);
    assert.equal(timers.length, 0);
  });
});

Deno.test("running handlers: idle() resolves at once at zero, else when the last call ends, for every waiter", async () => {
  const running = new RunningHandlers();
  assert.equal(running.size, 0);
  assert.equal(await stillPending(running.idle()), false);
  running.start();
  running.start();
  assert.equal(running.size, 2);
  const first = running.idle();
  const second = running.idle();
  running.end();
  assert.equal(running.size, 1);
  assert.equal(await stillPending(first), true, "one call still runs");
  running.end();
  assert.equal(running.size, 0);
  assert.equal(await stillPending(first), false);
  assert.equal(await stillPending(second), false);
  // Woken waiters are forgotten: a later wait waits for the next calls.
  running.start();
  const third = running.idle();
  assert.equal(await stillPending(third), true);
  running.end();
  assert.equal(await stillPending(third), false);
});

Deno.test("withContext: called directly, the handler gets a context of its own, then the caller's arguments and this", () => {
  const seen: [CallContext, unknown, unknown[]][] = [];
  const self = { tag: 1 };
  const fn = withContext(function named(
    this: unknown,
    ctx: CallContext,
    ...args: number[]
  ) {
    seen.push([ctx, this, args]);
    return args.length;
  });
  assert.equal(fn.call(self, 1, 2), 2);
  const [ctx, that, args] = seen[0]!;
  assert.equal(that, self);
  assert.deepEqual(args, [1, 2]);
  assert.equal(ctx.method, "named");
  assert.equal(ctx.remoteAddr, undefined);
  assert.equal(ctx.deadline, Infinity);
  assert.deepEqual(ctx.metadata, {});
  assert.equal(ctx.signal.aborted, false);
});

Deno.test("contextHandlerOf: the wrapped function of a withContext handler, nothing for others", () => {
  const inner = (_ctx: CallContext, a: number) => a;
  const wrapped = withContext(inner);
  assert.equal(contextHandlerOf(wrapped), inner);
  assert.equal(contextHandlerOf((a: number) => a), undefined);
  assert.equal(contextHandlerOf(inner), undefined);
  for (const other of [undefined, null, "f", 1, {}]) {
    assert.equal(contextHandlerOf(other), undefined);
  }
  // The mark is on the function, not found on an object copying its keys.
  assert.equal(contextHandlerOf({ ...wrapped }), undefined);
});
