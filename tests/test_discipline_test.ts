/**
 * Test discipline, checked on the source of every test module in `tests/`
 * (files ending `_test.ts`, `tests/hosts/` included):
 *
 * 1. **Bounded runs.** Every `deno test` task of deno.json preloads
 *    `tests/_bounded.ts`, which fails any test (or step) still running after
 *    `TEST_TIMEOUT` ms: a wait without a deadline (a `Connection` call
 *    without `timeout`, a promise no event settles, a hanging mutant) fails
 *    its test and the run goes on.
 * 2. **No sleep as synchronisation.** A sleep is `await delay(…)`,
 *    `return delay(…)` or a promise resolved by `setTimeout(resolve, …)` /
 *    `setTimeout(r, …)`. Each needs `// sleep-ok: <reason>` on its line or
 *    one of the two lines above (handler work standing in for a slow
 *    method, a pace a load generator keeps, a time that must pass by
 *    design). A wait for an event uses `waitFor`, `nextEvent` or `within`
 *    (`tests/_wait.ts`).
 * 3. **No wall-clock assertion.** An assertion (`assert…(…)` up to its `;`)
 *    that reads `performance.now()` or `Date.now()`, or compares a duration
 *    (`elapsed`, `slowest`, `took`, `started`, `waited`, `…At`, `ms`) with
 *    `<`, `<=`, `>`, `>=`, needs `// clock-ok: <reason>` (only for a lower
 *    bound that load cannot break, such as "waited at least the deadline",
 *    or a timestamp, not a duration). Upper bounds become `within(promise,
 *    ms, what)`, speed figures go to the bench.
 * 4. **No unbounded hand-made wait.** `await new Promise(` whose statement
 *    neither arms a timer nor is inside `within(`, or passes `timeout:
 *    Infinity` to a wait helper, needs `// wait-ok: <reason>`.
 * 5. **Layers.** `deno task test:unit` lists the fast files (no ZooKeeper,
 *    no child process); `test:system` runs every other one: the doc
 *    examples and most files with `--parallel` (its `--ignore` is the unit
 *    list, then the files its last `deno test` runs one by one); `test`
 *    runs both.
 *
 * @module
 */
import assert from "node:assert/strict";
import { bounded, TEST_TIMEOUT, TestTimeoutError } from "./_bounded.ts";
import { within } from "./_wait.ts";

const ROOT = new URL("../", import.meta.url);
const SELF = "tests/test_discipline_test.ts";

/** One rule broken at a place. */
interface Finding {
  file: string;
  line: number;
  rule: "sleep" | "clock" | "wait";
  text: string;
}

const SLEEP = /(?:await|return)\s+delay\(|setTimeout\(\s*(?:resolve|r)\s*[,)]/;
const CLOCK_READ = /performance\.now\(\)|Date\.now\(\)/;
const DURATION =
  /\b(?:elapsed\w*|slowest|took|started|waited|\w+At|ms|\w+Ms)\b(?:\[[^\]]*\])?!?\s*(?:[<>]=?)\s*[\w(]|[\w)\]]\s*(?:[<>]=?)\s*\b(?:elapsed\w*|slowest|took|\w+Ms|ms)\b/;
const UNBOUNDED_INFINITY = /timeout:\s*Infinity/;

/** `// <tag>: <reason>` on the line or one of the two lines above. */
function marked(lines: string[], i: number, tag: string): boolean {
  const re = new RegExp(`//\\s*${tag}:\\s*\\S.{2,}`);
  return [i, i - 1, i - 2].some((j) => j >= 0 && re.test(lines[j]!));
}

/** The statement starting at line `i`: up to the line ending with `;`. */
function statement(lines: string[], i: number): string {
  const parts: string[] = [];
  for (let j = i; j < lines.length && j < i + 30; j++) {
    parts.push(lines[j]!);
    if (/;\s*(?:\/\/.*)?$/.test(lines[j]!)) break;
  }
  return parts.join("\n");
}

/** Every broken rule in the source of one test module. */
function scan(file: string, source: string): Finding[] {
  const lines = source.split("\n");
  const found: Finding[] = [];
  const add = (i: number, rule: Finding["rule"]) =>
    found.push({ file, line: i + 1, rule, text: lines[i]!.trim() });
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(?:\/\/|\*|\/\*)/.test(line)) continue;
    if (SLEEP.test(line) && !marked(lines, i, "sleep-ok")) add(i, "sleep");
    if (/^\s*(?:await\s+)?assert(?:\.\w+)?\(/.test(line)) {
      const body = statement(lines, i).replace(/\/\/.*$/gm, "");
      const clock = CLOCK_READ.test(body) ||
        DURATION.test(
          body.replace(/`[^`]*`|"[^"]*"|\/\^.*?[^\\]\/[dgimsuy]*/gs, '""'),
        );
      if (clock && !marked(lines, i, "clock-ok")) add(i, "clock");
    }
    if (/await new Promise\b/.test(line)) {
      const body = statement(lines, i);
      const boundedWait = /setTimeout|within\(/.test(body) ||
        /within\(\s*$/.test(lines[i - 1] ?? "");
      if (!boundedWait && !marked(lines, i, "wait-ok")) add(i, "wait");
    }
    const code = line.replace(/`[^`]*`|"[^"]*"|'[^']*'/g, '""');
    if (
      UNBOUNDED_INFINITY.test(code) && /waitFor|nextEvent|within/.test(code)
    ) {
      if (!marked(lines, i, "wait-ok")) add(i, "wait");
    }
  }
  return found;
}

/** The test modules under `tests/`, as paths relative to the repository. */
async function testFiles(dir = "tests"): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(new URL(`${dir}/`, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && entry.name !== "fixtures") {
      out.push(...await testFiles(path));
    } else if (entry.isFile && entry.name.endsWith("_test.ts")) out.push(path);
  }
  return out.sort();
}

async function tasks(): Promise<Record<string, string>> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  return config.tasks;
}

Deno.test("discipline: every test module is free of unmarked sleeps, wall-clock assertions and unbounded hand-made waits", async () => {
  const findings: string[] = [];
  // This file holds the breaches its own self-check feeds the scanner.
  const files = (await testFiles()).filter((f) => !f.endsWith(SELF));
  for (const file of files) {
    const source = await Deno.readTextFile(new URL(file, ROOT));
    for (const f of scan(file, source)) {
      findings.push(`${f.file}:${f.line} ${f.rule}: ${f.text}`);
    }
  }
  assert.deepEqual(findings, []);
});

Deno.test("discipline: the scanner flags each kind of breach and accepts each marker", () => {
  const cases: [string, string[]][] = [
    ["  await delay(50);", ["sleep"]],
    ["      return delay(100);", ["sleep"]],
    ["  await new Promise((resolve) => setTimeout(resolve, 30));", ["sleep"]],
    ["  await new Promise((r) => setTimeout(r, 1));", ["sleep"]],
    ["  // sleep-ok: handler work\n  await delay(5);", []],
    ["  await delay(5); // sleep-ok: handler work", []],
    ["  // sleep-ok:\n  await delay(5);", ["sleep"]],
    ["  // await delay(5);", []],
    ['  assert.ok(performance.now() - started < 1000, "fast");', ["clock"]],
    ["  assert.ok(\n    Date.now() - t0 >= 50,\n    `x`,\n  );", ["clock"]],
    ["  assert.ok(ejectedAt <= 2000);", ["clock"]],
    ["  assert.ok(slowest < 1000);", ["clock"]],
    ["  assert.ok(run.ms <= BOUND);", ["clock"]],
    ["  assert.ok(elapsed[i]! >= timeout - 2);", ["clock"]],
    ["  // clock-ok: a lower bound\n  assert.ok(elapsed >= 100);", []],
    ["  assert.ok(count < 10);", []],
    ['  assert.equal(error.message, "took < 5 ms");', []],
    ["  assert.match(m, /^waited ms >= 0$/);", []],
    [
      "  await new Promise<void>((resolve) => {\n    x.on(resolve);\n  });",
      ["wait"],
    ],
    [
      "  await within(\n    new Promise<void>((resolve) => x.on(resolve)),\n    1000,\n    'x',\n  );",
      [],
    ],
    ["  await waitFor(() => ok, { what: 'x', timeout: Infinity });", ["wait"]],
    ['Deno.test("waitFor({ timeout: Infinity })", () => {});', []],
  ];
  for (const [source, expected] of cases) {
    assert.deepEqual(
      scan("x_test.ts", source).map((f) => f.rule),
      expected,
      source,
    );
  }
});

Deno.test("discipline: bounded() fails a test that never settles, naming it, and lets a settled one pass", async () => {
  const hang = bounded("hangs", () => new Promise(() => {}), 20);
  await assert.rejects(
    within(hang({} as Deno.TestContext), 5_000, "the bound"),
    (e) =>
      e instanceof TestTimeoutError &&
      e.message.startsWith('Test "hangs" did not finish within 20 ms'),
  );
  let ran = false;
  await bounded("quick", () => {
    ran = true;
  })({} as Deno.TestContext);
  assert.ok(ran);
  await assert.rejects(
    bounded("fails", () => Promise.reject(new RangeError("own")), 5_000)(
      {} as Deno.TestContext,
    ),
    RangeError,
  );
  assert.equal(TEST_TIMEOUT, 180_000);
});

Deno.test("discipline: every deno test task preloads the bound; test:unit and test:system split the suite and test runs both", async () => {
  const all = await tasks();
  const testTasks = Object.entries(all).filter(([, cmd]) =>
    cmd.includes("deno test")
  );
  assert.ok(testTasks.length >= 3);
  for (const [name, cmd] of testTasks) {
    assert.ok(cmd.includes("--preload tests/_bounded.ts"), name);
  }
  assert.equal(all.test, "deno task test:unit && deno task test:system");
  const unit = all["test:unit"]!.split(" ").filter((a) =>
    a.startsWith("tests/") && a.endsWith("_test.ts")
  );
  // test:system runs the doc examples and most files with --parallel; the
  // files it ignores there are the unit list, then the ones that may not
  // share the process (fixed ports, environment, RSS, timing), which its
  // last `deno test` runs one by one.
  const system = all["test:system"]!;
  const ignored = /--ignore=(\S+)/.exec(system)?.[1]?.split(",");
  const sequential = system.slice(system.lastIndexOf("deno test ")).split(" ")
    .filter((a) => a.startsWith("tests/") && a.endsWith("_test.ts"));
  assert.ok(/deno test --doc --parallel /.test(system), system);
  assert.deepEqual(ignored, [...unit, ...sequential]);
  const files = await testFiles();
  for (const file of [...unit, ...sequential]) {
    assert.ok(files.includes(file), file);
  }
  assert.equal(new Set([...unit, ...sequential]).size, ignored!.length);
  // The unit layer needs no ZooKeeper and starts no process.
  const SYSTEM =
    /startZooKeeper|_discovery_helpers|server_process|Deno\.Command|startChildServer|startFlood|testing\.ts/;
  for (const file of unit.filter((f) => f !== SELF)) {
    const source = await Deno.readTextFile(new URL(file, ROOT));
    assert.ok(!SYSTEM.test(source), `${file} belongs to the system layer`);
  }
});
