/**
 * Long, infinite and invalid deadlines (issue 21 finding 4, issue 22): a
 * timer longer than 2^31-1 ms is chained and never fires early, `Infinity`
 * arms no timer, `NaN`/negative/non-number timeouts are a `RangeError` at
 * the call site, and every call ends with an answer or an error. Against
 * real servers; "never early" is checked by timer order (a timer armed
 * after the overflowed one, due later, always fires after it), never by
 * wall-clock time.
 */
import assert from "node:assert/strict";
import {
  deadline,
  delay,
  MAX_TIMER_DELAY,
  setLongTimeout,
} from "../src/_async.ts";
import { Connection, MAX_WIRE_DEADLINE } from "../src/client/connection.ts";
import { DistributedChannel } from "../src/channel/channel.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import { hedge } from "../src/channel/hedging.ts";
import { serve } from "../src/server/server.ts";
import { type CallContext, withContext } from "../src/server/call_context.ts";
import { CancelledError, DeadlineExceededError } from "../src/errors.ts";
import type { ClientInterceptor } from "../src/_interceptors.ts";
import { within } from "./_wait.ts";
import { afterOverflow, countTimers } from "./_timers.ts";

const HOST = "127.0.0.1";
const DAY = 24 * 3600 * 1000;

/** What the `seen` handler reports about its context. */
interface Seen {
  aborted: boolean;
  /** ms from the handler's start to `ctx.deadline`; `null` for none. */
  left: number | null;
}

/**
 * A handler that reads its signal (arming the server's deadline timer),
 * waits past the moment an overflowed timer would fire, and reports.
 */
const seen = withContext(async (ctx: CallContext): Promise<Seen> => {
  const start = Date.now();
  const signal = ctx.signal;
  await afterOverflow();
  return {
    aborted: signal.aborted,
    left: Number.isFinite(ctx.deadline) ? ctx.deadline - start : null,
  };
});

Deno.test("setLongTimeout() chains timers beyond maxDelay and fires once, not before its time", async () => {
  const order: string[] = [];
  const fired = Promise.withResolvers<void>();
  const armed = await countTimers(async () => {
    setLongTimeout(
      () => {
        order.push("long");
        fired.resolve();
      },
      40,
      { maxDelay: 5 },
    );
    const plain = new Promise<void>((resolve) =>
      setTimeout(() => {
        order.push("20 ms");
        resolve();
      }, 20)
    );
    await within(Promise.all([plain, fired.promise]), 5000, "both timers");
  });
  assert.deepEqual(order, ["20 ms", "long"]);
  // The 20 ms timer plus at least two links of the chain.
  assert.ok(armed >= 3, `${armed} timers armed`);
});

Deno.test("setLongTimeout() beyond 2^31-1 ms does not fire after 1 ms, and clear() stops it", async () => {
  for (const ms of [MAX_TIMER_DELAY, MAX_TIMER_DELAY + 1, 2 ** 32, 1e12]) {
    let fired = false;
    let timer: ReturnType<typeof setLongTimeout> | undefined;
    const armed = await countTimers(async () => {
      timer = setLongTimeout(() => fired = true, ms);
      await afterOverflow();
    });
    assert.equal(fired, false, `${ms} ms fired early`);
    // Its own timer and the 5 ms one: no re-arm every millisecond.
    assert.equal(armed, 2, `${ms} ms: ${armed} timers armed`);
    timer!.clear();
  }
});

Deno.test("setLongTimeout(Infinity) arms no timer; NaN is a RangeError", async () => {
  let fired = false;
  const armed = await countTimers(async () => {
    // Never cleared: the op sanitizer fails the test if a timer was armed.
    setLongTimeout(() => fired = true, Infinity);
    await afterOverflow();
  });
  assert.equal(armed, 1); // the 5 ms one
  assert.equal(fired, false);
  assert.throws(() => setLongTimeout(() => {}, NaN), RangeError);
});

Deno.test("deadline() and delay() with Infinity wait without a timer until aborted", async () => {
  const controller = new AbortController();
  let waits: Promise<unknown>[] = [];
  const armed = await countTimers(async () => {
    waits = [
      deadline(new Promise(() => {}), Infinity, { signal: controller.signal }),
      delay(Infinity, { signal: controller.signal }),
    ];
    await afterOverflow();
  });
  controller.abort(new Error("stop"));
  for (const wait of waits) {
    await assert.rejects(within(wait, 5000, "the abort"), { message: "stop" });
  }
  assert.equal(armed, 1); // the 5 ms one
});

Deno.test("a call with a long or infinite timeout is answered; the server sees the deadline the wire can carry and never aborts early", async () => {
  await using server = serve({ seen }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const cases: [number, number | null][] = [
    [MAX_TIMER_DELAY, MAX_TIMER_DELAY],
    [2 ** 31, 2 ** 31],
    [MAX_WIRE_DEADLINE, MAX_WIRE_DEADLINE],
    [MAX_WIRE_DEADLINE + 1, null], // beyond the u32: sent as "no deadline"
    [30 * DAY, 30 * DAY],
    [50 * DAY, null],
    [1e12, null],
    [Infinity, null],
  ];
  for (const [timeout, wire] of cases) {
    const result = await within(
      conn.call("seen", [], { timeout }) as Promise<Seen>,
      10_000,
      `the answer of a call with timeout ${timeout}`,
    );
    assert.equal(result.aborted, false, `timeout ${timeout}`);
    if (wire === null) assert.equal(result.left, null, `timeout ${timeout}`);
    else {
      // The time left when the request was written, minus the trip.
      assert.ok(
        result.left !== null && result.left <= wire &&
          result.left > wire - 60_000,
        `timeout ${timeout}: ${result.left} ms left`,
      );
    }
  }
  assert.equal(conn.inFlight, 0);
});

Deno.test("long-deadline calls stay pending while a short one on the same connection expires, then are answered", async () => {
  const release = Promise.withResolvers<void>();
  let held = 0;
  const heldAll = Promise.withResolvers<void>();
  await using server = serve({
    hold: withContext(async (ctx: CallContext) => {
      const signal = ctx.signal;
      if (++held === 4) heldAll.resolve();
      await release.promise;
      return signal.aborted ? "aborted" : "held";
    }),
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const long = [2 ** 31, MAX_WIRE_DEADLINE, 1e12].map((timeout) =>
    conn.call("hold", [], { timeout })
  );
  const short = conn.call("hold", [], { timeout: 20 });
  await within(heldAll.promise, 5000, "four calls to reach the handler");
  await assert.rejects(
    within(short, 5000, "the short call's deadline"),
    DeadlineExceededError,
  );
  assert.equal(conn.inFlight, 3);
  release.resolve();
  assert.deepEqual(
    await within(Promise.all(long), 5000, "the long calls' answers"),
    ["held", "held", "held"],
  );
});

Deno.test("NaN, negative and non-number timeouts reject with a RangeError before anything is sent", async () => {
  let runs = 0;
  await using server = serve({ count: () => ++runs }, { hostname: HOST });
  const passThrough: ClientInterceptor = (_call, next) => next();
  for (const interceptors of [[], [passThrough]]) {
    await using conn = await Connection.connect({
      hostname: HOST,
      port: server.addr.port,
    }, { interceptors });
    for (const timeout of [NaN, -1, -0.5, -Infinity, "100", null, 10n]) {
      await assert.rejects(
        conn.call("count", [], { timeout: timeout as number }),
        (error: unknown) =>
          error instanceof RangeError &&
          /^Cannot call method "count": timeout must be a number of ms >= 0 or Infinity, got /
            .test(error.message),
        String(timeout),
      );
    }
    await assert.rejects(conn.ping(NaN), RangeError);
    assert.equal(conn.inFlight, 0);
    // Nothing was sent, and the connection still works.
    assert.equal(await conn.call("count", [], { timeout: 5000 }), runs);
    assert.equal(runs, interceptors.length + 1);
  }
});

Deno.test("a timeout of 0 is already expired: DeadlineExceededError, nothing sent", async () => {
  let runs = 0;
  await using server = serve({ count: () => ++runs }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await assert.rejects(
    conn.call("count", [], { timeout: 0 }),
    (error: unknown) =>
      error instanceof DeadlineExceededError &&
      error.message ===
        'Cannot call method "count": deadline of 0 ms exceeded (request not sent)',
  );
  assert.equal(await conn.call("count", [], { timeout: 5000 }), 1);
});

Deno.test("the channel refuses invalid timeouts in call() and ready(), and answers long and infinite ones", async () => {
  await using server = serve({ seen }, { hostname: HOST });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: server.addr.port }]),
  });
  for (const timeout of [NaN, -1, "100", null]) {
    await assert.rejects(
      channel.call("seen", [], { timeout: timeout as number }),
      /^RangeError: Cannot call method "seen": timeout must be/,
    );
    await assert.rejects(
      channel.ready({ timeout: timeout as number }),
      /^RangeError: Cannot wait for servers: timeout must be/,
    );
  }
  await assert.rejects(
    channel.call("seen", [], { timeout: 0 }),
    DeadlineExceededError,
  );
  for (const timeout of [2 ** 31, 1e12, Infinity]) {
    const result = await within(
      channel.call("seen", [], { timeout }) as Promise<Seen>,
      10_000,
      `the answer of a channel call with timeout ${timeout}`,
    );
    assert.equal(result.aborted, false, `timeout ${timeout}`);
  }
});

Deno.test("ready({ timeout: Infinity }) and waitForReady wait for a member without polling", async () => {
  const membership = new StaticMembership([]);
  await using channel = new DistributedChannel({ membership });
  const controller = new AbortController();
  let ready: Promise<void> | undefined;
  let call: Promise<unknown> | undefined;
  const armed = await countTimers(async () => {
    ready = channel.ready({ timeout: Infinity, signal: controller.signal });
    call = channel.call("seen", [], {
      timeout: Infinity,
      waitForReady: true,
      signal: controller.signal,
    });
    await afterOverflow();
  });
  assert.equal(armed, 1, `${armed} timers armed`); // the 5 ms one
  const stop = new Error("stop");
  controller.abort(stop);
  for (const [what, wait] of [["ready()", ready!], ["the call", call!]]) {
    await assert.rejects(
      within(wait as Promise<unknown>, 5000, `${what} to stop`),
      (error: unknown) =>
        error instanceof CancelledError && error.cause === stop,
      String(what),
    );
  }
});

Deno.test("hedging with a delay beyond 2^31-1 ms or Infinity sends no early hedge", async () => {
  for (const delayMs of [2 ** 31, Infinity]) {
    let attempts = 0;
    const answer = Promise.withResolvers<string>();
    const call = hedge(() => {
      attempts++;
      return answer.promise;
    }, {
      delay: delayMs,
      maxHedges: 2,
      signal: undefined,
      mayHedge: () => true,
      isAnswer: () => false,
    });
    await afterOverflow();
    assert.equal(attempts, 1, `delay ${delayMs}`);
    answer.resolve("first");
    assert.equal(await within(call, 5000, "the first attempt"), "first");
  }
});

Deno.test("server timeouts beyond 2^31-1 ms or Infinity neither fire early nor spin", async () => {
  for (const ms of [2 ** 31, 1e12, Infinity]) {
    await using server = serve({ ok: () => "ok" }, {
      hostname: HOST,
      handshakeTimeout: ms,
      idleTimeout: ms,
      frameTimeout: ms,
      maxConnectionAge: ms,
    });
    await using conn = await Connection.connect(
      { hostname: HOST, port: server.addr.port },
      { keepaliveInterval: 0 }, // no client timer in the count below
    );
    assert.equal(await conn.call("ok", [], { timeout: 5000 }), "ok");
    // An overflowed timer would have fired (the age timer drains the
    // connection with goaway) and re-armed (the idle timer) by now.
    const armed = await countTimers(afterOverflow);
    assert.equal(armed, 1, `${ms} ms: ${armed} timers armed`); // the 5 ms one
    assert.equal(conn.draining, false, `${ms} ms`);
    assert.equal(await conn.call("ok", [], { timeout: 5000 }), "ok");
  }
});

Deno.test("a channel's default timeout is checked when it is created; Infinity and long ones are accepted", async () => {
  for (const timeout of [NaN, -1, "100", null]) {
    assert.throws(
      () =>
        new DistributedChannel({
          membership: new StaticMembership([]),
          timeout: timeout as number,
        }),
      /^RangeError: Cannot create channel: timeout must be a number of ms >= 0 or Infinity/,
    );
  }
  await using server = serve({ seen }, { hostname: HOST });
  for (const timeout of [2 ** 31, Infinity]) {
    await using channel = new DistributedChannel({
      membership: new StaticMembership([{
        host: HOST,
        port: server.addr.port,
      }]),
      timeout,
    });
    const result = await within(
      channel.call("seen", []) as Promise<Seen>,
      10_000,
      `a call with the channel's timeout of ${timeout}`,
    );
    assert.equal(result.aborted, false);
    assert.equal(result.left === null, timeout === Infinity);
  }
});

Deno.test("a call queued locally (over maxInFlight) sends what is left of a long deadline, or none beyond the wire's range", async () => {
  const release = Promise.withResolvers<void>();
  const held = Promise.withResolvers<void>();
  await using server = serve({
    hold: async () => {
      held.resolve();
      await release.promise;
      return "held";
    },
    seen,
  }, { hostname: HOST });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxInFlight: 1 },
  );
  const first = conn.call("hold", [], { timeout: 10_000 });
  await within(held.promise, 5000, "the first call to hold the only slot");
  // Queued, unsent: their deadlines are written when a slot frees.
  const queued = [2 ** 31, 1e12].map((timeout) =>
    conn.call("seen", [], { timeout }) as Promise<Seen>
  );
  release.resolve();
  assert.equal(await within(first, 5000, "the first call"), "held");
  const [long, beyond] = await within(
    Promise.all(queued),
    10_000,
    "the queued calls",
  );
  assert.equal(long!.aborted, false);
  assert.ok(
    long!.left !== null && long!.left <= 2 ** 31 &&
      long!.left > 2 ** 31 - 60_000,
    `${long!.left} ms left`,
  );
  assert.deepEqual(beyond, { aborted: false, left: null });
});

Deno.test("hedged channel calls with long or infinite timeouts are answered and never aborted early", async () => {
  await using server = serve({ seen }, { hostname: HOST });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: server.addr.port }]),
    idempotent: ["seen"],
    hedging: { delay: 2 ** 31 },
  });
  for (const timeout of [2 ** 31, 1e12, Infinity]) {
    const result = await within(
      channel.call("seen", [], { timeout }) as Promise<Seen>,
      10_000,
      `a hedged call with timeout ${timeout}`,
    );
    assert.equal(result.aborted, false, `timeout ${timeout}`);
  }
});

Deno.test("ready({ timeout: Infinity }) and a waitForReady call wake when a member appears", async () => {
  await using server = serve({ seen }, { hostname: HOST });
  const membership = new StaticMembership([]);
  await using channel = new DistributedChannel({ membership });
  const ready = channel.ready({ timeout: Infinity });
  const call = channel.call("seen", [], {
    timeout: Infinity,
    waitForReady: true,
  }) as Promise<Seen>;
  await afterOverflow(); // past where an overflowed (1 ms) timer would fire
  membership.set([{ host: HOST, port: server.addr.port }]);
  await within(ready, 5000, "ready() to resolve");
  assert.deepEqual(await within(call, 5000, "the call's answer"), {
    aborted: false,
    left: null,
  });
});
