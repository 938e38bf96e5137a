/**
 * The `zkrpc` command line, run as a subprocess against a real ZooKeeper
 * and real server processes, including every error path.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper, type ZooKeeperServer } from "../testing.ts";
import { lines } from "../src/testing/child_process.ts";
import { ServerProcess } from "../src/testing/server_process.ts";
import { closedPort } from "./_core_helpers.ts";
import { PROTOCOL_VERSION } from "../src/protocol/frame.ts";
import { serve, withContext } from "../mod.ts";
import { zooKeeperRegistrar, ZooKeeperSession } from "../zookeeper.ts";
import { within } from "./_wait.ts";
import { lineMatching, spawnZkrpc, zkrpc } from "./_cli_helpers.ts";

/** A ZooKeeper and `count` example servers registered in "calculator". */
async function cluster(count: number): Promise<
  AsyncDisposable & { zk: ZooKeeperServer; servers: ServerProcess[] }
> {
  const zk = await startZooKeeper();
  const servers: ServerProcess[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      servers.push(server(zk, `server-${i}`));
    }
    await within(
      Promise.all(servers.map((s) => s.registered())),
      30_000,
      "the servers to register",
    );
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop("SIGKILL")));
    await zk.stop();
    throw error;
  }
  return {
    zk,
    servers,
    async [Symbol.asyncDispose]() {
      await Promise.all(servers.map((s) => s.stop("SIGTERM")));
      await zk.stop();
    },
  };
}

function server(
  zk: ZooKeeperServer,
  name: string,
  args: string[] = [],
): ServerProcess {
  return new ServerProcess({
    name,
    zookeeper: zk.connectionString,
    service: "calculator",
    args,
  });
}

Deno.test("zkrpc --help and each command's --help print usage and exit 0", async () => {
  for (
    const args of [
      ["--help"],
      ["help"],
      ["help", "call"],
      ["ls", "--help"],
      ["watch", "--help"],
      ["call", "-h"],
      ["describe", "--help"],
      ["health", "--help"],
      ["help", "describe"],
    ]
  ) {
    const run = await zkrpc(args);
    assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stdout, /Usage: zkrpc/);
    assert.match(run.stdout, /Exit codes:/);
    // The help itself must not do what it warns of: no control or format
    // character (an escape, a right-to-left override) but line ends.
    assert.doesNotMatch(
      run.stdout,
      // deno-lint-ignore no-control-regex -- the controls are what it looks for
      /[\x00-\x09\x0b-\x1f\x7f-\x9f\p{Cf}]/u,
      args.join(" "),
    );
  }
  const help = await zkrpc(["--help"]);
  assert.match(help.stdout, /escaped \(\\x1b, \\u202e\.\.\.\)/);
});

Deno.test("zkrpc with a wrong command, flag or argument count exits 2 with a hint", async () => {
  const cases: [string[], RegExp][] = [
    [[], /Usage: zkrpc/],
    [["frobnicate"], /Cannot run "frobnicate": unknown command/],
    [["ls", "--bogus"], /Cannot run "zkrpc ls": Unknown option '--bogus'/],
    [["watch"], /Cannot watch: expected one SERVICE, got 0/],
    [["call", "calculator"], /Cannot call: expected SERVICE and METHOD/],
    [["describe"], /Cannot describe: expected one SERVICE, got 0/],
    [["health"], /Cannot health: expected one SERVICE, got 0/],
    [["describe", "a", "b"], /Cannot describe: expected one SERVICE, got 2/],
    [["describe", "bad/name"], /service name must match/],
    [
      ["ls", "--timeout", "soon"],
      /Cannot parse --timeout: expected a duration/,
    ],
    [["watch", "calculator", "--count", "0"], /Cannot parse --count/],
    [["ls", "bad/name"], /service name must match/],
  ];
  for (const [args, message] of cases) {
    const run = await zkrpc(args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr + run.stdout, message);
  }
});

Deno.test("zkrpc call with an argument that is not JSON exits 2 and shows how to quote it", async () => {
  const run = await zkrpc(["call", "calculator", "greet", "Ada"]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /Cannot parse argument 1: not JSON: "Ada"/);
  assert.match(run.stderr, /quote strings: '"Ada"'/);
});

Deno.test("zkrpc ls, watch and call exit 3 when ZooKeeper is unreachable", async () => {
  const zookeeper = `127.0.0.1:${closedPort()}`;
  for (
    const [args, what] of [
      [["ls"], "list services"],
      [["ls", "calculator"], 'list service "calculator"'],
      [["watch", "calculator"], 'watch service "calculator"'],
      [
        ["call", "calculator", "divide", "1", "2"],
        'call method "divide" of service "calculator"',
      ],
      [["describe", "calculator"], 'describe service "calculator"'],
    ] as const
  ) {
    const run = await within(
      zkrpc([
        ...args,
        "--zookeeper",
        zookeeper,
        "--timeout",
        "500ms",
      ]),
      5000,
      "gave up within --timeout",
    );
    assert.equal(run.code, 3, `${args.join(" ")}: ${run.stderr}`);
    assert.ok(
      run.stderr.includes(
        `Cannot ${what}: ZooKeeper at ${zookeeper} is unreachable`,
      ),
      run.stderr,
    );
  }
});

Deno.test("zkrpc ls lists services and each server's registered data", async () => {
  await using c = await cluster(2);
  const zookeeper = c.zk.connectionString;
  const human = await zkrpc(["ls", "--zookeeper", zookeeper]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(
    human.stdout,
    /^calculator {2}2 servers {2}\(\/rpc\/calculator\)/m,
  );
  for (const s of c.servers) {
    assert.ok(
      human.stdout.includes(`${s.address}  pid ${s.pid}`),
      human.stdout,
    );
  }

  const json = await zkrpc(["ls", "calculator", "--json"], {
    env: { ZOOKEEPER_HOSTS: zookeeper },
  });
  assert.equal(json.code, 0, json.stderr);
  const listing = JSON.parse(json.stdout);
  assert.equal(listing.zookeeper, zookeeper);
  assert.equal(listing.services.length, 1);
  const members = listing.services[0].members;
  assert.deepEqual(
    members.map((m: { data: { host: string; port: number } }) =>
      `${m.data.host}:${m.data.port}`
    ).sort(),
    c.servers.map((s) => s.address).sort(),
  );
  const probed = await zkrpc(["ls", "--probe", "--zookeeper", zookeeper]);
  assert.equal(probed.code, 0, probed.stderr);
  assert.equal(probed.stdout.match(/probe ok [\d.]+ ms/g)?.length, 2);
  for (const member of members) {
    assert.match(member.id, /^server-/);
    assert.match(member.session, /^[0-9a-f]{16}$/);
    assert.equal(member.data.protocol, PROTOCOL_VERSION);
    assert.ok(c.servers.some((s) => s.pid === member.data.pid));
  }
});

Deno.test("zkrpc ls of an unknown service exits 4 and names the known ones", async () => {
  await using c = await cluster(1);
  const run = await zkrpc([
    "ls",
    "calculater",
    "--zookeeper",
    c.zk.connectionString,
  ]);
  assert.equal(run.code, 4);
  assert.match(
    run.stderr,
    /Cannot list service "calculater": no such service under \/rpc/,
  );
  assert.match(run.stderr, /Known services: calculator/);
});

Deno.test("zkrpc ls and call exit 4 for a service whose servers all left", async () => {
  await using c = await cluster(1);
  await c.servers[0]!.stop("SIGTERM"); // deregisters; /rpc/calculator stays
  const zookeeper = c.zk.connectionString;
  const listed = await zkrpc(["ls", "calculator", "--zookeeper", zookeeper]);
  assert.equal(listed.code, 4);
  assert.match(listed.stdout, /calculator {2}0 servers/);
  assert.match(listed.stderr, /no servers registered/);
  const called = await zkrpc([
    "call",
    "calculator",
    "divide",
    "1",
    "2",
    "--zookeeper",
    zookeeper,
  ]);
  assert.equal(called.code, 4);
  assert.match(
    called.stderr,
    /Cannot call method "divide" of service "calculator": no servers registered/,
  );
});

Deno.test("zkrpc call prints the result as JSON and exits 0", async () => {
  await using c = await cluster(2);
  const run = await zkrpc([
    "call",
    "calculator",
    "divide",
    "10",
    "4",
    "--zookeeper",
    c.zk.connectionString,
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout), 2.5);
  const negative = await zkrpc([
    "call",
    "calculator",
    "divide",
    "-9",
    "2",
    "--zookeeper",
    c.zk.connectionString,
    "--json",
  ]);
  assert.equal(negative.code, 0, negative.stderr);
  assert.equal(negative.stdout, "-4.5\n");
  // JSON on the wire for debugging: the same answer.
  const json = await zkrpc([
    "call",
    "calculator",
    "divide",
    "10",
    "4",
    "--zookeeper",
    c.zk.connectionString,
    "--codec",
    "json",
  ]);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout), 2.5);
});

Deno.test("zkrpc call --codec with an unknown name exits 2 naming the codecs", async () => {
  const run = await zkrpc([
    "call",
    "calculator",
    "divide",
    "1",
    "2",
    "--codec",
    "xml",
  ]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /unknown codec "xml", expected json or msgpack/);
});

Deno.test("zkrpc call exits 5 with DeadlineExceededError when the call outlives --timeout", async () => {
  await using zk = await startZooKeeper();
  // The reply would come after 60 s: well past 10x the time the command
  // takes to give up after its 1 s timeout, even on a loaded machine.
  const slow = server(zk, "slow", ["--delay", "60000"]);
  try {
    await within(slow.registered(), 30_000, "the slow server to register");
    const run = await within(
      zkrpc([
        "call",
        "calculator",
        "divide",
        "1",
        "2",
        "--timeout",
        "1s",
        "--zookeeper",
        zk.connectionString,
      ]),
      30_000,
      "did not wait for the reply",
    );
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, /^DeadlineExceededError: /);
  } finally {
    await slow.stop("SIGKILL"); // its call would hold a graceful close
  }
});

Deno.test("zkrpc call exits 4 when every registered server is dead", async () => {
  await using c = await cluster(1);
  await c.servers[0]!.stop("SIGKILL"); // its znode stays until session expiry
  const run = await zkrpc([
    "call",
    "calculator",
    "divide",
    "1",
    "2",
    "--timeout",
    "2s",
    "--zookeeper",
    c.zk.connectionString,
  ]);
  assert.equal(run.code, 4, run.stderr);
  assert.match(
    run.stderr,
    /^NoServersError: Cannot call method "divide": no live servers for service "calculator"/,
  );
  assert.match(
    run.stderr,
    /stays registered until its ZooKeeper session expires/,
  );
  const probed = await zkrpc([
    "ls",
    "calculator",
    "--probe",
    "--zookeeper",
    c.zk.connectionString,
  ]);
  assert.equal(probed.code, 4, probed.stderr);
  assert.match(probed.stdout, /calculator {2}1 server/);
  assert.match(
    probed.stdout,
    /probe FAILED: Cannot connect to 127\.0\.0\.1:\d+/,
  );
});

Deno.test("zkrpc call reports a remote InvalidOperation by name and exits 1", async () => {
  await using c = await cluster(1);
  const zookeeper = c.zk.connectionString;
  const args = [
    "call",
    "calculator",
    "divide",
    "1",
    "0",
    "--zookeeper",
    zookeeper,
  ];
  const human = await zkrpc(args);
  assert.equal(human.code, 1);
  assert.equal(human.stdout, "");
  assert.equal(
    human.stderr.trim(),
    "InvalidOperation: Cannot divide 1 by zero",
  );
  const json = await zkrpc([...args, "--json"]);
  assert.equal(json.code, 1);
  assert.deepEqual(JSON.parse(json.stdout), {
    error: {
      name: "InvalidOperation",
      message: "Cannot divide 1 by zero",
      exitCode: 1,
    },
  });
});

Deno.test("zkrpc call of a method the server does not have exits 1 with MethodNotFoundError", async () => {
  await using c = await cluster(1);
  const run = await zkrpc([
    "call",
    "calculator",
    "multiply",
    "2",
    "3",
    "--zookeeper",
    c.zk.connectionString,
  ]);
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /^MethodNotFoundError: Cannot call method "multiply": method not found/,
  );
});

Deno.test("zkrpc call of an unknown service exits 4 without calling anything", async () => {
  await using c = await cluster(1);
  const run = await zkrpc([
    "call",
    "calculater",
    "divide",
    "1",
    "2",
    "--zookeeper",
    c.zk.connectionString,
  ]);
  assert.equal(run.code, 4);
  assert.match(
    run.stderr,
    /Cannot call method "divide" of service "calculater": no such service under \/rpc/,
  );
});

Deno.test("zkrpc watch prints the servers, then joins and leaves as they happen", async () => {
  await using c = await cluster(1);
  const watcher = spawnZkrpc([
    "watch",
    "calculator",
    "--json",
    "--count",
    "2",
    "--duration",
    "20s",
    "--zookeeper",
    c.zk.connectionString,
  ], { permissions: ["--allow-net=127.0.0.1"] });
  const stderr = new Response(watcher.stderr).text();
  const events: { type: string; id?: string; member?: { port: number } }[] = [];
  let joiner: ServerProcess | undefined;
  for await (const line of lines(watcher.stdout)) {
    const event = JSON.parse(line);
    events.push(event);
    if (event.type === "members") {
      assert.equal(event.members.length, 1);
      joiner = server(c.zk, "joiner");
    } else if (event.type === "added") {
      await joiner!.stop("SIGTERM");
    }
  }
  const status = await watcher.status;
  assert.equal(status.code, 0, await stderr);
  await stderr;
  assert.deepEqual(events.map((e) => e.type), ["members", "added", "removed"]);
  const port = Number(joiner!.address!.split(":")[1]);
  assert.equal(events[1]!.member!.port, port);
  assert.equal(events[2]!.member!.port, port);
  assert.equal(events[1]!.id, events[2]!.id);
});

Deno.test("zkrpc watch stops after --duration and notes a service that does not exist yet", async () => {
  await using zk = await startZooKeeper();
  const run = await within(
    zkrpc([
      "watch",
      "nothing-here",
      "--duration",
      "700ms",
      "--zookeeper",
      zk.connectionString,
    ]),
    10_000,
    "the command to finish",
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /nothing-here: 0 servers/);
  assert.match(run.stderr, /service "nothing-here" does not exist yet/);
});

Deno.test("zkrpc describe lists each method with its parameter count, the protocol, codec and registered data", async () => {
  await using c = await cluster(1);
  const zookeeper = c.zk.connectionString;
  const human = await zkrpc([
    "describe",
    "calculator",
    "--zookeeper",
    zookeeper,
  ]);
  assert.equal(human.code, 0, human.stderr);
  const address = c.servers[0]!.address!;
  assert.equal(
    human.stdout.split("\n").slice(0, 2).join("\n"),
    `calculator: 1 method (protocol ${PROTOCOL_VERSION}, codec msgpack, json, ${address})\n  divide  2 params`,
  );
  assert.match(human.stdout, new RegExp(`pid=${c.servers[0]!.pid}`));
  const json = await zkrpc([
    "describe",
    "calculator",
    "--json",
    "--zookeeper",
    zookeeper,
  ]);
  assert.equal(json.code, 0, json.stderr);
  const description = JSON.parse(json.stdout);
  assert.equal(description.service, "calculator");
  assert.equal(description.protocol, PROTOCOL_VERSION);
  assert.equal(description.codec, "msgpack, json");
  assert.deepEqual(description.methods, [{ name: "divide", params: 2 }]);
  assert.equal(
    `${description.member.host}:${description.member.port}`,
    address,
  );
});

Deno.test("zkrpc describe of an unknown service exits 4", async () => {
  await using zk = await startZooKeeper();
  const run = await zkrpc([
    "describe",
    "calculater",
    "--zookeeper",
    zk.connectionString,
  ]);
  assert.equal(run.code, 4, run.stderr);
  assert.match(
    run.stderr,
    /Cannot describe service "calculater": no such service under \/rpc/,
  );
});

Deno.test("zkrpc call with a missing argument exits 2 within --timeout, names the count and sends nothing", async () => {
  await using c = await cluster(1);
  const run = await within(
    zkrpc([
      "call",
      "calculator",
      "divide",
      "10",
      "--timeout",
      "5s",
      "--zookeeper",
      c.zk.connectionString,
    ]),
    10_000,
    "well within 2 x --timeout",
  );
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, "", "no result printed");
  assert.match(
    run.stderr,
    /^zkrpc: Cannot call method "divide" of service "calculator": missing argument: "divide" takes at least 2 arguments, got 1 \(nothing was sent\)\n/,
  );
  assert.match(run.stderr, /zkrpc describe calculator/);
});

/** A server in this process with optional, rest and context parameters. */
async function optionalsServer(zookeeper: string, calls: string[]) {
  const registrar = zooKeeperRegistrar({ zookeeper, service: "optionals" });
  const server = serve({
    greet: (name: string, greeting = "Hello") => {
      calls.push("greet");
      return `${greeting}, ${name}`;
    },
    sum: (...xs: number[]) => xs.reduce((a, b) => a + b, 0),
    between: withContext((_ctx, from: number, to: number) => to - from),
  }, { hostname: "127.0.0.1", registrar });
  await registrar.registered();
  return server;
}

Deno.test("zkrpc call checks a minimum for optional and rest parameters and the arguments of withContext handlers", async () => {
  await using zk = await startZooKeeper();
  const calls: string[] = [];
  await using _server = await optionalsServer(zk.connectionString, calls);
  const run = (...args: string[]) =>
    zkrpc(["call", "optionals", ...args, "--zookeeper", zk.connectionString]);
  const described = await zkrpc([
    "describe",
    "optionals",
    "--json",
    "--zookeeper",
    zk.connectionString,
  ]);
  assert.deepEqual(JSON.parse(described.stdout).methods, [
    { name: "greet", params: 1 },
    { name: "sum", params: 0 },
    { name: "between", params: 2 },
  ]);
  const greet = await run("greet", '"Ada"');
  assert.equal(greet.code, 0, greet.stderr);
  assert.equal(JSON.parse(greet.stdout), "Hello, Ada");
  const greet2 = await run("greet", '"Ada"', '"Hi"');
  assert.equal(JSON.parse(greet2.stdout), "Hi, Ada");
  const sum = await run("sum");
  assert.equal(sum.code, 0, sum.stderr);
  assert.equal(JSON.parse(sum.stdout), 0);
  const missing = await run("greet");
  assert.equal(missing.code, 2);
  assert.deepEqual(calls, ["greet", "greet"], "the call was not sent");
  assert.match(missing.stderr, /"greet" takes at least 1 argument, got 0/);
  const context = await run("between", "1");
  assert.equal(context.code, 2);
  assert.match(context.stderr, /"between" takes at least 2 arguments, got 1/);
  const unchecked = await run("between", "1", "--no-check");
  assert.equal(unchecked.code, 0, unchecked.stderr);
  assert.equal(unchecked.stdout.trim(), "null", "NaN, sent without the check");
  const unknown = await run("nothing", "1");
  assert.equal(unknown.code, 1);
  assert.match(
    unknown.stderr,
    /^MethodNotFoundError: Cannot call method "nothing": method not found\nMethods of service "optionals": greet, sum, between\n$/,
  );
});

Deno.test("zkrpc watch on an existing empty service prints its 0 servers first and no state note", async () => {
  await using zk = await startZooKeeper();
  {
    await using session = await ZooKeeperSession.connect(zk.connectionString);
    await session.mkdirp("/rpc/empty");
  }
  for (const json of [false, true]) {
    const run = await within(
      zkrpc([
        "watch",
        "empty",
        "--duration",
        "1s",
        "--zookeeper",
        zk.connectionString,
        ...(json ? ["--json"] : []),
      ]),
      10_000,
      "the command to finish",
    );
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.equal(lines.length, 1, run.stdout);
    if (json) {
      assert.deepEqual(JSON.parse(lines[0]!).members, []);
    } else {
      assert.match(lines[0]!, /empty: 0 servers \(Ctrl-C to stop\)$/);
    }
    assert.doesNotMatch(run.stdout, /reachable again/);
    assert.equal(run.stderr, "", "the service exists: no note");
  }
});

Deno.test("zkrpc health prints each registered server's status and exits 0 when all serve", async () => {
  await using c = await cluster(2);
  const run = await zkrpc([
    "health",
    "calculator",
    "--json",
    "--zookeeper",
    c.zk.connectionString,
  ]);
  assert.equal(run.code, 0, run.stderr);
  const rows = JSON.parse(run.stdout) as { server: string; status: string }[];
  assert.deepEqual(
    rows.map((r) => r.server).sort(),
    c.servers.map((s) => s.address!).sort(),
  );
  assert.deepEqual(rows.map((r) => r.status), ["serving", "serving"]);
});

Deno.test("zkrpc watch stops on Ctrl-C, and a second Ctrl-C while it closes its ZooKeeper session exits at once with 130", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  await session.mkdirp("/rpc/calculator");
  for (const twice of [false, true]) {
    const watcher = spawnZkrpc([
      "watch",
      "calculator",
      "--zookeeper",
      zk.connectionString,
    ], { permissions: ["--allow-net=127.0.0.1"] });
    const stdout = lines(watcher.stdout);
    const stderr = lines(watcher.stderr);
    let frozen = false;
    try {
      await lineMatching(stdout, /calculator: 0 servers/, 30_000);
      if (twice) {
        // A frozen ZooKeeper holds the session's close for its 2 s bound.
        Deno.kill(zk.pid!, "SIGSTOP");
        frozen = true;
      }
      watcher.kill("SIGINT");
      await lineMatching(
        stderr,
        /stopping \(Ctrl-C again to exit at once\)/,
        30_000,
      );
      if (twice) watcher.kill("SIGINT");
      const status = await within(watcher.status, 30_000, "watch to exit");
      assert.equal(status.code, twice ? 130 : 0);
    } finally {
      if (frozen) Deno.kill(zk.pid!, "SIGCONT");
      try {
        watcher.kill("SIGKILL");
      } catch {
        // exited
      }
      await watcher.status;
      for await (const _ of stdout);
      for await (const _ of stderr);
    }
  }
});
