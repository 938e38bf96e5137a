/**
 * The first hour (issue 12): every configuration mistake gets a fast, clear,
 * catchable error. Validation errors arrive within 1 s (they are synchronous
 * or reject at once); an unreachable ZooKeeper within the configured connect
 * timeout (plus the time to release the socket). Rows about a process that
 * hung or crashed run a real `deno run` child process.
 */
import assert from "node:assert/strict";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperMembership } from "../src/zookeeper/membership.ts";
import { zooKeeperRegistrar } from "../src/zookeeper/registrar.ts";
import {
  isZooKeeperError,
  ZooKeeperSession,
} from "../src/zookeeper/session.ts";
import { serve } from "../src/server/server.ts";
import { main } from "../cli.ts";
import { startZooKeeper } from "../testing.ts";
import { Handlers } from "../examples/calculator.ts";
import { waitFor } from "./_discovery_helpers.ts";
import { zooKeeperChannel } from "../zookeeper.ts";
import { runDeno } from "../src/testing/child_process.ts";

const ROOT = new URL("../", import.meta.url);
/** Validation is synchronous; 1 s is more than 100x what it takes. */
const VALIDATION_BOUND = 1000;

/** Malformed connection strings, the error class, and what the message names. */
const MALFORMED: [string, ErrorConstructor, RegExp][] = [
  ["h:xx", TypeError, /port "xx" in "h:xx" is not a number/],
  ["127.0.0.1:99999", RangeError, /port 99999 .* out of range 1\.\.65535/],
  ["127.0.0.1:-1", TypeError, /port "-1" .* is not a number/],
  ["", TypeError, /connection string is empty/],
  ["a:1,,b:2", TypeError, /empty host in "a:1,,b:2"/],
  ["[::1]:2181", TypeError, /IPv6 addresses are not supported/],
  ["zk:2181/bad/", TypeError, /chroot "\/bad\/" .* not a valid ZooKeeper path/],
  ["zk 1:2181", TypeError, /contains whitespace/],
  [":2181", TypeError, /host "" in ":2181"/],
];

/** Runs `fn`, returns what it threw and how long it took. */
function thrown(fn: () => unknown): { error: unknown; ms: number } {
  const start = performance.now();
  try {
    fn();
  } catch (error) {
    return { error, ms: performance.now() - start };
  }
  throw new Error("expected an error");
}

async function rejected(
  promise: Promise<unknown>,
): Promise<{ error: unknown; ms: number }> {
  const start = performance.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: performance.now() - start };
  }
  throw new Error("expected a rejection");
}

function assertCause(
  error: unknown,
  type: ErrorConstructor,
  message: RegExp,
  ms: number,
  bound = VALIDATION_BOUND,
): void {
  assert.ok(error instanceof type, `${String(error)} is a ${type.name}`);
  assert.match((error as Error).message, message);
  // clock-ok: validation fails fast, before any timeout (the bound is 100x its time)
  assert.ok(ms <= bound, `arrived after ${ms} ms, bound ${bound} ms`);
}

Deno.test("a malformed connection string rejects ZooKeeperSession.connect() at once with a catchable error naming the cause", async () => {
  for (const [connectionString, type, message] of MALFORMED) {
    const { error, ms } = await rejected(
      ZooKeeperSession.connect(connectionString),
    );
    assertCause(error, type, message, ms);
    assert.match((error as Error).message, /^Cannot connect to ZooKeeper: /);
  }
});

Deno.test("a malformed connection string throws synchronously from SessionKeeper, zooKeeperRegistrar and DistributedChannel", () => {
  for (const [connectionString, type, message] of MALFORMED) {
    for (
      const construct of [
        () => new SessionKeeper(connectionString),
        () => zooKeeperRegistrar({ zookeeper: connectionString, service: "s" }),
        () => zooKeeperChannel({ zookeeper: connectionString, service: "s" }),
      ]
    ) {
      const { error, ms } = thrown(construct);
      assertCause(error, type, message, ms);
    }
  }
});

Deno.test("invalid service names, paths and option ranges throw synchronously with the option's name", () => {
  const cases: [() => unknown, ErrorConstructor, RegExp][] = [
    [
      () => zooKeeperRegistrar({ zookeeper: "zk:2181", service: "a/b" }),
      TypeError,
      /service name .* got "a\/b"/,
    ],
    [
      () => zooKeeperRegistrar({ zookeeper: "zk:2181", service: ".." }),
      TypeError,
      /service name/,
    ],
    [
      () => zooKeeperRegistrar({ zookeeper: "zk:2181", path: "/rpc//x" }),
      TypeError,
      /path must be an absolute ZooKeeper path/,
    ],
    [
      () =>
        zooKeeperRegistrar({ zookeeper: "zk:2181", service: "s", root: "rpc" }),
      TypeError,
      /root must be an absolute ZooKeeper path/,
    ],
    [
      () =>
        zooKeeperRegistrar({
          zookeeper: "zk:2181",
          service: "s",
          advertisedPort: 70000,
        }),
      RangeError,
      /advertisedPort must be an integer in 1\.\.65535/,
    ],
    [
      () =>
        zooKeeperRegistrar({
          zookeeper: "zk:2181",
          service: "s",
          advertisedHost: "not a host",
        }),
      TypeError,
      /advertisedHost/,
    ],
    [
      () =>
        zooKeeperRegistrar({ zookeeper: "zk:2181", service: "s", weight: 0 }),
      RangeError,
      /weight must be/,
    ],
    [
      () =>
        zooKeeperRegistrar({
          zookeeper: "zk:2181",
          service: "s",
          acl: "creator_all",
        }),
      TypeError,
      /session\.auth/,
    ],
    [
      () => new SessionKeeper("zk:2181", { sessionTimeout: -1 }),
      RangeError,
      /sessionTimeout must be more than 0/,
    ],
    [
      () => new SessionKeeper("zk:2181", { connectTimeout: Number.NaN }),
      TypeError,
      /connectTimeout must be a number/,
    ],
    [
      () => new SessionKeeper("zk:2181", { auth: "nopassword" }),
      TypeError,
      /auth must be "user:password"/,
    ],
    [
      () =>
        new ZooKeeperMembership(
          undefined as unknown as SessionKeeper,
          "rpc/x",
        ),
      TypeError,
      /path must be an absolute ZooKeeper path/,
    ],
  ];
  for (const [construct, type, message] of cases) {
    const { error, ms } = thrown(construct);
    assertCause(error, type, message, ms);
  }
});

Deno.test("an unknown host rejects at once (a permanent failure), naming ZooKeeper, the connection string and the failure", async () => {
  const connectTimeout = 1000;
  const { error, ms } = await rejected(
    ZooKeeperSession.connect("no-such-host.invalid:2181", { connectTimeout }),
  );
  // UNKNOWN_HOST where the name may be resolved; NOT_PERMITTED under these
  // tests' --allow-net, which denies resolving it.
  assert.ok(isZooKeeperError(error, "UNKNOWN_HOST", "NOT_PERMITTED"));
  assertCause(
    error,
    Error,
    /^Cannot connect to ZooKeeper at no-such-host\.invalid:2181: .*no-such-host\.invalid/,
    ms,
    connectTimeout + 2000, // the socket's release is bounded by 2 s
  );
});

/** Runs a deno subcommand in the repository; bounded by `timeout` ms. */
async function deno(
  args: string[],
  options: { env?: Record<string, string>; timeout?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const start = performance.now();
  const output = await runDeno(args, {
    cwd: ROOT,
    env: options.env,
    timeout: options.timeout ?? 30_000,
  });
  return { ...output, ms: performance.now() - start };
}

Deno.test("the example server with a malformed --zookeeper or --service exits 2 with the cause, not an uncaught RangeError", async () => {
  for (
    const [args, message] of [
      [["--zookeeper", "h:xx"], /port "xx" in "h:xx" is not a number/],
      [["--zookeeper", "127.0.0.1:99999"], /out of range 1\.\.65535/],
      [["--zookeeper", ""], /connection string is empty/],
      [["--service", "a/b"], /service name .* "a\/b"/],
    ] as const
  ) {
    const run = await deno([
      "run",
      "--allow-net=127.0.0.1",
      "examples/server.ts",
      "127.0.0.1",
      "0",
      ...args,
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /Uncaught/);
  }
});

/** Runs the CLI's main() in-process; returns its exit code, stderr and time. */
async function cli(
  args: string[],
): Promise<{ code: number; stderr: string; ms: number }> {
  const lines: string[] = [];
  const error = console.error;
  console.error = (...parts: unknown[]) => lines.push(parts.join(" "));
  const start = performance.now();
  try {
    const code = await main(args);
    return { code, stderr: lines.join("\n"), ms: performance.now() - start };
  } finally {
    console.error = error;
  }
}

Deno.test("the example client with a malformed --zookeeper exits 2 with the cause", async () => {
  const run = await deno([
    "run",
    "--allow-net=127.0.0.1",
    "examples/client.ts",
    "--zookeeper",
    "h:xx",
  ]);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /port "xx" in "h:xx" is not a number/);
  assert.doesNotMatch(run.stderr, /Uncaught/);
});

Deno.test("the CLI with a malformed --zookeeper exits 2 (usage) naming the cause", async () => {
  for (
    const [zookeeper, message] of [
      ["h:xx", /Cannot parse --zookeeper: port "xx" in "h:xx" is not a number/],
      ["", /Cannot parse --zookeeper: the connection string is empty/],
      ["h:0", /Cannot parse --zookeeper: port 0 .* out of range/],
    ] as const
  ) {
    const run = await cli(["ls", "--zookeeper", zookeeper]);
    // clock-ok: validation fails fast, before any timeout (the bound is 100x its time)
    assert.ok(run.ms <= VALIDATION_BOUND);
    assert.equal(run.code, 2);
    assert.match(run.stderr, message);
  }
});

Deno.test("the CLI with an unknown ZooKeeper host exits 3 within its --timeout, naming ZooKeeper, the host and the failure", async () => {
  const zookeeper = "no-such-host.invalid:2181";
  const run = await cli(["ls", "--zookeeper", zookeeper, "--timeout", "1s"]);
  // clock-ok: gives up at --timeout (1 s), not the default 10 s (the bound
  // leaves 5 s for deno's start-up and the socket's release on a loaded host)
  assert.ok(run.ms <= 6000, "--timeout, plus start-up and the socket release");
  assert.equal(run.code, 3);
  assert.match(
    run.stderr,
    /Cannot connect to ZooKeeper at no-such-host\.invalid:2181: .*no-such-host\.invalid/,
  );
});

Deno.test("a server bound to 0.0.0.0 without --allow-sys fails registration naming --allow-sys and advertisedHost, and exits", async () => {
  const run = await deno([
    "run",
    "--allow-net=0.0.0.0,127.0.0.1",
    "examples/server.ts",
    "0.0.0.0",
    "0",
    "--zookeeper",
    "127.0.0.1:1",
  ], { timeout: 20_000 });
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /--allow-sys=networkInterfaces/);
  assert.match(run.stderr, /advertisedHost/);
  assert.match(run.stdout, /closed/);
});

Deno.test("the registrar honours advertisedHost and advertisedPort", async () => {
  await using zk = await startZooKeeper();
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "natted",
    advertisedHost: "10.1.2.3",
    advertisedPort: 31000,
  });
  await using server = serve(Handlers, {
    hostname: "127.0.0.1",
    port: 0,
    registrar,
  });
  const path = await registrar.registered();
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  const { data } = await session.getData(path);
  const member = JSON.parse(new TextDecoder().decode(data));
  assert.equal(member.host, "10.1.2.3");
  assert.equal(member.port, 31000);
  await server.close();
});

Deno.test("ZOOKEEPER_HOSTS is the library's default connection string when readable, and never prompts when not", async () => {
  await using zk = await startZooKeeper();
  const before = Deno.env.get("ZOOKEEPER_HOSTS");
  Deno.env.set("ZOOKEEPER_HOSTS", zk.connectionString);
  try {
    const registrar = zooKeeperRegistrar({ service: "from-env" });
    await using server = serve(Handlers, {
      hostname: "127.0.0.1",
      port: 0,
      registrar,
    });
    const path = await registrar.registered();
    await using session = await ZooKeeperSession.connect(zk.connectionString);
    assert.ok(await session.exists(path));
    await server.close();
  } finally {
    if (before === undefined) Deno.env.delete("ZOOKEEPER_HOSTS");
    else Deno.env.set("ZOOKEEPER_HOSTS", before);
  }
  // Without --allow-env the variable is not read (and nothing prompts).
  const run = await deno([
    "run",
    "--allow-net=127.0.0.1",
    "tests/fixtures/default_zookeeper_hosts.ts",
  ], { env: { ZOOKEEPER_HOSTS: "10.9.9.9:2181" } });
  assert.equal(run.stdout.trim(), "127.0.0.1:2181", run.stderr);
});

Deno.test("a server that cannot reach ZooKeeper logs once that it serves unregistered and why, then again when it registers", async () => {
  await using zk = await startZooKeeper();
  await zk.kill(); // an outage: restart() keeps the port and the data
  const logs: string[] = [];
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "late",
    warnAfter: 500,
    session: { connectTimeout: 1000, sessionTimeout: 4000 },
    log: (message) => logs.push(message),
  });
  await using server = serve(Handlers, {
    hostname: "127.0.0.1",
    port: 0,
    registrar,
  });
  await waitFor(() => logs.length > 0, "the not-registered notice", 5000);
  assert.match(
    logs[0]!,
    new RegExp(
      `serving on 127\\.0\\.0\\.1:${server.addr.port} but not registered under "/rpc/late" after 500 ms: .*ECONNREFUSED`,
    ),
  );
  await zk.restart();
  await registrar.registered();
  await waitFor(() => logs.length > 1, "the registered notice", 5000);
  assert.equal(logs.length, 2, logs.join("\n"));
  assert.match(logs[1]!, /registered under "\/rpc\/late"/);
  await server.close();
});
