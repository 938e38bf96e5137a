/**
 * `deno task mutation [--all] [--base REF] [NAME…]`: mutation testing with
 * StrykerJS, one module at a time against that module's own fast unit tests,
 * then a score table.
 *
 * Incremental by default: with no NAME it runs only the modules in scope
 * that changed since `--base` (default `main`): a module is run when its
 * source or one of its test files differs between the merge base of REF and
 * the work tree (`git diff --name-only REF...HEAD`, plus uncommitted and
 * untracked changes). `--all` runs every module; NAMEs run those modules.
 *
 * Installs `@stryker-mutator/core` into `node_modules/` (not committed) with
 * npm when it is missing, and runs it with Node (StrykerJS 9 supports Node
 * 20). Shared settings are in `mutation/stryker.config.json`; reports go to
 * `mutation/reports/` (not committed). See docs/testing.md.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** A module in scope and the test files that exercise it without I/O. */
export interface Target {
  /** Short name for the command line, e.g. `frame`. */
  name: string;
  module: string;
  tests: string[];
  /**
   * Its tests also start an in-process server on 127.0.0.1 (the runner then
   * allows loopback network access, nothing else).
   */
  loopback?: boolean;
  /** Its tests need ZooKeeper and Java: the runner allows running them. */
  system?: boolean;
}

/** Modules with an entry of their own (the others of their folder follow). */
const OWN = new Set([
  "src/channel/balancer.ts",
  "src/channel/retry_budget.ts",
  "src/channel/attempt_policy.ts",
  "src/channel/outlier_detection.ts",
  "src/channel/picker.ts",
  "src/channel/pool.ts",
  "src/channel/call.ts",
  "src/channel/hedging.ts",
  "src/channel/channel.ts",
  "src/channel/readiness.ts",
  "src/channel/subchannel.ts",
  "src/channel/stream.ts",
  "src/channel/stub.ts",
  "src/channel/options.ts",
  "src/channel/admission.ts",
  "src/server/_guards.ts",
  "src/server/_responder.ts",
  "src/client/_answers.ts",
  "src/server/_server_internals.ts",
]);

/**
 * An entry for each module of `dir` not in {@linkcode OWN}, named
 * `<folder>/<module>` (e.g. `client/connection`), tested by `tests` with
 * loopback access.
 */
function rest(dir: string, tests: string[]): Target[] {
  const root = new URL(`../${dir}/`, import.meta.url);
  return [...Deno.readDirSync(root)]
    .filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => `${dir}/${e.name}`)
    .filter((module) => !OWN.has(module))
    .sort()
    .map((module) => ({
      name: `${dir.split("/").at(-1)}/${
        module.split("/").at(-1)!.replace(/^_/, "").replace(/\.ts$/, "")
      }`,
      module,
      tests,
      loopback: true,
    }));
}

/**
 * The entry of `src/client/<file>.ts`, named `client/<file>` without its
 * leading `_`: its own unit tests, then the connection's (which reach every
 * client module through a real `Connection`).
 */
function client(file: string, tests: string[]): Target {
  return {
    name: `client/${file.replace(/^_/, "")}`,
    module: `src/client/${file}.ts`,
    tests: [...tests, "tests/client/connection_unit_test.ts"],
    loopback: true,
  };
}

/**
 * The scope: modules whose tests are fast and need no network. To add one,
 * append it here with its unit test files.
 */
export const TARGETS: readonly Target[] = [
  {
    name: "frame",
    module: "src/protocol/frame.ts",
    tests: [
      "tests/frame_test.ts",
      "tests/protocol_test.ts",
      "tests/in_place_decode_unit_test.ts",
    ],
  },
  {
    name: "codec",
    module: "src/protocol/codec.ts",
    tests: [
      "tests/codec_test.ts",
      "tests/protocol_test.ts",
      "tests/value_model_test.ts",
      "tests/json_decode_unit_test.ts",
    ],
  },
  { name: "errors", module: "src/errors.ts", tests: ["tests/errors_test.ts"] },
  {
    name: "balancer",
    module: "src/channel/balancer.ts",
    tests: ["tests/balancer_test.ts"],
  },
  {
    name: "retry_budget",
    module: "src/channel/retry_budget.ts",
    tests: ["tests/retry_budget_test.ts"],
  },
  {
    name: "member",
    module: "src/discovery/member.ts",
    tests: ["tests/member_test.ts"],
  },
  {
    name: "attempt_policy",
    module: "src/channel/attempt_policy.ts",
    tests: ["tests/attempt_policy_test.ts", "tests/outlier_detection_test.ts"],
  },
  {
    name: "outlier_detection",
    module: "src/channel/outlier_detection.ts",
    tests: [
      "tests/outlier_detection_test.ts",
      "tests/outlier_detection_unit_test.ts",
    ],
    loopback: true,
  },
  {
    name: "metadata",
    module: "src/protocol/metadata.ts",
    tests: ["tests/metadata_unit_test.ts"],
  },
  {
    name: "msgpack_decode",
    module: "src/protocol/_msgpack_decode.ts",
    tests: [
      "tests/msgpack_unit_test.ts",
      "tests/codec_test.ts",
      "tests/in_place_decode_unit_test.ts",
    ],
  },
  {
    name: "msgpack_simple",
    module: "src/protocol/_msgpack_simple.ts",
    tests: [
      "tests/in_place_decode_unit_test.ts",
      "tests/msgpack_unit_test.ts",
      "tests/codec_test.ts",
    ],
  },
  {
    name: "msgpack_codec",
    module: "src/protocol/msgpack_codec.ts",
    tests: [
      "tests/msgpack_unit_test.ts",
      "tests/codec_test.ts",
      "tests/in_place_decode_unit_test.ts",
    ],
  },
  {
    name: "frame_writer",
    module: "src/protocol/frame_writer.ts",
    tests: ["tests/frame_writer_unit_test.ts", "tests/protocol_test.ts"],
  },
  {
    name: "interceptors",
    module: "src/_interceptors.ts",
    tests: ["tests/interceptors_unit_test.ts"],
  },
  {
    name: "telemetry",
    module: "src/telemetry/telemetry.ts",
    tests: ["tests/telemetry_unit_test.ts", "tests/telemetry_off_unit_test.ts"],
  },
  {
    name: "spans",
    module: "src/telemetry/_spans.ts",
    tests: ["tests/telemetry_unit_test.ts"],
  },
  {
    name: "secure_path",
    module: "src/zookeeper/_secure_path.ts",
    tests: ["tests/secure_path_unit_test.ts"],
  },
  // The channel's picking, pool and call logic, each with the unit tests
  // that reach it (the channel's other tests start ZooKeeper: too slow).
  {
    name: "channel/picker",
    module: "src/channel/picker.ts",
    tests: ["tests/channel/picker_test.ts", "tests/pool_unit_test.ts"],
  },
  {
    name: "channel/pool",
    module: "src/channel/pool.ts",
    tests: ["tests/pool_unit_test.ts", "tests/channel/picker_test.ts"],
  },
  {
    name: "channel/call",
    module: "src/channel/call.ts",
    tests: [
      "tests/channel/call_test.ts",
      "tests/channel_options_test.ts",
      "tests/channel/channel_unit_test.ts",
    ],
    loopback: true,
  },
  // The channel's wiring, readiness, endpoints, streams, stubs, options and
  // member admission: unit tests with fake timers, a scripted membership
  // and in-process servers on 127.0.0.1 (no ZooKeeper, no process).
  {
    name: "channel/channel",
    module: "src/channel/channel.ts",
    tests: ["tests/channel/channel_unit_test.ts", "tests/channel/call_test.ts"],
    loopback: true,
  },
  {
    name: "channel/readiness",
    module: "src/channel/readiness.ts",
    tests: ["tests/channel/readiness_test.ts"],
    loopback: true,
  },
  {
    name: "channel/subchannel",
    module: "src/channel/subchannel.ts",
    tests: ["tests/channel/subchannel_test.ts"],
    loopback: true,
  },
  {
    name: "channel/stream",
    module: "src/channel/stream.ts",
    tests: ["tests/channel/stream_test.ts"],
    loopback: true,
  },
  {
    name: "channel/stub",
    module: "src/channel/stub.ts",
    tests: ["tests/stub_test.ts"],
    loopback: true,
  },
  {
    name: "channel/options",
    module: "src/channel/options.ts",
    tests: ["tests/channel/admission_test.ts"],
  },
  {
    name: "channel/admission",
    module: "src/channel/admission.ts",
    tests: ["tests/channel/admission_test.ts"],
  },
  {
    name: "channel/hedging",
    module: "src/channel/hedging.ts",
    tests: [
      "tests/hedging_unit_test.ts",
      "tests/channel/call_test.ts",
      "tests/deadline_test.ts",
    ],
    loopback: true,
  },
  // The server connection's guards and responder: their unit tests and the
  // in-process server tests (no server process, no ZooKeeper).
  {
    name: "server/guards",
    module: "src/server/_guards.ts",
    tests: [
      "tests/guards_unit_test.ts",
      "tests/limits_test.ts",
    ],
    loopback: true,
  },
  {
    name: "server/responder",
    module: "src/server/_responder.ts",
    tests: [
      "tests/responder_unit_test.ts",
      "tests/server_test.ts",
      "tests/limits_test.ts",
    ],
    loopback: true,
  },
  // The client's error replies and the server's shared internals, with
  // their loopback-only unit tests.
  {
    name: "client/answers",
    module: "src/client/_answers.ts",
    tests: ["tests/client/answers_unit_test.ts"],
    loopback: true,
  },
  {
    name: "server/server_internals",
    module: "src/server/_server_internals.ts",
    tests: ["tests/server/server_internals_unit_test.ts"],
    loopback: true,
  },
  // The ZooKeeper registration, membership and session, each against an
  // in-memory ZooKeeper (tests/zookeeper/); their real-ZooKeeper tests are
  // the system layer.
  {
    name: "registration",
    module: "src/zookeeper/registration.ts",
    tests: ["tests/zookeeper/registration_unit_test.ts"],
  },
  {
    name: "membership",
    module: "src/zookeeper/membership.ts",
    tests: ["tests/zookeeper/membership_unit_test.ts"],
  },
  {
    name: "session",
    module: "src/zookeeper/session.ts",
    tests: ["tests/zookeeper/session_unit_test.ts"],
  },
  // zkrpc's ZooKeeper client, against a scripted server on 127.0.0.1.
  {
    name: "wire_client",
    module: "src/zookeeper/_wire_client.ts",
    tests: ["tests/zookeeper/wire_client_unit_test.ts"],
    loopback: true,
  },
  {
    name: "jute",
    module: "src/zookeeper/_jute.ts",
    tests: ["tests/zookeeper/wire_client_unit_test.ts"],
    loopback: true,
  },
  // The channel and server (being restructured, issue 24): every
  // module of those folders without an entry above, listed when the runner
  // starts, so that the scope follows the files.
  // (Every channel module has an entry above; a new one starts with the
  // channel's fast unit tests.)
  ...rest("src/channel", [
    "tests/channel/channel_unit_test.ts",
    "tests/channel/call_test.ts",
  ]),
  // The client connection's modules (issue 23): each with its own unit
  // tests and the connection's, on an in-memory socket facing a scripted
  // server (tests/client/); `connect` also dials a scripted listener on
  // 127.0.0.1.
  client("connection", ["tests/client/connect_unit_test.ts"]),
  // The sinks (the channel's way to take an answer without a promise) are
  // reached through the channel's tests and the caller-stack tests.
  client("_calls", [
    "tests/client/calls_unit_test.ts",
    "tests/call_promise_test.ts",
    "tests/channel/call_test.ts",
  ]),
  client("_connect", ["tests/client/connect_unit_test.ts"]),
  client("_deadline_queue", ["tests/deadline_queue_test.ts"]),
  client("_keepalive", ["tests/client/keepalive_unit_test.ts"]),
  client("_pings", ["tests/client/pings_unit_test.ts"]),
  client("_request_builder", ["tests/client/request_builder_unit_test.ts"]),
  client("_stream", ["tests/client/stream_unit_test.ts"]),
  client("options", []),
  // The rest of the server, each module with the fast tests that reach it:
  // unit tests under tests/server/ and in-process servers on 127.0.0.1 with
  // a scripted client speaking frames (no server process, no ZooKeeper).
  {
    name: "server/server",
    module: "src/server/server.ts",
    tests: [
      "tests/server/server_unit_test.ts",
      "tests/server/connection_unit_test.ts",
    ],
    loopback: true,
  },
  {
    name: "server/server_connection",
    module: "src/server/_server_connection.ts",
    tests: [
      "tests/server/connection_unit_test.ts",
      "tests/limits_test.ts",
      "tests/metadata_limits_test.ts",
      "tests/stream_wire_test.ts",
    ],
    loopback: true,
  },
  {
    name: "server/acceptor",
    module: "src/server/_acceptor.ts",
    tests: ["tests/server/acceptor_unit_test.ts"],
    loopback: true,
  },
  {
    name: "server/handler_table",
    module: "src/server/_handler_table.ts",
    tests: [
      "tests/server/handler_table_unit_test.ts",
      "tests/handler_shapes_test.ts",
    ],
    loopback: true,
  },
  {
    name: "server/handler_context",
    module: "src/server/_handler_context.ts",
    tests: ["tests/server/handler_context_unit_test.ts"],
  },
  {
    name: "server/stream",
    module: "src/server/_stream.ts",
    tests: ["tests/server/stream_unit_test.ts"],
    loopback: true,
  },
  {
    name: "server/running",
    module: "src/server/_running.ts",
    tests: ["tests/server/handler_context_unit_test.ts"],
  },
  {
    name: "server/call_context",
    module: "src/server/call_context.ts",
    tests: ["tests/server/handler_context_unit_test.ts"],
  },
  {
    name: "request",
    module: "src/protocol/request.ts",
    tests: [
      "tests/protocol/request_test.ts",
      "tests/in_place_decode_unit_test.ts",
    ],
  },
  {
    name: "deadline",
    module: "src/_deadline.ts",
    tests: [
      "tests/deadline_unit_test.ts",
      "tests/deadline_test.ts",
      "tests/deadline_queue_test.ts",
    ],
    loopback: true,
  },
  {
    name: "async",
    module: "src/_async.ts",
    tests: ["tests/async_unit_test.ts", "tests/deadline_test.ts"],
    loopback: true,
  },
];

const STRYKER_VERSION = "9.6.1";
const STRYKER = "node_modules/@stryker-mutator/core/bin/stryker.js";
const REPORTS = "mutation/reports";

interface Mutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}

interface Report {
  files: Record<string, { source: string; mutants: Mutant[] }>;
}

async function run(cmd: string, args: string[]): Promise<number> {
  const { code } = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  return code;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function ensureStryker(): Promise<void> {
  if (await exists(STRYKER)) return;
  console.error(
    `Installing @stryker-mutator/core@${STRYKER_VERSION} with npm…`,
  );
  const code = await run("npm", [
    "install",
    "--no-save",
    "--no-package-lock",
    `@stryker-mutator/core@${STRYKER_VERSION}`,
  ]);
  if (code !== 0) {
    throw new Error(`Cannot install StrykerJS: npm exited ${code}`);
  }
}

function command(target: Target): string {
  const flags = target.system
    ? [
      "--allow-net=127.0.0.1,127.0.0.2,localhost --allow-run --allow-read",
      "--allow-write",
      "--allow-env=__STRYKER_ACTIVE_MUTANT__,ZOOKEEPER_HOME,JAVA_HOME,ZOOKEEPER_HOSTS",
    ]
    : [
      "--allow-env=__STRYKER_ACTIVE_MUTANT__",
      ...(target.loopback ? ["--allow-net=127.0.0.1"] : []),
    ];
  // The first failing test kills the mutant: the rest need not run.
  const test = "deno test --no-check --quiet --fail-fast";
  return [test, ...flags, ...target.tests].join(" ");
}

async function git(args: string[]): Promise<string[]> {
  const { code, stdout, stderr } = await new Deno.Command("git", {
    args,
    stdin: "null",
  }).output();
  if (code !== 0) {
    throw new Error(
      `git ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return new TextDecoder().decode(stdout).split("\n").filter((l) => l !== "");
}

/**
 * The files changed since the merge base of `base`: committed on this
 * branch, modified in the work tree, or untracked.
 */
async function changedSince(base: string): Promise<Set<string>> {
  const [committed, modified, untracked] = await Promise.all([
    git(["diff", "--name-only", `${base}...HEAD`]),
    git(["diff", "--name-only", "HEAD"]),
    git(["ls-files", "--others", "--exclude-standard"]),
  ]);
  return new Set([...committed, ...modified, ...untracked]);
}

/**
 * The targets whose module or one of whose test files is in `changed`: what
 * the incremental run mutates.
 *
 * @example
 * ```ts ignore
 * const changed = new Set(["tests/codec_test.ts"]);
 * changedTargets(TARGETS, changed).map((t) => t.name); // codec, msgpack_…
 * ```
 */
export function changedTargets(
  targets: readonly Target[],
  changed: ReadonlySet<string>,
): Target[] {
  return targets.filter((t) =>
    changed.has(t.module) || t.tests.some((f) => changed.has(f))
  );
}

async function mutate(target: Target): Promise<Mutant[]> {
  const base = JSON.parse(
    await Deno.readTextFile("mutation/stryker.config.json"),
  );
  // One flat file per module: `channel/pool` → `channel_pool`.
  const file = `${REPORTS}/${target.name.replaceAll("/", "_")}`;
  const report = `${file}.json`;
  const config = {
    ...base,
    mutate: [target.module],
    commandRunner: { command: command(target) },
    jsonReporter: { fileName: report },
    htmlReporter: { fileName: `${file}.html` },
  };
  delete config.$schema;
  const configFile = `${file}.config.json`;
  await Deno.writeTextFile(configFile, JSON.stringify(config, null, 2));
  const code = await run("node", [STRYKER, "run", configFile]);
  if (code !== 0) throw new Error(`StrykerJS failed on ${target.module}`);
  const json = JSON.parse(await Deno.readTextFile(report)) as Report;
  return Object.values(json.files).flatMap((file) => file.mutants);
}

function score(mutants: Mutant[]): {
  killed: number;
  survived: number;
  valid: number;
  percent: number;
} {
  const detected = ["Killed", "Timeout"];
  const undetected = ["Survived", "NoCoverage"];
  const killed = mutants.filter((m) => detected.includes(m.status)).length;
  const survived = mutants.filter((m) => undetected.includes(m.status)).length;
  const valid = killed + survived;
  return {
    killed,
    survived,
    valid,
    percent: valid === 0 ? 100 : (100 * killed) / valid,
  };
}

if (import.meta.main) {
  const { values, positionals: wanted } = parseArgs({
    args: Deno.args,
    options: {
      all: { type: "boolean", default: false },
      base: { type: "string", default: "main" },
    },
    allowPositionals: true,
  });
  const unknown = wanted.filter((n) => !TARGETS.some((t) => t.name === n));
  if (unknown.length > 0) {
    console.error(
      `Cannot run mutation testing: unknown module ${unknown.join(", ")}; ` +
        `expected ${TARGETS.map((t) => t.name).join(", ")}`,
    );
    Deno.exit(2);
  }
  const targets = values.all
    ? TARGETS
    : wanted.length > 0
    ? TARGETS.filter((t) => wanted.includes(t.name))
    : changedTargets(TARGETS, await changedSince(values.base));
  if (targets.length === 0) {
    console.log(
      `No module in scope changed since ${values.base}; ` +
        "`--all` runs every module.",
    );
    Deno.exit(0);
  }
  console.error(`Mutating ${targets.map((t) => t.name).join(", ")}`);
  await ensureStryker();
  await Deno.mkdir(REPORTS, { recursive: true });
  const rows: string[] = [];
  const survivors: string[] = [];
  let failed = false;
  for (const target of targets) {
    const mutants = await mutate(target);
    const s = score(mutants);
    failed ||= s.percent < 80;
    rows.push(
      `| ${target.module} | ${
        s.percent.toFixed(1)
      }% | ${s.killed} | ${s.survived} | ${target.tests.join(", ")} |`,
    );
    for (const m of mutants) {
      if (m.status === "Survived" || m.status === "NoCoverage") {
        survivors.push(
          `- ${target.module}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName}: \`${
            (m.replacement ?? "").replaceAll("\n", " ").slice(0, 80)
          }\``,
        );
      }
    }
  }
  const summary = [
    "| Module | Killed | # killed | # survived | Tests |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "Surviving mutants:",
    ...survivors,
    "",
  ].join("\n");
  await Deno.writeTextFile(`${REPORTS}/summary.md`, summary);
  console.log(summary);
  if (failed) {
    console.error("A module scored below 80% killed.");
    Deno.exit(1);
  }
}
