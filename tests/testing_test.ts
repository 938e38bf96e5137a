import assert from "node:assert/strict";
import {
  expireSession,
  startZooKeeper,
  startZooKeeperEnsemble,
} from "../testing.ts";
import { fourLetterWord } from "../src/testing/four_letter_word.ts";
import {
  isZooKeeperError,
  ZooKeeperSession,
} from "../src/zookeeper/session.ts";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperMembership } from "../src/zookeeper/membership.ts";
import { waitFor } from "./_wait.ts";

const SESSION = { sessionTimeout: 4000, operationTimeout: 8000 };

/** Whether a process exists: SIGCONT is harmless to a running one. */
function processExists(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("startZooKeeper() starts a server that answers ruok with imok on a loopback port", async () => {
  await using zk = await startZooKeeper();
  assert.equal(zk.host, "127.0.0.1");
  assert.equal(zk.connectionString, `127.0.0.1:${zk.port}`);
  assert.ok(zk.running);
  const answer = await fourLetterWord(
    { hostname: zk.host, port: zk.port },
    "ruok",
  );
  assert.equal(answer, "imok");
  assert.match(await Deno.readTextFile(zk.logFile), /ZooKeeper|zookeeper/);
});

Deno.test("startZooKeeper() leaves no JVM process and no temporary directory after stop()", async () => {
  const zk = await startZooKeeper();
  const pid = zk.pid;
  assert.ok(pid !== undefined && processExists(pid));
  assert.ok(pathExists(zk.dataDir));
  await zk.stop();
  assert.equal(zk.running, false);
  assert.equal(processExists(pid), false);
  assert.equal(pathExists(zk.dataDir), false);
  assert.equal(pathExists(zk.logFile), false);
  await zk.stop(); // idempotent
});

Deno.test("startZooKeeper() cleans up through await using even when the test body throws", async () => {
  let pid: number | undefined;
  let dataDir = "";
  await assert.rejects(async () => {
    await using zk = await startZooKeeper();
    pid = zk.pid;
    dataDir = zk.dataDir;
    throw new Error("the test failed");
  }, /the test failed/);
  assert.ok(pid !== undefined);
  assert.equal(processExists(pid), false);
  assert.equal(pathExists(dataDir), false);
});

Deno.test("startZooKeeper() restart() after kill() keeps the port and the data", async () => {
  await using zk = await startZooKeeper();
  const port = zk.port;
  {
    await using session = await ZooKeeperSession.connect(
      zk.connectionString,
      SESSION,
    );
    await session.create("/kept", "data");
  }
  const pid = zk.pid!;
  await zk.kill();
  assert.equal(zk.running, false);
  assert.equal(processExists(pid), false);
  await zk.restart();
  assert.equal(zk.port, port);
  assert.ok(zk.running);
  await using session = await ZooKeeperSession.connect(
    zk.connectionString,
    SESSION,
  );
  const { data } = await session.getData("/kept");
  assert.equal(new TextDecoder().decode(data), "data");
});

Deno.test("startZooKeeper() gives two servers different free ports", async () => {
  await using a = await startZooKeeper();
  await using b = await startZooKeeper();
  assert.notEqual(a.port, b.port);
  assert.notEqual(a.dataDir, b.dataDir);
});

Deno.test("startZooKeeper() fails fast with a clear error when the classpath holds no ZooKeeper", async () => {
  const started = Date.now();
  await assert.rejects(
    startZooKeeper({ classpath: ["/usr/share/java/slf4j-api.jar"] }),
    (error: Error) => {
      assert.match(error.message, /^Cannot start ZooKeeper/);
      assert.match(error.message, /JVM exited/);
      assert.match(error.message, /main class/);
      return true;
    },
  );
  // Well before the 30 s startup timeout (a JVM that exits takes about 1 s).
  // clock-ok: fails fast: well before the 30 s startup timeout it would otherwise wait out
  assert.ok(Date.now() - started < 20_000);
  await assert.rejects(
    startZooKeeper({ classpath: "/nonexistent/zookeeper.jar" }),
    /Cannot start ZooKeeper: classpath entry "\/nonexistent\/zookeeper.jar" does not exist/,
  );
});

Deno.test("startZooKeeper() fails fast with a clear error when its port is taken", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const started = Date.now();
  await assert.rejects(
    startZooKeeper({ port }),
    new RegExp(
      `Cannot start ZooKeeper: port ${port} on 127.0.0.1 is already in use`,
    ),
  );
  // clock-ok: fails fast: before the startup timeout (the port check is immediate)
  assert.ok(Date.now() - started < 5_000);
});

Deno.test("startZooKeeper() restart() fails fast with a clear error when another process took the port", async () => {
  await using zk = await startZooKeeper();
  await zk.kill();
  using _thief = Deno.listen({ hostname: "127.0.0.1", port: zk.port });
  const started = Date.now();
  await assert.rejects(zk.restart(), (error: Error) => {
    assert.match(
      error.message,
      new RegExp(
        `^Cannot start ZooKeeper on 127\\.0\\.0\\.1:${zk.port}: the JVM exited with code \\d+ \\(a port is already in use\\)`,
      ),
    );
    assert.match(error.message, /last lines of ZooKeeper's log/);
    return true;
  });
  // clock-ok: fails fast: well before the 30 s startup timeout it would otherwise wait out
  assert.ok(Date.now() - started < 20_000); // not the 30 s startup timeout
  assert.equal(zk.running, false);
});

Deno.test("startZooKeeper() times out with the tail of the log and kills what it started", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zkrpc-fake-java-" });
  try {
    const java = `${dir}/java`;
    await Deno.writeTextFile(
      java,
      `#!/bin/sh\necho "fake ZooKeeper is thinking"\necho "pid $$" >&2\nexec sleep 60\n`,
    );
    await Deno.chmod(java, 0o755);
    const started = Date.now();
    let pid = 0;
    await assert.rejects(
      startZooKeeper({ java, startupTimeout: 1000 }),
      (error: Error) => {
        assert.match(
          error.message,
          /^Cannot start ZooKeeper on 127\.0\.0\.1:\d+: not serving after 1000 ms/,
        );
        assert.match(error.message, /fake ZooKeeper is thinking/);
        pid = Number(/pid (\d+)/.exec(error.message)?.[1]);
        return true;
      },
    );
    // clock-ok: fails fast: 10x its startupTimeout, a hang guard
    assert.ok(Date.now() - started < 10_000); // 10x its startupTimeout
    assert.ok(pid > 0);
    assert.equal(processExists(pid), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startZooKeeper() reports a missing java clearly", async () => {
  await assert.rejects(
    startZooKeeper({ java: "/nonexistent/bin/java" }),
    /Cannot start ZooKeeper: "\/nonexistent\/bin\/java" not found; install a Java runtime/,
  );
});

Deno.test("startZooKeeperEnsemble() keeps serving reads and writes after its leader is killed, and the killed member rejoins after restart()", async () => {
  await using ensemble = await startZooKeeperEnsemble({ size: 3 });
  assert.equal(ensemble.members.length, 3);
  const ports = ensemble.members.map((m) => m.port);
  assert.equal(new Set(ports).size, 3);
  assert.equal(
    ensemble.connectionString,
    ports.map((p) => `127.0.0.1:${p}`).join(","),
  );
  const modes = await Promise.all(ensemble.members.map((m) => m.mode()));
  assert.deepEqual(modes.filter((m) => m === "leader").length, 1);
  assert.deepEqual(modes.filter((m) => m === "follower").length, 2);

  await using session = await ZooKeeperSession.connect(
    ensemble.connectionString,
    SESSION,
  );
  await session.create("/before", "1");
  await session.create("/member", "x", { mode: "ephemeral" });

  const leader = await ensemble.leader();
  const leaderPid = leader.pid!;
  await leader.kill();
  assert.equal(leader.running, false);
  assert.equal(processExists(leaderPid), false);

  const next = await ensemble.leader();
  assert.notEqual(next.id, leader.id);
  // Reads and writes go on through the remaining majority, same session.
  await session.create("/after", "2");
  assert.deepEqual(
    (await session.getChildren("/")).filter((c) => c !== "zookeeper").sort(),
    ["after", "before", "member"],
  );
  assert.equal(session.state, "connected");

  await leader.restart();
  assert.equal(await leader.mode(), "follower");
  // The rejoined member has caught up.
  await using direct = await ZooKeeperSession.connect(
    leader.connectionString,
    SESSION,
  );
  const { data } = await direct.getData("/after");
  assert.equal(new TextDecoder().decode(data), "2");

  // expireSession() works against an ensemble too.
  const expired = new Promise((resolve) =>
    session.addEventListener("expired", resolve, { once: true })
  );
  await expireSession(
    ensemble.connectionString,
    session.sessionId,
    session.sessionPassword,
  );
  await expired;
  assert.equal(session.state, "expired");
  assert.equal(await direct.exists("/member"), undefined);
});

Deno.test("startZooKeeperEnsemble() leaves no JVM process and no temporary directory after stop()", async () => {
  const ensemble = await startZooKeeperEnsemble({ size: 3 });
  const pids = ensemble.members.map((m) => m.pid!);
  assert.ok(pids.every(processExists));
  assert.ok(pathExists(ensemble.dir));
  await ensemble.stop();
  assert.ok(!pids.some(processExists));
  assert.equal(pathExists(ensemble.dir), false);
});

Deno.test("expireSession() rejects a wrong password without touching the session", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(
    zk.connectionString,
    SESSION,
  );
  await assert.rejects(
    expireSession(zk.connectionString, session.sessionId, new Uint8Array(16)),
    /Cannot expire session 0x[0-9a-f]{16}: the server does not know it/,
  );
  // ZooKeeper may drop the session's connection when another one claims its
  // id, but the session itself lives on: the client reconnects to it.
  for (let attempt = 1;; attempt++) {
    try {
      await session.create("/still-alive");
      break;
    } catch (error) {
      if (attempt === 3 || !isZooKeeperError(error, "CONNECTION_LOSS")) {
        throw error;
      }
    }
  }
  assert.equal(session.state, "connected");
});

/**
 * A stand-in ZooKeeper for expireSession(): it grants the session on every
 * connection, and the first `interrupted` ones it drops before answering
 * the close, as when the session's own client takes the session back.
 */
function reclaimingServer(interrupted: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stats = { connections: 0, closes: 0 };
  const granted = new Uint8Array(4 + 40);
  const view = new DataView(granted.buffer);
  view.setInt32(0, 40); // length: protocolVersion, timeOut, id, password
  view.setInt32(8, 4000); // timeOut > 0: granted
  view.setInt32(20, 16);
  const closed = new Uint8Array([
    0,
    0,
    0,
    16,
    0,
    0,
    0,
    1,
    ...new Uint8Array(12),
  ]);
  const serving = (async () => {
    for await (const conn of listener) {
      const n = ++stats.connections;
      try {
        const buffer = new Uint8Array(4096);
        let read = 0;
        while (read < 4 + 45) { // the connect request, 16-byte password
          const got = await conn.read(buffer.subarray(read));
          if (got === null) break;
          read += got;
        }
        await conn.write(granted);
        if (n > interrupted) {
          while (read < 4 + 45 + 12) { // the close request
            const got = await conn.read(buffer.subarray(read));
            if (got === null) break;
            read += got;
          }
          stats.closes++;
          await conn.write(closed);
        }
      } catch {
        // the client went away
      } finally {
        conn.close();
      }
    }
  })();
  return {
    connectionString: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    stats,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving;
    },
  };
}

Deno.test("expireSession() keeps trying while the session's own client takes it back, more than five times, until a close goes through", async () => {
  await using server = reclaimingServer(8);
  await expireSession(server.connectionString, "1a2b", new Uint8Array(16));
  assert.equal(server.stats.connections, 9);
  assert.equal(server.stats.closes, 1);
});

Deno.test("expireSession() gives up at its timeout when every close is interrupted, saying no server closed the session", async () => {
  await using server = reclaimingServer(Infinity);
  await assert.rejects(
    expireSession(server.connectionString, "1a2b", new Uint8Array(16), {
      timeout: 300,
    }),
    (error: Error) =>
      error.message ===
        `Cannot expire session 0x1a2b at ${server.connectionString}: no server closed it`,
  );
  assert.ok(server.stats.connections > 5, `${server.stats.connections} tries`);
  assert.equal(server.stats.closes, 0);
});

Deno.test("startZooKeeperEnsemble() rejects hosts or command prefixes that do not match its size", async () => {
  await assert.rejects(
    startZooKeeperEnsemble({ size: 3, hosts: ["127.0.0.1", "127.0.0.2"] }),
    (error: Error) =>
      error instanceof RangeError &&
      error.message ===
        "Cannot start ZooKeeper ensemble: 2 hosts given for 3 members",
  );
  await assert.rejects(
    startZooKeeperEnsemble({
      hosts: ["127.0.0.1"],
      commandPrefix: [["ip", "netns", "exec", "a"], ["ip"]],
    }),
    (error: Error) =>
      error instanceof RangeError &&
      error.message ===
        "Cannot start ZooKeeper ensemble: 2 command prefixes given for 1 members",
  );
});

Deno.test("startZooKeeperEnsemble({ observers }) adds an observer, and a membership connected to it follows changes written through a voting member", async () => {
  await assert.rejects(
    startZooKeeperEnsemble({ size: 1, observers: 1 }),
    RangeError,
  );
  await using ensemble = await startZooKeeperEnsemble({ observers: 1 });
  assert.equal(ensemble.members.length, 3);
  const [observer] = ensemble.observers;
  assert.ok(observer);
  assert.equal(observer.id, 4);
  assert.equal(await observer.mode(), "observer");
  assert.ok(!ensemble.connectionString.includes(`:${observer.port}`));
  await using writer = await ZooKeeperSession.connect(
    ensemble.connectionString,
  );
  await writer.mkdirp("/rpc/calculator");
  await using keeper = new SessionKeeper(observer.connectionString);
  const membership = new ZooKeeperMembership(keeper, "/rpc/calculator");
  try {
    await waitFor(() => membership.state === "fresh", "the first list");
    const member = await writer.create(
      "/rpc/calculator/server-",
      JSON.stringify({ host: "127.0.0.1", port: 9001 }),
      { mode: "ephemeral_sequential" },
    );
    const id = member.slice("/rpc/calculator/".length);
    await waitFor(
      () => membership.members.has(id),
      "the member via the observer",
    );
    assert.equal(membership.watchMode, "persistent");
    await writer.delete(member);
    await waitFor(() => membership.members.size === 0, "the removal");
  } finally {
    await membership.close();
  }
});
