/**
 * The example server as a process: SIGTERM (systemd, Kubernetes, `kill`) and
 * SIGINT (Ctrl-C) both deregister it from ZooKeeper before it exits.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper } from "../testing.ts";
import { ServerProcess } from "../src/testing/server_process.ts";
import { ZooKeeperSession } from "../zookeeper.ts";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`examples/server.ts deregisters on ${signal} before it exits`, async () => {
    await using zk = await startZooKeeper();
    await using session = await ZooKeeperSession.connect(zk.connectionString);
    const server = new ServerProcess({
      name: "server",
      zookeeper: zk.connectionString,
      service: "calculator",
    });
    try {
      await server.registered();
    } catch (error) {
      await server.stop("SIGKILL");
      throw error;
    }
    assert.equal((await session.getChildren("/rpc/calculator")).length, 1);
    const started = performance.now();
    // A grace of 10 s before SIGKILL; a graceful close takes milliseconds.
    const status = await server.stop(signal, 10_000);
    assert.equal(status.code, 0, `exited with ${status.code}, not gracefully`);
    assert.ok(server.closedGracefully, 'it printed "closed"');
    // Gone already: a process that died without deregistering would leave
    // its znode until its ZooKeeper session timed out.
    assert.deepEqual(await session.getChildren("/rpc/calculator"), []);
    assert.ok(performance.now() - started < 10_000, "exited within 10 s");
  });
}
