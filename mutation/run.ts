/**
 * `deno task mutation [NAME…]`: mutation testing with StrykerJS, one module
 * at a time against that module's own fast unit tests, then a score table.
 *
 * Installs `@stryker-mutator/core` into `node_modules/` (not committed) with
 * npm when it is missing, and runs it with Node (StrykerJS 9 supports Node
 * 20). Shared settings are in `mutation/stryker.config.json`; reports go to
 * `mutation/reports/` (not committed). See docs/testing.md.
 *
 * @module
 */

/** A module in scope and the test files that exercise it without I/O. */
interface Target {
  /** Short name for the command line, e.g. `frame`. */
  name: string;
  module: string;
  tests: string[];
  /**
   * Its tests also start an in-process server on 127.0.0.1 (the runner then
   * allows loopback network access, nothing else).
   */
  loopback?: boolean;
}

/**
 * The scope: modules whose tests are fast and need no network. To add one,
 * append it here with its unit test files.
 */
const TARGETS: Target[] = [
  {
    name: "frame",
    module: "src/protocol/frame.ts",
    tests: ["tests/frame_test.ts", "tests/protocol_test.ts"],
  },
  {
    name: "codec",
    module: "src/protocol/codec.ts",
    tests: ["tests/codec_test.ts", "tests/protocol_test.ts"],
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
  return [
    "deno test --no-check --quiet",
    "--allow-env=__STRYKER_ACTIVE_MUTANT__",
    ...(target.loopback ? ["--allow-net=127.0.0.1"] : []),
    ...target.tests,
  ].join(" ");
}

async function mutate(target: Target): Promise<Mutant[]> {
  const base = JSON.parse(
    await Deno.readTextFile("mutation/stryker.config.json"),
  );
  const report = `${REPORTS}/${target.name}.json`;
  const config = {
    ...base,
    mutate: [target.module],
    commandRunner: { command: command(target) },
    jsonReporter: { fileName: report },
    htmlReporter: { fileName: `${REPORTS}/${target.name}.html` },
  };
  delete config.$schema;
  const configFile = `${REPORTS}/${target.name}.config.json`;
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
  const wanted = Deno.args;
  const unknown = wanted.filter((n) => !TARGETS.some((t) => t.name === n));
  if (unknown.length > 0) {
    console.error(
      `Cannot run mutation testing: unknown module ${unknown.join(", ")}; ` +
        `expected ${TARGETS.map((t) => t.name).join(", ")}`,
    );
    Deno.exit(2);
  }
  const targets = wanted.length === 0
    ? TARGETS
    : TARGETS.filter((t) => wanted.includes(t.name));
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
