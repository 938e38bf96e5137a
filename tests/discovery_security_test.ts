/**
 * Discovery over a real 3-node ensemble with a chroot, ZooKeeper digest ACLs,
 * and TLS between channel and servers.
 */
import assert from "node:assert/strict";
import { zooKeeperRegistrar } from "../src/zookeeper/registrar.ts";
import {
  isZooKeeperError,
  ZooKeeperSession,
} from "../src/zookeeper/session.ts";
import { serve } from "../src/server/server.ts";
import { startZooKeeper, startZooKeeperEnsemble } from "../testing.ts";
import { Handlers } from "../examples/calculator.ts";
import { waitFor } from "./_discovery_helpers.ts";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperMembership } from "../src/zookeeper/membership.ts";
import { within } from "./_wait.ts";
import { zooKeeperChannel } from "../zookeeper.ts";

const HOST = "127.0.0.1";
const SESSION = { sessionTimeout: 4000, connectTimeout: 5000 };

Deno.test("a multi-host connection string with a chroot keeps discovery working after the leader is killed", async () => {
  await using ensemble = await startZooKeeperEnsemble({ size: 3 });
  {
    await using setup = await ZooKeeperSession.connect(
      ensemble.connectionString,
    );
    await setup.mkdirp("/tenants/blue");
  }
  const zookeeper = `${ensemble.connectionString}/tenants/blue`;
  const registrar = zooKeeperRegistrar({
    zookeeper,
    service: "calculator",
    session: SESSION,
  });
  await using server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  const path = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );
  assert.match(path, /^\/rpc\/calculator\/server-/);
  await using root = await ZooKeeperSession.connect(ensemble.connectionString);
  assert.ok(await root.exists(`/tenants/blue${path}`), "the node is chrooted");

  await using channel = zooKeeperChannel({
    zookeeper,
    service: "calculator",
    session: SESSION,
  });
  await channel.ready({ timeout: 5000 });
  assert.equal(await channel.call("divide", [12, 4]), 3);

  const leader = await ensemble.leader();
  await leader.kill();
  // A second server registers through the surviving quorum.
  const registrar2 = zooKeeperRegistrar({
    zookeeper,
    service: "calculator",
    session: SESSION,
  });
  await using server2 = serve(Handlers, {
    hostname: HOST,
    port: 0,
    registrar: registrar2,
  });
  await within(registrar2.registered(), 30_000, "registrar2 to register");
  await waitFor(
    () => channel.endpoints().length === 2,
    "the channel to see the second server",
    15_000,
  );
  assert.equal(await channel.call("divide", [12, 4]), 3);
  await leader.restart();
  await channel.close();
  await server.close();
  await server2.close();
});

Deno.test("with a digest ACL only holders of the credential can register or delete members", async () => {
  await using zk = await startZooKeeper();
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "calculator",
    acl: "creator_all_world_read",
    session: { ...SESSION, auth: "zkrpc:s3cret" },
  });
  await using server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  const path = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );

  // Anyone may discover and call.
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
    session: SESSION,
  });
  await channel.ready({ timeout: 5000 });
  assert.equal(await channel.call("divide", [1, 4]), 0.25);

  // Without the credential: no deleting members, no registering.
  await using stranger = await ZooKeeperSession.connect(zk.connectionString);
  await assert.rejects(
    stranger.delete(path),
    (error: unknown) => isZooKeeperError(error, "NO_AUTH"),
  );
  await assert.rejects(
    stranger.create("/rpc/calculator/server-rogue-", "{}", {
      mode: "ephemeral_sequential",
    }),
    (error: unknown) => isZooKeeperError(error, "NO_AUTH"),
  );
  // With a wrong password, neither.
  await using impostor = await ZooKeeperSession.connect(zk.connectionString, {
    auth: "zkrpc:guess",
  });
  await assert.rejects(
    impostor.delete(path),
    (error: unknown) => isZooKeeperError(error, "NO_AUTH"),
  );
  // With the credential, yes.
  await using peer = await ZooKeeperSession.connect(zk.connectionString, {
    auth: "zkrpc:s3cret",
  });
  const other = await peer.create("/rpc/calculator/server-peer-", "{}", {
    mode: "ephemeral_sequential",
    acl: "creator_all_world_read",
  });
  await peer.delete(other);
  await channel.close();
  await server.close();
  assert.equal(await stranger.exists(path), undefined);
});

Deno.test("serve({ tls }) alone advertises tls: the registrar learns the transport from the server, and the channel calls over TLS", async () => {
  await using zk = await startZooKeeper();
  const dir = new URL("./fixtures/tls/", import.meta.url);
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "secure",
    advertisedHost: "localhost",
    session: SESSION,
  });
  await using server = serve(Handlers, {
    hostname: HOST,
    port: 0,
    registrar,
    tls: {
      cert: await Deno.readTextFile(new URL("localhost.crt", dir)),
      key: await Deno.readTextFile(new URL("localhost.key", dir)),
    },
  });
  await within(registrar.registered(), 30_000, "registrar to register");
  await using channel = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "secure",
    session: SESSION,
    connection: {
      caCerts: [await Deno.readTextFile(new URL("ca.crt", dir))],
    },
  });
  await channel.ready({ timeout: 5000 });
  assert.equal(channel.endpoints()[0]?.member.tls, true);
  assert.equal(await channel.call("divide", [3, 2]), 1.5);
  await channel.close();
  await server.close();
});

const AUTH = "zkrpc:s3cret";

Deno.test("an ACL'd server tightens a service path a stranger created open, and deletes the stranger's fake member", async () => {
  await using zk = await startZooKeeper();
  await using stranger = await ZooKeeperSession.connect(zk.connectionString);
  await stranger.mkdirp("/rpc/calculator"); // open: world:anyone may do anything
  const fake = await stranger.create(
    "/rpc/calculator/server-fake-",
    JSON.stringify({ host: "127.0.0.1", port: 1 }),
    { mode: "ephemeral_sequential" },
  );
  const logs: string[] = [];
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "calculator",
    acl: "creator_all_world_read",
    session: { ...SESSION, auth: AUTH },
    log: (message) => logs.push(message),
  });
  await using server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  const path = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );

  // Never silent: each tightening and the deletion are logged.
  assert.match(
    logs.join("\n"),
    /"\/rpc\/calculator" was open \(world:anyone may create, delete, admin\)/,
  );
  assert.match(logs.join("\n"), /"\/rpc" was open/);
  assert.match(
    logs.join("\n"),
    /deleted member "\/rpc\/calculator\/server-fake-/,
  );
  assert.equal(await stranger.exists(fake), undefined);
  const world = async (path: string) =>
    (await stranger.getAcl(path)).acl.find((entry) => entry.scheme === "world")
      ?.permissions;
  // Anyone keeps reading (discovery) and writing the path's own data, which
  // nothing uses; creating, deleting and changing the ACL are gone.
  assert.deepEqual(await world("/rpc/calculator"), ["read", "write"]);
  // Under the shared root, others may still create their own services.
  assert.deepEqual(await world("/rpc"), ["read", "write", "create"]);

  // The stranger can no longer add fake members or remove the real one.
  await assert.rejects(
    stranger.create("/rpc/calculator/server-rogue-", "{}", {
      mode: "ephemeral_sequential",
    }),
    (error: unknown) => isZooKeeperError(error, "NO_AUTH"),
  );
  await assert.rejects(
    stranger.delete(path),
    (error: unknown) => isZooKeeperError(error, "NO_AUTH"),
  );
  await assert.rejects(
    stranger.setAcl("/rpc/calculator", "open"),
    (error: unknown) => isZooKeeperError(error, "NO_AUTH"),
  );
  assert.deepEqual(await stranger.getChildren("/rpc/calculator"), [
    path.slice("/rpc/calculator/".length),
  ]);
  await server.close();
});

Deno.test("an ACL'd server that may not tighten an open service path fails naming the path and the fix, releases everything, and its server finishes", async () => {
  await using zk = await startZooKeeper();
  await using stranger = await ZooKeeperSession.connect(zk.connectionString);
  await stranger.mkdirp("/rpc");
  // Open for members, but nobody may change the ACL (no admin).
  await stranger.create("/rpc/locked", undefined, {
    acl: [{
      scheme: "world",
      id: "anyone",
      permissions: ["read", "write", "create", "delete"],
    }],
  });
  const errors: Error[] = [];
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "locked",
    acl: "creator_all_world_read",
    session: { ...SESSION, auth: AUTH },
    log: () => {},
  });
  const start = performance.now();
  const server = serve(Handlers, {
    hostname: HOST,
    port: 0,
    registrar,
    onError: (error) => errors.push(error),
  });
  const failure = await within(
    registrar.registered(),
    30_000,
    "registrar to fail",
  ).then(
    () => assert.fail("registered under an open path"),
    (error: Error) => error,
  );
  // The server closed itself: finished rejects with the reported error.
  await assert.rejects(server.finished, (e: unknown) => e === errors[0]);
  // Bound: one connect and a few reads, far below the 5 s connect timeout.
  // clock-ok: fails fast: before the timeout it would otherwise wait out (10x or more the expected time)
  assert.ok(performance.now() - start < SESSION.connectTimeout);
  assert.match(
    failure.message,
    /^Cannot register under "\/rpc\/locked": "\/rpc\/locked" is open \(world:anyone may create, delete\).*lacks admin.*deleteall \/rpc\/locked.*setAcl \/rpc\/locked digest:zkrpc:/,
  );
  assert.equal(errors[0]?.message, failure.message);
  assert.deepEqual(await stranger.getChildren("/rpc/locked"), []);
});

Deno.test("a member node deleted by a stranger is recreated in the same session, exactly once, and discovery sees it again", async () => {
  await using zk = await startZooKeeper();
  const logs: string[] = [];
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "calculator",
    session: SESSION,
    log: (message) => logs.push(message),
  });
  await using server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  const first = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const membership = new ZooKeeperMembership(keeper, "/rpc/calculator");
  const id = (path: string) => path.slice(path.lastIndexOf("/") + 1);
  await waitFor(() => membership.members.has(id(first)), "discovery");

  await using stranger = await ZooKeeperSession.connect(zk.connectionString);
  const owner = (await stranger.exists(first))?.ephemeralOwner;
  await stranger.delete(first);
  await waitFor(
    () => registrar.nodePath !== undefined && registrar.nodePath !== first,
    "the node to be recreated",
  );
  const second = registrar.nodePath!;
  await waitFor(() => membership.members.has(id(second)), "rediscovery");
  assert.equal(membership.members.size, 1);
  assert.deepEqual(await stranger.getChildren("/rpc/calculator"), [id(second)]);
  assert.equal((await stranger.exists(second))?.ephemeralOwner, owner);
  assert.match(
    logs.join("\n"),
    /member node ".*" was deleted while its session lives/,
  );

  // Tampered data is restored too.
  const data = (await stranger.getData(second)).data;
  await stranger.setData(second, JSON.stringify({ host: "10.6.6.6", port: 1 }));
  await waitFor(async () => {
    const now = (await stranger.getData(second)).data;
    return new TextDecoder().decode(now) === new TextDecoder().decode(data);
  }, "the data to be restored");
  await membership.close();
  await server.close();
});

Deno.test("a server whose registration is refused by ZooKeeper exits with code 1 and says why", async () => {
  await using zk = await startZooKeeper();
  await using owner = await ZooKeeperSession.connect(zk.connectionString, {
    auth: AUTH,
  });
  await owner.mkdirp("/rpc");
  await owner.create("/rpc/private", undefined, {
    acl: "creator_all_world_read",
  });
  const start = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "examples/server.ts",
      "127.0.0.1",
      "0",
      "--zookeeper",
      zk.connectionString,
      "--service",
      "private",
    ],
    cwd: new URL("../", import.meta.url),
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 1, stderr);
  assert.match(
    stderr,
    /Cannot register under "\/rpc\/private": Cannot create "\/rpc\/private\/server-.*NO_AUTH/,
  );
  assert.match(new TextDecoder().decode(output.stdout), /closed/);
  // Bound: deno start-up plus one registration attempt.
  // clock-ok: a hang guard for a child process (deno start-up and one registration)
  assert.ok(performance.now() - start < 30_000);
});

Deno.test("a root that grants another team's identity is not 'open': an ACL'd server registers under it without touching it", async () => {
  await using zk = await startZooKeeper();
  await using ops = await ZooKeeperSession.connect(zk.connectionString, {
    auth: "ops:pw",
  });
  // The operators own /rpc; anyone may add a service under it.
  await ops.create("/rpc", undefined, {
    acl: [
      { scheme: "auth", id: "", permissions: ["all"] },
      { scheme: "world", id: "anyone", permissions: ["read", "create"] },
    ],
  });
  const before = await ops.getAcl("/rpc");
  const logs: string[] = [];
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "team-b",
    acl: "creator_all_world_read",
    session: { ...SESSION, auth: "b:pw" },
    log: (message) => logs.push(message),
  });
  await using server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  await within(registrar.registered(), 30_000, "registrar to register");
  assert.deepEqual(logs, []);
  const after = await ops.getAcl("/rpc");
  assert.deepEqual(after.acl, before.acl);
  assert.equal(after.stat.aversion, before.stat.aversion);
  await server.close();
});

Deno.test("a stranger without the digest credential is refused every write that matters: create, delete and setACL on the service path and its members, and rewriting a member", async () => {
  await using zk = await startZooKeeper();
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "calculator",
    acl: "creator_all_world_read",
    session: { ...SESSION, auth: AUTH },
  });
  await using server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  const member = await within(
    registrar.registered(),
    30_000,
    "registrar to register",
  );
  const before = await within(
    ZooKeeperSession.connect(zk.connectionString).then(async (s) => {
      try {
        return (await s.getData(member)).data;
      } finally {
        await s.close();
      }
    }),
    30_000,
    "the member's data",
  );
  // Two strangers: no credential at all, and the right user with a wrong
  // password. Each is a separate ZooKeeper session.
  await using anonymous = await within(
    ZooKeeperSession.connect(zk.connectionString, SESSION),
    30_000,
    "a stranger's session",
  );
  await using impostor = await within(
    ZooKeeperSession.connect(zk.connectionString, {
      ...SESSION,
      auth: "zkrpc:guess",
    }),
    30_000,
    "an impostor's session",
  );
  const refused = (what: string, attempt: () => Promise<unknown>) =>
    assert.rejects(
      within(attempt(), 30_000, what),
      (error: unknown) => isZooKeeperError(error, "NO_AUTH"),
      `${what} was not refused`,
    );
  for (const stranger of [anonymous, impostor]) {
    await refused(
      "creating a member",
      () =>
        stranger.create("/rpc/calculator/server-rogue-", "{}", {
          mode: "ephemeral_sequential",
        }),
    );
    await refused(
      "creating a plain child",
      () => stranger.create("/rpc/calculator/zzz", "{}"),
    );
    await refused("deleting the member", () => stranger.delete(member));
    await refused(
      "deleting the service path",
      () => stranger.delete("/rpc/calculator"),
    );
    await refused(
      "opening the service path's ACL",
      () => stranger.setAcl("/rpc/calculator", "open"),
    );
    await refused(
      "opening the member's ACL",
      () => stranger.setAcl(member, "open"),
    );
    await refused(
      "opening the root's ACL",
      () => stranger.setAcl("/rpc", "open"),
    );
    await refused("rewriting the member's address", () =>
      stranger.setData(
        member,
        JSON.stringify({ host: "127.0.0.1", port: 1 }),
      ));
  }
  // Nothing changed: the member, its data and the only child are intact.
  assert.deepEqual(
    await within(anonymous.getData(member), 30_000, "the member's data")
      .then((node) => node.data),
    before,
  );
  assert.deepEqual(
    await within(
      anonymous.getChildren("/rpc/calculator"),
      30_000,
      "the members",
    ),
    [member.slice("/rpc/calculator/".length)],
  );
  // The credential's holder may: proof the refusals were the ACL's doing.
  await using peer = await within(
    ZooKeeperSession.connect(zk.connectionString, { ...SESSION, auth: AUTH }),
    30_000,
    "a peer's session",
  );
  const other = await within(
    peer.create("/rpc/calculator/server-peer-", "{}", {
      mode: "ephemeral_sequential",
      acl: "creator_all_world_read",
    }),
    30_000,
    "the peer's member",
  );
  await within(peer.delete(other), 30_000, "deleting the peer's member");
  await server.close();
});
