/**
 * One `ChannelCall` per call: its attempts are numbered across its hedges
 * (what interceptors see as `attempt`), its hedges share one tried set (each
 * goes to another endpoint), and a first attempt that fails before it was
 * sent continues in the same call on another endpoint.
 */
import assert from "node:assert/strict";
import {
  DistributedChannel,
  serve,
  StaticMembership,
  withContext,
} from "../../mod.ts";
import type { ClientCall } from "../../extend.ts";
import { callDeadline, cancelled } from "../../src/channel/call.ts";
import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  NoServersError,
  RemoteError,
  ServerClosingError,
} from "../../src/errors.ts";
import { startFakeMember } from "../_fake_member.ts";
import { closedPort } from "../_core_helpers.ts";
import { stillPending, waitFor, within } from "../_wait.ts";

const HOST = "127.0.0.1";

Deno.test("a hedged call numbers its attempts across hedges and sends each to another endpoint", async () => {
  // One endpoint never answers (until cancelled); the other answers.
  await using hung = serve({
    who: withContext((ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
          once: true,
        })
      )
    ),
  }, { hostname: HOST, port: 0 });
  await using live = serve({ who: () => "live" }, { hostname: HOST, port: 0 });
  const seen: ClientCall[] = [];
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: hung.addr.port },
      { host: HOST, port: live.addr.port },
    ]),
    // The first attempt always goes to the hung endpoint: only the hedge
    // can answer.
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => c.key === `${HOST}:${hung.addr.port}`),
    },
    hedging: { delay: 0, maxHedges: 1 },
    interceptors: [(call, next) => {
      seen.push({ ...call });
      return next();
    }],
    timeout: 30_000,
  });
  for (let i = 0; i < 4; i++) {
    seen.length = 0;
    assert.equal(
      await within(
        channel.call("who", [], { idempotent: true }),
        10_000,
        "a hedged call",
      ),
      "live",
    );
    // Interceptors see what is left of the call's 30 s.
    for (const call of seen) {
      assert.ok(
        call.timeout > 20_000 && call.timeout <= 30_000,
        `${call.timeout}`,
      );
    }
    // The hedge is attempt 2, on the other endpoint.
    assert.deepEqual(seen.map((call) => [call.attempt, call.target]), [
      [1, `${HOST}:${hung.addr.port}`],
      [2, `${HOST}:${live.addr.port}`],
    ]);
  }
});

Deno.test("a first attempt refused before it was sent continues in the same call on the next endpoint", async () => {
  await using live = serve({ who: () => "live" }, { hostname: HOST, port: 0 });
  const seen: ClientCall[] = [];
  const refused = closedPort();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: refused },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: "round-robin",
    interceptors: [(call, next) => {
      seen.push({ ...call });
      return next();
    }],
    maxAttempts: 1, // a refused connect does not count
  });
  for (let i = 0; i < 4; i++) {
    assert.equal(
      await within(channel.call("who", []), 10_000, "a call"),
      "live",
    );
  }
  // Only the live endpoint was ever sent to.
  assert.deepEqual(
    [...new Set(seen.map((call) => call.target))],
    [`${HOST}:${live.addr.port}`],
  );
});

Deno.test("callDeadline(): the call's timeout, else the channel's, within the parent's; a passed one is refused with its reason", () => {
  const before = Date.now();
  const own = callDeadline("m", { timeout: 500, parent: null }, 1000);
  const channels = callDeadline("m", { parent: null }, 1000);
  const after = Date.now();
  assert.ok(
    typeof own === "number" && own >= before + 500 && own <= after + 500,
  );
  assert.ok(
    typeof channels === "number" && channels >= before + 1000 &&
      channels <= after + 1000,
  );
  assert.equal(
    callDeadline("m", { timeout: Infinity, parent: null }, 1),
    Infinity,
  );
  const capped = callDeadline("m", {
    timeout: 60_000,
    parent: { deadline: before + 5000 },
  }, 1000);
  assert.equal(capped, before + 5000);
  const zero = callDeadline("m", { timeout: 0 }, 1000);
  assert.ok(zero instanceof DeadlineExceededError);
  assert.equal(
    zero.message,
    'Cannot call method "m": deadline of 0 ms exceeded (request not sent)',
  );
  const passed = callDeadline("m", { parent: { deadline: before - 1 } }, 1000);
  assert.ok(passed instanceof DeadlineExceededError);
  assert.equal(
    passed.message,
    `Cannot call method "m": the calling handler's deadline has passed`,
  );
  // Due exactly now: refused too (nothing is left to send with).
  const now = callDeadline("m", { parent: { deadline: Date.now() } }, 1000);
  assert.ok(now instanceof DeadlineExceededError);
});

Deno.test("cancelled(): a CancelledError naming what was cancelled, with the signal's reason as its cause", () => {
  const controller = new AbortController();
  const reason = new Error("user gave up");
  controller.abort(reason);
  const error = cancelled('call method "m"', controller.signal);
  assert.ok(error instanceof CancelledError);
  assert.equal(error.message, 'Cannot call method "m": cancelled');
  assert.equal(error.cause, reason);
});

Deno.test("a call whose attempts all fail before running says how many failed and why, and names the members", async () => {
  const dead = [closedPort(), closedPort()];
  for (
    const [maxAttempts, ports, expected] of [
      [1, dead.slice(0, 1), "1 attempt failed"],
      [3, dead, "3 attempts failed"],
      [2, dead, "2 attempts failed"],
    ] as const
  ) {
    await using channel = new DistributedChannel({
      membership: new StaticMembership(
        ports.map((port) => ({ host: HOST, port })),
      ),
      service: "calc",
      maxAttempts,
      outlierDetection: { consecutiveFailures: 100 },
    });
    const error = await within(
      channel.call("who", []).catch((e) => e),
      10_000,
      "the failing call",
    );
    assert.ok(error instanceof NoServersError, String(error));
    assert.equal(error.service, "calc");
    assert.ok(error.cause instanceof ConnectionError, String(error.cause));
    assert.match(error.cause.message, /refused/i);
    assert.equal(
      error.message,
      `Cannot call method "who": no live servers for service "calc": all ${ports.length} ${
        ports.length === 1 ? "member" : "members"
      } failing: ${expected}, the last with: ${error.cause.message}`,
    );
  }
});

Deno.test("a call stopped by the retry budget says so", async () => {
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: closedPort() }]),
    service: "calc",
    retryBudget: { maxTokens: 1 },
    outlierDetection: { consecutiveFailures: 100 },
  });
  const error = await within(
    channel.call("who", []).catch((e) => e),
    10_000,
    "the failing call",
  );
  assert.ok(error instanceof NoServersError, String(error));
  assert.match(
    error.message,
    /: 1 attempt failed \(retry budget exhausted\), the last with: /,
  );
});

Deno.test("hedging follows the channel's hedged methods unless the call says otherwise, and only for idempotent calls", async () => {
  let hungRuns = 0;
  const hangs = withContext((ctx) =>
    new Promise((_, reject) => {
      hungRuns++;
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
        once: true,
      });
    })
  );
  await using hung = serve({ who: hangs, other: hangs }, {
    hostname: HOST,
    port: 0,
  });
  await using live = serve({ who: () => "live", other: () => "live" }, {
    hostname: HOST,
    port: 0,
  });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: hung.addr.port },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => c.key === `${HOST}:${hung.addr.port}`) ??
          candidates[0],
    },
    hedging: { delay: 0, methods: ["who"] },
    maxAttempts: 1,
  });
  const cases: [string, Record<string, boolean>, boolean][] = [
    ["who", { idempotent: true }, true],
    ["other", { idempotent: true }, false],
    ["other", { idempotent: true, hedge: true }, true],
    ["who", { idempotent: true, hedge: false }, false],
    ["who", {}, false],
  ];
  for (const [method, options, hedged] of cases) {
    const what = `${method} ${JSON.stringify(options)}`;
    const result = await within(
      channel.call(method, [], { ...options, timeout: 150 }).catch((e) => e),
      10_000,
      what,
    );
    if (hedged) assert.equal(result, "live", what);
    else {assert.ok(
        result instanceof DeadlineExceededError,
        `${what}: ${result}`,
      );}
  }
  assert.equal(
    hungRuns,
    cases.length,
    "every call went to the hung server first",
  );
});

Deno.test("a call whose signal is already aborted ends CancelledError and sends nothing", async () => {
  let runs = 0;
  await using s = serve({ who: () => ++runs }, { hostname: HOST, port: 0 });
  for (const hedging of [undefined, { delay: 0 }]) {
    await using channel = new DistributedChannel({
      membership: new StaticMembership([{ host: HOST, port: s.addr.port }]),
      idempotent: ["who"],
      ...(hedging ? { hedging } : {}),
    });
    assert.equal(
      await within(channel.call("who", []), 10_000, "a warm-up"),
      runs,
    );
    const before = runs;
    const controller = new AbortController();
    const reason = new Error("gave up");
    controller.abort(reason);
    const error = await within(
      channel.call("who", [], { signal: controller.signal }).catch((e) => e),
      10_000,
      "the aborted call",
    );
    assert.ok(error instanceof CancelledError, String(error));
    assert.equal(error.message, 'Cannot call method "who": cancelled');
    assert.equal(error.cause, reason);
    assert.equal(runs, before, "nothing was sent");
  }
});

Deno.test("a connect that does not finish is bounded by the call's deadline, and by half of it while another endpoint is untried", async () => {
  using first = Deno.listen({ hostname: HOST, port: 0 });
  using second = Deno.listen({ hostname: HOST, port: 0 });
  const keys = [first, second].map((l) => `${HOST}:${l.addr.port}`);
  // One silent endpoint: the whole deadline, then DeadlineExceededError.
  await using alone = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: first.addr.port }]),
    connection: { connectTimeout: 30_000 },
  });
  const error = await within(
    alone.call("who", [], { timeout: 60 }).catch((e) => e),
    10_000,
    "the call to end at its deadline",
  );
  assert.ok(error instanceof DeadlineExceededError, String(error));
  assert.equal(
    error.message,
    `Cannot call method "who": deadline exceeded while connecting to ${
      keys[0]
    }`,
  );
  // Two: half the time on the first, then the rest on the second.
  await using both = new DistributedChannel({
    membership: new StaticMembership(
      [first, second].map((l) => ({ host: HOST, port: l.addr.port })),
    ),
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => c.key === keys[0]) ?? candidates[0],
    },
    connection: { connectTimeout: 30_000 },
  });
  const moved = await within(
    both.call("who", [], { timeout: 200 }).catch((e) => e),
    10_000,
    "the call to end at its deadline",
  );
  assert.ok(moved instanceof DeadlineExceededError, String(moved));
  assert.equal(
    moved.message,
    `Cannot call method "who": deadline exceeded while connecting to ${
      keys[1]
    }`,
  );
});

Deno.test("a call cancelled while connecting ends CancelledError at once, with the reason", async () => {
  using silent = Deno.listen({ hostname: HOST, port: 0 });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: silent.addr.port }]),
    connection: { connectTimeout: 30_000 },
  });
  const controller = new AbortController();
  const call = channel.call("who", [], {
    timeout: 60_000,
    signal: controller.signal,
  }).catch((e) => e);
  assert.ok(await stillPending(call), "the call is connecting");
  const reason = new Error("gave up");
  controller.abort(reason);
  const error = await within(call, 10_000, "the cancelled call");
  assert.ok(error instanceof CancelledError, String(error));
  assert.equal(error.message, 'Cannot call method "who": cancelled');
  assert.equal(error.cause, reason);
});

Deno.test("every attempt ends on its endpoint: answers counted, nothing left in flight, refused connects counted as failures", async () => {
  await using live = serve({ who: () => "live" }, { hostname: HOST, port: 0 });
  const dead = closedPort();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: dead },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: "round-robin",
    outlierDetection: { consecutiveFailures: 100 },
  });
  for (let i = 0; i < 4; i++) {
    assert.equal(
      await within(channel.call("who", []), 10_000, "a call"),
      "live",
    );
  }
  const byKey = new Map(channel.endpoints().map((e) => [e.key, e]));
  const answered = byKey.get(`${HOST}:${live.addr.port}`)!;
  const refused = byKey.get(`${HOST}:${dead}`)!;
  assert.equal(answered.calls, 4);
  assert.equal(answered.inFlight, 0);
  assert.equal(answered.failures, 0);
  assert.equal(refused.calls, 0);
  assert.equal(refused.inFlight, 0);
  assert.ok(refused.failures >= 1, `${refused.failures} failures`);
});

Deno.test("a hedged call ends with the first server answer, even an error, and never hedges to an endpoint it already tried", async () => {
  let hungRuns = 0;
  await using hung = serve({
    who: withContext((ctx) =>
      new Promise((_, reject) => {
        hungRuns++;
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
          once: true,
        });
      })
    ),
  }, { hostname: HOST, port: 0 });
  await using failing = serve({
    who: () => {
      throw new RangeError("no");
    },
  }, { hostname: HOST, port: 0 });
  const failingKey = `${HOST}:${failing.addr.port}`;
  // The failing server first, the hung one as the hedge.
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: failing.addr.port },
      { host: HOST, port: hung.addr.port },
    ]),
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => c.key === failingKey) ?? candidates[0],
    },
    idempotent: ["who"],
    hedging: { delay: 0, maxHedges: 2 },
    timeout: 60_000,
  });
  const answered = await within(
    channel.call("who", []).catch((e) => e),
    10_000,
    "the server's error to end the call",
  );
  assert.ok(answered instanceof RemoteError, String(answered));
  assert.equal(answered.remoteName, "RangeError");
  // One hung endpoint alone: one attempt, no hedge to the same endpoint.
  hungRuns = 0;
  await using alone = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: hung.addr.port }]),
    idempotent: ["who"],
    hedging: { delay: 0, maxHedges: 2 },
  });
  const error = await within(
    alone.call("who", [], { timeout: 100 }).catch((e) => e),
    10_000,
    "the call's deadline",
  );
  assert.ok(error instanceof DeadlineExceededError, String(error));
  assert.equal(hungRuns, 1);
});

Deno.test("an idempotent call that may have run on every attempt ends with the last server's error, not NoServersError", async () => {
  await using fake = startFakeMember("run-then-closing");
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: fake.port }]),
    idempotent: ["x"],
    maxAttempts: 2,
  });
  const error = await within(
    channel.call("x", []).catch((e) => e),
    10_000,
    "the call",
  );
  assert.ok(error instanceof ServerClosingError, String(error));
  assert.deepEqual(fake.ran, ["x", "x"], "two attempts, both ran");
});

Deno.test("a call with only metadata, or through interceptors, sends the caller's metadata and params as given", async () => {
  await using s = serve({
    seen: withContext((ctx, ...params: unknown[]) => ({
      metadata: { ...ctx.metadata },
      params,
    })),
    async *items(n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
  }, { hostname: HOST, port: 0 });
  for (const intercepted of [false, true]) {
    await using channel = new DistributedChannel({
      membership: new StaticMembership([{ host: HOST, port: s.addr.port }]),
      ...(intercepted ? { interceptors: [(_call, next) => next()] } : {}),
    });
    const what = intercepted ? "intercepted" : "plain";
    await within(channel.call("seen", []), 10_000, "a warm-up");
    const seen = await within(
      channel.call("seen", [1, "a"], { metadata: { tenant: "acme" } }),
      10_000,
      "a call with metadata",
    );
    assert.deepEqual(seen, {
      metadata: { tenant: "acme" },
      params: [1, "a"],
    }, what);
    // A stream through the same path.
    const items: unknown[] = [];
    await within(
      (async () => {
        for await (const item of channel.stream("items", [2])) items.push(item);
      })(),
      10_000,
      "a stream",
    );
    assert.deepEqual(items, [0, 1], what);
    // Params that are not an array: the connection's own TypeError.
    await assert.rejects(
      channel.call("seen", "x" as unknown as unknown[]),
      {
        name: "TypeError",
        message: 'Cannot call method "seen": params must be an array',
      },
      what,
    );
  }
});

Deno.test("a call that finds its only endpoint draining waits until its deadline and names the last error", async () => {
  await using fake = startFakeMember("goaway-then-closing");
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: fake.port }]),
    service: "calc",
  });
  const error = await within(
    channel.call("x", [], { timeout: 100 }).catch((e) => e),
    10_000,
    "the call's deadline",
  );
  assert.ok(error instanceof NoServersError, String(error));
  assert.ok(error.cause instanceof ServerClosingError, String(error.cause));
  assert.equal(
    error.message,
    `Cannot call method "x": no live servers for service "calc": all 1 member failing (last error: ${error.cause.message})`,
  );
});

Deno.test("a hedged call whose first chain may have run waits for its hedge's answer", async () => {
  await using fake = startFakeMember("run-then-closing");
  const release = Promise.withResolvers<void>();
  let liveStarted = false;
  await using live = serve({
    async x(): Promise<string> {
      liveStarted = true;
      await release.promise;
      return "live";
    },
  }, { hostname: HOST, port: 0 });
  const fakeKey = `${HOST}:${fake.port}`;
  const ended: string[] = [];
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: fake.port },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => c.key === fakeKey) ?? candidates[0],
    },
    interceptors: [async (call, next) => {
      // The first chain is sent once the hedge runs on the live server.
      if (call.target === fakeKey) {
        await waitFor(() => liveStarted, "the hedge to run");
      }
      try {
        return await next();
      } finally {
        ended.push(call.target);
      }
    }],
    idempotent: ["x"],
    maxAttempts: 1,
    hedging: { delay: 0 },
    timeout: 60_000,
  });
  const call = channel.call("x", []).catch((e) => e);
  // The first chain ran on the fake and failed: may have run, no retry left.
  await waitFor(
    () => ended.includes(fakeKey),
    "the first chain to fail",
  );
  assert.ok(await stillPending(call), "the call waits for the hedge");
  release.resolve();
  assert.equal(await within(call, 10_000, "the hedged call"), "live");
});

Deno.test("refused connects try every endpoint before attempts are counted", async () => {
  const ports = [closedPort(), closedPort(), closedPort()];
  await using channel = new DistributedChannel({
    membership: new StaticMembership(
      ports.map((port) => ({ host: HOST, port })),
    ),
    maxAttempts: 2,
    outlierDetection: { consecutiveFailures: 100 },
  });
  const error = await within(
    channel.call("who", []).catch((e) => e),
    10_000,
    "the failing call",
  );
  assert.ok(error instanceof NoServersError, String(error));
  assert.match(error.message, /: 2 attempts failed, /);
  for (const endpoint of channel.endpoints()) {
    assert.ok(endpoint.failures > 0, `${endpoint.key} was never tried`);
  }
});

Deno.test("a connect cut at half the time left did not run: a non-idempotent call moves to the next endpoint", async () => {
  using silent = Deno.listen({ hostname: HOST, port: 0 });
  await using live = serve({ who: () => "live" }, { hostname: HOST, port: 0 });
  const silentKey = `${HOST}:${silent.addr.port}`;
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: silent.addr.port },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => c.key === silentKey) ?? candidates[0],
    },
    connection: { connectTimeout: 30_000 },
  });
  assert.equal(
    await within(
      channel.call("who", [], { timeout: 400 }).catch((e) => e),
      10_000,
      "the call",
    ),
    "live",
  );
});
