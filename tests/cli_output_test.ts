/**
 * Every `zkrpc` command prints data from ZooKeeper and from servers with
 * its control and format characters escaped and each field capped: a real
 * ZooKeeper holds hostile members (escape sequences in names and data, a
 * host of a million characters, data that is not JSON) and a real server
 * answers with hostile method names, results, errors and health.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper, type ZooKeeperServer } from "../testing.ts";
import { lines } from "../src/testing/child_process.ts";
import { type RpcServer, serve } from "../mod.ts";
import { zooKeeperRegistrar, ZooKeeperSession } from "../zookeeper.ts";
import { type Run, spawnZkrpc, zkrpc } from "./_cli_helpers.ts";
import { within } from "./_wait.ts";

/** Every C0 control, DEL and every C1 control: the class, not examples. */
const CONTROLS = Array.from(
  { length: 0x20 },
  (_, i) => String.fromCharCode(i),
).join("") + Array.from(
  { length: 0x21 },
  (_, i) => String.fromCharCode(0x7f + i),
).join("");

/** Sequences that attack a terminal, and characters that spoof a line. */
const ATTACKS = [
  "\x1b[2J\x1b[H", // clear the screen
  "\x1b]0;pwned\x07", // set the window title
  "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\", // OSC 8 link
  "\u009b31m", // C1 CSI
  "\u202eevil\u202c\u2066x\u2069\u200f", // bidi overrides and isolates
  "\u2028\u2029\ufeff\u200b\u{e0041}", // separators, invisible, tag
].join("");

const HOSTILE = `h${ATTACKS}${CONTROLS}z`;
const BIG = 1_000_000;
const HUGE_HOST = "a".repeat(BIG);
const CAP_MARK = `… (${BIG} chars)`;

/** What must never reach a terminal; a line break only between lines. */
const RAW = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

function assertPrintable(run: Run, what: string): void {
  for (
    const [stream, text] of [
      ["stdout", run.stdout],
      ["stderr", run.stderr],
    ] as const
  ) {
    const found = [...text.replaceAll("\n", "")].find((c) => RAW.test(c));
    assert.equal(
      found,
      undefined,
      `${what}: ${stream} has a raw U+${
        found?.codePointAt(0)?.toString(16).padStart(4, "0")
      }`,
    );
    assert.ok(
      text.length < 100_000,
      `${what}: ${stream} is capped (${text.length} chars)`,
    );
  }
}

/** The hostile registry and server every test of this file reads. */
interface Hostile extends AsyncDisposable {
  zk: ZooKeeperServer;
  zookeeper: string;
  session: ZooKeeperSession;
  server: RpcServer;
}

/**
 * ZooKeeper with service "hostile" (one real server whose method names,
 * results, errors, description and health carry {@linkcode HOSTILE}) and
 * service "hostile-registry" (members with hostile names and data, a host
 * of a million characters, and data that is not JSON) and service
 * "many-fields" (one member with 5 000 registered fields).
 */
async function hostile(): Promise<Hostile> {
  const zk = await startZooKeeper();
  const zookeeper = zk.connectionString;
  const cleanup: (() => Promise<unknown>)[] = [() => zk.stop()];
  const close = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  };
  try {
    const session = await ZooKeeperSession.connect(zookeeper);
    cleanup.push(() => session.close());
    const registrar = zooKeeperRegistrar({
      zookeeper,
      service: "hostile",
      metadata: { [HOSTILE]: HOSTILE, note: HOSTILE },
    });
    const failure = new Error(HOSTILE);
    failure.name = `Err${ATTACKS}`;
    const server = serve({
      echo: () => HOSTILE,
      big: () => ({ text: `${ATTACKS}${"b".repeat(BIG)}` }),
      fail: () => {
        throw failure;
      },
      [`m${ATTACKS}`]: () => 1,
    }, {
      hostname: "127.0.0.1",
      registrar,
      onError: () => {},
      // A member that lies about its health and description (where the
      // server lets interceptors wrap its built-in methods).
      interceptors: [async (call, next) => {
        if (call.method === "zkrpc.health") return { status: HOSTILE };
        const answer = await next();
        return call.method === "zkrpc.describe"
          ? { ...answer as object, codec: HOSTILE, protocol: HOSTILE }
          : answer;
      }],
    });
    cleanup.push(() => server.close());
    await within(registrar.registered(), 15_000, "the server to register");
    await session.mkdirp("/rpc/hostile-registry");
    const member = (name: string, data: string) =>
      session.create(`/rpc/hostile-registry/${name}`, data, {
        mode: "ephemeral",
      });
    await member(
      "member-\u202eevil-1",
      JSON.stringify({
        host: HOSTILE,
        port: 1,
        pid: HOSTILE,
        startedAt: HOSTILE,
        protocol: HOSTILE,
        [HOSTILE]: HOSTILE,
      }),
    );
    await member(
      "member-huge-2",
      JSON.stringify({ host: HUGE_HOST, port: 2, pid: 1 }),
    );
    await member("member-junk-3", `not json ${HOSTILE}`);
    await session.mkdirp("/rpc/many-fields");
    await session.create(
      "/rpc/many-fields/member-1",
      JSON.stringify({
        host: "127.0.0.1",
        port: 4,
        ...Object.fromEntries(
          Array.from({ length: 5000 }, (_, i) => [`f${i}`, "v".repeat(50)]),
        ),
      }),
      { mode: "ephemeral" },
    );
    return { zk, zookeeper, session, server, [Symbol.asyncDispose]: close };
  } catch (error) {
    await close();
    throw error;
  }
}

Deno.test("zkrpc ls escapes control characters in hostile members and caps a huge host, in text and JSON", async () => {
  await using h = await hostile();
  const text = await zkrpc(["ls", "--zookeeper", h.zookeeper]);
  assert.equal(text.code, 0, text.stderr);
  assertPrintable(text, "ls");
  assert.ok(text.stdout.includes("\\x1b[2J"), "the escape is shown, escaped");
  assert.ok(text.stdout.includes("\\x9b31m"), "C1 CSI shown escaped");
  assert.ok(text.stdout.includes("\\u202eevil"), "bidi shown escaped");
  assert.ok(text.stdout.includes(`${"a".repeat(200)}${CAP_MARK}`));
  assert.match(text.stdout, /member-junk-3 {2}INVALID: .*not JSON/);
  assert.match(
    text.stdout,
    / f19=".*" {2}… \(4980 more fields; --json shows them\)/,
  );

  const json = await zkrpc([
    "ls",
    "hostile-registry",
    "--json",
    "--zookeeper",
    h.zookeeper,
  ]);
  assert.equal(json.code, 0, json.stderr);
  assertPrintable(json, "ls --json");
  const listing = JSON.parse(json.stdout);
  const members = listing.services[0].members as {
    id: string;
    data: { host: string } | null;
  }[];
  assert.deepEqual(members.map((m) => m.id), [
    "member-huge-2",
    "member-junk-3",
    "member-\u202eevil-1",
  ], "JSON escapes decode to the original names");
  assert.equal(members[0]!.data!.host, `${"a".repeat(200)}${CAP_MARK}`);
  assert.equal(members[2]!.data!.host, HOSTILE, "short fields are whole");

  const probe = await zkrpc([
    "ls",
    "hostile-registry",
    "--probe",
    "--timeout",
    "2s",
    "--zookeeper",
    h.zookeeper,
  ]);
  assert.equal(probe.code, 4, probe.stderr);
  assertPrintable(probe, "ls --probe");
  assert.match(probe.stdout, /probe FAILED/);
});

Deno.test("zkrpc watch escapes hostile members in the first list and in joins, in text and JSON", async () => {
  await using h = await hostile();
  let joined = 0;
  for (const json of [false, true]) {
    const watcher = spawnZkrpc([
      "watch",
      "hostile-registry",
      "--count",
      "1",
      "--duration",
      "30s",
      "--zookeeper",
      h.zookeeper,
      ...(json ? ["--json"] : []),
    ]);
    const stderr = new Response(watcher.stderr).text();
    const output = lines(watcher.stdout);
    const seen: string[] = [];
    const first = await within(output.next(), 30_000, "the first list");
    assert.equal(first.done, false, "watch printed its first list");
    seen.push(first.value as string);
    // The next member joins once the first list is out.
    await h.session.create(
      `/rpc/hostile-registry/member-join\u202e-${++joined}`,
      JSON.stringify({ host: HOSTILE, port: 3, pid: HOSTILE }),
      { mode: "ephemeral" },
    );
    for await (const line of output) seen.push(line);
    const status = await within(watcher.status, 30_000, "watch to stop");
    const run = {
      code: status.code,
      stdout: seen.join("\n"),
      stderr: await stderr,
    };
    assert.equal(run.code, 0, run.stderr);
    assertPrintable(run, `watch${json ? " --json" : ""}`);
    if (json) {
      const events = seen.map((line) => JSON.parse(line));
      assert.deepEqual(events.map((e) => e.type), ["members", "added"]);
      assert.equal(events[1].member.host, HOSTILE);
      assert.ok(
        events[0].members.some((m: { member: { host: string } }) =>
          m.member.host === `${"a".repeat(200)}${CAP_MARK}`
        ),
      );
    } else {
      assert.match(run.stdout, /\+ member-join\\u202e-1 {2}h\\x1b\[2J/);
      assert.ok(run.stdout.includes(CAP_MARK), "the huge host is capped");
      assert.match(run.stderr, /skipping member member-junk-3: .*not JSON/);
    }
  }
});

Deno.test("zkrpc call escapes a hostile result and remote error and caps a huge result; --json keeps the result whole", async () => {
  await using h = await hostile();
  const args = ["--zookeeper", h.zookeeper, "--no-check"];
  const text = await zkrpc(["call", "hostile", "echo", ...args]);
  assert.equal(text.code, 0, text.stderr);
  assertPrintable(text, "call");
  assert.equal(JSON.parse(text.stdout), HOSTILE, "valid JSON, same string");

  const json = await zkrpc(["call", "hostile", "echo", "--json", ...args]);
  assert.equal(json.code, 0, json.stderr);
  assertPrintable(json, "call --json");
  assert.equal(JSON.parse(json.stdout), HOSTILE);

  const big = await zkrpc(["call", "hostile", "big", ...args]);
  assert.equal(big.code, 0, big.stderr);
  assertPrintable(big, "call (a huge result)");
  assert.match(
    JSON.parse(big.stdout).text,
    new RegExp(`b… \\(${ATTACKS.length + BIG} chars\\)$`),
  );
  const bigJson = await zkrpc(["call", "hostile", "big", "--json", ...args]);
  assert.equal(bigJson.code, 0, bigJson.stderr);
  assert.equal(
    JSON.parse(bigJson.stdout).text,
    `${ATTACKS}${"b".repeat(BIG)}`,
    "--json: the whole result, escaped",
  );
  assert.ok(!RAW.test(bigJson.stdout.trimEnd()), "no raw control character");

  const failed = await zkrpc(["call", "hostile", "fail", ...args]);
  assert.equal(failed.code, 1, failed.stderr);
  assertPrintable(failed, "call (remote error)");
  assert.ok(failed.stderr.startsWith("Err\\x1b[2J"), failed.stderr);

  const failedJson = await zkrpc([
    "call",
    "hostile",
    "fail",
    "--json",
    ...args,
  ]);
  assert.equal(failedJson.code, 1, failedJson.stderr);
  assertPrintable(failedJson, "call --json (remote error)");
  assert.equal(JSON.parse(failedJson.stdout).error.message, HOSTILE);

  const unknown = await zkrpc([
    "call",
    "hostile",
    "nothing",
    "--zookeeper",
    h.zookeeper,
  ]);
  assert.equal(unknown.code, 1, unknown.stderr);
  assertPrintable(unknown, "call (unknown method: the methods listed)");
  assert.match(unknown.stderr, /Methods of service "hostile": .*m\\x1b\[2J/);
});

Deno.test("zkrpc describe escapes hostile method names and whatever else a server says about itself, in text and JSON", async () => {
  await using h = await hostile();
  const text = await zkrpc(["describe", "hostile", "--zookeeper", h.zookeeper]);
  assert.equal(text.code, 0, text.stderr);
  assertPrintable(text, "describe");
  assert.match(text.stdout, /^ {2}m\\x1b\[2J/m);

  const json = await zkrpc([
    "describe",
    "hostile",
    "--json",
    "--zookeeper",
    h.zookeeper,
  ]);
  assert.equal(json.code, 0, json.stderr);
  assertPrintable(json, "describe --json");
  const description = JSON.parse(json.stdout);
  assert.ok(
    description.methods.some((m: { name: string }) => m.name === `m${ATTACKS}`),
  );
});

Deno.test("zkrpc health escapes hostile, huge hosts in its rows and errors, and a hostile status, in text and JSON", async () => {
  await using h = await hostile();
  for (const json of [false, true]) {
    const flags = ["--zookeeper", h.zookeeper, "--timeout", "3s"];
    if (json) flags.push("--json");
    const served = await zkrpc(["health", "hostile", ...flags]);
    assertPrintable(served, "health");
    const registry = await zkrpc(["health", "hostile-registry", ...flags]);
    assert.equal(registry.code, 1, "no server of it answers");
    assertPrintable(registry, "health (hostile hosts)");
    if (json) {
      const rows = JSON.parse(registry.stdout) as { server: string }[];
      const servers = rows.map((row) => row.server).sort();
      assert.equal(servers.length, 2);
      assert.equal(servers[0], `${"a".repeat(200)}… (${BIG + 2} chars)`);
      assert.equal(servers[1], `${HOSTILE}:1`, "decodes to the original");
    } else {
      assert.match(registry.stdout, /^h\\x1b\[2J.*:1 {2}error: /m);
      assert.match(
        registry.stdout,
        new RegExp(`^a{200}… \\(${BIG + 2} chars\\)  error: `, "m"),
      );
    }
  }
});
