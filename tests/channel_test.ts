/**
 * DistributedChannel over real sockets with a static membership: balancing by
 * observed distribution, failover, retries and their limits. ZooKeeper-driven
 * behaviour is in discovery_test.ts.
 */
import assert from "node:assert/strict";
import { DistributedChannel, type DistributedChannelOptions } from "../mod.ts";
import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  MethodNotFoundError,
  NoServersError,
  RemoteError,
} from "../src/errors.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import type { BalancerCandidate } from "../src/channel/balancer.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import { closedPort, delay, startChildServer } from "./_core_helpers.ts";
import { stillPending, waitFor, within } from "./_wait.ts";
import { zooKeeperChannel } from "../zookeeper.ts";

const HOST = "127.0.0.1";

/** Servers whose `whoami` answers their port after `delays[i]` ms. */
function startServers(delays: number[]): RpcServer[] {
  return delays.map((ms) => {
    const server: RpcServer = serve({
      async whoami(): Promise<number> {
        if (ms > 0) await delay(ms); // sleep-ok: handler work (a slow server)
        return server.addr.port;
      },
      fail(): never {
        throw new RangeError("no");
      },
    }, { hostname: HOST, port: 0 });
    return server;
  });
}

function membershipOf(servers: RpcServer[]): StaticMembership {
  return new StaticMembership(
    servers.map((server) => ({ host: HOST, port: server.addr.port })),
  );
}

async function closeAll(servers: RpcServer[]): Promise<void> {
  await Promise.all(servers.map((server) => server.close()));
}

/** Makes `total` calls, `concurrency` at a time; counts answers per port. */
async function countCalls(
  channel: DistributedChannel,
  total: number,
  concurrency: number,
): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        const port = await channel.call("whoami", []) as number;
        counts.set(port, (counts.get(port) ?? 0) + 1);
      }
    }),
  );
  return counts;
}

/** Round-robin over a dead port and a live server, the dead one first. */
function deadAndLive(
  port: number,
  live: RpcServer,
  options: Partial<DistributedChannelOptions> = {},
): DistributedChannel {
  return new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: "round-robin",
    ...options,
  });
}

Deno.test("the random balancer spreads calls over every endpoint", async () => {
  const servers = startServers([0, 0, 0]);
  await using channel = new DistributedChannel({
    membership: membershipOf(servers),
  });
  const counts = await countCalls(channel, 300, 1);
  await channel.close();
  await closeAll(servers);
  assert.equal(counts.size, 3);
  for (const count of counts.values()) assert.ok(count > 50, `${count}`);
});

Deno.test("the round-robin balancer gives every endpoint the same share", async () => {
  const servers = startServers([0, 0, 0]);
  await using channel = new DistributedChannel({
    membership: membershipOf(servers),
    balancer: "round-robin",
  });
  const counts = await countCalls(channel, 300, 1);
  await channel.close();
  await closeAll(servers);
  assert.deepEqual([...counts.values()], [100, 100, 100]);
});

Deno.test("the least-in-flight balancer sends few calls to a slow endpoint", async () => {
  const servers = startServers([40, 0, 0]);
  const slowPort = servers[0]!.addr.port;
  await using channel = new DistributedChannel({
    membership: membershipOf(servers),
    balancer: "least-in-flight",
  });
  const counts = await countCalls(channel, 600, 8);
  await channel.close();
  await closeAll(servers);
  const slow = counts.get(slowPort) ?? 0;
  // Random choice would give the slow endpoint about 200 of 600 calls.
  assert.ok(slow < 100, `slow endpoint got ${slow} of 600 calls`);
});

Deno.test("a refused connection moves the call to another endpoint and ejects the dead one", async () => {
  const [server] = startServers([0]);
  const dead = closedPort();
  const membership = new StaticMembership([
    { host: HOST, port: dead },
    { host: HOST, port: server!.addr.port },
  ]);
  await using channel = new DistributedChannel({ membership });
  const counts = await countCalls(channel, 20, 1);
  const deadState = channel.endpoints().find((e) => e.key.endsWith(`:${dead}`));
  await channel.close();
  await server!.close();
  assert.deepEqual([...counts.keys()], [server!.addr.port]);
  assert.equal(counts.get(server!.addr.port), 20);
  assert.equal(deadState?.state, "ejected");
  assert.equal(deadState?.calls, 0);
});

Deno.test("a call to a service with no registered members fails fast, or waits with waitForReady", async () => {
  await using channel = new DistributedChannel({
    membership: new StaticMembership([]),
    service: "calculator",
    // No deadline: failing at all proves the call did not wait for one.
    timeout: Infinity,
  });
  await assert.rejects(
    within(channel.call("divide", [1, 2]), 10_000, "the call to fail fast"),
    (error: unknown) =>
      error instanceof NoServersError && error.service === "calculator" &&
      /no servers for service "calculator": it has no registered members/
        .test(error.message),
  );
  const waiting = channel.call("divide", [1, 2], {
    timeout: 200,
    waitForReady: true,
  });
  assert.ok(await stillPending(waiting), "waitForReady did not wait");
  await assert.rejects(
    within(waiting, 10_000, "the waiting call's deadline"),
    NoServersError,
  );
  await assert.rejects(channel.ready({ timeout: 50 }), NoServersError);
});

Deno.test("a call whose servers are all dead fails with NoServersError, not a hang", async () => {
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: closedPort() },
      { host: HOST, port: closedPort() },
    ]),
    service: "calculator",
    timeout: 500,
  });
  await assert.rejects(
    channel.call("divide", [1, 2]),
    (error: unknown) =>
      error instanceof NoServersError &&
      /no live servers/.test(error.message) &&
      error.cause instanceof ConnectionError,
  );
});

Deno.test("a server joining the membership gets calls from a waiting caller", async () => {
  const membership = new StaticMembership([]);
  await using channel = new DistributedChannel({
    membership,
    timeout: 5000,
    waitForReady: true,
  });
  const call = channel.call("whoami", []);
  assert.ok(await stillPending(call), "the call is waiting for a server");
  const [server] = startServers([0]);
  membership.set([{ host: HOST, port: server!.addr.port }]);
  assert.equal(await call, server!.addr.port);
  await channel.close();
  await server!.close();
});

Deno.test("a remote error is not retried and comes back as RemoteError", async () => {
  const servers = startServers([0, 0]);
  await using channel = new DistributedChannel({
    membership: membershipOf(servers),
  });
  await assert.rejects(
    channel.call("fail", []),
    (error: unknown) =>
      error instanceof RemoteError && error.remoteName === "RangeError",
  );
  const answered = channel.endpoints().reduce((sum, e) => sum + e.calls, 0);
  await channel.close();
  await closeAll(servers);
  assert.equal(answered, 1);
});

/**
 * Starts `sleep` on a child server, adds a survivor to the membership, kills
 * the child while the call runs there, and returns how the call ended.
 */
async function killMidCall(
  idempotent: string[],
  callOptions: { idempotent?: boolean } = {},
): Promise<unknown> {
  await using child = await startChildServer();
  const [survivor] = startServers([0]);
  const membership = new StaticMembership([{ host: HOST, port: child.port }]);
  await using channel = new DistributedChannel({
    membership,
    idempotent,
    timeout: 5000,
  });
  try {
    const call = channel.call("sleep", [2000], callOptions).then(
      () => assert.fail("the call should fail"),
      (error: unknown) => error,
    );
    await child.sleepStarted(); // the request was written and runs there
    membership.set([
      { host: HOST, port: child.port },
      { host: HOST, port: survivor!.addr.port },
    ]);
    await child.kill();
    return await within(call, 10_000, "the call to end");
  } finally {
    await channel.close();
    await survivor!.close();
  }
}

/** Retried: it reached the survivor, which has no "sleep". */
function retried(error: unknown): boolean {
  return error instanceof MethodNotFoundError;
}

/** Not retried: the connection broke after the request was written. */
function notRetried(error: unknown): boolean {
  return error instanceof ConnectionError && error.written;
}

Deno.test("a call that may have run is retried only when its method is idempotent", async () => {
  assert.ok(notRetried(await killMidCall([])));
  assert.ok(retried(await killMidCall(["sleep"])));
});

Deno.test("a call's idempotent option overrides the channel's list either way", async () => {
  assert.ok(retried(await killMidCall([], { idempotent: true })));
  assert.ok(notRetried(await killMidCall(["sleep"], { idempotent: false })));
});

Deno.test("after goaway new calls go to the other endpoint and the draining call completes", async () => {
  const release = Promise.withResolvers<void>();
  let running = 0;
  const draining = serve({
    async whoami(): Promise<number> {
      running++;
      await release.promise;
      return draining.addr.port;
    },
  }, { hostname: HOST, port: 0 });
  const [other] = startServers([0]) as [RpcServer];
  const membership = new StaticMembership([
    { host: HOST, port: draining.addr.port },
  ]);
  // One attempt per call: a call sent to the draining endpoint and refused
  // by its connection would fail instead of being hidden by a retry.
  await using channel = new DistributedChannel({
    membership,
    maxAttempts: 1,
    balancer: "round-robin",
  });
  const slow = channel.call("whoami", []);
  await waitFor(() => running === 1, "the slow call to run");
  membership.set([
    { host: HOST, port: draining.addr.port },
    { host: HOST, port: other.addr.port },
  ]);
  const closing = draining.close({ timeout: 10_000 });
  const key = `${HOST}:${draining.addr.port}`;
  await waitFor(
    () => channel.endpoints().find((e) => e.key === key)?.state === "draining",
    "the channel to see the goaway",
  );
  const after = await countCalls(channel, 20, 1);
  release.resolve();
  assert.equal(await slow, draining.addr.port);
  await within(closing, 5000, "the draining server to close");
  await channel.close();
  await other.close();
  assert.deepEqual([...after.keys()], [other.addr.port]);
  assert.equal(running, 1);
});

Deno.test("an ejected endpoint is probed in the background and used again once it answers", async () => {
  const [live] = startServers([0]);
  const port = closedPort();
  await using channel = deadAndLive(port, live!, {
    outlierDetection: { ejectionTime: 100, probeInterval: 50 },
  });
  await countCalls(channel, 10, 1);
  const ejected = channel.endpoints().find((e) => e.member.port === port)!;
  assert.equal(ejected.state, "ejected");
  assert.equal(ejected.calls, 0);
  // The endpoint comes back on the same port; a probe lets it back in.
  const revived = serve({ whoami: () => port }, { hostname: HOST, port });
  await waitFor(
    () =>
      channel.endpoints().find((e) => e.member.port === port)?.state !==
        "ejected",
    "the probe to re-admit the endpoint",
  );
  const counts = await countCalls(channel, 20, 1);
  await channel.close();
  await revived.close();
  await live!.close();
  assert.ok((counts.get(port) ?? 0) >= 5, `revived got ${counts.get(port)}`);
});

Deno.test("a dead endpoint stays ejected and is probed without costing calls", async () => {
  const [live] = startServers([0]);
  const port = closedPort();
  await using channel = deadAndLive(port, live!, {
    outlierDetection: { ejectionTime: 20, probeInterval: 20 },
  });
  const ends = performance.now() + 500;
  let calls = 0;
  while (performance.now() < ends) {
    await countCalls(channel, 1, 1);
    calls++;
    // sleep-ok: paces calls while ejectionTime passes many times over
    await delay(5);
  }
  const dead = channel.endpoints().find((e) => e.member.port === port)!;
  await channel.close();
  await live!.close();
  assert.equal(dead.state, "ejected");
  assert.equal(dead.calls, 0);
  // Only the first call met the dead endpoint (a free, unsent attempt).
  assert.equal(dead.failures, 1);
  assert.ok(calls >= 3, `${calls} calls`);
});

Deno.test("when failures outweigh successes the retry budget stops retrying", async () => {
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: closedPort() },
      { host: HOST, port: closedPort() },
    ]),
    balancer: "round-robin",
    maxAttempts: 3,
    retryBudget: { maxTokens: 4, tokenRatio: 0.1 },
    timeout: 2000,
  });
  // 4 tokens: the first failure leaves 3 (retry), the second 2 (no more).
  await assert.rejects(
    channel.call("whoami", []),
    (error: unknown) =>
      error instanceof NoServersError &&
      /2 attempts failed \(retry budget exhausted\)/.test(error.message),
  );
  await assert.rejects(
    channel.call("whoami", []),
    (error: unknown) =>
      error instanceof NoServersError &&
      /1 attempt failed \(retry budget exhausted\)/.test(error.message),
  );
});

Deno.test("a call's deadline bounds the connect to a server that never answers", async () => {
  // Accepts TCP but never sends the preface back.
  const silent = Deno.listen({ hostname: HOST, port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) accepted.push(conn);
  })();
  const channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: silent.addr.port }]),
    // channel.close() waits for a pending connect: keep this short, but
    // well past 10x the call's deadline.
    connection: { connectTimeout: 2000 },
  });
  await assert.rejects(
    within(channel.call("whoami", [], { timeout: 150 }), 1500, "the call"),
    DeadlineExceededError,
  );
  await channel.close();
  silent.close();
  await accepting;
  for (const conn of accepted) conn.close();
});

Deno.test("many calls failing on one refused endpoint count as one failure", async () => {
  const [live] = startServers([0]);
  const port = closedPort();
  await using channel = deadAndLive(port, live!);
  await countCalls(channel, 20, 20);
  const dead = channel.endpoints().find((e) => e.member.port === port)!;
  await channel.close();
  await live!.close();
  assert.equal(dead.failures, 1);
  assert.equal(dead.state, "ejected");
});

Deno.test("an aborted call rejects with CancelledError carrying the signal's reason", async () => {
  await using channel = new DistributedChannel({
    membership: new StaticMembership([]),
    timeout: 5000,
    waitForReady: true,
  });
  const reason = new Error("user gave up");
  await assert.rejects(
    channel.call("whoami", [], { signal: AbortSignal.abort(reason) }),
    (error: unknown) =>
      error instanceof CancelledError && error.cause === reason,
  );
  const controller = new AbortController();
  const waiting = channel.call("whoami", [], { signal: controller.signal });
  assert.ok(await stillPending(waiting), "the call is waiting for a server");
  controller.abort(reason);
  await assert.rejects(
    waiting,
    (error: unknown) =>
      error instanceof CancelledError && error.cause === reason,
  );
});

Deno.test("an endpoint that sent goaway is used again once it is back at the same address", async () => {
  const first = serve({ whoami: () => "first" }, { hostname: HOST, port: 0 });
  const port = first.addr.port;
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port }]),
    outlierDetection: { ejectionTime: 50 },
    timeout: 3000,
  });
  assert.equal(await channel.call("whoami", []), "first");
  await first.close(); // goaway, then closed
  const second = serve({ whoami: () => "second" }, { hostname: HOST, port });
  // A probe lets it back in after its ejection period. (A call made at once
  // is not woken by that re-admission: it fails at its deadline.)
  await waitFor(
    () =>
      channel.endpoints().some((e) =>
        e.state !== "ejected" && e.state !== "draining"
      ),
    "the probe to re-admit the endpoint",
  );
  assert.equal(await channel.call("whoami", []), "second");
  await channel.close();
  await second.close();
});

Deno.test("a channel with a malformed registry root fails at once with a TypeError", () => {
  for (const root of ["/rpc/", "rpc", "/rpc//x", ""]) {
    assert.throws(
      () =>
        zooKeeperChannel({
          zookeeper: "127.0.0.1:1",
          service: "calculator",
          root,
        }),
      (error: unknown) =>
        error instanceof TypeError &&
        /root must be an absolute/.test(error.message),
      root,
    );
  }
});

Deno.test("endpoints() reports a pending connect as connecting, then ready", async () => {
  // Accepts TCP but sends its preface only when told to.
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const release = Promise.withResolvers<void>();
  const serving = (async () => {
    const conn = await listener.accept();
    await release.promise;
    conn.close();
  })();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{
      host: HOST,
      port: listener.addr.port,
    }]),
  });
  const call = channel.call("whoami", [], { timeout: 300 });
  call.catch(() => {});
  await waitFor(
    () => channel.endpoints()[0]?.state === "connecting",
    "the connect to start",
  );
  await assert.rejects(call, DeadlineExceededError);
  assert.equal(channel.endpoints()[0]?.state, "connecting");
  release.resolve();
  await serving;
  listener.close();
  const [live] = startServers([0]);
  (channel.membership as StaticMembership).set([
    { host: HOST, port: live!.addr.port },
  ]);
  assert.equal(await channel.call("whoami", []), live!.addr.port);
  assert.equal(channel.endpoints()[0]?.state, "ready");
  await channel.close();
  await live!.close();
});

Deno.test("the balancer gets typed candidates with member data, weight and latency, never an empty list", async () => {
  const servers = startServers([0, 0]);
  const seen: BalancerCandidate[][] = [];
  const membership = new StaticMembership([]);
  await using channel = new DistributedChannel({
    membership,
    waitForReady: true,
    balancer: {
      pick(candidates) {
        seen.push([...candidates]);
        return candidates[candidates.length - 1];
      },
    },
  });
  const waiting = channel.call("whoami", []);
  assert.ok(await stillPending(waiting), "the call is waiting for a server");
  membership.set(servers.map((s, i) => ({
    host: HOST,
    port: s.addr.port,
    weight: i + 1,
    zone: "a",
  })));
  await waiting;
  for (let i = 0; i < 5; i++) await channel.call("whoami", []);
  await channel.close();
  await closeAll(servers);
  assert.ok(seen.length >= 6);
  assert.ok(seen.every((candidates) => candidates.length === 2));
  const last = seen.at(-1)!;
  assert.deepEqual(last.map((c) => c.weight), [1, 2]);
  assert.equal(last[1]!.member?.zone, "a");
  assert.equal(typeof last[1]!.latency, "number");
});

Deno.test("hedging sends a backup attempt after the tracked latency percentile and takes the first answer", async () => {
  // The slow server answers only once released: every hedged answer must
  // come from the fast one (an unhedged call to the slow one would wait).
  const gate = Promise.withResolvers<void>();
  const slow: RpcServer = serve({
    async whoami() {
      await gate.promise;
      return slow.addr.port;
    },
  }, { hostname: HOST, port: 0 });
  const [fast] = startServers([0]) as [RpcServer];
  const servers = [slow, fast];
  await using channel = new DistributedChannel({
    membership: membershipOf(servers),
    balancer: "round-robin",
    idempotent: ["whoami"],
    hedging: { delay: { percentile: 90 } },
    timeout: 60_000,
  });
  const answers: number[] = [];
  for (let i = 0; i < 30; i++) {
    answers.push(await channel.call("whoami", []) as number);
  }
  gate.resolve();
  // hedge: false: round-robin sends one of two calls to the slow server,
  // and nothing hides it.
  const unhedged = [
    await channel.call("whoami", [], { hedge: false }),
    await channel.call("whoami", [], { hedge: false }),
  ];
  await channel.close();
  await closeAll(servers);
  assert.ok(answers.every((port) => port === fast.addr.port), `${answers}`);
  assert.ok(unhedged.includes(slow.addr.port), `${unhedged}`);
});
