/**
 * The whole mission in one run: a throw-away ZooKeeper, three calculator
 * servers as separate `deno run` processes, and a client calling `divide`
 * steadily through a {@linkcode DistributedChannel} while a script kills one
 * server with SIGKILL, starts a new one, and gracefully restarts another.
 * It ends with a summary; the exit code is 0 only when no call failed.
 * `--chart FILE` also writes the run's timeline as an SVG: calls/s, latency
 * percentiles and errors over time, with the kill, the join and the restart
 * marked.
 *
 * ```sh
 * deno task demo
 * deno task demo --duration 10 --rate 200
 * deno task demo --chart /tmp/demo.svg
 * deno run --allow-net=127.0.0.1 --allow-run=java,deno --allow-read \
 *   --allow-write=/tmp --allow-env=ZOOKEEPER_HOSTS \
 *   examples/demo.ts --zookeeper 127.0.0.1:2181 --json
 * ```
 *
 * Permissions (the `demo` task in deno.json):
 *
 * - `--allow-net=127.0.0.1`: ZooKeeper and the servers, all on loopback (an
 *   external `--zookeeper` elsewhere needs its host added);
 * - `--allow-run=java,/usr/bin/java,deno,/usr/bin/apt-get,/usr/bin/sudo`:
 *   the throw-away ZooKeeper (`java`, from `$JAVA_HOME/bin` or `PATH`;
 *   `/usr/bin/java` by path because on a fresh machine it appears only when
 *   the first run installs it), the server processes (`Deno.execPath()`;
 *   `deno` must be the same executable that runs the demo), and the first
 *   run's install of Debian's `zookeeper` package (`apt-get` as root, else
 *   `sudo -n`);
 * - `--allow-read`: to find ZooKeeper's jars (`$ZOOKEEPER_HOME`,
 *   `/usr/share/java`, `~/.cache/zkrpc`), read `/etc/os-release`, and write
 *   its config;
 * - `--allow-write=/tmp`: the throw-away ZooKeeper's temporary directory
 *   (and a `--chart` file under `/tmp`; elsewhere the demo asks for write
 *   access to that one file at the start, or add `--allow-write=FILE`);
 * - `--allow-env=JAVA_HOME,ZOOKEEPER_HOME,ZOOKEEPER_HOSTS,ZKRPC_NO_INSTALL,PATH,HOME,XDG_CACHE_HOME`:
 *   where Java and ZooKeeper live, an existing ZooKeeper to use instead, and
 *   the opt-out from installing (`ZKRPC_NO_INSTALL=1`);
 * - `--allow-sys=uid`: whether it runs as root (installs with `apt-get`) or
 *   needs `sudo`.
 *
 * Without a ZooKeeper (`--zookeeper`, `ZOOKEEPER_HOSTS`) the first run finds
 * or installs Java and ZooKeeper through the testing export's
 * `provisionZooKeeper()`, before the live view starts, and stops with the
 * install command when it cannot.
 *
 * The servers run with `--allow-net=127.0.0.1` only.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { DistributedChannel } from "../mod.ts";
import type { MembershipChange } from "../extend.ts";
import {
  provisionZooKeeper,
  startZooKeeper,
  type ZooKeeperServer,
} from "../testing.ts";
import { type Handlers, InvalidOperation } from "./calculator.ts";
import { ServerProcess } from "../src/testing/server_process.ts";
import { CallStats, MethodStats } from "./demo/stats.ts";
import { renderTimeline, Timeline } from "./demo/chart.ts";
import { type EndpointRow, View } from "./demo/view.ts";
import { zooKeeperChannel } from "../zookeeper.ts";

const USAGE = `Usage: deno task demo [options]

Starts ZooKeeper and three servers, calls divide steadily, kills one server
(SIGKILL), starts a new one, restarts another gracefully, and prints a summary.

Options:
  --zookeeper HOSTS   use this ZooKeeper instead of starting one
                      (default: $ZOOKEEPER_HOSTS, else a throw-away server)
  --service NAME      service name (default calculator, or calculator-demo-PID
                      on an existing ZooKeeper)
  --duration S        seconds of load (default 20)
  --rate N            calls per second (default 50)
  --concurrency N     most calls in flight (default 4)
  --chart FILE        write the timeline as an SVG: calls/s, latency and
                      errors over time, the kill, join and restart marked
                      (the demo task may write under /tmp; elsewhere it asks)
  --json              print the summary as JSON on stdout, progress on stderr
  -h, --help          show this help

Exit codes: 0 no call failed, 1 some call failed (or the chart could not be
written), 2 wrong flags, 130 interrupted (Ctrl-C, SIGTERM, SIGHUP; a second
one exits at once).`;

function usage(message?: string): never {
  if (message) console.error(`demo: ${message}\n`);
  console.error(USAGE);
  Deno.exit(message ? 2 : 0);
}

function envZooKeeper(): string | undefined {
  try {
    return Deno.env.get("ZOOKEEPER_HOSTS") || undefined;
  } catch {
    return undefined;
  }
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      zookeeper: { type: "string" },
      service: { type: "string" },
      duration: { type: "string", default: "20" },
      rate: { type: "string", default: "50" },
      concurrency: { type: "string", default: "4" },
      json: { type: "boolean", default: false },
      chart: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (error) {
  usage((error as Error).message);
}
const { values } = parsed;
if (values.help) usage();
const duration = Number(values.duration);
const rate = Number(values.rate);
const concurrency = Number(values.concurrency);
if (!(duration >= 4 && duration <= 3600)) {
  usage(`--duration must be 4..3600 seconds, got "${values.duration}"`);
}
if (!(rate > 0 && rate <= 100_000)) {
  usage(`--rate must be a number of calls/s above 0, got "${values.rate}"`);
}
if (!Number.isInteger(concurrency) || concurrency < 1) {
  usage(`--concurrency must be a whole number of 1 or more`);
}
const chartFile = values.chart;
if (chartFile !== undefined) {
  if (chartFile === "") usage("--chart needs a file name");
  // Asked now, before the live view takes the terminal (a prompt on a
  // terminal, refused at once otherwise).
  const { state } = await Deno.permissions.request({
    name: "write",
    path: chartFile,
  });
  if (state !== "granted") {
    usage(
      `--chart: no write access to "${chartFile}": write under /tmp, or run with --allow-write=${chartFile}`,
    );
  } // A missing directory is found now, not after the whole run.
  const slash = chartFile.lastIndexOf("/");
  const directory = slash === -1 ? "." : chartFile.slice(0, slash) || "/";
  let isDirectory = false;
  try {
    isDirectory = Deno.statSync(directory).isDirectory;
  } catch {
    // missing or unreadable: said below
  }
  if (!isDirectory) {
    usage(`--chart: "${directory}" is not a directory`);
  }
}
const external = values.zookeeper ?? envZooKeeper();
const service = values.service ??
  (external === undefined ? "calculator" : `calculator-demo-${Deno.pid}`);

/** Hosts of a connection string, for the servers' `--allow-net`. */
function zooKeeperHosts(connection: string): string[] {
  return connection.split("/")[0]!.split(",").map((hostPort) =>
    hostPort.replace(/:\d+$/, "")
  );
}

// Java and ZooKeeper for the throw-away server: found, or installed on the
// first run (Debian/Ubuntu, progress on stderr) before the live view takes
// the terminal; otherwise stop with the install command for this platform.
if (external === undefined) {
  try {
    await provisionZooKeeper();
  } catch (error) {
    console.error(`demo: ${(error as Error).message}`);
    Deno.exit(1);
  }
}

const stopping = new AbortController();
// Ctrl-C, `kill` and a closed terminal all stop the demo and what it started;
// a second one exits at once (130), killing the processes it started.
const onSigint = () => {
  if (!stopping.signal.aborted) return stopping.abort();
  for (const server of servers) void server.stop("SIGKILL").catch(() => {});
  void zk?.kill().catch(() => {}); // the JVM also goes on unload
  view.close();
  console.error("demo: interrupted again: exiting at once");
  Deno.exit(130);
};
const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
for (const signal of SIGNALS) Deno.addSignalListener(signal, onSigint);

const live = Deno.stdout.isTerminal() && !values.json;
const view = new View({
  live,
  toStderr: values.json,
  title:
    `zkrpc demo: service "${service}", ${rate} calls/s, ${concurrency} in flight at most`,
});

let zk: ZooKeeperServer | undefined;
const servers: ServerProcess[] = [];
let channel: DistributedChannel | undefined;
let killedLeftMs = NaN; // from the kill of server-1 to its znode's removal
let exitCode = 1;

/** Resolves after `ms`, or early when the demo is interrupted. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (stopping.signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      stopping.signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    stopping.signal.addEventListener("abort", done, { once: true });
  });
}

function interrupted(): boolean {
  return stopping.signal.aborted;
}

try {
  // 1. ZooKeeper.
  let connection: string;
  if (external === undefined) {
    view.event("starting a throw-away ZooKeeper (testing export)");
    zk = await startZooKeeper();
    connection = zk.connectionString;
    view.event(`ZooKeeper ready on ${connection} (pid ${zk.pid})`);
  } else {
    connection = external;
    view.event(`using ZooKeeper at ${connection}`);
  }
  const allowNet = [...new Set(["127.0.0.1", ...zooKeeperHosts(connection)])];
  const names = new Map<string, string>(); // host:port -> server name
  const calls = new Map<string, number>(); // server name -> calls answered
  const start = (name: string, port = 0): ServerProcess => {
    const server = new ServerProcess({
      name,
      zookeeper: connection,
      service,
      port,
      allowNet,
      onStderr: (line) => view.event(`${name}: ${line}`),
    });
    servers.push(server);
    server.listening().then((address) => names.set(address, name), () => {});
    return server;
  };

  // 2. Three servers, as separate processes.
  view.event(
    "starting server-1, server-2, server-3 (deno run --allow-net=127.0.0.1 examples/server.ts)",
  );
  const initial = [start("server-1"), start("server-2"), start("server-3")];
  await Promise.all(initial.map((s) => s.registered()));
  for (const s of initial) {
    view.event(`${s.name} registered: ${s.address} (pid ${s.pid})`);
  }

  // 3. The client: a discovery channel with divide declared idempotent, and
  //    an interceptor that keeps per-method metrics (one record per attempt).
  const timeline = new Timeline(); // started with the load
  const methodStats = new MethodStats(() =>
    timeline.attemptFailed(performance.now())
  );
  channel = zooKeeperChannel({
    interceptors: [methodStats.interceptor],
    zookeeper: connection,
    service,
    errors: [InvalidOperation],
    idempotent: ["divide"],
    timeout: 5000,
  });
  const client = channel;
  const joinedAt = new Map<string, number>();
  const memberKeys = new Map<string, string>(); // znode name -> host:port
  const killTimes = new Map<string, number>(); // server name -> when killed
  client.addEventListener("change", (event) => {
    const { added, removed } = (event as CustomEvent<MembershipChange>).detail;
    for (const id of removed) {
      const key = memberKeys.get(id);
      memberKeys.delete(id);
      const name = key === undefined ? id : names.get(key) ?? key;
      const killedAt = killTimes.get(name);
      if (killedAt !== undefined) killedLeftMs = performance.now() - killedAt;
      view.event(
        killedAt === undefined
          ? `discovery: ${name} left ZooKeeper`
          : `discovery: ${name} left ZooKeeper: its session expired ${
            ((performance.now() - killedAt) / 1000).toFixed(1)
          } s after the kill`,
      );
    }
    for (const [id, member] of added) {
      const key = `${member.host}:${member.port}`;
      memberKeys.set(id, key);
      joinedAt.set(key, performance.now());
      view.event(
        `discovery: ${names.get(key) ?? key} joined (pid ${member.pid ?? "?"})`,
      );
    }
  });
  client.addEventListener("state", () => {
    view.event(`discovery state: ${client.state}`);
  });
  await client.ready({ timeout: 10_000 });
  while (client.endpoints().length < 3 && !interrupted()) await sleep(10);

  const calc = client.stub<typeof Handlers>();
  const stats = new CallStats();
  const rows = (): EndpointRow[] =>
    client.endpoints().map((e) => {
      const name = names.get(e.key) ?? e.key;
      calls.set(name, e.calls);
      return {
        key: e.key,
        name,
        state: e.state,
        inFlight: e.inFlight,
        calls: e.calls,
      };
    });

  // 4. Steady load: slot n starts at start + n/rate; at most `concurrency`
  //    calls in flight.
  const loadStart = performance.now();
  timeline.start(loadStart);
  view.event(`load: divide at ${rate} calls/s for ${duration} s`);
  const loadEnd = loadStart + duration * 1000;
  let slot = 0;
  const worker = async () => {
    while (!interrupted()) {
      const n = slot++;
      const at = loadStart + (n * 1000) / rate;
      if (at >= loadEnd) return;
      await sleep(at - performance.now());
      if (interrupted()) return;
      const a = n, b = (n % 9) + 1;
      stats.started++;
      const t0 = performance.now();
      try {
        const result = await calc.divide(a, b);
        const t1 = performance.now();
        if (result === a / b) {
          stats.success(t1, t1 - t0);
          timeline.ok(t1, t1 - t0);
        } else {
          stats.failure(`divide(${a}, ${b}) returned ${result}`);
          timeline.failed(t1);
        }
      } catch (error) {
        stats.failure(`divide(${a}, ${b}): ${error}`);
        timeline.failed(performance.now());
        view.event(`call failed: divide(${a}, ${b}): ${error}`);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  const frame = (force = false) => {
    const now = performance.now();
    const window = stats.window(now);
    view.frame({
      t: (now - loadStart) / 1000,
      duration,
      targetRate: rate,
      rate: window.rate,
      ok: stats.ok,
      failed: stats.failed,
      p50: window.p50,
      p99: window.p99,
      longestGap: stats.longestGap,
      discovery: client.state,
      endpoints: rows(),
    }, force);
  };
  const ticker = setInterval(frame, live ? 200 : 100);

  /** Waits until `server` answered a call; returns ms since it registered. */
  const firstTraffic = async (server: ServerProcess): Promise<number> => {
    await server.registered();
    while (!interrupted()) {
      const endpoint = client.endpoints().find((e) =>
        e.key === server.address && e.calls > 0 &&
        (joinedAt.get(e.key) ?? Infinity) >= (server.registeredAt ?? 0) - 1000
      );
      if (endpoint !== undefined) {
        return performance.now() - (server.registeredAt as number);
      }
      await sleep(5);
    }
    return NaN;
  };

  // 5. The script.
  const at = (fraction: number) =>
    sleep(loadStart + duration * fraction * 1000 - performance.now());
  let joinMs = NaN, joinSpawnMs = NaN, restartMs = NaN, restartGapMs = NaN;
  let killed = false, joined = false, restarted = false;

  await at(0.2);
  if (!interrupted()) {
    const victim = initial[0]!;
    await victim.stop("SIGKILL");
    killTimes.set(victim.name, performance.now());
    timeline.mark(performance.now(), "kill", "kill -9 server-1");
    killed = true;
    view.event(
      `KILL: server-1 (pid ${victim.pid}, ${victim.address}) killed with SIGKILL; its znode stays until its ZooKeeper session expires`,
    );
  }
  await at(0.35);
  if (!interrupted()) {
    view.event("JOIN: starting server-4");
    const newcomer = start("server-4");
    await newcomer.registered().catch(() => {});
    timeline.mark(performance.now(), "join", "server-4 joins");
    view.event(
      `JOIN: server-4 registered: ${newcomer.address} (pid ${newcomer.pid})`,
    );
    joinMs = await firstTraffic(newcomer);
    joinSpawnMs = performance.now() - newcomer.spawnedAt;
    joined = !Number.isNaN(joinMs);
    view.event(
      `JOIN: server-4 received its first call ${
        joinMs.toFixed(0)
      } ms after registering (${joinSpawnMs.toFixed(0)} ms after spawn)`,
    );
  }
  await at(0.55);
  if (!interrupted()) {
    const old = initial[1]!;
    const port = Number(old.address!.split(":").at(-1));
    view.event(`RESTART: SIGTERM to server-2 (pid ${old.pid}, ${old.address})`);
    const t0 = performance.now();
    timeline.mark(t0, "restart", "restart server-2");
    const status = await old.stop("SIGTERM");
    view.event(
      `RESTART: server-2 ${
        old.closedGracefully
          ? "closed gracefully (deregistered, drained)"
          : `exited with code ${status.code}`
      } in ${
        (performance.now() - t0).toFixed(0)
      } ms; starting it again on port ${port}`,
    );
    let again = start("server-2b", port);
    try {
      await again.registered();
    } catch {
      view.event(
        `RESTART: port ${port} busy; starting server-2b on a new port`,
      );
      again = start("server-2b");
      await again.registered().catch(() => {});
    }
    view.event(
      `RESTART: server-2b registered: ${again.address} (pid ${again.pid})`,
    );
    restartMs = await firstTraffic(again);
    restartGapMs = performance.now() - t0;
    restarted = !Number.isNaN(restartMs);
    view.event(
      `RESTART: server-2b received its first call ${
        restartMs.toFixed(0)
      } ms after registering`,
    );
  }
  await at(1);
  await Promise.all(workers);
  // The real length of the load: shorter than planned after a Ctrl-C.
  const loadSeconds = (performance.now() - loadStart) / 1000;
  timeline.end(performance.now());
  clearInterval(ticker);
  frame(true);
  view.close();

  // 6. Summary.
  const latency = stats.overall();
  const wasInterrupted = interrupted();
  const summary = {
    ok: stats.failed === 0 && !wasInterrupted,
    interrupted: wasInterrupted,
    durationSeconds: duration,
    elapsedSeconds: round(loadSeconds),
    rate,
    concurrency,
    calls: stats.started,
    answered: stats.ok,
    failed: stats.failed,
    failures: stats.failures,
    latencyMs: {
      p50: round(latency.p50),
      p99: round(latency.p99),
      max: round(latency.max),
    },
    longestGapMs: round(stats.longestGap),
    longestGapAtSeconds: round((stats.longestGapAt - loadStart) / 1000),
    killed,
    killedZnodeRemovedAfterMs: round(killedLeftMs),
    joined,
    restarted,
    newServerFirstCallMs: round(joinMs),
    newServerFirstCallSinceSpawnMs: round(joinSpawnMs),
    restartedServerFirstCallMs: round(restartMs),
    restartTotalMs: round(restartGapMs),
    callsPerServer: Object.fromEntries(calls),
    perMethod: Object.fromEntries(
      Object.entries(methodStats.figures()).map(([method, f]) => [method, {
        calls: f.calls,
        errors: f.errors,
        p50Ms: round(f.p50),
        p99Ms: round(f.p99),
      }]),
    ),
  };
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    const fmt = (v: number) =>
      Number.isNaN(v) ? "-" : `${v.toFixed(v < 10 ? 2 : 0)} ms`;
    view.print("");
    view.print("Summary");
    view.print(
      `  calls made          ${stats.started} in ${loadSeconds.toFixed(1)} s${
        wasInterrupted ? ` of ${duration} s planned` : ""
      } (target ${rate}/s, ${concurrency} in flight at most)`,
    );
    view.print(`  calls failed        ${stats.failed}`);
    for (const failure of stats.failures) {
      view.print(`                      ${failure}`);
    }
    view.print(
      `  latency             p50 ${fmt(latency.p50)}, p99 ${
        fmt(latency.p99)
      }, max ${fmt(latency.max)}`,
    );
    view.print(
      `  longest gap         ${
        fmt(stats.longestGap)
      } between successful calls (at ${summary.longestGapAtSeconds} s)`,
    );
    view.print(
      `  kill -9 server-1    ${
        !killed
          ? "not reached"
          : `done; calls failed over at once; its znode left ${
            Number.isNaN(killedLeftMs)
              ? "after the run (session timeout)"
              : `${(killedLeftMs / 1000).toFixed(1)} s later (session expiry)`
          }`
      }`,
    );
    view.print(
      `  new server          ${
        joined
          ? `server-4 got its first call ${fmt(joinMs)} after registering (${
            fmt(joinSpawnMs)
          } after spawn)`
          : "not reached"
      }`,
    );
    view.print(
      `  graceful restart    ${
        restarted
          ? `server-2 -> server-2b, first call ${
            fmt(restartMs)
          } after registering (${fmt(restartGapMs)} from SIGTERM)`
          : "not reached"
      }`,
    );
    for (const [method, f] of Object.entries(methodStats.figures())) {
      const errors = Object.entries(f.errors).map(([n, c]) => `${c} ${n}`);
      view.print(
        `  method ${method.padEnd(12)} ${f.calls} attempts, ${
          errors.length === 0 ? "0 errors" : errors.join(", ")
        }, p50 ${fmt(f.p50)}, p99 ${fmt(f.p99)} (channel interceptor)`,
      );
    }
    view.print(
      `  calls per server    ${
        [...calls].map(([n, c]) => `${n} ${c}`).join(", ")
      }`,
    );
    view.print(
      `  result              ${
        summary.ok
          ? "OK: no call failed"
          : wasInterrupted
          ? "INTERRUPTED"
          : "FAILED: some calls failed"
      }`,
    );
  }
  exitCode = wasInterrupted ? 130 : stats.failed === 0 ? 0 : 1;
  if (chartFile !== undefined) {
    try {
      await Deno.writeTextFile(
        chartFile,
        renderTimeline(timeline, {
          title:
            `zkrpc demo: divide at ${rate} calls/s, ${concurrency} in flight at most, ${stats.failed} failed`,
        }),
      );
      console.error(`demo: timeline written to ${chartFile}`);
    } catch (error) {
      console.error(
        `demo: Cannot write the chart to ${chartFile}: ${
          (error as Error).message
        }`,
      );
      if (exitCode === 0) exitCode = 1;
    }
  }
} catch (error) {
  view.close();
  console.error(
    `demo: ${interrupted() ? "interrupted" : "failed"}: ${
      (error as Error)?.stack ?? error
    }`,
  );
  exitCode = interrupted() ? 130 : 1;
} finally {
  view.close();
  // From here on any signal is a second one: onSigint kills and exits.
  stopping.abort();
  await channel?.close().catch(() => {});
  await Promise.all(
    servers.map((s) => s.stop("SIGTERM", 3000).catch(() => {})),
  );
  await zk?.stop().catch(() => {});
  for (const signal of SIGNALS) Deno.removeSignalListener(signal, onSigint);
}

function round(value: number): number | null {
  return Number.isFinite(value) ? Math.round(value * 100) / 100 : null;
}

Deno.exit(exitCode);
