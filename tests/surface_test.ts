/**
 * The public surface: `.` (mod.ts) stays small, every public name has one
 * home among the entry points, and every entry point of deno.json is
 * type-checked, doc-linted and tested by the tasks and by CI.
 *
 * Names are counted from `deno doc --json`, which lists every exported symbol,
 * types and interfaces included (a runtime `Object.keys(await import())`
 * would miss them).
 *
 * @module
 */
import assert from "node:assert/strict";
import { denoDoc, type DocSymbol } from "./_deno_doc.ts";

const ROOT = new URL("../", import.meta.url);
const CONFIG = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", ROOT)),
) as { exports: Record<string, string>; tasks: Record<string, string> };
const CI = await Deno.readTextFile(new URL(".ci/run", ROOT));

/** At most this many names on `.`; the rest lives in the other entry points. */
const MAX_ROOT_SYMBOLS = 35;

/** The names an entry point file exports, types included, per `deno doc`. */
async function exportedNames(file: string): Promise<string[]> {
  const doc = await denoDoc([file]);
  const url = new URL(file, ROOT).href;
  const symbols = doc.nodes[url]?.symbols;
  assert.ok(Array.isArray(symbols), `deno doc --json ${file}: no symbols`);
  return symbols.map((symbol) => symbol.name);
}

const entryFiles = Object.values(CONFIG.exports).map((path) =>
  path.replace(/^\.\//, "")
);

Deno.test(`mod.ts exports at most ${MAX_ROOT_SYMBOLS} names, types included`, async () => {
  const names = await exportedNames("mod.ts");
  // The count is of symbols, not runtime values: types are in it.
  assert.ok(names.includes("ServeOptions"), "types are counted");
  assert.ok(names.includes("serve") && names.includes("DistributedChannel"));
  assert.equal(new Set(names).size, names.length);
  assert.ok(
    names.length <= MAX_ROOT_SYMBOLS,
    `mod.ts exports ${names.length} names (at most ${MAX_ROOT_SYMBOLS}): ${
      names.join(", ")
    }`,
  );
});

Deno.test("mod.ts, protocol.ts and extend.ts share no exported name", async () => {
  const owners = new Map<string, string[]>();
  for (const file of ["mod.ts", "protocol.ts", "extend.ts"]) {
    for (const name of await exportedNames(file)) {
      owners.set(name, [...owners.get(name) ?? [], file]);
    }
  }
  const shared = [...owners].filter(([, files]) => files.length > 1)
    .map(([name, files]) => `${name}: ${files.join(", ")}`);
  assert.deepEqual(shared, []);
});

Deno.test("every deno.json entry point is checked, doc-linted and tested by the tasks and CI", () => {
  assert.deepEqual(
    Object.keys(CONFIG.exports).sort(),
    [".", "./cli", "./extend", "./protocol", "./testing", "./zookeeper"],
  );
  const listAfter = (text: string, command: string): string[] => {
    const line = text.split("\n").find((l) => l.includes(command)) ?? "";
    const rest = line.slice(line.indexOf(command) + command.length);
    return rest.split(/\s*&&\s*|"/)[0]!.trim().split(/\s+/);
  };
  for (
    const [where, text] of [
      ["tasks.check", CONFIG.tasks.check!],
      [".ci/run", CI],
    ] as const
  ) {
    const checked = listAfter(text, "deno check --doc ");
    const linted = listAfter(text, "deno doc --lint ");
    for (const file of entryFiles) {
      assert.ok(checked.includes(file), `${where}: deno check --doc ${file}`);
      assert.ok(linted.includes(file), `${where}: deno doc --lint ${file}`);
    }
  }
  // `test` runs the unit layer, then the system layer with the doc tests.
  assert.match(CONFIG.tasks.test!, /deno task test:system/);
  const tested = CONFIG.tasks["test:system"]!.split(/\s+/);
  assert.ok(tested.includes("--doc"), "tasks.test:system runs doc tests");
  for (const file of entryFiles) {
    assert.ok(tested.includes(file), `tasks.test runs ${file}'s doc tests`);
  }
});

/** The symbols of every entry point, by name, from one `deno doc --json`. */
async function entrySymbols(): Promise<{
  symbols: Map<string, DocSymbol>;
  doc: unknown;
}> {
  const doc = await denoDoc(entryFiles);
  const symbols = new Map<string, DocSymbol>();
  for (const module of Object.values(doc.nodes)) {
    for (const symbol of module.symbols) symbols.set(symbol.name, symbol);
  }
  return { symbols, doc };
}

/** Every `{@link X}` / `{@linkcode X}` target in a JSON tree of docs. */
function linkTargets(value: unknown, found = new Set<string>()): Set<string> {
  if (typeof value === "string") {
    for (const m of value.matchAll(/\{@link(?:code|plain)?\s+([^}\s|]+)/g)) {
      found.add(m[1]!);
    }
  } else if (Array.isArray(value)) {
    for (const item of value) linkTargets(item, found);
  } else if (typeof value === "object" && value !== null) {
    for (const item of Object.values(value)) linkTargets(item, found);
  }
  return found;
}

Deno.test("every {@link} in the public docs names a symbol an entry point exports", async () => {
  const { symbols, doc } = await entrySymbols();
  const targets = linkTargets(doc);
  assert.ok(targets.size > 20, `only ${targets.size} links found`);
  const dangling: string[] = [];
  for (const target of targets) {
    const [head, ...rest] = target.split(/[.#]/);
    const member = rest.filter((part) => part !== "prototype")[0];
    const symbol = symbols.get(head!);
    if (!symbol) {
      dangling.push(`${target}: no entry point exports ${head}`);
    } else if (member !== undefined) {
      const members = symbol.declarations.flatMap((d) => [
        ...d.def?.methods ?? [],
        ...d.def?.properties ?? [],
      ]).map((m) => m.name);
      if (!members.includes(member)) {
        dangling.push(`${target}: ${head} has no member ${member}`);
      }
    }
  }
  assert.deepEqual(dangling, []);
});
