/**
 * Behavioural promises of README.md and docs/ that no other test pins down,
 * each named after the promise.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Connection } from "../src/client/connection.ts";
import { ConnectionError, ErrorRegistry } from "../src/errors.ts";
import { parseMember } from "../src/discovery/member.ts";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperMembership } from "../src/zookeeper/membership.ts";
import { zooKeeperRegistrar } from "../src/zookeeper/registrar.ts";
import { ZooKeeperSession } from "../src/zookeeper/session.ts";
import { serve } from "../src/server/server.ts";
import { startZooKeeper } from "../testing.ts";
import { startServerProcess } from "./_discovery_helpers.ts";
import { waitFor, within } from "./_wait.ts";
import { zooKeeperChannel } from "../zookeeper.ts";

const HOST = "127.0.0.1";
const SESSION = { sessionTimeout: 4000, connectTimeout: 5000 };

Deno.test("a registered error class comes back with the remote error's data", async () => {
  class QuotaError extends Error {
    data: unknown;
    constructor(message: string, data?: unknown) {
      super(message);
      this.data = data;
    }
  }
  await using server = serve({
    spend(): never {
      throw new QuotaError("Quota exceeded", { limit: 10, used: 11n });
    },
    plain(): never {
      throw new QuotaError("No data");
    },
  }, { hostname: HOST });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { errors: new ErrorRegistry().register(QuotaError) },
  );
  await assert.rejects(conn.call("spend", []), (error: unknown) => {
    assert.ok(error instanceof QuotaError);
    assert.equal(error.message, "Quota exceeded");
    assert.deepEqual(error.data, { limit: 10, used: 11n });
    return true;
  });
  await assert.rejects(conn.call("plain", []), (error: unknown) => {
    assert.ok(error instanceof QuotaError);
    assert.equal(error.data, undefined);
    return true;
  });
});

Deno.test("ZooKeeper discovery promises", async (t) => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(zk.connectionString);

  await t.step(
    "each member's data is read once, not on every change",
    async () => {
      await session.mkdirp("/rpc/readonce");
      await using keeper = new SessionKeeper(zk.connectionString, SESSION);
      const membership = new ZooKeeperMembership(keeper, "/rpc/readonce", {
        onInvalidMember: () => {},
      });
      try {
        const add = (port: number) =>
          session.create(
            "/rpc/readonce/server-",
            JSON.stringify({ host: HOST, port }),
            { mode: "ephemeral_sequential" },
          );
        await add(9001);
        await add(9002);
        await waitFor(() => membership.members.size === 2, "two members");
        assert.equal(membership.dataReads, 2);
        // Each change lists the children again; only the new one is read.
        for (const port of [9003, 9004, 9005]) {
          await add(port);
          await waitFor(
            () => membership.members.size === port - 9000,
            `member ${port}`,
          );
        }
        assert.equal(membership.dataReads, 5);
        // An unusable member is read once too, and a removal reads nothing.
        await session.create("/rpc/readonce/junk", "not json");
        const [first] = [...membership.members.keys()];
        await session.delete(`/rpc/readonce/${first}`);
        await waitFor(() => membership.members.size === 4, "the removal");
        await add(9006);
        await waitFor(() => membership.members.size === 5, "member 9006");
        assert.equal(membership.dataReads, 7);
      } finally {
        await membership.close();
      }
    },
  );

  await t.step(
    "a server bound to 0.0.0.0 registers a reachable host and its real port, or says why it cannot",
    async () => {
      const sys = Deno.permissions.querySync({
        name: "sys",
        kind: "networkInterfaces",
      });
      for (const bound of ["0.0.0.0", "::"]) {
        const registrar = zooKeeperRegistrar({
          zookeeper: zk.connectionString,
          service: "wildcard",
          session: SESSION,
          log: () => {},
        });
        const addr = { transport: "tcp" as const, hostname: bound, port: 9123 };
        if (sys.state !== "granted") {
          // Never a wildcard or a guess: a clear error naming both ways out.
          await assert.rejects(
            registrar.register(addr),
            (e: unknown) =>
              e instanceof Deno.errors.NotCapable &&
              e.message.includes(`bound to "${bound}"`) &&
              /--allow-sys=networkInterfaces/.test(e.message) &&
              /advertisedHost/.test(e.message),
          );
          continue;
        }
        const registration = await within(
          registrar.register(addr),
          30_000,
          `the ${bound} registration`,
        );
        try {
          const path = await within(
            registrar.registered(),
            30_000,
            `the ${bound} server to register`,
          );
          const member = parseMember((await session.getData(path)).data);
          assert.equal(member.port, 9123);
          assert.notEqual(member.host, bound);
          assert.ok(member.host !== "0.0.0.0" && member.host !== "::");
        } finally {
          await registration.deregister();
        }
      }
      // advertisedHost wins over the bound address.
      const registrar = zooKeeperRegistrar({
        zookeeper: zk.connectionString,
        service: "wildcard",
        advertisedHost: "calc.example",
        session: SESSION,
      });
      const registration = await registrar.register({
        transport: "tcp",
        hostname: "0.0.0.0",
        port: 9124,
      });
      try {
        const path = await within(
          registrar.registered(),
          30_000,
          "registration",
        );
        const member = parseMember((await session.getData(path)).data);
        assert.deepEqual([member.host, member.port], ["calc.example", 9124]);
      } finally {
        await registration.deregister();
      }
    },
  );

  await t.step(
    "a SIGKILLed server's idempotent calls in flight fail over: none fails",
    async () => {
      // The victim answers after 10 s, the others after 100 ms: when the first
      // answer comes back, the victim's requests were written long before and
      // are still running there.
      const fast = ["--delay", "100"];
      await using a = await startServerProcess(
        zk.connectionString,
        "inflight",
        fast,
      );
      await using victim = await startServerProcess(
        zk.connectionString,
        "inflight",
        ["--delay", "10000"],
      );
      await using c = await startServerProcess(
        zk.connectionString,
        "inflight",
        fast,
      );
      await using channel = zooKeeperChannel({
        zookeeper: zk.connectionString,
        service: "inflight",
        idempotent: ["divide"],
        balancer: "round-robin",
        session: SESSION,
        timeout: 30_000,
      });
      await waitFor(() => channel.endpoints().length === 3, "three endpoints");
      // Every other call is declared not idempotent: those on the victim must
      // fail as "may have run", which proves that calls were in flight there.
      const calls = Array.from(
        { length: 30 },
        (_, i) => channel.call("divide", [i, 1], { idempotent: i % 2 === 0 }),
      );
      await within(Promise.any(calls), 10_000, "a first answer");
      await victim.stop("SIGKILL");
      const results = await within(
        Promise.allSettled(calls),
        30_000,
        "the calls to end",
      );
      const idempotent = results.filter((_, i) => i % 2 === 0);
      const others = results.filter((_, i) => i % 2 === 1);
      assert.deepEqual(
        idempotent.map((r) => r.status === "fulfilled" ? r.value : r.reason),
        Array.from({ length: 15 }, (_, i) => 2 * i),
      );
      const lost = others.filter((r) => r.status === "rejected");
      assert.ok(lost.length >= 3, `${lost.length} non-idempotent calls lost`);
      for (const r of lost) {
        const error = (r as PromiseRejectedResult).reason;
        assert.ok(
          error instanceof ConnectionError && error.written,
          String(error),
        );
      }
      for (const server of [a, c]) {
        const endpoint = channel.endpoints().find((e) =>
          e.key === `${HOST}:${server.port}`
        );
        assert.ok(endpoint!.calls >= 10, `${server.port}: ${endpoint!.calls}`);
      }
    },
  );
});
