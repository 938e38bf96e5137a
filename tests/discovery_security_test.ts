/**
 * Discovery over a real 3-node ensemble with a chroot, ZooKeeper digest ACLs,
 * and TLS between channel and servers.
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../src/channel.ts";
import { zooKeeperRegistrar } from "../src/registry/zookeeper_registrar.ts";
import {
  isZooKeeperError,
  ZooKeeperSession,
} from "../src/registry/zookeeper_session.ts";
import { serve } from "../src/server.ts";
import { startZooKeeper, startZooKeeperEnsemble } from "../testing.ts";
import { Handlers } from "../examples/calculator.ts";
import { waitFor } from "./_discovery_helpers.ts";

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
  const path = await registrar.registered();
  assert.match(path, /^\/rpc\/calculator\/server-/);
  await using root = await ZooKeeperSession.connect(ensemble.connectionString);
  assert.ok(await root.exists(`/tenants/blue${path}`), "the node is chrooted");

  await using channel = new DistributedChannel({
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
  await registrar2.registered();
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
  const path = await registrar.registered();

  // Anyone may discover and call.
  await using channel = new DistributedChannel({
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

Deno.test("a TLS server registered with tls: true is called over TLS by the channel", async () => {
  await using zk = await startZooKeeper();
  const dir = new URL("./fixtures/tls/", import.meta.url);
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "secure",
    advertisedHost: "localhost",
    tls: true,
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
  await registrar.registered();
  await using channel = new DistributedChannel({
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
