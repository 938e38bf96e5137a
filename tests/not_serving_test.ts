/**
 * Health drives routing: a server that does not serve (`setServing(false)`,
 * `warmUp` pending, closing) is withdrawn from ZooKeeper and sends `goaway`
 * on its connections, so no channel, existing or fresh, routes to it; no call
 * fails while another server serves; serving again puts it back.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { DistributedChannel } from "../mod.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import { HEALTH_METHOD } from "../src/server/_handler_table.ts";
import { zooKeeperRegistrar } from "../src/zookeeper/registrar.ts";
import { ZooKeeperSession } from "../src/zookeeper/session.ts";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperRegistration } from "../src/zookeeper/registration.ts";
import { parseMember } from "../src/discovery/member.ts";
import { Connection } from "../src/client/connection.ts";
import { ServerClosingError } from "../src/errors.ts";
import { startZooKeeper } from "../testing.ts";
import { delay } from "./_core_helpers.ts";
import { nextEvent, waitFor, within } from "./_wait.ts";
import { zooKeeperChannel } from "../zookeeper.ts";

const HOST = "127.0.0.1";
const SESSION = { sessionTimeout: 4000, connectTimeout: 5000 };

interface Counted {
  server: RpcServer;
  /** Calls its handler ran. */
  runs: { count: number };
}

function start(zookeeper: string, name: string, warmUp?: Promise<void>) {
  const runs = { count: 0 };
  const server = serve({
    // Non-idempotent by default: a call may be retried only when provably
    // not run.
    async work(i: number) {
      runs.count++;
      // sleep-ok: handler work (a slow method), not a wait for an event
      await delay(5); // keeps calls in flight across the switch
      return `${name}${i}`;
    },
  }, {
    hostname: HOST,
    ...(warmUp === undefined ? {} : { warmUp }),
    registrar: zooKeeperRegistrar({
      zookeeper,
      service: "inventory",
      session: SESSION,
      warnAfter: 0,
    }),
  });
  return { server, runs } satisfies Counted;
}

function channelOf(zookeeper: string): DistributedChannel {
  return zooKeeperChannel({
    zookeeper,
    service: "inventory",
    session: SESSION,
  });
}

function routes(channel: DistributedChannel, server: RpcServer): boolean {
  return channel.endpoints().some((e) => e.member.port === server.addr.port);
}

/** `n` concurrent calls; every one must succeed. */
async function load(channel: DistributedChannel, n: number): Promise<void> {
  const results = await within(
    Promise.allSettled(
      Array.from({ length: n }, (_, i) => channel.call("work", [i])),
    ),
    20_000,
    `${n} calls`,
  );
  const failed = results.filter((r) => r.status === "rejected");
  assert.deepEqual(
    failed.map((r) => String((r as PromiseRejectedResult).reason)),
    [],
    "no call fails",
  );
}

/**
 * A direct connection to `server` (as `zkrpc health` opens), after checking
 * that it answers health with not-serving.
 */
async function notServingConnection(server: RpcServer): Promise<Connection> {
  const direct = await within(
    Connection.connect({ hostname: HOST, port: server.addr.port }),
    5000,
    "a direct connection",
  );
  try {
    assert.deepEqual(
      await within(direct.call(HEALTH_METHOD, []), 5000, "health"),
      { status: "not-serving" },
    );
  } catch (error) {
    direct.close();
    await direct.finished;
    throw error;
  }
  return direct;
}

/**
 * Two registered servers, "a" and "b", and a channel that routes to both;
 * disposing closes the channel, then the servers.
 */
async function twoServersAndAChannel(zookeeper: string) {
  const a = start(zookeeper, "a");
  const b = start(zookeeper, "b");
  const existing = channelOf(zookeeper);
  const dispose = async () => {
    await existing.close();
    await Promise.all([a.server.close(), b.server.close()]);
  };
  try {
    await within(
      Promise.all([a.server.ready, b.server.ready]),
      30_000,
      "ready",
    );
    await waitFor(
      () => routes(existing, a.server) && routes(existing, b.server),
      "the existing channel to see both servers",
      10_000,
    );
  } catch (error) {
    await dispose();
    throw error;
  }
  return { a, b, existing, [Symbol.asyncDispose]: dispose };
}

Deno.test("a server set not serving is not routed to by existing or fresh channels, loses no call, and is routed again when it serves", async () => {
  await using zk = await startZooKeeper();
  await using servers = await twoServersAndAChannel(zk.connectionString);
  const { a, b, existing } = servers;
  await load(existing, 20); // connections to both are open

  // The switch, under load: 60 calls, many in flight on a.
  const during = load(existing, 60);
  await waitFor(() => a.runs.count > 0, "calls on a", 10_000);
  a.server.setServing(false);
  await during;

  // Propagated: the membership event removed a from the existing channel.
  await waitFor(
    () => !routes(existing, a.server),
    "the existing channel to drop a",
    5_000,
  );
  const ranOnA = a.runs.count;
  await using fresh = channelOf(zk.connectionString);
  await waitFor(() => routes(fresh, b.server), "the fresh channel", 10_000);
  assert.ok(!routes(fresh, a.server), "a fresh channel never sees a");
  await Promise.all([load(existing, 60), load(fresh, 60)]);
  assert.equal(a.runs.count, ranOnA, "nothing ran on the not-serving server");

  // Health tells, on a direct connection, as zkrpc health does.
  await using direct = await notServingConnection(a.server);
  await assert.rejects(
    within(direct.call("work", [0]), 5000, "a direct call"),
    ServerClosingError,
  );
  assert.equal(a.runs.count, ranOnA, "a refused call did not run");

  a.server.setServing(true);
  await waitFor(
    () => routes(existing, a.server) && routes(fresh, a.server),
    "both channels to see a again",
    10_000,
  );
  await waitFor(
    async () => {
      await Promise.all([load(existing, 10), load(fresh, 10)]);
      return a.runs.count > ranOnA;
    },
    "calls to reach a again",
    10_000,
  );
});

Deno.test("a server whose warmUp is pending is not listed and refuses calls after a goaway, but answers health", async () => {
  await using zk = await startZooKeeper();
  const warm = Promise.withResolvers<void>();
  const a = start(zk.connectionString, "a", warm.promise);
  const b = start(zk.connectionString, "b");
  await using _a = a.server;
  await using _b = b.server;
  await within(b.server.ready, 30_000, "b ready");
  await using channel = channelOf(zk.connectionString);
  await waitFor(() => routes(channel, b.server), "the channel", 10_000);
  await load(channel, 30);
  assert.ok(!routes(channel, a.server));
  assert.equal(a.runs.count, 0);

  await using direct = await notServingConnection(a.server);
  const goaway = nextEvent(direct, "goaway", 5000);
  await assert.rejects(
    within(direct.call("work", [1]), 5000, "a call"),
    /server is not serving \(request not run\)/,
  );
  await goaway; // the goaway came first: the refusal provably did not run
  assert.equal(direct.goawayReason, "Server is not serving");
  assert.equal(a.runs.count, 0);

  warm.resolve();
  await within(a.server.ready, 30_000, "a ready after warmUp");
  await waitFor(() => routes(channel, a.server), "a listed", 10_000);
});

Deno.test("toggling serving quickly leaves exactly one member node while serving and none while not", async () => {
  await using zk = await startZooKeeper();
  const a = start(zk.connectionString, "a");
  await using _a = a.server;
  await within(a.server.ready, 30_000, "ready");
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  const members = () => session.getChildren("/rpc/inventory");
  for (let i = 0; i < 5; i++) {
    a.server.setServing(false);
    a.server.setServing(true);
  }
  await waitFor(
    async () => (await members()).length === 1,
    "exactly one member node",
    10_000,
  );
  a.server.setServing(false);
  a.server.setServing(true);
  a.server.setServing(false);
  await waitFor(
    async () => (await members()).length === 0,
    "no member node",
    10_000,
  );
  a.server.setServing(true);
  await waitFor(
    async () => (await members()).length === 1,
    "one member node again",
    10_000,
  );
  const [name] = await members();
  const { data } = await session.getData(`/rpc/inventory/${name}`);
  assert.equal(parseMember(data).port, a.server.addr.port);
});

Deno.test("a server closed under load loses no call of an existing channel, and no channel routes to it afterwards", async () => {
  await using zk = await startZooKeeper();
  await using servers = await twoServersAndAChannel(zk.connectionString);
  const { a, b, existing } = servers;
  await load(existing, 20);
  const during = load(existing, 60);
  await waitFor(() => a.runs.count > 0, "calls on a", 10_000);
  const closing = a.server.close();
  await during;
  await within(closing, 15_000, "close()");
  const ranOnA = a.runs.count;
  await waitFor(() => !routes(existing, a.server), "a dropped", 5_000);
  await using fresh = channelOf(zk.connectionString);
  await waitFor(() => routes(fresh, b.server), "the fresh channel", 10_000);
  assert.ok(!routes(fresh, a.server));
  await Promise.all([load(existing, 30), load(fresh, 30)]);
  assert.equal(a.runs.count, ranOnA, "nothing ran on the closed server");
});

Deno.test("withdraw and restore at every microtask offset around the end of a withdraw leave exactly one member node, the registered one", async () => {
  // The flake this pins: setServing(false), (true), (false), then (true)
  // just as the deleting run ends. A restore that came a few microtasks
  // after that run cleared its slot, but before the queued run started,
  // ran beside it: two creates, two nodes (one never deleted).
  await using zk = await startZooKeeper();
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const registration = new ZooKeeperRegistration(
    keeper,
    "/rpc/toggled",
    { host: HOST, port: 9 },
    { log: () => {} },
  );
  await using _registration = {
    [Symbol.asyncDispose]: () => registration.close(),
  };
  await within(registration.registered(), 30_000, "registered");
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  const members = async () =>
    (await session.getChildren("/rpc/toggled")).map((n) => `/rpc/toggled/${n}`);
  // The registration's own session, to time the restore from the moment
  // its delete is answered (the deleting run ends a few microtasks later).
  const own = keeper.session!;
  const deleteNode = own.delete.bind(own);
  let deleted: Promise<void> | undefined;
  own.delete = (...args) => (deleted = deleteNode(...args));
  for (let hops = 0; hops < 16; hops++) {
    deleted = undefined;
    void registration.withdraw(); // deletes the node
    registration.restore(); // queues a run after the delete
    void registration.withdraw(); // joins that run
    // (After the run under way, which may still be watching the node.)
    await waitFor(() => deleted !== undefined, "the delete", 10_000);
    await deleted;
    for (let i = 0; i < hops; i++) await Promise.resolve();
    registration.restore();
    await waitFor(
      async () => {
        const nodes = await members();
        return nodes.length === 1 && nodes[0] === registration.nodePath;
      },
      `one member node, the registered one (${hops} hops)`,
      10_000,
    );
  }
  // A second create that landed after the last check is still there.
  await registration.withdraw();
  assert.deepEqual(await members(), [], "no node left after withdraw()");
});
