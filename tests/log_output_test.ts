/**
 * The default loggers escape what came from a peer or from ZooKeeper: a
 * client whose codec names carry escape sequences reaches the server's
 * default `onError` (a real server process) escaped, and a member whose data
 * carries them reaches the default `onInvalidMember` escaped.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper } from "../testing.ts";
import { ServerProcess } from "../src/testing/server_process.ts";
import {
  encodeFrame,
  encodeSettings,
  FrameType,
  PREFACE,
} from "../src/protocol/frame.ts";
import { ZooKeeperSession } from "../zookeeper.ts";
import { zooKeeperDiscovery } from "../zookeeper.ts";
import { concat, readToEnd, writeAll } from "./_core_helpers.ts";
import { within } from "./_wait.ts";

/** What must never reach a log line. */
const RAW = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const ESCAPES = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e\x7f";

Deno.test("serve()'s default onError logs a client's hostile codec names escaped", async () => {
  await using zk = await startZooKeeper();
  const logged = Promise.withResolvers<string>();
  const server = new ServerProcess({
    name: "server",
    zookeeper: zk.connectionString,
    service: "calculator",
    onStderr: (line) => {
      if (line.includes("Cannot use a codec")) logged.resolve(line);
    },
  });
  try {
    await within(server.registered(), 30_000, "the server to register");
    const [hostname, port] = server.address!.split(":") as [string, string];
    using conn = await Deno.connect({ hostname, port: Number(port) });
    await writeAll(
      conn,
      concat(
        PREFACE,
        encodeFrame(
          FrameType.Settings,
          0,
          encodeSettings({
            maxFrameSize: 65536,
            codecs: [`a${ESCAPES}`, `b${ESCAPES}`],
            maxInFlight: 0,
          }),
        ),
      ),
    );
    await within(readToEnd(conn), 10_000, "the server to close");
    const line = await within(logged.promise, 10_000, "the log line");
    assert.equal([...line].find((c) => RAW.test(c)), undefined, line);
    assert.ok(
      line.includes("a\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202e\\x7f"),
      line,
    );
  } finally {
    await server.stop("SIGTERM");
  }
});

Deno.test("the default onInvalidMember logs a member's hostile data escaped", async () => {
  await using zk = await startZooKeeper();
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  await session.mkdirp("/rpc/logs");
  await session.create("/rpc/logs/member-1", `not json ${ESCAPES}`, {
    mode: "ephemeral",
  });
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  try {
    await using discovery = zooKeeperDiscovery({
      zookeeper: zk.connectionString,
    });
    const membership = discovery.membership("logs");
    await within(
      new Promise((resolve) => {
        const check = () => {
          if (membership.state !== "fresh") return;
          membership.removeEventListener("state", check);
          resolve(undefined);
        };
        membership.addEventListener("state", check);
        check();
      }),
      15_000,
      "the first read",
    ).finally(() => membership.close());
  } finally {
    console.warn = warn;
  }
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.equal([...warnings[0]!].find((c) => RAW.test(c)), undefined);
  assert.match(
    warnings[0]!,
    /skipping member \/rpc\/logs\/member-1: .*\\x9b31m\\u202e\\x7f/,
  );
});
