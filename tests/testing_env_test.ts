/**
 * startZooKeeper() and ZOOKEEPER_HOME. Alone in its file because it sets the
 * variable for the whole process: test:system runs this file after its
 * `--parallel` run, never beside another file's ZooKeeper.
 *
 * @module
 */
import assert from "node:assert/strict";
import { provisionZooKeeper, startZooKeeper } from "../testing.ts";

Deno.test("startZooKeeper() uses ZOOKEEPER_HOME and names it when it holds no jars", async () => {
  const previous = Deno.env.get("ZOOKEEPER_HOME");
  const home = await Deno.makeTempDir({ prefix: "zkrpc-home-" });
  try {
    Deno.env.set("ZOOKEEPER_HOME", home);
    await assert.rejects(
      startZooKeeper(),
      /Cannot start ZooKeeper: ZOOKEEPER_HOME is ".*" but neither it nor its lib\/ directory holds any jar; point it at an unpacked ZooKeeper release or unset it\. To install on /,
    );
    await Deno.mkdir(`${home}/lib`);
    await Deno.symlink(
      "/usr/share/java/zookeeper.jar",
      `${home}/lib/zookeeper-3.8.0.jar`,
    );
    assert.deepEqual((await provisionZooKeeper()).classpath, [
      `${home}/lib/zookeeper-3.8.0.jar`,
    ]);
    await using zk = await startZooKeeper();
    assert.ok(zk.running);
  } finally {
    if (previous === undefined) Deno.env.delete("ZOOKEEPER_HOME");
    else Deno.env.set("ZOOKEEPER_HOME", previous);
    await Deno.remove(home, { recursive: true });
  }
});
