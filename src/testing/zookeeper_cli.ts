/**
 * `deno task zookeeper`: a throw-away ZooKeeper on `127.0.0.1:2181` for the
 * examples, so that the README's server and client run in three terminals
 * with nothing else installed. It is the tests' ZooKeeper
 * (`startZooKeeper()`: found or installed as `deno task provision` does,
 * `tickTime` 500 ms), with its data in a temporary directory that Ctrl-C
 * (or SIGTERM) removes; a second Ctrl-C exits at once.
 *
 * ```sh
 * deno task zookeeper               # 127.0.0.1:2181
 * deno task zookeeper --port 2182   # when 2181 is taken
 * ```
 *
 * Permissions (the `zookeeper` task): `--allow-net=127.0.0.1` (ZooKeeper's
 * port, polled until it serves), `--allow-run` for `java` and the first-run
 * install (`/usr/bin/apt-get`, `/usr/bin/sudo`), `--allow-read` (the jars,
 * wherever `ZOOKEEPER_HOME` points), `--allow-write=/tmp` (the data
 * directory), `--allow-env` for `JAVA_HOME`, `ZOOKEEPER_HOME`,
 * `ZKRPC_NO_INSTALL`, `PATH`, `HOME`, `XDG_CACHE_HOME` and `--allow-sys=uid`,
 * as `deno task provision` needs them.
 *
 * Exit codes: 0 after Ctrl-C or SIGTERM, 1 when ZooKeeper cannot start (the
 * port is taken, ZooKeeper or Java is missing) or its JVM exits on its own
 * (the end of its log is printed), 2 for wrong flags, 130 on a second Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startZooKeeper, type ZooKeeperServer } from "./start_zookeeper.ts";
import { DEFAULT_ZOOKEEPER_HOSTS } from "../zookeeper/config.ts";

const DEFAULT_PORT = Number(DEFAULT_ZOOKEEPER_HOSTS.split(":")[1]);

const USAGE = `Usage: deno task zookeeper [options]

Starts a throw-away ZooKeeper on 127.0.0.1 for the examples; Ctrl-C stops it
and removes its data.

Options:
  --port PORT   client port (default ${DEFAULT_PORT})
  -h, --help    show this help

Exit codes: 0 stopped, 1 could not start or died, 2 wrong flags, 130 second\nCtrl-C.`;

function parse(): { port: number } {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        port: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`--port must be 1..65535, not "${values.port}"`);
    }
    return { port };
  } catch (error) {
    console.error(`zookeeper: ${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
}

const { port } = parse();
const signals = ["SIGINT", "SIGTERM"] as const;
const { promise: stopRequested, resolve: requestStop } = Promise
  .withResolvers<void>();
let requests = 0;
function onSignal(): void {
  if (++requests > 1) Deno.exit(130); // a second Ctrl-C: do not wait
  requestStop();
}
for (const signal of signals) Deno.addSignalListener(signal, onSignal);

let zk: ZooKeeperServer;
try {
  zk = await startZooKeeper({ port });
} catch (error) {
  const message = (error as Error).message;
  console.error(
    `zookeeper: ${message}${
      /in use|address already|bind/i.test(message)
        ? `\nIs a ZooKeeper already running on port ${port}? Use it, or pick another port with --port.`
        : ""
    }`,
  );
  Deno.exit(1);
}
const server = zk;
const pid = server.pid;
console.log(
  `ZooKeeper serving on ${server.connectionString} (pid ${pid}, data in ${server.dataDir}); Ctrl-C stops it and removes the data`,
);
// A JVM that dies on its own (killed, out of memory) ends the task too,
// with its log, instead of leaving a task that serves nothing.
let check: ReturnType<typeof setInterval> | undefined;
const died = new Promise<"died">((resolve) => {
  check = setInterval(() => {
    if (!server.running && requests === 0) resolve("died");
  }, 500);
});
const why = await Promise.race([
  stopRequested.then(() => "stop" as const),
  died,
]);
clearInterval(check);
let code = 0;
if (why === "died") {
  const log = await Deno.readTextFile(server.logFile).catch(() => "");
  console.error(
    `zookeeper: ZooKeeper (pid ${pid}) exited on its own; the end of its log:\n${
      log.trimEnd().split("\n").slice(-20).join("\n")
    }`,
  );
  code = 1;
}
await server.stop();
for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
console.log("ZooKeeper stopped");
Deno.exit(code);
