/**
 * Unit tests of the interceptor chain (`src/_interceptors.ts`) with a fake
 * `send`: order, `next()` once, errors thrown or rejected, what reaches the
 * wire (method, params, metadata, timeout, `parent: null`, the caller's
 * signal), and the guard: a chain that outlives its deadline ends with
 * `DeadlineExceededError`, a cancelled one with `CancelledError` at once, and
 * nothing is sent after either. No I/O: the mutation runner's tests for
 * `interceptors`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type ClientCall,
  type ClientInterceptor,
  runClientInterceptors,
  runInterceptors,
  type SentOptions,
} from "../src/_interceptors.ts";
import { CancelledError, DeadlineExceededError } from "../src/errors.ts";
import { within } from "./_wait.ts";

function call(overrides: Partial<ClientCall> = {}): ClientCall {
  return {
    method: "m",
    params: [1],
    metadata: {},
    timeout: Infinity,
    attempt: 1,
    target: "127.0.0.1:1",
    ...overrides,
  };
}

/** A `send` that records what it got and answers `reply`. */
function recorder(reply: unknown = "sent") {
  const sent: { method: string; params: unknown[]; options: SentOptions }[] =
    [];
  return {
    sent,
    send: (method: string, params: unknown[], options: SentOptions) => {
      sent.push({ method, params, options });
      return Promise.resolve(reply);
    },
  };
}

Deno.test("runInterceptors runs interceptors in order around the last step and passes results back out", async () => {
  const order: string[] = [];
  const result = await runInterceptors(
    [
      async (c: { v: number }, next) => {
        order.push("a>");
        c.v += 1;
        const r = await next();
        order.push("<a");
        return `a(${r})`;
      },
      async (c, next) => {
        order.push("b>");
        c.v *= 10;
        const r = await next();
        order.push("<b");
        return `b(${r})`;
      },
    ],
    { v: 1 },
    (c) => {
      order.push("last");
      return Promise.resolve(c.v);
    },
  );
  assert.equal(result, "a(b(20))");
  assert.deepEqual(order, ["a>", "b>", "last", "<b", "<a"]);
  assert.equal(await runInterceptors([], 5, (c) => Promise.resolve(c)), 5);
});

Deno.test("runInterceptors: next() twice rejects; a throwing interceptor or last step rejects; a short-circuit skips the rest", async () => {
  let second: unknown;
  await runInterceptors(
    [async (_c, next) => {
      await next();
      second = await next().catch((e) => e);
    }],
    {},
    () => Promise.resolve(1),
  );
  assert.ok(second instanceof Error);
  assert.equal(
    (second as Error).message,
    "Cannot intercept call: next() called more than once",
  );
  // Called twice at once, too.
  let both: unknown;
  await runInterceptors(
    [(_c, next) => {
      const first = next();
      both = next().catch((e) => e);
      return first;
    }],
    {},
    () => Promise.resolve(1),
  );
  assert.match(String(await both), /next\(\) called more than once/);
  const boom = new RangeError("boom");
  await assert.rejects(
    runInterceptors(
      [() => {
        throw boom;
      }],
      {},
      () => Promise.resolve(1),
    ),
    (e) => e === boom,
  );
  await assert.rejects(
    runInterceptors([], {}, () => {
      throw boom;
    }),
    (e) => e === boom,
  );
  // A synchronous value from an interceptor becomes a promise.
  let reached = false;
  const value = await runInterceptors(
    [(() => "short") as unknown as ClientInterceptor, () => {
      reached = true;
      return Promise.resolve("no");
    }],
    call(),
    () => Promise.resolve("last"),
  );
  assert.equal(value, "short");
  assert.equal(reached, false);
});

Deno.test("runClientInterceptors sends what the interceptors left: method, params, metadata, timeout, parent null and the caller's signal", async () => {
  const { sent, send } = recorder();
  const controller = new AbortController();
  const c = call({ timeout: 5000, metadata: { a: "1" } });
  const result = await runClientInterceptors(
    [(call, next) => {
      call.params = [2, 3];
      call.metadata.b = "2";
      call.timeout = 4000;
      return next();
    }],
    c,
    controller.signal,
    send,
  );
  assert.equal(result, "sent");
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.method, "m");
  assert.deepEqual(sent[0]!.params, [2, 3]);
  assert.deepEqual(sent[0]!.options.metadata, { a: "1", b: "2" });
  assert.equal(sent[0]!.options.timeout, 4000);
  assert.equal(sent[0]!.options.parent, null);
  assert.equal(sent[0]!.options.signal, controller.signal);
  // Without a signal the options carry none (not even undefined).
  const other = recorder();
  await runClientInterceptors([], call(), undefined, other.send);
  assert.deepEqual(Object.keys(other.sent[0]!.options).sort(), [
    "metadata",
    "parent",
    "timeout",
  ]);
  assert.equal(other.sent[0]!.options.timeout, Infinity);
});

Deno.test("runClientInterceptors: without a signal and without a deadline the chain's own result and error come back unchanged", async () => {
  const boom = new RangeError("own");
  await assert.rejects(
    runClientInterceptors([], call(), undefined, () => Promise.reject(boom)),
    (e) => e === boom,
  );
  // A deadline beyond the longest timer: no guard (the connection times it).
  const { sent, send } = recorder("far");
  assert.equal(
    await runClientInterceptors(
      [],
      call({ timeout: 2 ** 31 }),
      undefined,
      send,
    ),
    "far",
  );
  assert.equal(sent[0]!.options.timeout, 2 ** 31);
  // Exactly the longest timer is guarded: an interceptor that never calls
  // next() is still bounded (checked by the cancel below, not by waiting).
  const controller = new AbortController();
  const stuck = runClientInterceptors(
    [() => new Promise(() => {})],
    call({ timeout: 0x7fff_ffff }),
    controller.signal,
    send,
  );
  controller.abort(new Error("stop"));
  await assert.rejects(within(stuck, 5000, "the cancel"), CancelledError);
});

Deno.test("runClientInterceptors: a chain outliving its deadline fails with DeadlineExceededError naming the method and deadline, and sends nothing later", async () => {
  const { sent, send } = recorder();
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const result = runClientInterceptors(
    [async (_c, next) => {
      await held;
      return next();
    }],
    call({ method: "slow", timeout: 20 }),
    undefined,
    send,
  );
  await assert.rejects(
    within(result, 5000, "the deadline"),
    (e) =>
      e instanceof DeadlineExceededError &&
      e.message === 'Cannot call method "slow": deadline of 20 ms exceeded',
  );
  release();
  // The interceptor's late next() is refused with the same error, unsent.
  await within(held, 5000, "the release");
  await Promise.resolve();
  assert.equal(sent.length, 0);
});

Deno.test("runClientInterceptors: an interceptor that drops the caller's signal still ends with CancelledError at once, and nothing is sent later", async () => {
  const { sent, send } = recorder();
  const controller = new AbortController();
  const reason = new Error("user gave up");
  let late: Promise<unknown> | undefined;
  const gate = Promise.withResolvers<void>();
  const result = runClientInterceptors(
    [async (_c, next) => {
      await gate.promise; // ignores the signal
      late = next();
      return late;
    }],
    call({ method: "m", timeout: 60_000 }),
    controller.signal,
    send,
  );
  controller.abort(reason);
  await assert.rejects(
    within(result, 5000, "the cancel"),
    (e) =>
      e instanceof CancelledError && e.cause === reason &&
      e.message === 'Cannot call method "m": cancelled',
  );
  gate.resolve();
  await within(gate.promise, 5000, "the gate");
  await Promise.resolve();
  await Promise.resolve();
  assert.ok(late !== undefined);
  await assert.rejects(late!, CancelledError);
  assert.equal(sent.length, 0);
  const own = new RangeError("own");
  // An error that is not a timeout passes through the deadline guard.
  await assert.rejects(
    runClientInterceptors(
      [() => Promise.reject(own)],
      call({ timeout: 1000 }),
      undefined,
      send,
    ),
    (e) => e === own,
  );
});

Deno.test("runClientInterceptors: a cancel ends a call without a deadline too; a rejection with no reason while the signal is live passes through", async () => {
  const { sent, send } = recorder();
  const controller = new AbortController();
  const reason = new Error("stop");
  const result = runClientInterceptors(
    [() => new Promise(() => {})], // never calls next(), ignores the signal
    call({ timeout: Infinity }),
    controller.signal,
    send,
  );
  controller.abort(reason);
  await assert.rejects(
    within(result, 5000, "the cancel"),
    (e) => e instanceof CancelledError && e.cause === reason,
  );
  assert.equal(sent.length, 0);
  const live = new AbortController();
  const outcome = await runClientInterceptors(
    [() => Promise.reject(undefined)],
    call({ timeout: 1000 }),
    live.signal,
    send,
  ).then(() => "resolved", (e) => e);
  assert.equal(outcome, undefined);
});
