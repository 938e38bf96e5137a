/**
 * Permanent ZooKeeper failures fail at once, naming the cause (a missing
 * chroot, an unknown host, hosts outside `--allow-net`, credentials that
 * ACLs refuse); transient ones (a refused connection) are retried and say
 * so. And one membership per (session, service path), whatever the number
 * of channels. All against a real ZooKeeper.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { NoServersError } from "../mod.ts";
import { serve } from "../src/server/server.ts";
import { Handlers } from "../examples/calculator.ts";
import { startZooKeeper } from "../testing.ts";
import {
  isZooKeeperError,
  type KeeperRetry,
  SessionKeeper,
  zooKeeperChannel,
  zooKeeperRegistrar,
  ZooKeeperSession,
} from "../zookeeper.ts";
import { zooKeeperDiscovery } from "../src/zookeeper/discovery.ts";
import { classifyFailure } from "../src/zookeeper/_failure.ts";
import { ZooKeeperError } from "../src/zookeeper/errors.ts";
import { closedPort } from "./_core_helpers.ts";
import { nextEvent, waitFor, within } from "./_wait.ts";

const HOST = "127.0.0.1";
const SESSION = { sessionTimeout: 4000, connectTimeout: 5000 };
const ROOT = new URL("../", import.meta.url);
const decoder = new TextDecoder();

/** Runs `deno run <flags> <script> …args` from the repository root. */
async function run(
  flags: string[],
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, script, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(60_000), // a hang fails the test, not the run
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

interface ConnectOutcome {
  connect: { code?: string; message: string };
  current: string;
  failure?: string;
}

/** Runs tests/fixtures/zookeeper_connect.ts under `flags`. */
async function connectUnder(
  flags: string[],
  connectionString: string,
): Promise<ConnectOutcome> {
  // A connect timeout far longer than the fixture may run: only a failure
  // classified as permanent ends the connect before it.
  const result = await run(flags, "tests/fixtures/zookeeper_connect.ts", [
    connectionString,
    "20000",
  ]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as ConnectOutcome;
}

Deno.test("a chroot that does not exist fails the connect with NO_CHROOT naming it, and an existing one connects", async () => {
  await using zk = await startZooKeeper();
  const missing = `${zk.connectionString}/prod`;
  await assert.rejects(
    ZooKeeperSession.connect(missing, { connectTimeout: 20_000 }),
    (error: unknown) => {
      assert.ok(isZooKeeperError(error, "NO_CHROOT"), String(error));
      assert.match(error.message, /chroot \/prod does not exist/);
      assert.equal(error.path, "/prod");
      return true;
    },
  );
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.create("/prod");
  await using session = await ZooKeeperSession.connect(missing, SESSION);
  await session.create("/inside");
  assert.ok(await admin.exists("/prod/inside"));
});

Deno.test("a SessionKeeper on a missing chroot gives up at once: failure, a failed event, current() rejects, and a channel says why", async () => {
  await using zk = await startZooKeeper();
  const missing = `${zk.connectionString}/prod`;
  await using keeper = new SessionKeeper(missing, {
    ...SESSION,
    connectTimeout: 20_000,
  });
  const failed = await nextEvent<CustomEvent<Error>>(keeper, "failed");
  assert.ok(isZooKeeperError(failed.detail, "NO_CHROOT"));
  assert.equal(keeper.failure, failed.detail);
  assert.equal(keeper.lastError, failed.detail);
  await assert.rejects(
    within(keeper.current(), 5000, "current() to reject"),
    /chroot \/prod does not exist/,
  );

  // A channel on it fails its call with the cause, not after a timeout.
  await using channel = zooKeeperChannel({
    zookeeper: keeper,
    service: "calculator",
    timeout: 60_000,
    discoveryTimeout: 60_000,
  });
  assert.equal(channel.state, "closed");
  await assert.rejects(
    within(channel.call("divide", [1, 2]), 30_000, "the call to fail"),
    (error: unknown) => {
      assert.ok(error instanceof NoServersError, String(error));
      assert.match(error.message, /chroot \/prod does not exist/);
      return true;
    },
  );
});

Deno.test("zkrpc ls against a missing chroot exits 3 naming the chroot, not 'No services'", async () => {
  await using zk = await startZooKeeper();
  const result = await run(["--allow-net=127.0.0.1", "--allow-env"], "cli.ts", [
    "ls",
    "--zookeeper",
    `${zk.connectionString}/prod`,
  ]);
  assert.equal(result.code, 3, result.stdout + result.stderr);
  assert.match(result.stderr, /chroot \/prod does not exist/);
  assert.doesNotMatch(result.stdout, /No services/);
});

Deno.test("hosts outside --allow-net fail the connect with NOT_PERMITTED and stop the keeper; an allowed host in the same string still connects", async () => {
  await using zk = await startZooKeeper();
  const { port } = zk;
  const denied = await connectUnder(
    ["--allow-net=127.0.0.1", "--allow-read"],
    `127.0.0.2:${port}`,
  );
  assert.equal(denied.connect.code, "NOT_PERMITTED", denied.connect.message);
  assert.match(denied.connect.message, /127\.0\.0\.2/);
  assert.match(denied.connect.message, /--allow-net/);
  assert.equal(denied.failure, "NOT_PERMITTED");
  assert.match(denied.current, /NOT_PERMITTED/);

  // Only when every server is denied: an allowed one is still used.
  const mixed = await connectUnder(
    ["--allow-net=127.0.0.1", "--allow-read"],
    `127.0.0.2:${port},127.0.0.1:${port}`,
  );
  assert.equal(mixed.connect.message, "connected");
  assert.equal(mixed.current, "connected");
});

Deno.test("a host name that does not resolve fails the connect with UNKNOWN_HOST and stops the keeper", async () => {
  const outcome = await connectUnder(
    ["--allow-net=nonexistent.invalid", "--allow-read"],
    "nonexistent.invalid:2181",
  );
  assert.equal(outcome.connect.code, "UNKNOWN_HOST", outcome.connect.message);
  assert.match(outcome.connect.message, /nonexistent\.invalid/);
  assert.equal(outcome.failure, "UNKNOWN_HOST");
  assert.match(outcome.current, /UNKNOWN_HOST/);
});

Deno.test("a refused connection is transient: the keeper says it retries, and connects once ZooKeeper is up", async () => {
  const port = closedPort();
  await using keeper = new SessionKeeper(`${HOST}:${port}`, {
    ...SESSION,
    connectTimeout: 300,
    maxRetryDelay: 200,
  });
  const retry = await nextEvent<CustomEvent<KeeperRetry>>(keeper, "retrying");
  assert.ok(isZooKeeperError(retry.detail.error, "TIMEOUT"));
  assert.match(retry.detail.error.message, /ECONNREFUSED/);
  assert.ok(retry.detail.delay > 0);
  assert.equal(keeper.failure, undefined);
  await using zk = await startZooKeeper({ port });
  const session = await within(keeper.current(), 30_000, "a session");
  assert.equal(session.state, "connected");
  assert.equal(zk.port, port);
});

Deno.test("a registrar whose digest credentials the service path's ACL refuses fails at once with NO_AUTH", async () => {
  await using zk = await startZooKeeper();
  const owner = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "calculator",
    acl: "creator_all_world_read",
    session: { ...SESSION, auth: "zkrpc:s3cret" },
  });
  await using server = serve(Handlers, {
    hostname: HOST,
    port: 0,
    registrar: owner,
  });
  await within(owner.registered(), 30_000, "the owner to register");
  const impostor = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "calculator",
    acl: "creator_all_world_read",
    session: { ...SESSION, auth: "zkrpc:guess" },
  });
  const rogue = serve(Handlers, {
    hostname: HOST,
    port: 0,
    registrar: impostor,
  });
  await assert.rejects(
    within(impostor.registered(), 30_000, "the impostor to fail"),
    (error: unknown) => {
      assert.match(String(error), /NO_AUTH/);
      return true;
    },
  );
  await rogue.finished.catch(() => {});
  await rogue.close();
  await server.close();
});

Deno.test("classifyFailure: what is permanent and what is retried", () => {
  const system = (code: string) =>
    Object.assign(new Error(`connect ${code}`), { code });
  for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN"]) {
    assert.equal(classifyFailure(system(code)).permanent, false, code);
  }
  assert.equal(classifyFailure(system("EPERM")).connectCode, "NOT_PERMITTED");
  assert.equal(
    classifyFailure(new Deno.errors.PermissionDenied("no")).connectCode,
    "NOT_PERMITTED",
  );
  assert.equal(
    classifyFailure(new Deno.errors.NotCapable("no")).connectCode,
    "NOT_PERMITTED",
  );
  assert.equal(
    classifyFailure(system("ENOTFOUND")).connectCode,
    "UNKNOWN_HOST",
  );
  for (
    const code of [
      "AUTH_FAILED",
      "NO_AUTH",
      "INVALID_ACL",
      "NO_CHROOT",
      "UNIMPLEMENTED",
    ] as const
  ) {
    assert.ok(classifyFailure(new ZooKeeperError(code, "x")).permanent, code);
  }
  for (
    const code of [
      "TIMEOUT",
      "CONNECTION_LOSS",
      "SESSION_EXPIRED",
      "CLOSED",
      "NO_NODE",
    ] as const
  ) {
    assert.ok(!classifyFailure(new ZooKeeperError(code, "x")).permanent, code);
  }
  assert.ok(classifyFailure(new TypeError("bad")).permanent);
});

Deno.test("20 channels of one service on one zooKeeperDiscovery() share one membership: no listener warning, one read per member, every channel follows", async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.name);
  process.on("warning", onWarning);
  try {
    await using zk = await startZooKeeper();
    await using discovery = zooKeeperDiscovery({
      zookeeper: zk.connectionString,
      session: SESSION,
    });
    const channels = Array.from(
      { length: 20 },
      () => discovery.channel("calculator", { timeout: 10_000 }),
    );
    try {
      const servers = [];
      for (let i = 0; i < 3; i++) {
        const registrar = discovery.registrar("calculator");
        servers.push(
          serve(Handlers, { hostname: HOST, port: 0, registrar }),
        );
        await within(registrar.registered(), 30_000, `server ${i} registered`);
        await waitFor(
          () => channels.every((c) => c.membership.members.size === i + 1),
          { what: `every channel to see ${i + 1} members`, timeout: 15_000 },
        );
      }
      const results = await Promise.all(
        channels.map((c) => c.call("divide", [1, 4])),
      );
      assert.deepEqual(results, Array(20).fill(0.25));
      await servers[0]?.close();
      await waitFor(
        () => channels.every((c) => c.membership.members.size === 2),
        { what: "every channel to see the removal", timeout: 15_000 },
      );
      const reads = new Set(
        channels.map((c) => (c.membership as { dataReads?: number }).dataReads),
      );
      assert.deepEqual([...reads], [3], "one read per member, shared");
      for (const server of servers) await server.close();
    } finally {
      await Promise.all(channels.map((c) => c.close()));
    }
    // The last channel closed the shared watch: a new one starts afresh.
    const membership = discovery.membership("calculator");
    await waitFor(() => membership.state === "fresh", "a fresh list");
    assert.equal((membership as { dataReads?: number }).dataReads, 0);
    await membership.close();
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(warnings, []);
});

Deno.test("a server whose registrar's chroot does not exist fails at once: registered() rejects naming the chroot and the server closes", async () => {
  await using zk = await startZooKeeper();
  const registrar = zooKeeperRegistrar({
    zookeeper: `${zk.connectionString}/prod`,
    service: "calculator",
    session: SESSION,
  });
  const server = serve(Handlers, { hostname: HOST, port: 0, registrar });
  await assert.rejects(
    within(registrar.registered(), 30_000, "the registration to fail"),
    /chroot \/prod does not exist/,
  );
  await within(
    server.finished.catch(() => {}),
    30_000,
    "the server to close",
  );
  await server.close();
});
