/**
 * A channel is handed its discovery: `new DistributedChannel({ discovery,
 * service })` opens one membership of the service and closes it, never the
 * discovery; the ZooKeeper words are not channel options; and
 * `zooKeeperChannel()` owns a session of its own (closed with the channel)
 * or shares one it is given (left open).
 */
import assert from "node:assert/strict";
import { DistributedChannel, serve, StaticMembership } from "../../mod.ts";
import type { Discovery, Membership, MembershipOptions } from "../../extend.ts";
import {
  SessionKeeper,
  zooKeeperChannel,
  zooKeeperDiscovery,
} from "../../zookeeper.ts";
import { startZooKeeper } from "../../testing.ts";
import { within } from "../_wait.ts";

const HOST = "127.0.0.1";

Deno.test("a channel opens one membership of its service from its discovery and closes it, not the discovery", async () => {
  await using server = serve({ who: () => "one" }, { hostname: HOST, port: 0 });
  const opened: [string, MembershipOptions | undefined, Membership][] = [];
  let closedMemberships = 0;
  const discovery: Discovery = {
    membership(service, options) {
      const membership = new StaticMembership([
        { host: HOST, port: server.addr.port },
      ]);
      const close = membership.close.bind(membership);
      membership.close = () => {
        closedMemberships++;
        return close();
      };
      opened.push([service, options, membership]);
      return membership;
    },
  };
  const onInvalidMember = () => {};
  const channel = new DistributedChannel({
    discovery,
    service: "calculator",
    onInvalidMember,
  });
  assert.equal(
    await within(channel.call("who", []), 10_000, "the call"),
    "one",
  );
  assert.equal(opened.length, 1);
  assert.equal(opened[0]![0], "calculator");
  assert.equal(opened[0]![1]?.onInvalidMember, onInvalidMember);
  assert.equal(channel.membership, opened[0]![2]);
  await channel.close();
  assert.equal(closedMemberships, 1);
  // A membership handed in is the caller's: the channel leaves it open.
  const membership = new StaticMembership([]);
  const given = new DistributedChannel({ membership });
  await given.close();
  assert.notEqual(membership.state, "closed");
  await membership.close();
});

Deno.test("a channel without a source, or with the old zookeeper option, fails at once with a TypeError that says what to pass", () => {
  const cases: [unknown, RegExp][] = [
    [
      { service: "calculator" },
      /give `membership`, or `discovery` and `service`/,
    ],
    [
      { discovery: { membership: () => new StaticMembership([]) } },
      /give `membership`, or `discovery` and `service`/,
    ],
    [
      { discovery: {}, service: "calculator" },
      /`discovery` must have a membership\(service, options\) method/,
    ],
    [
      { zookeeper: "127.0.0.1:2181", service: "calculator" },
      /`zookeeper` is no longer a channel option; pass `discovery: zooKeeperDiscovery\(...\)`/,
    ],
  ];
  for (const [options, message] of cases) {
    assert.throws(
      () => new DistributedChannel(options as never),
      (error: unknown) =>
        error instanceof TypeError && message.test(error.message),
      JSON.stringify(options),
    );
  }
});

Deno.test("zooKeeperChannel() closes the session it opened with the channel, and leaves a shared one open", async () => {
  await using zk = await startZooKeeper();
  await using discovery = zooKeeperDiscovery({
    zookeeper: zk.connectionString,
  });
  const registrar = discovery.registrar("calculator");
  await using _server = serve({ who: () => "zk" }, {
    hostname: HOST,
    port: 0,
    registrar,
  });
  await within(registrar.registered(), 30_000, "the registration");

  // Its own session: a call works, and close() leaves nothing open (the
  // test's resource sanitizer fails on a leaked ZooKeeper socket).
  const own = zooKeeperChannel({
    zookeeper: zk.connectionString,
    service: "calculator",
  });
  await within(own.ready({ timeout: 10_000 }), 15_000, "own ready");
  assert.equal(await within(own.call("who", []), 10_000, "own call"), "zk");
  await own.close();

  // A shared keeper and a shared discovery stay open after the channel.
  const keeper = new SessionKeeper(zk.connectionString);
  try {
    for (const zookeeper of [keeper, discovery]) {
      const shared = zooKeeperChannel({ zookeeper, service: "calculator" });
      await within(shared.ready({ timeout: 10_000 }), 15_000, "shared ready");
      assert.equal(await within(shared.call("who", []), 10_000, "call"), "zk");
      await shared.close();
    }
    assert.equal(keeper.closed, false);
    assert.equal(discovery.keeper.closed, false);
  } finally {
    await keeper.close();
  }
  // A bad root fails before anything connects.
  assert.throws(
    () =>
      zooKeeperChannel({
        zookeeper: zk.connectionString,
        service: "s",
        root: "rpc",
      }),
    TypeError,
  );
});
