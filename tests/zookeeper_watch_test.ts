/**
 * Persistent recursive watches (`ZooKeeperSession.addWatch`, ZooKeeper 3.6+)
 * through zkrpc's ZooKeeper client, against a real ZooKeeper.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper } from "../testing.ts";
import { fourLetterWord } from "../src/testing/four_letter_word.ts";
import {
  type WatchEvent,
  ZooKeeperSession,
  type ZooKeeperSessionOptions,
} from "../src/zookeeper/session.ts";
import { nextEvent, waitFor } from "./_wait.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

const OPTIONS: ZooKeeperSessionOptions = {
  connectTimeout: 5000,
  sessionTimeout: 8000,
  operationTimeout: 5000,
};

Deno.test("addWatch reports the creation, data change and deletion of every node below the path, with its path, until removed", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(
    zk.connectionString,
    OPTIONS,
  );
  await using other = await ZooKeeperSession.connect(
    zk.connectionString,
    OPTIONS,
  );
  await session.mkdirp("/rpc/calc");
  const events: WatchEvent[] = [];
  const watch = await session.addWatch("/rpc/calc", (e) => events.push(e));
  assert.equal(watch.mode, "persistent_recursive");
  const a = await other.create("/rpc/calc/a", "1");
  await other.create("/rpc/calc/a/deep", "2");
  await other.setData(a, "3");
  await other.delete("/rpc/calc/a/deep");
  await other.delete(a);
  await other.create("/rpc/elsewhere", "x");
  await waitFor(() => events.length >= 5, "five events");
  assert.deepEqual(events, [
    { type: "created", path: "/rpc/calc/a" },
    { type: "created", path: "/rpc/calc/a/deep" },
    { type: "data_changed", path: "/rpc/calc/a" },
    { type: "deleted", path: "/rpc/calc/a/deep" },
    { type: "deleted", path: "/rpc/calc/a" },
  ]);
  const watches = async () =>
    Number(
      /zk_watch_count\s+(\d+)/.exec(
        await fourLetterWord({ hostname: "127.0.0.1", port: zk.port }, "mntr"),
      )?.[1],
    );
  // ZooKeeper counts a recursive watch in its data and its child tables.
  assert.ok(await watches() > 0);
  await watch.remove();
  await watch.remove(); // idempotent
  assert.equal(await watches(), 0, "ZooKeeper removed the watch");
  await other.create("/rpc/calc/b", "1");
  // A one-shot read after the create: had the watch been armed, its event
  // would have arrived before this answer.
  await session.getData("/rpc/calc/b");
  assert.equal(events.length, 5);
});

Deno.test("addWatch in a chroot reports paths inside the chroot, calls a watcher added twice once per event, and rejects a bad mode", async () => {
  await using zk = await startZooKeeper();
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp("/prod/rpc");
  await using session = await ZooKeeperSession.connect(
    `${zk.connectionString}/prod`,
    OPTIONS,
  );
  const events: WatchEvent[] = [];
  const watch = (event: WatchEvent) => events.push(event);
  await session.addWatch("/rpc", watch);
  await session.addWatch("/rpc", watch);
  await admin.create("/prod/rpc/x", "1");
  await waitFor(() => events.length > 0, "the event");
  await session.getData("/rpc/x"); // after any second event
  assert.deepEqual(events, [{ type: "created", path: "/rpc/x" }]);
  await assert.rejects(
    session.addWatch("/rpc", watch, {
      mode: "sideways" as "persistent",
    }),
    TypeError,
  );
});

Deno.test("a persistent watch is gone after a reconnection until added again, and ZooKeeper does not replay what was missed", async () => {
  await using zk = await startZooKeeper();
  await using proxy = new TcpProxy({ hostname: "127.0.0.1", port: zk.port });
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp("/w");
  await using session = await ZooKeeperSession.connect(
    `127.0.0.1:${proxy.port}`,
    OPTIONS,
  );
  const events: WatchEvent[] = [];
  const watch = (event: WatchEvent) => events.push(event);
  await session.addWatch("/w", watch);
  const disconnected = nextEvent(session, "disconnected");
  proxy.cut();
  await disconnected;
  await admin.create("/w/missed", "");
  const connected = nextEvent(session, "connected");
  proxy.restore();
  await connected;
  await admin.create("/w/unwatched", "");
  await session.getData("/w/unwatched"); // after its event, had there been one
  assert.deepEqual(events, []);
  await session.addWatch("/w", watch);
  await admin.create("/w/seen", "");
  await waitFor(() => events.length === 1, "the event after re-adding");
  assert.deepEqual(events, [{ type: "created", path: "/w/seen" }]);
});
