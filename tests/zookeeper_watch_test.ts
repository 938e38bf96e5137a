/**
 * Persistent recursive watches (`ZooKeeperSession.addWatch`, ZooKeeper 3.6+)
 * through the patched node-zookeeper-client, against a real ZooKeeper.
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
