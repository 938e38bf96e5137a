/**
 * The trust model for "did not run" (docs/security.md): a member's
 * `ServerClosingError` answer is honoured as "not run" only when its
 * connection received `goaway` before it (or the request was never written).
 * A hostile member that runs a call and then claims it did not cannot make a
 * non-idempotent call run twice; a real draining server still has its
 * refused calls retried elsewhere.
 */
import assert from "node:assert/strict";
import {
  DistributedChannel,
  type DistributedChannelOptions,
  StaticMembership,
  withContext,
} from "../mod.ts";
import { Connection } from "../src/client/connection.ts";
import { DeadlineExceededError, ServerClosingError } from "../src/errors.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import { startFakeMember } from "./_fake_member.ts";
import { waitFor, within } from "./_wait.ts";

const HOST = "127.0.0.1";

/** A real server whose `charge` counts how often it ran. */
function chargingServer(): { server: RpcServer; runs: () => number } {
  let runs = 0;
  const server = serve({
    charge(): string {
      runs++;
      return "charged";
    },
  }, { hostname: HOST, port: 0 });
  return { server, runs: () => runs };
}

/** A round-robin channel over a fake member (listed first) and a server. */
function channelBeside(
  memberPort: number,
  server: RpcServer,
  options: Partial<DistributedChannelOptions> = {},
): DistributedChannel {
  return new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: memberPort },
      { host: HOST, port: server.addr.port },
    ]),
    balancer: "round-robin",
    timeout: 5000,
    ...options,
  });
}

Deno.test("a member that answers ServerClosingError after running a call cannot make a non-idempotent call run twice", async () => {
  await using hostile = startFakeMember("run-then-closing");
  const real = chargingServer();
  await using channel = channelBeside(hostile.port, real.server);
  const outcomes: unknown[] = [];
  for (let i = 0; i < 10; i++) {
    outcomes.push(
      await within(
        channel.call("charge", []).catch((error) => error),
        10_000,
        "a charge call",
      ),
    );
  }
  await channel.close();
  await real.server.close();
  const failed = outcomes.filter((o) => o instanceof ServerClosingError);
  // Every call ran exactly once, on one member or the other.
  assert.ok(hostile.ran.length > 0, "the hostile member got calls");
  assert.equal(hostile.ran.length + real.runs(), 10);
  assert.equal(failed.length, hostile.ran.length);
  for (const error of failed) {
    assert.equal((error as ServerClosingError).notRun, false);
  }
});

Deno.test("an idempotent call is still retried after a member's untrusted ServerClosingError", async () => {
  await using hostile = startFakeMember("run-then-closing");
  const real = chargingServer();
  await using channel = channelBeside(hostile.port, real.server, {
    idempotent: ["charge"],
  });
  const results: unknown[] = [];
  for (let i = 0; i < 6; i++) {
    results.push(await within(channel.call("charge", []), 10_000, "a call"));
  }
  await channel.close();
  await real.server.close();
  assert.deepEqual(results, Array(6).fill("charged"));
  assert.ok(hostile.ran.length > 0, "the hostile member got calls");
  assert.equal(real.runs(), 6);
});

Deno.test("a refusal after the member's goaway counts as not run: a non-idempotent call moves to another member", async () => {
  await using draining = startFakeMember("goaway-then-closing");
  const real = chargingServer();
  await using channel = channelBeside(draining.port, real.server, {
    maxAttempts: 1,
  });
  const results: unknown[] = [];
  for (let i = 0; i < 4; i++) {
    results.push(await within(channel.call("charge", []), 10_000, "a call"));
  }
  await channel.close();
  await real.server.close();
  assert.deepEqual(results, Array(4).fill("charged"));
  assert.ok(draining.received.length > 0, "the draining member got a call");
  assert.equal(real.runs(), 4);
});

Deno.test("a real server's refusal while it drains reaches the caller as not run", async () => {
  const release = Promise.withResolvers<void>();
  let ran = 0;
  let slowStarted = false;
  const server = serve({
    async slow(): Promise<string> {
      slowStarted = true;
      await release.promise;
      return "slow";
    },
    charge(): string {
      ran++;
      return "charged";
    },
  }, { hostname: HOST, port: 0 });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const slow = conn.call("slow", [], { timeout: 10_000 });
  await waitFor(() => slowStarted, "the slow call to run");
  const closing = server.close({ timeout: 10_000 });
  // Written before or after the client saw the goaway: either way the
  // server did not run it, and the client knows.
  const refused = await within(
    conn.call("charge", [], { timeout: 5000 }).catch((error) => error),
    10_000,
    "the refused call",
  );
  release.resolve();
  assert.equal(await within(slow, 10_000, "the slow call"), "slow");
  await within(closing, 10_000, "the server to close");
  assert.ok(refused instanceof ServerClosingError, String(refused));
  assert.equal(refused.notRun, true);
  assert.equal(ran, 0);
});

Deno.test("a real draining server's refused calls are retried on another member and run once", async () => {
  const release = Promise.withResolvers<void>();
  let slowStarted = false;
  let drainingRuns = 0;
  const draining = serve({
    async slow(): Promise<string> {
      slowStarted = true;
      await release.promise;
      return "slow";
    },
    charge(): string {
      drainingRuns++;
      return "charged";
    },
  }, { hostname: HOST, port: 0 });
  const real = chargingServer();
  await using channel = channelBeside(draining.addr.port, real.server, {
    maxAttempts: 1,
    timeout: 10_000,
  });
  // Open both connections first, so that calls race the goaway.
  await within(
    Promise.all([channel.call("charge", []), channel.call("charge", [])]),
    10_000,
    "the first calls",
  );
  const slow = channel.call("slow", [], { hedge: false });
  await waitFor(() => slowStarted, "the slow call to run");
  const closing = draining.close({ timeout: 10_000 });
  const results = await within(
    Promise.all(Array.from({ length: 20 }, () => channel.call("charge", []))),
    10_000,
    "the calls made while the server drains",
  );
  release.resolve();
  await within(slow, 10_000, "the slow call");
  await within(closing, 10_000, "the draining server to close");
  await channel.close();
  await real.server.close();
  assert.deepEqual(results, Array(20).fill("charged"));
  assert.equal(drainingRuns + real.runs(), 22);
});

Deno.test("a local TypeError or RangeError before sending does not count as the endpoint's answer", async () => {
  let hang = true;
  const server = serve({
    slow: withContext((ctx) =>
      new Promise<string>((resolve, reject) => {
        if (!hang) return resolve("fast");
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
          once: true,
        });
      })
    ),
  }, { hostname: HOST, port: 0 });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: server.addr.port },
    ]),
    outlierDetection: { consecutiveFailures: 100, failureRate: 1 },
    timeout: 5000,
  });
  const failures = () => channel.endpoints()[0]!.failures;
  for (let i = 0; i < 2; i++) {
    const missed = await within(
      channel.call("slow", [], { timeout: 50 }).catch((e) => e),
      10_000,
      "a deadline miss",
    );
    assert.ok(missed instanceof DeadlineExceededError, String(missed));
  }
  assert.equal(failures(), 2);
  const local = [
    await channel.call("slow", [() => 1]).catch((e) => e), // cannot encode
    await channel.call("x".repeat(300), []).catch((e) => e), // name too long
    await channel.call("slow", [], { metadata: { "Bad Key": "v" } }).catch((
      e,
    ) => e),
  ];
  const after = failures();
  hang = false;
  const answered = await within(channel.call("slow", []), 10_000, "a call");
  const reset = failures();
  await channel.close();
  await server.close();
  assert.ok(local[0] instanceof TypeError, String(local[0]));
  assert.ok(local[1] instanceof RangeError, String(local[1]));
  assert.ok(local[2] instanceof Error, String(local[2]));
  assert.equal(after, 2, "local errors left the failure count alone");
  assert.equal(answered, "fast");
  assert.equal(reset, 0, "an answer resets it");
});
