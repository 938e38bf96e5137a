/**
 * The example server as a process: SIGTERM (systemd, Kubernetes, `kill`) and
 * SIGINT (Ctrl-C) both deregister it from ZooKeeper before it exits; a
 * second one while it drains exits at once.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper } from "../testing.ts";
import { lines } from "../src/testing/child_process.ts";
import { ServerProcess } from "../src/testing/server_process.ts";
import { ZooKeeperSession } from "../zookeeper.ts";
import { Connection, ConnectionError } from "../mod.ts";
import { within } from "./_wait.ts";
import { lineMatching } from "./_cli_helpers.ts";

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
    // clock-ok: a hang guard for a child process
    assert.ok(performance.now() - started < 10_000, "exited within 10 s");
  });
}

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`examples/server.ts exits at once with ${code} on a second ${signal} while a call holds the graceful close`, async () => {
    await using zk = await startZooKeeper();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        "examples/server.ts",
        "127.0.0.1",
        "0",
        "--zookeeper",
        zk.connectionString,
        "--delay",
        "600000", // the call in flight would hold the drain for its deadline
      ],
      cwd: new URL("../", import.meta.url),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const output = lines(child.stdout);
    const seen: string[] = [];
    try {
      const listening = await lineMatching(output, /^listening on /, 30_000);
      const [hostname, port] = listening.slice(13).split(":") as [
        string,
        string,
      ];
      await using conn = await Connection.connect({
        hostname,
        port: Number(port),
      }, { connectTimeout: 10_000 });
      const call = conn.call("divide", [1, 2], { timeout: 60_000 });
      call.catch(() => {}); // ends with the process
      // A pong comes after the request on the same stream: it is running.
      await conn.ping(10_000);
      child.kill(signal);
      await lineMatching(output, /^closing: .*again to exit at once/, 30_000);
      child.kill(signal);
      const status = await within(child.status, 30_000, "the process to exit");
      for await (const line of output) seen.push(line);
      assert.equal(status.code, code, await stderr);
      assert.deepEqual(seen, [`${signal} again: exiting without draining`]);
      await assert.rejects(call, ConnectionError, "the call did not finish");
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      await child.status;
      await output.return(undefined);
      await stderr;
    }
  });
}
