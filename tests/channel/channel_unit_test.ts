/**
 * The channel's wiring (`src/channel/channel.ts`) against in-process servers
 * and scripted members on 127.0.0.1 with a static membership (no ZooKeeper,
 * no process): its options and their defaults (timeout, idempotent methods,
 * waitForReady, balancer, connectTimeout), its checks, the membership's
 * events forwarded, members skipped and forgotten, breakage and goaway
 * reaching the endpoint's state, errors carrying the caller's stack, and
 * close(): idempotent, failing calls and waits, owning only the membership
 * it made.
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../../src/channel/channel.ts";
import { StaticMembership } from "../../src/discovery/static.ts";
import type { Discovery } from "../../src/discovery/discovery.ts";
import type { MembershipChange } from "../../src/discovery/membership.ts";
import { serve } from "../../src/server/server.ts";
import { withContext } from "../../src/server/call_context.ts";
import {
  ConnectionError,
  DeadlineExceededError,
  NoServersError,
  ServerClosingError,
} from "../../src/errors.ts";
import type { BalancerCandidate } from "../../src/channel/balancer.ts";
import { closedPort, deadlineSeen } from "../_core_helpers.ts";
import { startFakeMember } from "../_fake_member.ts";
import { nextEvent, stillPending, waitFor, within } from "../_wait.ts";

const HOST = "127.0.0.1";

/** A server whose `deadline` answers the deadline it saw and `who` its port. */
function server() {
  const s = serve({
    deadline: withContext((ctx) => deadlineSeen(ctx)),
    who: () => s.addr.port,
  }, { hostname: HOST, port: 0 });
  return s;
}

function at(port: number) {
  return { host: HOST, port };
}

Deno.test("channel: service, membership, state and lastConfirmed come from the options and the membership", async () => {
  const membership = new StaticMembership([]);
  await using named = new DistributedChannel({ membership, service: "calc" });
  assert.equal(named.service, "calc");
  assert.equal(named.membership, membership);
  assert.equal(named.state, "fresh");
  assert.equal(named.lastConfirmed, membership.lastConfirmed);
  await using plain = new DistributedChannel({ membership });
  assert.equal(plain.service, "static");
  await membership.close();
  assert.equal(named.state, "closed");
});

Deno.test("channel: an invalid channel timeout is refused when it is created; a call's invalid timeout is refused unsent", async () => {
  assert.throws(
    () =>
      new DistributedChannel({
        membership: new StaticMembership([]),
        timeout: -1,
      }),
    {
      name: "RangeError",
      message:
        "Cannot create channel: timeout must be a number of ms >= 0 or Infinity, got -1",
    },
  );
  await using s = server();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(s.addr.port)]),
  });
  const refusal =
    `Cannot call method "who": timeout must be a number of ms >= 0 or Infinity, got NaN`;
  await assert.rejects(channel.call("who", [], { timeout: NaN }), {
    name: "RangeError",
    message: refusal,
  });
  await assert.rejects(
    channel.call("who", [], { timeout: 0 }),
    DeadlineExceededError,
  );
  assert.equal(s.connections, 0, "nothing was sent");
});

Deno.test("channel: calls get the channel's timeout (10 s by default) unless they give their own", async () => {
  await using s = server();
  for (
    const [timeout, call, expected] of [
      [undefined, undefined, 10_000],
      [3000, undefined, 3000],
      [3000, 60_000, 60_000],
    ] as const
  ) {
    await using channel = new DistributedChannel({
      membership: new StaticMembership([at(s.addr.port)]),
      ...(timeout === undefined ? {} : { timeout }),
    });
    // Warm: the call below takes the ready connection's path.
    await within(channel.call("who", []), 10_000, "a warm-up");
    const before = Date.now();
    const seen = await within(
      channel.call("deadline", [], call === undefined ? {} : { timeout: call }),
      10_000,
      "a call",
    ) as number;
    const after = Date.now();
    // The server's deadline is the call's, give or take the call's length.
    assert.ok(
      seen >= before + expected - 5 && seen <= after + expected + 5, // clock-ok: a window around a deadline of seconds, not a duration measured
      `${timeout}/${call}: ${seen - before}`,
    );
  }
});

Deno.test("channel: a call that may have run is retried on another member only for the channel's idempotent methods, or when the call says so", async () => {
  for (
    const [idempotent, call, retried] of [
      [[], undefined, false],
      [["x"], undefined, true],
      [["x"], false, false],
      [[], true, true],
      [["y"], undefined, false],
    ] as const
  ) {
    await using fake = startFakeMember("run-then-closing");
    await using s = serve({ x: () => "ran" }, { hostname: HOST, port: 0 });
    await using channel = new DistributedChannel({
      membership: new StaticMembership([at(fake.port), at(s.addr.port)]),
      balancer: "round-robin",
      idempotent: idempotent,
      maxAttempts: 2,
    });
    const result = await within(
      channel.call("x", [], call === undefined ? {} : { idempotent: call })
        .catch((e) => e),
      10_000,
      "a call",
    );
    const what = `${idempotent}/${call}`;
    assert.deepEqual(fake.ran, ["x"], what);
    if (retried) assert.equal(result, "ran", what);
    else assert.ok(result instanceof ServerClosingError, `${what}: ${result}`);
  }
});

Deno.test("channel: waitForReady is off by default, on for the channel, and a call can choose either way", async () => {
  for (
    const [channelWaits, perCall, waits] of [
      [undefined, undefined, false],
      [true, undefined, true],
      [true, false, false],
      [undefined, true, true],
    ] as const
  ) {
    await using channel = new DistributedChannel({
      membership: new StaticMembership([]),
      ...(channelWaits === undefined ? {} : { waitForReady: channelWaits }),
    });
    const call = channel.call("who", [], {
      timeout: 60_000,
      ...(perCall === undefined ? {} : { waitForReady: perCall }),
    }).catch((e) => e);
    const what = `${channelWaits}/${perCall}`;
    assert.equal(await stillPending(call), waits, what);
    await channel.close();
    const error = await within(call, 10_000, "the call to end");
    assert.ok(
      waits
        ? error instanceof ConnectionError
        : error instanceof NoServersError,
      `${what}: ${error}`,
    );
  }
});

Deno.test("channel: the balancer given picks; by name, round-robin alternates", async () => {
  await using a = server();
  await using b = server();
  const members = [at(a.addr.port), at(b.addr.port)];
  const seen: string[][] = [];
  await using custom = new DistributedChannel({
    membership: new StaticMembership(members),
    balancer: {
      pick: <T extends BalancerCandidate>(candidates: readonly T[]) => {
        seen.push(candidates.map((c) => c.key));
        return candidates.find((c) => c.key === `${HOST}:${b.addr.port}`);
      },
    },
  });
  for (let i = 0; i < 3; i++) {
    assert.equal(
      await within(custom.call("who", []), 10_000, "a call"),
      b.addr.port,
    );
  }
  assert.equal(seen.length, 3);
  await using robin = new DistributedChannel({
    membership: new StaticMembership(members),
    balancer: "round-robin",
  });
  const ports: unknown[] = [];
  for (let i = 0; i < 4; i++) {
    ports.push(await within(robin.call("who", []), 10_000, "a call"));
  }
  assert.equal(new Set(ports).size, 2);
  assert.notEqual(ports[0], ports[1]);
  assert.equal(ports[0], ports[2]);
});

Deno.test("channel: connection.connectTimeout bounds the connect to a silent member", async () => {
  using silent = Deno.listen({ hostname: HOST, port: 0 });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(silent.addr.port)]),
    connection: { connectTimeout: 30 },
    timeout: 60_000,
  });
  const error = await within(
    channel.call("who", []).catch((e) => e),
    10_000,
    "the call to fail after the connect timeout",
  );
  assert.ok(error instanceof NoServersError, String(error));
  assert.match(String(error.cause), /within 30 ms/);
});

Deno.test("channel: change and state events are forwarded until the channel closes", async () => {
  const membership = new StaticMembership([]);
  await using channel = new DistributedChannel({ membership });
  const changed = nextEvent(channel, "change", 5000);
  membership.set([at(1)]);
  const event = await changed as CustomEvent<MembershipChange>;
  assert.deepEqual([...event.detail.added.values()], [at(1)]);
  assert.deepEqual(channel.endpoints().map((e) => e.key), [`${HOST}:1`]);
  const state = nextEvent(channel, "state", 5000);
  membership.dispatchEvent(new Event("state"));
  assert.equal((await state).type, "state");
  await channel.close();
  let after = 0;
  channel.addEventListener("change", () => after++);
  channel.addEventListener("state", () => after++);
  membership.set([at(2)]);
  membership.dispatchEvent(new Event("state"));
  assert.equal(after, 0);
  assert.deepEqual(channel.endpoints(), []);
});

Deno.test("channel: a member the filter skips is named in the error; once it leaves, the service is empty", async () => {
  const membership = new StaticMembership([at(5)]);
  const warnings: string[] = [];
  await using channel = new DistributedChannel({
    membership,
    service: "calc",
    filter: () => false,
    onWarning: (message) => warnings.push(message),
  });
  assert.deepEqual(channel.endpoints(), []);
  await assert.rejects(
    channel.call("who", []),
    (error: unknown) =>
      error instanceof NoServersError &&
      error.message ===
        `Cannot call method "who": no usable servers for service "calc": all 1 member is skipped (${HOST}:5: excluded by the channel's filter)`,
  );
  membership.set([]);
  await assert.rejects(
    channel.call("who", []),
    /no servers for service "calc": it has no registered members/,
  );
  assert.deepEqual(warnings, [], "the filter's choice is not warned about");
});

Deno.test("channel: endpoints() lists members as they come and go; a left member's endpoint goes", async () => {
  await using s = server();
  const membership = new StaticMembership([at(s.addr.port)]);
  await using channel = new DistributedChannel({ membership });
  assert.deepEqual(channel.endpoints().map((e) => [e.key, e.state]), [
    [`${HOST}:${s.addr.port}`, "idle"],
  ]);
  await within(channel.call("who", []), 10_000, "a call");
  const [status] = channel.endpoints();
  assert.deepEqual([status!.state, status!.calls, status!.failures], [
    "ready",
    1,
    0,
  ]);
  membership.set([]);
  assert.deepEqual(channel.endpoints(), []);
  await waitFor(
    () => s.connections === 0,
    "the left member's connection to close",
  );
});

Deno.test("channel: a broken connection counts against its endpoint; a goaway drains it", async () => {
  const fake = startFakeMember("run-then-closing");
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(fake.port)]),
    outlierDetection: { consecutiveFailures: 100 },
  });
  await within(channel.call("x", []).catch(() => {}), 10_000, "a call");
  const failuresBefore = channel.endpoints()[0]!.failures;
  await fake.close();
  await waitFor(
    () => channel.endpoints()[0]!.failures > failuresBefore,
    "the breakage to be counted",
  );
  await using draining = startFakeMember("goaway-then-closing");
  await using other = new DistributedChannel({
    membership: new StaticMembership([at(draining.port)]),
    maxAttempts: 1,
  });
  await within(other.call("x", []).catch(() => {}), 10_000, "a call");
  await waitFor(
    () => other.endpoints()[0]!.state === "draining",
    "the endpoint to drain",
  );
});

Deno.test("channel: an error carries the stack of the code that awaited the call", async () => {
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(closedPort())]),
  });
  async function awaitingCaller() {
    return await channel.call("who", []);
  }
  const error = await within(
    awaitingCaller().catch((e) => e),
    10_000,
    "the failed call",
  ) as Error;
  assert.ok(error instanceof NoServersError, String(error));
  assert.match(error.stack ?? "", /awaitingCaller/);
  assert.match(error.stack ?? "", /^NoServersError: /);
});

Deno.test("channel: after close() calls and ready() fail with the closed error, waiting ones too; close() is idempotent", async () => {
  await using channel = new DistributedChannel({
    membership: new StaticMembership([]),
    service: "calc",
    waitForReady: true,
  });
  const waitingCall = channel.call("who", [], { timeout: 60_000 }).catch((e) =>
    e
  );
  const waitingReady = channel.ready({ timeout: 60_000 }).catch((e) => e);
  assert.ok(await stillPending(waitingCall));
  assert.ok(await stillPending(waitingReady));
  await channel.close();
  await channel.close();
  const closed = 'the channel for service "calc" is closed';
  const call = await within(waitingCall, 10_000, "the waiting call");
  assert.ok(call instanceof ConnectionError);
  assert.equal(call.message, `Cannot call method "who": ${closed}`);
  assert.equal(call.written, false);
  const ready = await within(waitingReady, 10_000, "the waiting ready()");
  assert.equal(ready.message, `Cannot wait for servers: ${closed}`);
  await assert.rejects(
    channel.call("who", []),
    (error: unknown) =>
      error instanceof ConnectionError &&
      error.message === `Cannot call method "who": ${closed}`,
  );
  await assert.rejects(
    channel.ready(),
    { message: `Cannot wait for servers: ${closed}` },
  );
});

Deno.test("channel: close() closes the connections and the membership it made, not one it was given", async () => {
  await using s = server();
  const given = new StaticMembership([at(s.addr.port)]);
  const channel = new DistributedChannel({ membership: given });
  await within(channel.call("who", []), 10_000, "a call");
  assert.equal(s.connections, 1);
  await channel.close();
  assert.equal(given.state, "fresh", "a given membership stays open");
  await waitFor(() => s.connections === 0, "the connection to close");

  const made = new StaticMembership([]);
  const discovery = {
    membership: () => made,
  } as unknown as Discovery;
  const owner = new DistributedChannel({ discovery, service: "calc" });
  assert.equal(owner.membership, made);
  await owner.close();
  assert.equal(made.state, "closed", "the channel's own membership is closed");
});

Deno.test("channel: ready() resolves once a member is known and fails when the service is empty", async () => {
  const membership = new StaticMembership([]);
  await using channel = new DistributedChannel({
    membership,
    service: "calc",
  });
  await assert.rejects(
    channel.ready({ timeout: 0 }),
    /no servers for service "calc"/,
  );
  const ready = channel.ready({ timeout: 60_000 });
  assert.ok(await stillPending(ready));
  membership.set([at(1)]);
  await within(ready, 10_000, "ready()");
});

Deno.test("channel: stub() calls through the channel with the stub's options", async () => {
  await using s = server();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(s.addr.port)]),
  });
  const remote = channel.stub<{ who(): number; deadline(): number }>({
    timeout: 60_000,
  });
  assert.equal(`${remote}`, "Stub<static>");
  assert.equal(await within(remote.who(), 10_000, "a stub call"), s.addr.port);
  const before = Date.now();
  const seen = await within(remote.deadline(), 10_000, "a stub call");
  assert.ok(seen >= before + 50_000, `the stub's timeout: ${seen - before}`); // clock-ok: a deadline a minute ahead, checked against 50 s
});

Deno.test("channel: await using swallows a failing close", async () => {
  const membership = new StaticMembership([]);
  const channel = new DistributedChannel({ membership });
  const failing = Object.create(channel, {
    close: { value: () => Promise.reject(new Error("close failed")) },
  }) as DistributedChannel;
  await within(
    failing[Symbol.asyncDispose](),
    5000,
    "the dispose",
  );
  await channel.close();
});

Deno.test("channel: stream() reads a streaming method's items through the channel", async () => {
  await using s = serve({
    async *count(n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
  }, { hostname: HOST, port: 0 });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(s.addr.port)]),
  });
  const items: unknown[] = [];
  await within(
    (async () => {
      for await (const item of channel.stream("count", [3])) items.push(item);
    })(),
    10_000,
    "the stream",
  );
  assert.deepEqual(items, [0, 1, 2]);
  const none: unknown[] = [];
  await within(
    (async () => {
      for await (const item of channel.stream("count")) none.push(item);
    })().catch((e) => e),
    10_000,
    "a stream without params",
  );
  assert.deepEqual(none, []);
});

Deno.test("channel: a failing endpoint is ejected, and a new registration at its address re-admits it", async () => {
  const port = closedPort();
  const membership = new StaticMembership([at(port)]);
  await using channel = new DistributedChannel({
    membership,
    outlierDetection: { consecutiveFailures: 1 },
    maxAttempts: 1,
  });
  await within(channel.call("who", []).catch(() => {}), 10_000, "a call");
  await waitFor(
    () => channel.endpoints()[0]?.state === "ejected",
    "the ejection",
  );
  // The server restarted: a new member id at the same address.
  membership.dispatchEvent(
    new CustomEvent("change", {
      detail: { added: new Map([["restarted", at(port)]]), removed: [] },
    }),
  );
  assert.equal(channel.endpoints()[0]?.state, "idle");
});

Deno.test("channel: the error classes given are revived from the server's errors", async () => {
  class OutOfStock extends Error {
    override name = "OutOfStock";
  }
  await using s = serve({
    buy: () => {
      throw new OutOfStock("none left");
    },
  }, { hostname: HOST, port: 0 });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(s.addr.port)]),
    errors: [OutOfStock],
  });
  const error = await within(
    channel.call("buy", []).catch((e) => e),
    10_000,
    "the call",
  );
  assert.ok(error instanceof OutOfStock, String(error));
  assert.equal(error.message, "none left");
});

Deno.test("channel: an unreachable registry fails a call after discoveryTimeout, not the call's timeout", async () => {
  class Unreachable extends StaticMembership {
    override get state() {
      return "connecting" as const;
    }
  }
  await using channel = new DistributedChannel({
    membership: new Unreachable([]),
    discoveryTimeout: 20,
    timeout: 60_000,
  });
  const error = await within(
    channel.call("who", []).catch((e) => e),
    // Far below the default discoveryTimeout (5 s): a lost option fails here.
    2500,
    "the call to give up after discoveryTimeout (20 ms), long before 60 s",
  );
  assert.ok(error instanceof NoServersError, String(error));
  assert.match(error.message, /the membership source unreachable/);
});

Deno.test("channel: a closed channel sends nothing to its known members", async () => {
  await using s = server();
  const channel = new DistributedChannel({
    membership: new StaticMembership([at(s.addr.port)]),
    service: "calc",
  });
  await channel.close();
  await assert.rejects(
    channel.call("who", []),
    (error: unknown) =>
      error instanceof ConnectionError && error.written === false &&
      error.message ===
        'Cannot call method "who": the channel for service "calc" is closed',
  );
  assert.equal(s.connections, 0);
});

Deno.test("channel: stream() without params sends none", async () => {
  await using s = serve({
    async *args(...params: unknown[]) {
      yield params.length;
    },
  }, { hostname: HOST, port: 0 });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(s.addr.port)]),
  });
  const items: unknown[] = [];
  await within(
    (async () => {
      for await (const item of channel.stream("args")) items.push(item);
    })(),
    10_000,
    "the stream",
  );
  assert.deepEqual(items, [0]);
});

Deno.test("channel: hedging by percentile learns the latency of answered calls", async () => {
  let hung = false;
  const hangs = withContext((ctx) =>
    new Promise((_, reject) =>
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
        once: true,
      })
    )
  );
  await using slow = serve({ who: hangs }, { hostname: HOST, port: 0 });
  await using fast = serve({ who: () => "fast" }, { hostname: HOST, port: 0 });
  const slowKey = `${HOST}:${slow.addr.port}`;
  await using channel = new DistributedChannel({
    membership: new StaticMembership([at(slow.addr.port), at(fast.addr.port)]),
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => (c.key === slowKey) === hung) ?? candidates[0],
    },
    idempotent: ["who"],
    hedging: { delay: { percentile: 50 } },
  });
  // 32 answers from the fast server: the median is a few ms.
  for (let i = 0; i < 32; i++) {
    assert.equal(
      await within(channel.call("who", []), 10_000, "a call"),
      "fast",
    );
  }
  hung = true;
  // Before 16 answers the hedge waits 100 ms: past this call's deadline.
  const result = await within(
    channel.call("who", [], { timeout: 95 }).catch((e) => e),
    10_000,
    "the hedged call",
  );
  assert.equal(result, "fast");
});
