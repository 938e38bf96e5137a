/**
 * The seed's server: exposes {@linkcode Handlers} over TCP and registers in
 * ZooKeeper as an ephemeral sequential node under `/rpc/<service>`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/server.ts 127.0.0.1 9001
 * deno run --allow-net=127.0.0.1 examples/server.ts 127.0.0.1 0 --zookeeper 127.0.0.1:2181 --service calculator
 * ```
 *
 * Permissions: `--allow-net` for the listening address and for ZooKeeper
 * (`127.0.0.1` covers both when they are on loopback). Binding `0.0.0.0`
 * also needs `--allow-sys=networkInterfaces` (to find the address to
 * advertise); `--allow-env=ZOOKEEPER_HOSTS` lets `$ZOOKEEPER_HOSTS` be the
 * default of `--zookeeper`.
 *
 * Exit codes: 0 after a graceful close, 1 when registration failed for good
 * (e.g. no permission in ZooKeeper), 2 for bad arguments, 130 or 143 when a
 * second signal cut the graceful close short.
 *
 * SIGTERM or Ctrl-C closes it gracefully: it deregisters, lets calls in
 * flight finish, then exits. A second SIGTERM or Ctrl-C while it drains
 * exits at once, with 130 (SIGINT) or 143 (SIGTERM).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { serve } from "../mod.ts";
import { zooKeeperDiscovery } from "../zookeeper.ts";
import { Handlers } from "./calculator.ts";

const USAGE =
  `Usage: deno run --allow-net=127.0.0.1 examples/server.ts HOST PORT [options]

Options:
  --zookeeper HOSTS   ZooKeeper connection string
                      (default $ZOOKEEPER_HOSTS, else 127.0.0.1:2181)
  --service NAME      service name to register under /rpc (default calculator)
  --delay MS          answer every call this much later (default 0)
  --advertised-host HOST
                      address to register for clients (default: HOST, or for
                      0.0.0.0 this machine's address on ZooKeeper's network)
  --session-timeout MS
                      ZooKeeper session timeout (default 10000)
  -h, --help          show this help`;

function usage(message?: string): never {
  if (message) console.error(`server: ${message}\n`);
  console.error(USAGE);
  Deno.exit(message ? 2 : 0);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      zookeeper: { type: "string" },
      service: { type: "string", default: "calculator" },
      delay: { type: "string", default: "0" },
      "advertised-host": { type: "string" },
      "session-timeout": { type: "string", default: "10000" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (error) {
  usage((error as Error).message);
}
const { values, positionals } = parsed;
if (values.help) usage();
if (positionals.length !== 2) usage("expected HOST and PORT");
const [hostname, portText] = positionals as [string, string];
const port = Number(portText);
const delay = Number(values.delay);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  usage(`PORT must be an integer in 0..65535, got "${portText}"`);
}
if (!Number.isFinite(delay) || delay < 0) {
  usage(`--delay must be a number of ms, got "${values.delay}"`);
}
const sessionTimeout = Number(values["session-timeout"]);
if (!Number.isInteger(sessionTimeout) || sessionTimeout <= 0) {
  usage(
    `--session-timeout must be a positive number of ms, got "${
      values["session-timeout"]
    }"`,
  );
}

const handlers = delay === 0 ? Handlers : {
  async divide(num1: number, num2: number): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, delay));
    return Handlers.divide(num1, num2);
  },
};

let zk;
let registrar;
try {
  zk = zooKeeperDiscovery({
    zookeeper: values.zookeeper,
    session: { sessionTimeout },
  });
  registrar = zk.registrar(
    values.service,
    values["advertised-host"] === undefined
      ? {}
      : { advertisedHost: values["advertised-host"] },
  );
} catch (error) {
  usage((error as Error).message);
}
const server = serve(handlers, {
  hostname,
  port,
  registrar,
  // No onError: the default logs each error to stderr with the peer's text
  // escaped (a peer's bytes could otherwise carry terminal escapes).
});
console.log(`listening on ${server.addr.hostname}:${server.addr.port}`);
registrar.registered().then(
  () => console.log(`registered in service "${values.service}"`),
  () => {
    // onError said why; the server closes itself. Exit non-zero once it has
    // (unless it was closed before it registered).
    if (!closing) Deno.exitCode = 1;
  },
);

let closing = false;
// The first signal closes gracefully; a second one (Ctrl-C pressed again
// while calls drain) exits at once, with 128 + the signal's number.
const shutdown = (signal: "SIGINT" | "SIGTERM", code: number) => () => {
  if (closing) {
    console.log(`${signal} again: exiting without draining`);
    Deno.exit(code);
  }
  closing = true;
  console.log(
    "closing: deregistering and draining (Ctrl-C again to exit at once)",
  );
  void server.close();
};
const onSigint = shutdown("SIGINT", 130);
const onSigterm = shutdown("SIGTERM", 143);
Deno.addSignalListener("SIGINT", onSigint);
Deno.addSignalListener("SIGTERM", onSigterm);
// finished rejects when the server closed itself (registration failed for
// good; onError said why): exit non-zero, after cleaning up.
await server.finished.catch(() => Deno.exitCode = 1);
await zk.close();
Deno.removeSignalListener("SIGINT", onSigint);
Deno.removeSignalListener("SIGTERM", onSigterm);
console.log("closed");
