/**
 * Discovery end to end against a real ZooKeeper started by the testing
 * export: registration, the channel's watch, failover when a server process
 * is SIGKILLed, session expiry on either side, and ZooKeeper outages.
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../mod.ts";
import { type Balancer, randomBalancer } from "../src/channel/balancer.ts";
import { NoServersError } from "../src/errors.ts";
import { parseMember } from "../src/discovery/member.ts";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { zooKeeperRegistrar } from "../src/zookeeper/registrar.ts";
import { ZooKeeperRegistration } from "../src/zookeeper/registration.ts";
import { ZooKeeperSession } from "../src/zookeeper/session.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import { expireSession, startZooKeeper } from "../testing.ts";
import { Handlers, InvalidOperation } from "../examples/calculator.ts";
import { delay } from "./_core_helpers.ts";
import { startServerProcess, waitFor } from "./_discovery_helpers.ts";
import { within } from "./_wait.ts";
import { zooKeeperChannel } from "../zookeeper.ts";

const HOST = "127.0.0.1";
const SESSION = { sessionTimeout: 4000, connectTimeout: 5000 };

/** An in-process calculator server registered under `service`. */
function startServer(
  zookeeper: string | SessionKeeper,
  service: string,
): { server: RpcServer; registrar: ReturnType<typeof zooKeeperRegistrar> } {
  const registrar = zooKeeperRegistrar({
    zookeeper,
    service,
    session: SESSION,
  });
  const server = serve({
    divide: Handlers.divide,
    port: (): number => server.addr.port,
  }, { hostname: HOST, port: 0, registrar });
  return { server, registrar };
}

function portsOf(channel: DistributedChannel): number[] {
  return channel.endpoints().map((e) => e.member.port).sort();
}

Deno.test("a registered server's node holds its address and close() removes it; the channel follows", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    session: SESSION,
  });
  const { server, registrar } = startServer(zk.connectionString, "calculator");
  const path = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );
  assert.match(path, /^\/rpc\/calculator\/server-[0-9a-f-]{36}-\d{10}$/);
  const { data, stat } = await session.getData(path);
  const member = parseMember(data);
  assert.equal(member.host, HOST);
  assert.equal(member.port, server.addr.port);
  assert.equal(typeof member.startedAt, "string");
  assert.ok(stat.ephemeralOwner !== undefined, "the node is ephemeral");

  await waitFor(() => channel.endpoints().length === 1, "the join", 1000);
  assert.deepEqual(portsOf(channel), [server.addr.port]);
  assert.equal(await channel.call("divide", [10, 2]), 5);
  assert.equal(channel.state, "fresh");
  assert.ok(channel.lastConfirmed instanceof Date);

  await server.close();
  assert.deepEqual(await session.getChildren("/rpc/calculator"), []);
  await waitFor(() => channel.endpoints().length === 0, "the leave", 1000);
});

Deno.test("divide(1, 0) through the channel rejects with the caller's InvalidOperation", async () => {
  await using zk = await startZooKeeper();
  const { server, registrar } = startServer(zk.connectionString, "calculator");
  await within(registrar.registered(), 30_000, "registrar to register");
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    errors: [InvalidOperation],
    session: SESSION,
  });
  await channel.ready({ timeout: 5000 });
  const calc = channel.stub<typeof Handlers>();
  assert.equal(await calc.divide(10, 4), 2.5);
  await assert.rejects(calc.divide(1, 0), InvalidOperation);
  await channel.close();
  await server.close();
});

Deno.test("the seed's 50 calls over three server processes survive a SIGKILL with zero failures", async () => {
  await using zk = await startZooKeeper();
  await using a = await startServerProcess(zk.connectionString, "calculator");
  await using b = await startServerProcess(zk.connectionString, "calculator");
  await using c = await startServerProcess(zk.connectionString, "calculator");
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  const { balancer, picks } = recordingBalancer();
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    errors: [InvalidOperation],
    idempotent: ["divide"],
    session: SESSION,
    balancer,
    // Longer than the test: no probe of the dead one.
    outlierDetection: { ejectionTime: 30_000 },
  });
  await waitFor(() => channel.endpoints().length === 3, "three endpoints");
  const calc = channel.stub<typeof Handlers>();
  const victim = `${HOST}:${b.port}`;
  let picksAtKill = 0;
  for (let i = 0; i < 50; i++) {
    if (i === 20) {
      await b.stop("SIGKILL");
      picksAtKill = picks.length;
    }
    if (i % 4 === 0) {
      await assert.rejects(calc.divide(i, 0), InvalidOperation, `call ${i}`);
    } else {
      assert.equal(await calc.divide(i, i % 4), i / (i % 4), `call ${i}`);
    }
    // sleep-ok: paces the load across the kill
    await delay(10);
  }
  // Spread over all three before the kill.
  for (const port of [a.port, b.port, c.port]) {
    assert.ok(picks.slice(0, 20).includes(`${HOST}:${port}`), `${port} chosen`);
  }
  // After the kill the dead endpoint was chosen once at most (by the call
  // that found it dead), although its znode lives on until its session
  // times out.
  const afterKill = picks.slice(picksAtKill);
  assert.ok(afterKill.length >= 30);
  assert.ok(afterKill.filter((key) => key === victim).length <= 1);
  const dead = channel.endpoints().find((e) => e.key === victim);
  assert.notEqual(dead?.state, "connected");
  assert.equal((await session.getChildren("/rpc/calculator")).length, 3);
  await waitFor(
    () => !channel.endpoints().some((e) => e.key === victim),
    "the dead server's node to expire",
    60_000, // its session timeout is 10 s
  );
});

/** A random balancer that records every key it picks. */
function recordingBalancer(): { balancer: Balancer; picks: string[] } {
  const random = randomBalancer();
  const picks: string[] = [];
  return {
    picks,
    balancer: {
      pick(candidates) {
        const chosen = random.pick(candidates);
        if (chosen !== undefined) picks.push(chosen.key);
        return chosen;
      },
    },
  };
}

Deno.test("a server that joins under load receives calls without the callers doing anything", async () => {
  await using zk = await startZooKeeper();
  const first = startServer(zk.connectionString, "calculator");
  await within(
    first.registrar.registered(),
    30_000,
    "first.registrar to register",
  );
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    session: SESSION,
  });
  await channel.ready({ timeout: 5000 });
  const seen = new Set<number>();
  let stop = false;
  const load = (async () => {
    while (!stop) seen.add(await channel.call("port", []) as number);
  })();
  await waitFor(() => seen.size > 0, "the load to be answered");
  const second = startServer(zk.connectionString, "calculator");
  await within(
    second.registrar.registered(),
    30_000,
    "second.registrar to register",
  );
  // How soon is a figure the demo reports (JOIN: … ms after registering).
  try {
    await waitFor(
      () => seen.has(second.server.addr.port),
      "traffic to the new server",
      10_000,
    );
  } finally {
    stop = true;
    await within(load, 15_000, "the load to stop");
  }
  await channel.close();
  await first.server.close();
  await second.server.close();
});

Deno.test("a server whose session expired registers again by itself, exactly once", async () => {
  await using zk = await startZooKeeper();
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const { server, registrar } = startServer(keeper, "calculator");
  const firstPath = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    session: SESSION,
  });
  await waitFor(() => channel.endpoints().length === 1, "the first join");
  const old = keeper.session!;
  await expireSession(zk.connectionString, old.sessionId, old.sessionPassword);
  await waitFor(
    () => registrar.nodePath !== undefined && registrar.nodePath !== firstPath,
    "a new registration",
    10_000,
  );
  assert.notEqual(keeper.session!.sessionId, old.sessionId);
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  assert.deepEqual(await session.getChildren("/rpc/calculator"), [
    registrar.nodePath!.split("/").at(-1),
  ]);
  await waitFor(
    () => channel.endpoints().length === 1,
    "the channel to see it again",
  );
  assert.equal(await channel.call("port", []), server.addr.port);
  await channel.close();
  await server.close();
});

Deno.test("a channel whose session expired re-syncs and keeps calling", async () => {
  await using zk = await startZooKeeper();
  const first = startServer(zk.connectionString, "calculator");
  await within(
    first.registrar.registered(),
    30_000,
    "first.registrar to register",
  );
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  await using channel = zooKeeperChannel({
    zookeeper: keeper,
    service: "calculator",
  });
  await channel.ready({ timeout: 5000 });
  const states: string[] = [];
  channel.addEventListener("state", () => states.push(channel.state));
  const old = keeper.session!;
  await expireSession(zk.connectionString, old.sessionId, old.sessionPassword);
  // Calls go on from the cached list meanwhile.
  assert.equal(await channel.call("port", []), first.server.addr.port);
  await waitFor(() => keeper.session !== old, "a new session", 10_000);
  const second = startServer(zk.connectionString, "calculator");
  await within(
    second.registrar.registered(),
    30_000,
    "second.registrar to register",
  );
  await waitFor(
    () => channel.endpoints().length === 2,
    "the new member after the re-sync",
  );
  assert.ok(states.includes("resyncing"), states.join(","));
  assert.equal(channel.state, "fresh");
  await channel.close();
  await first.server.close();
  await second.server.close();
});

Deno.test("while ZooKeeper is down for 10 s calls succeed on cached endpoints; afterwards membership is current", async () => {
  await using zk = await startZooKeeper();
  const first = startServer(zk.connectionString, "calculator");
  await within(
    first.registrar.registered(),
    30_000,
    "first.registrar to register",
  );
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    session: { ...SESSION, sessionTimeout: 10_000 },
    timeout: 2000,
  });
  await channel.ready({ timeout: 5000 });
  await zk.kill(); // an outage: restart() keeps the data
  await waitFor(() => channel.state === "disconnected", "the disconnection");
  const outageEnds = performance.now() + 10_000;
  let calls = 0;
  while (performance.now() < outageEnds) {
    assert.equal(await channel.call("port", []), first.server.addr.port);
    calls++;
    // sleep-ok: paces calls through the 10 s outage: its length is the property
    await delay(100);
  }
  assert.ok(calls > 5, `${calls} calls`); // about 100 on an idle machine
  assert.equal(channel.state, "disconnected");
  await zk.restart();
  const second = startServer(zk.connectionString, "calculator");
  await within(
    second.registrar.registered(),
    30_000,
    "second.registrar to register",
  );
  await waitFor(
    () => channel.endpoints().length === 2,
    "the new member after the outage",
    10_000,
  );
  assert.equal(channel.state, "fresh");
  await channel.close();
  await first.server.close();
  await second.server.close();
});

Deno.test("a server started while ZooKeeper is down serves at once and registers when it answers", async () => {
  await using zk = await startZooKeeper();
  await zk.kill(); // an outage: restart() keeps the data
  const { server, registrar } = startServer(zk.connectionString, "calculator");
  await using direct = new DistributedChannel({
    membership: new (await import("../src/discovery/static.ts"))
      .StaticMembership([{ host: HOST, port: server.addr.port }]),
  });
  assert.equal(await direct.call("divide", [9, 3]), 3);
  assert.equal(registrar.nodePath, undefined);
  await zk.restart();
  const path = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  assert.ok(await session.exists(path));
  await direct.close();
  await server.close();
  assert.equal(await session.exists(path), undefined);
});

Deno.test("a registration adopts its own node after a lost create reply and removes an old session's node", async () => {
  await using zk = await startZooKeeper();
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const session = await keeper.current(AbortSignal.timeout(30_000));
  await session.mkdirp("/rpc/calculator");
  const data = JSON.stringify({ host: HOST, port: 9001 });
  // Lost reply: the node exists, owned by this very session.
  const lost = await session.create("/rpc/calculator/server-lost-", data, {
    mode: "ephemeral_sequential",
  });
  const adopting = new ZooKeeperRegistration(keeper, "/rpc/calculator", {
    host: HOST,
    port: 9001,
  }, { id: "lost" });
  assert.equal(
    await within(adopting.registered(), 30_000, "adopting to register"),
    lost,
  );
  // Ghost: a node with our id owned by another (older) session.
  await using other = await ZooKeeperSession.connect(zk.connectionString);
  const ghost = await other.create("/rpc/calculator/server-ghost-", data, {
    mode: "ephemeral_sequential",
  });
  const replacing = new ZooKeeperRegistration(keeper, "/rpc/calculator", {
    host: HOST,
    port: 9002,
  }, { id: "ghost" });
  const fresh = await within(
    replacing.registered(),
    30_000,
    "replacing to register",
  );
  assert.notEqual(fresh, ghost);
  const children = (await session.getChildren("/rpc/calculator")).sort();
  assert.deepEqual(children, [lost, fresh].map((p) => p.split("/")[3]).sort());
  await adopting.close();
  await replacing.close();
  assert.deepEqual(await session.getChildren("/rpc/calculator"), []);
});

Deno.test("a closed registration does not come back after a reconnect", async () => {
  await using zk = await startZooKeeper();
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const registration = new ZooKeeperRegistration(keeper, "/rpc/calculator", {
    host: HOST,
    port: 9001,
  });
  await within(registration.registered(), 30_000, "registration to register");
  await zk.kill(); // an outage: restart() keeps the data
  await registration.close(); // ZooKeeper is down: the node goes with the session
  await zk.restart();
  const session = await keeper.current(AbortSignal.timeout(30_000));
  await waitFor(() => session.state === "connected", "the reconnection");
  assert.equal(registration.nodePath, undefined);
  await waitFor(
    async () => (await session.getChildren("/rpc/calculator")).length === 0,
    "the node to be deleted once ZooKeeper answered",
  );
  // sleep-ok: a window in which nothing may recreate the deleted node
  await delay(300);
  assert.deepEqual(await session.getChildren("/rpc/calculator"), []);
});

Deno.test("garbage member data is skipped with one warning and good members still serve", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  await session.mkdirp("/rpc/calculator");
  await session.create("/rpc/calculator/server-junk1", "not json");
  await session.create("/rpc/calculator/server-junk2", '{"host": 7}');
  await session.create("/rpc/calculator/server-junk3");
  const { server, registrar } = startServer(zk.connectionString, "calculator");
  await within(registrar.registered(), 30_000, "registrar to register");
  const warnings: string[] = [];
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    session: SESSION,
    onInvalidMember: (id) => warnings.push(id),
  });
  await channel.ready({ timeout: 5000 });
  assert.equal(await channel.call("divide", [8, 2]), 4);
  // Another change makes the channel list the children again: no new warnings.
  await session.create("/rpc/calculator/other", "{}");
  await waitFor(() => warnings.length === 4, "the fourth warning");
  // One more change, seen once the channel has listed the children again:
  // every warning of the changes before it has been given by then.
  const later = startServer(zk.connectionString, "calculator");
  await within(
    later.registrar.registered(),
    30_000,
    "the later server to register",
  );
  await waitFor(() => channel.endpoints().length === 2, "the later server");
  assert.deepEqual(warnings.sort(), [
    "other",
    "server-junk1",
    "server-junk2",
    "server-junk3",
  ]);
  assert.deepEqual(
    portsOf(channel),
    [server.addr.port, later.server.addr.port].sort(),
  );
  await channel.close();
  await server.close();
  await later.server.close();
});

Deno.test("a call to an empty service fails with NoServersError after the channel's timeout", async () => {
  await using zk = await startZooKeeper();
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "nobody",
    timeout: 500,
    session: SESSION,
  });
  await assert.rejects(
    channel.call("divide", [1, 2]),
    (error: unknown) =>
      error instanceof NoServersError &&
      /no servers for service "nobody"/.test(error.message),
  );
  await assert.rejects(channel.ready({ timeout: 100 }), NoServersError);
});

Deno.test("the seed's flat /rpc layout is reachable with the path option", async () => {
  await using zk = await startZooKeeper();
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    path: "/rpc",
  });
  await using _server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  assert.match(
    await within(registrar.registered(), 30_000, "registrar to register"),
    /^\/rpc\/server-/,
  );
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    path: "/rpc",
    session: SESSION,
  });
  await channel.ready({ timeout: 5000 });
  assert.equal(await channel.call("divide", [6, 3]), 2);
});
