import assert from "node:assert/strict";
import { expireSession, startZooKeeper } from "../testing.ts";
import { getFreePorts } from "../src/testing/free_port.ts";
import {
  isZooKeeperError,
  type WatchEvent,
  ZooKeeperError,
  ZooKeeperSession,
  type ZooKeeperSessionOptions,
} from "../src/zookeeper/session.ts";
import { nextEvent, within } from "./_wait.ts";

const OPTIONS: ZooKeeperSessionOptions = {
  connectTimeout: 5000,
  sessionTimeout: 4000,
  operationTimeout: 5000,
};

const text = (data: Uint8Array | undefined): string =>
  new TextDecoder().decode(data);

/** A promise for the next call of a watch callback. */
function watchOnce(): {
  watch: (event: WatchEvent) => void;
  fired: Promise<WatchEvent>;
} {
  const { promise, resolve } = Promise.withResolvers<WatchEvent>();
  return { watch: resolve, fired: within(promise, 15_000, "a watch to fire") };
}

function hasCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ZooKeeperError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  };
}

Deno.test("ZooKeeperSession against one shared server", async (t) => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(
    zk.connectionString,
    OPTIONS,
  );

  await t.step(
    "ZooKeeperSession connects and reports its session id, password and timeout",
    () => {
      assert.equal(session.state, "connected");
      assert.match(session.sessionId, /^[0-9a-f]{16}$/);
      assert.equal(session.sessionPassword.length, 16);
      assert.equal(session.sessionTimeout, 4000);
      assert.equal(session.connectionString, zk.connectionString);
    },
  );

  await t.step(
    "ZooKeeperSession creates, reads, updates and deletes a node",
    async () => {
      assert.equal(await session.create("/crud", "hello"), "/crud");
      const { data, stat } = await session.getData("/crud");
      assert.equal(text(data), "hello");
      assert.equal(stat.version, 0);
      assert.equal(stat.dataLength, 5);
      assert.equal(stat.ephemeralOwner, undefined);
      assert.equal((await session.setData("/crud", "bye", 0)).version, 1);
      assert.equal(text((await session.getData("/crud")).data), "bye");
      await assert.rejects(
        session.setData("/crud", "x", 0),
        hasCode("BAD_VERSION"),
      );
      await assert.rejects(session.delete("/crud", 0), hasCode("BAD_VERSION"));
      await session.delete("/crud", 1);
      assert.equal(await session.exists("/crud"), undefined);
      await assert.rejects(session.getData("/crud"), hasCode("NO_NODE"));
      await assert.rejects(session.delete("/crud"), hasCode("NO_NODE"));
    },
  );

  await t.step(
    "ZooKeeperSession stores bytes, strings and no data",
    async () => {
      await session.create("/bytes", new Uint8Array([0, 1, 255]));
      assert.deepEqual(
        (await session.getData("/bytes")).data,
        new Uint8Array([0, 1, 255]),
      );
      await session.create("/empty");
      assert.equal((await session.getData("/empty")).data, undefined);
      await session.create("/options-form", {
        data: "via options",
        mode: "persistent",
      });
      assert.equal(
        text((await session.getData("/options-form")).data),
        "via options",
      );
    },
  );

  await t.step(
    "ZooKeeperSession maps server errors to typed codes",
    async () => {
      await session.create("/parent");
      await session.create("/parent/child");
      await assert.rejects(session.create("/parent"), (error: unknown) => {
        assert.ok(isZooKeeperError(error, "NODE_EXISTS"));
        assert.equal(error.path, "/parent");
        assert.match(
          error.message,
          /^Cannot create "\/parent": the node already exists \(NODE_EXISTS\)$/,
        );
        return true;
      });
      await assert.rejects(session.delete("/parent"), hasCode("NOT_EMPTY"));
      await assert.rejects(
        session.create("/missing/child"),
        hasCode("NO_NODE"),
      );
      await assert.rejects(session.getChildren("/missing"), hasCode("NO_NODE"));
      await session.create("/ephemeral-parent", undefined, {
        mode: "ephemeral",
      });
      await assert.rejects(
        session.create("/ephemeral-parent/child"),
        hasCode("NO_CHILDREN_FOR_EPHEMERALS"),
      );
    },
  );

  await t.step(
    "ZooKeeperSession rejects invalid paths with a TypeError",
    async () => {
      await assert.rejects(session.getData("relative"), TypeError);
      await assert.rejects(session.create("/trailing/"), TypeError);
      await assert.rejects(session.mkdirp("//double"), TypeError);
    },
  );

  await t.step(
    "ZooKeeperSession creates sequential nodes with increasing suffixes",
    async () => {
      await session.mkdirp("/rpc/calculator");
      await session.mkdirp("/rpc/calculator"); // idempotent
      const first = await session.create("/rpc/calculator/server", "{}", {
        mode: "ephemeral_sequential",
      });
      const second = await session.create("/rpc/calculator/server", "{}", {
        mode: "persistent_sequential",
      });
      assert.match(first, /^\/rpc\/calculator\/server\d{10}$/);
      assert.ok(second > first);
      const stat = await session.exists(first);
      assert.equal(stat?.ephemeralOwner, session.sessionId);
      assert.deepEqual(
        (await session.getChildren("/rpc/calculator")).sort(),
        [first, second].map((p) => p.split("/").at(-1)),
      );
    },
  );

  await t.step(
    "ZooKeeperSession removes an ephemeral node when its session closes",
    async () => {
      const owner = await ZooKeeperSession.connect(
        zk.connectionString,
        OPTIONS,
      );
      const closed = nextEvent(owner, "closed");
      await session.mkdirp("/members");
      const path = await owner.create("/members/m", "x", {
        mode: "ephemeral_sequential",
      });
      assert.ok(await session.exists(path));
      const gone = watchOnce();
      assert.ok(await session.exists(path, { watch: gone.watch }));
      await owner.close();
      await closed;
      assert.equal(owner.state, "closed");
      assert.deepEqual(await gone.fired, { type: "deleted", path });
      assert.equal(await session.exists(path), undefined);
      await assert.rejects(owner.getData("/"), hasCode("CLOSED"));
      await owner.close(); // idempotent
    },
  );

  await t.step(
    "ZooKeeperSession fires a child watch once and can re-arm it",
    async () => {
      await session.mkdirp("/watched");
      const first = watchOnce();
      assert.deepEqual(
        await session.getChildren("/watched", { watch: first.watch }),
        [],
      );
      await session.create("/watched/a");
      assert.deepEqual(await first.fired, {
        type: "children_changed",
        path: "/watched",
      });
      // The watch fired once: a second change goes unseen until re-armed.
      let calls = 0;
      const counting = watchOnce();
      const countingWatch = (event: WatchEvent) => {
        calls++;
        counting.watch(event);
      };
      assert.deepEqual(
        await session.getChildren("/watched", { watch: countingWatch }),
        ["a"],
      );
      await session.create("/watched/b");
      await counting.fired;
      await session.create("/watched/c");
      await session.getChildren("/watched"); // a round trip, so a stray event would have arrived
      assert.equal(calls, 1);
      const again = watchOnce();
      assert.deepEqual(
        (await session.getChildren("/watched", { watch: again.watch })).sort(),
        ["a", "b", "c"],
      );
      await session.delete("/watched/a");
      assert.equal((await again.fired).type, "children_changed");
    },
  );

  await t.step(
    "ZooKeeperSession fires data and existence watches",
    async () => {
      const created = watchOnce();
      assert.equal(
        await session.exists("/later", { watch: created.watch }),
        undefined,
      );
      await session.create("/later", "1");
      assert.deepEqual(await created.fired, {
        type: "created",
        path: "/later",
      });
      const changed = watchOnce();
      await session.getData("/later", { watch: changed.watch });
      await session.setData("/later", "2");
      assert.deepEqual(await changed.fired, {
        type: "data_changed",
        path: "/later",
      });
    },
  );

  await t.step(
    "ZooKeeperSession protects a node with a creator-only digest ACL",
    async () => {
      await using alice = await ZooKeeperSession.connect(zk.connectionString, {
        ...OPTIONS,
        auth: "alice:secret",
      });
      await using aliceAgain = await ZooKeeperSession.connect(
        zk.connectionString,
        {
          ...OPTIONS,
          auth: ["alice:secret"],
        },
      );
      await using mallory = await ZooKeeperSession.connect(
        zk.connectionString,
        {
          ...OPTIONS,
          auth: "alice:guess",
        },
      );
      await alice.create("/private", "secret", { acl: "creator_all" });
      await alice.create("/public-read", "hi", {
        acl: "creator_all_world_read",
      });
      assert.equal(text((await aliceAgain.getData("/private")).data), "secret");
      await assert.rejects(session.getData("/private"), hasCode("NO_AUTH"));
      await assert.rejects(mallory.getData("/private"), hasCode("NO_AUTH"));
      await assert.rejects(
        mallory.setData("/private", "x"),
        hasCode("NO_AUTH"),
      );
      assert.equal(text((await session.getData("/public-read")).data), "hi");
      await assert.rejects(
        session.setData("/public-read", "x"),
        hasCode("NO_AUTH"),
      );
      await assert.rejects(
        session.create("/unauthenticated", "x", { acl: "creator_all" }),
        hasCode("INVALID_ACL"),
      );
    },
  );

  await t.step(
    "ZooKeeperSession reads and replaces ACLs, and names its own digest ids",
    async () => {
      await using alice = await ZooKeeperSession.connect(zk.connectionString, {
        ...OPTIONS,
        auth: "alice:secret",
      });
      // The digest id ZooKeeper stores: user:base64(sha1("user:password")).
      const sha1 = await crypto.subtle.digest(
        "SHA-1",
        new TextEncoder().encode("alice:secret"),
      );
      const id = `alice:${btoa(String.fromCharCode(...new Uint8Array(sha1)))}`;
      assert.deepEqual(alice.authIds, [id]);
      await alice.create("/acl-demo", "x");
      assert.deepEqual((await session.getAcl("/acl-demo")).acl, [{
        scheme: "world",
        id: "anyone",
        permissions: ["read", "write", "create", "delete", "admin"],
      }]);
      const stat = await alice.setAcl("/acl-demo", "creator_all_world_read", 0);
      assert.equal(stat.aversion, 1);
      const { acl } = await alice.getAcl("/acl-demo");
      assert.deepEqual(acl, [
        {
          scheme: "digest",
          id,
          permissions: ["read", "write", "create", "delete", "admin"],
        },
        { scheme: "world", id: "anyone", permissions: ["read"] },
      ]);
      // Without admin on the node, ZooKeeper masks the digest's hash.
      assert.equal((await session.getAcl("/acl-demo")).acl[0]?.id, "alice:x");
      await assert.rejects(
        session.setAcl("/acl-demo", "open"),
        hasCode("NO_AUTH"),
      );
      await assert.rejects(
        alice.setAcl("/acl-demo", "open", 0),
        hasCode("BAD_VERSION"),
      );
      await assert.rejects(
        alice.setAcl("/acl-demo", [{
          scheme: "world",
          id: "anyone",
          permissions: [],
        }]),
        /grants no permission/,
      );
    },
  );
});

Deno.test("ZooKeeperSession reports expired after expireSession(), its ephemeral nodes are gone and operations reject with SESSION_EXPIRED", async () => {
  await using zk = await startZooKeeper();
  await using observer = await ZooKeeperSession.connect(
    zk.connectionString,
    OPTIONS,
  );
  await using session = await ZooKeeperSession.connect(
    zk.connectionString,
    OPTIONS,
  );
  const path = await session.create("/registered", "x", { mode: "ephemeral" });
  const events: string[] = [];
  for (const type of ["connected", "disconnected", "expired", "closed"]) {
    session.addEventListener(type, () => events.push(type));
  }
  const expired = nextEvent(session, "expired");
  const gone = watchOnce();
  await observer.exists(path, { watch: gone.watch });
  await expireSession(
    zk.connectionString,
    session.sessionId,
    session.sessionPassword,
  );
  await expired;
  assert.equal(session.state, "expired");
  assert.ok(events.includes("expired"));
  assert.deepEqual(await gone.fired, { type: "deleted", path });
  assert.equal(await observer.exists(path), undefined);
  await assert.rejects(session.getData("/"), hasCode("SESSION_EXPIRED"));
  await assert.rejects(session.create("/again"), hasCode("SESSION_EXPIRED"));
  // Callers make a new session.
  await using fresh = await ZooKeeperSession.connect(
    zk.connectionString,
    OPTIONS,
  );
  assert.notEqual(fresh.sessionId, session.sessionId);
  await fresh.create(path, "y", { mode: "ephemeral" });
  await session.close();
  assert.equal(session.state, "closed");
});

Deno.test("ZooKeeperSession.connect() rejects with TIMEOUT after connectTimeout when nothing listens", async () => {
  const [port] = getFreePorts(1);
  const started = Date.now();
  await assert.rejects(
    ZooKeeperSession.connect(`127.0.0.1:${port}`, { connectTimeout: 700 }),
    (error: unknown) => {
      assert.ok(isZooKeeperError(error, "TIMEOUT"));
      assert.match(
        error.message,
        new RegExp(
          `^Cannot connect to ZooKeeper at 127\\.0\\.0\\.1:${port}: no server accepted the session within 700 ms`,
        ),
      );
      return true;
    },
  );
  const elapsed = Date.now() - started;
  // clock-ok: the connect timeout is waited out (lower bound), the upper bound is 10x: a hang guard
  assert.ok(elapsed >= 650 && elapsed < 7000, `took ${elapsed} ms`);
});

Deno.test("ZooKeeperSession.connect() rejects with TIMEOUT when the server accepts TCP but never answers", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  await assert.rejects(
    ZooKeeperSession.connect(`127.0.0.1:${listener.addr.port}`, {
      connectTimeout: 700,
      sessionTimeout: 4000,
    }),
    hasCode("TIMEOUT"),
  );
  listener.close();
  await accepting.catch(() => {});
  for (const conn of accepted) conn.close();
});

Deno.test("ZooKeeperSession operations reject with TIMEOUT after operationTimeout while ZooKeeper is down, and work again when it returns", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(zk.connectionString, {
    ...OPTIONS,
    operationTimeout: 800,
  });
  await session.create("/mine", "x", { mode: "ephemeral" });
  const disconnected = nextEvent(session, "disconnected");
  await zk.kill();
  await disconnected;
  assert.equal(session.state, "disconnected");
  const started = Date.now();
  await assert.rejects(session.getData("/mine"), (error: unknown) => {
    assert.ok(isZooKeeperError(error, "TIMEOUT"));
    assert.match(
      error.message,
      /not connected to ZooKeeper for 800 ms; the request was not sent/,
    );
    return true;
  });
  const elapsed = Date.now() - started;
  // clock-ok: the request timeout is waited out (lower bound), the upper bound is 10x: a hang guard
  assert.ok(elapsed >= 750 && elapsed < 8000, `took ${elapsed} ms`);

  // Back within the session timeout: same session, ephemeral node kept.
  const reconnected = nextEvent(session, "connected");
  await zk.restart();
  await reconnected;
  assert.equal(session.state, "connected");
  assert.equal(text((await session.getData("/mine")).data), "x");
});

Deno.test("ZooKeeperSession operation issued during an outage completes if ZooKeeper returns within operationTimeout", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(zk.connectionString, {
    ...OPTIONS,
    operationTimeout: 8000,
  });
  const disconnected = nextEvent(session, "disconnected");
  await zk.kill();
  await disconnected;
  const pending = session.create("/queued", "q");
  await zk.restart();
  assert.equal(await pending, "/queued");
});

Deno.test("ZooKeeperSession.close() during an outage releases the socket and every timer at once", async () => {
  await using zk = await startZooKeeper();
  const sessions = await Promise.all(
    [0, 1, 2].map(() => ZooKeeperSession.connect(zk.connectionString, OPTIONS)),
  );
  const disconnected = sessions.map((s) => nextEvent(s, "disconnected"));
  await zk.kill();
  await Promise.all(disconnected);
  // Waits for a reconnection that close() cuts short.
  const pending = sessions[0]!.getData("/").then(
    () => assert.fail("should not resolve"),
    (error) => error,
  );
  // Close at different points of the client's reconnect loop.
  for (const [i, delay] of [0, 120, 400].entries()) {
    // sleep-ok: closes at chosen points of the reconnect loop; no event marks them
    await new Promise((resolve) => setTimeout(resolve, delay));
    // close() cuts the reconnect short (it would otherwise go on).
    await within(sessions[i]!.close(), 5000, "close() during a reconnect");
    assert.equal(sessions[i]!.state, "closed");
  }
  assert.ok(isZooKeeperError(await pending, "CLOSED"));
  // The sanitizers fail this test if a socket or timer is left behind.
});

Deno.test("ZooKeeperSession.connect() to a dead address leaks nothing when it times out or is aborted", async () => {
  // There is no session to close() while connecting: the connect's own
  // timeout and its signal are the two ways out, and the sanitizers check
  // that neither leaves a socket or a timer behind.
  const [port] = getFreePorts(1);
  const connecting = ZooKeeperSession.connect(`127.0.0.1:${port}`, {
    connectTimeout: 300,
  });
  await assert.rejects(connecting, hasCode("TIMEOUT"));
  for (const ticks of [0, 1, 10]) {
    const controller = new AbortController();
    const aborted = ZooKeeperSession.connect(`127.0.0.1:${port}`, {
      connectTimeout: 60_000,
      signal: controller.signal,
    });
    for (let i = 0; i < ticks; i++) {
      // sleep-ok: aborts after 0, 1 or 10 event-loop turns: the turns are the scenario
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    controller.abort(new Error("stop"));
    await assert.rejects(within(aborted, 5000, "the aborted connect"), /stop/);
  }
});

Deno.test("ZooKeeperSession gets past a server that accepts TCP but never answers the handshake", async () => {
  await using zk = await startZooKeeper();
  using silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) accepted.push(conn);
  })();
  try {
    // The client picks servers in random order; either way it must connect.
    for (let i = 0; i < 2; i++) {
      await using session = await ZooKeeperSession.connect(
        `127.0.0.1:${silent.addr.port},${zk.connectionString}`,
        { ...OPTIONS, connectTimeout: 6000 },
      );
      assert.equal(session.state, "connected");
      await session.exists("/");
    }
  } finally {
    silent.close();
    await accepting.catch(() => {});
    for (const conn of accepted) conn.close();
  }
});

Deno.test("ZooKeeperSession notices a silent ZooKeeper (stopped, its connection open) and reports disconnected", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(
    zk.connectionString,
    OPTIONS,
  );
  const pid = zk.pid!;
  const disconnected = nextEvent(session, "disconnected");
  // SIGSTOP: the kernel keeps the TCP connection open, nothing answers, as
  // behind a partition. The npm client alone would wait for TCP to give up.
  const stoppedAt = Date.now();
  Deno.kill(pid, "SIGSTOP");
  try {
    await disconnected; // rejects after 15 s, about 4 session timeouts
    assert.equal(session.state, "disconnected");
    // Checked at each ping (a third of the session timeout) once two thirds
    // of it passed without a byte.
    // clock-ok: a lower bound: not before a third of the session timeout
    assert.ok(Date.now() - stoppedAt >= OPTIONS.sessionTimeout! / 3);
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
});
