/**
 * The dependency rule of docs/architecture.md, checked on the import
 * statements of every module under `src/`: layers import only downwards (or
 * within their own folder), there are no import circles, `channel/` and
 * `server/` never reach ZooKeeper, the ZooKeeper client is zkrpc's own
 * (no module imports node-zookeeper-client or `node:net`; importing `mod.ts`
 * does not load `src/zookeeper/`), no entry
 * point loads `@opentelemetry/api` when imported (telemetry does, when on), no module
 * imports another folder's `_` (internal) file, and no module keeps a
 * registry that another layer fills (the old `installConnector`), at import
 * time or later.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runDeno } from "../src/testing/child_process.ts";

const SRC = new URL("../src/", import.meta.url);

/**
 * Layers from the bottom up; a module may import modules of a lower layer or
 * of its own folder. Folders sharing a layer do not import each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  [
    "_util.ts",
    "_printable.ts",
    "_async.ts",
    "_deadline.ts",
    "_defaults.ts",
    "errors.ts",
    "_error_payload.ts",
    "_call_scope.ts",
    "_interceptors.ts",
    "_id_table.ts",
  ],
  ["protocol/", "telemetry/"],
  ["discovery/"],
  ["client/"],
  ["server/", "channel/"],
  ["zookeeper/"],
  ["cli/", "testing/"],
];

/** The folder (or top-level file) of a module path relative to src/. */
function unitOf(path: string): string {
  const slash = path.indexOf("/");
  return slash === -1 ? path : path.slice(0, slash + 1);
}

function layerOf(path: string): number {
  const unit = unitOf(path);
  const layer = LAYERS.findIndex((units) => units.includes(unit));
  if (layer === -1) {
    throw new Error(
      `src/${path} is in no layer: add "${unit}" to LAYERS and to docs/architecture.md`,
    );
  }
  return layer;
}

async function* walk(dir: URL, prefix = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) {
      yield* walk(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`);
    } else if (entry.name.endsWith(".ts")) {
      yield `${prefix}${entry.name}`;
    }
  }
}

/** Static `import … from` / `export … from` / `import "…"` specifiers. */
function importsOf(text: string): string[] {
  const specifiers: string[] = [];
  const patterns = [
    /^(?:import|export)\b[^;"'()=/]*?\bfrom\s*["']([^"']+)["']/gm,
    /^import\s*["']([^"']+)["']/gm,
  ];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) specifiers.push(match[1]!);
  }
  for (const match of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) {
    specifiers.push(match[1]!);
  }
  return specifiers;
}

interface Graph {
  /** Module (relative to src/) -> modules under src/ it imports. */
  local: Map<string, string[]>;
  /** Module -> bare or npm specifiers it imports. */
  external: Map<string, string[]>;
}

async function graph(): Promise<Graph> {
  const local = new Map<string, string[]>();
  const external = new Map<string, string[]>();
  for await (const path of walk(SRC)) {
    const url = new URL(path, SRC);
    const text = await Deno.readTextFile(url);
    const locals: string[] = [];
    const externals: string[] = [];
    for (const specifier of importsOf(text)) {
      if (specifier.startsWith(".")) {
        const target = new URL(specifier, url).href;
        assert.ok(
          target.startsWith(SRC.href),
          `src/${path} imports ${specifier}, outside src/`,
        );
        locals.push(target.slice(SRC.href.length));
      } else {
        externals.push(specifier);
      }
    }
    local.set(path, locals);
    external.set(path, externals);
  }
  return { local, external };
}

const { local, external } = await graph();

Deno.test("the import scan sees the modules and their imports", () => {
  assert.ok(local.size > 40, `only ${local.size} modules found`);
  assert.ok(
    local.get("channel/channel.ts")?.includes("client/connection.ts"),
    "channel/channel.ts should import client/connection.ts",
  );
  assert.ok(external.get("_call_scope.ts")?.includes("node:async_hooks"));
});

Deno.test("no module imports a higher layer or a sibling folder of its layer", () => {
  const violations: string[] = [];
  for (const [from, targets] of local) {
    for (const to of targets) {
      if (unitOf(from) === unitOf(to)) continue;
      if (!from.includes("/") && !to.includes("/")) continue; // both at the base
      const [a, b] = [layerOf(from), layerOf(to)];
      if (b > a) violations.push(`src/${from} -> src/${to} (upward)`);
      else if (a === b) violations.push(`src/${from} -> src/${to} (sibling)`);
    }
  }
  assert.deepEqual(violations, []);
});

Deno.test("channel/ and server/ never import zookeeper/", () => {
  const violations = [...local].flatMap(([from, targets]) =>
    /^(channel|server)\//.test(from)
      ? targets.filter((to) => to.startsWith("zookeeper/")).map((to) =>
        `src/${from} -> src/${to}`
      )
      : []
  );
  assert.deepEqual(violations, []);
});

Deno.test("the ZooKeeper client is zkrpc's own: no module imports node-zookeeper-client or node:net", () => {
  // What each loads costs every process over 1 MiB of heap
  // (docs/performance.md, "Seventh round").
  const importers = [...external]
    .filter(([, specifiers]) =>
      specifiers.some((s) =>
        s.includes("node-zookeeper-client") || s === "node:net"
      )
    )
    .map(([path]) => path);
  assert.ok(external.size > 0);
  assert.deepEqual(importers, []);
});

Deno.test("there are no import circles", () => {
  const state = new Map<string, "open" | "done">();
  const circles: string[] = [];
  const visit = (path: string, stack: string[]) => {
    const seen = state.get(path);
    if (seen === "done") return;
    if (seen === "open") {
      circles.push([...stack.slice(stack.indexOf(path)), path].join(" -> "));
      return;
    }
    state.set(path, "open");
    for (const to of local.get(path) ?? []) visit(to, [...stack, path]);
    state.set(path, "done");
  };
  for (const path of local.keys()) visit(path, []);
  assert.deepEqual(circles, []);
});

/**
 * Module-level `let`s an exported function sets from its own parameter that
 * are not registries between layers, and why.
 */
const NOT_REGISTRIES: Readonly<Record<string, string>> = {
  // The decoder's cursor over the bytes of the current call, reset by each
  // call; nothing outlives it.
  "protocol/_msgpack_decode.ts decodeMsgpack": "per-call decoder state",
};

/**
 * Exported functions that store a parameter in module-level state: a `let`
 * assigned from it, or a module-level `Map`/`Set` it is added to. That is a
 * registry one layer fills for another at import time (like the removed
 * `installConnector`); layers get what they need as arguments instead.
 */
function registriesOf(text: string): string[] {
  const lets = [...text.matchAll(/^let (\w+)/gm)].map((m) => m[1]!);
  const collections = [
    ...text.matchAll(/^const (\w+)(?::[^=]*)? = new (?:Weak)?(?:Map|Set)\b/gm),
  ].map((m) => m[1]!);
  const found: string[] = [];
  const functions =
    /^export (?:async )?function (\w+)(?:<[^>]*>)?\(([^)]*)\)[\s\S]*?^}/gm;
  for (const [body, name, list] of text.matchAll(functions)) {
    const params = [...list!.matchAll(/(?:^|,)\s*(?:\.\.\.)?(\w+)/g)]
      .map((m) => m[1]!);
    for (const param of params) {
      const stores = [
        ...lets.map((v) => new RegExp(`(?<![\\w.])${v}\\s*=\\s*${param}\\b`)),
        ...collections.map((v) =>
          new RegExp(`(?<![\\w.])${v}\\.(?:set|add)\\([^;]*\\b${param}\\b`)
        ),
      ];
      if (stores.some((pattern) => pattern.test(body!))) found.push(name!);
    }
  }
  return [...new Set(found)];
}

Deno.test("no module keeps a registry that another layer fills", async () => {
  // The check itself finds the pattern it forbids.
  assert.deepEqual(
    registriesOf(
      "let connector: C | undefined;\nexport function installConnector(connect: C): void {\n  connector = connect;\n}\n",
    ),
    ["installConnector"],
  );
  const violations: string[] = [];
  for (const path of local.keys()) {
    // Applications and the test kit sit above every layer.
    if (/^(cli|testing)\//.test(path)) continue;
    const text = await Deno.readTextFile(new URL(path, SRC));
    for (const name of registriesOf(text)) {
      if (NOT_REGISTRIES[`${path} ${name}`] === undefined) {
        violations.push(`src/${path}: ${name}() stores its argument`);
      }
    }
  }
  assert.deepEqual(violations, []);
});

interface ModuleInfo {
  specifier: string;
  dependencies?: {
    code?: { specifier: string };
    isDynamic?: boolean;
  }[];
}

/** `deno info --json` of an entry point. */
async function infoOf(
  entry: string,
): Promise<{ modules: ModuleInfo[]; redirects: Record<string, string> }> {
  const { code, stdout, stderr } = await runDeno(["info", "--json", entry], {
    cwd: new URL("../", import.meta.url),
  });
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout);
}

/**
 * The modules (npm ones included) `deno info` finds in a module's graph,
 * dynamic `import()`s included.
 */
async function loadedBy(entry: string): Promise<string[]> {
  return (await infoOf(entry)).modules.map((m) => m.specifier);
}

/**
 * The modules that importing `entry` evaluates: its graph without what is
 * behind a dynamic `import()` and without type-only imports.
 */
async function importedBy(entry: string): Promise<string[]> {
  const { modules, redirects } = await infoOf(entry);
  const bySpecifier = new Map(modules.map((m) => [m.specifier, m]));
  const root = new URL(`../${entry}`, import.meta.url).href;
  const seen = new Set<string>();
  const pending = [root];
  while (pending.length > 0) {
    const specifier = pending.pop()!;
    const resolved = redirects[specifier] ?? specifier;
    if (seen.has(resolved)) continue;
    seen.add(resolved);
    for (const dependency of bySpecifier.get(resolved)?.dependencies ?? []) {
      if (dependency.code !== undefined && !dependency.isDynamic) {
        pending.push(dependency.code.specifier);
      }
    }
  }
  return [...seen];
}

Deno.test("importing mod.ts or extend.ts does not load the ZooKeeper client", async () => {
  const zookeeper = (specifier: string) =>
    specifier.includes("/src/zookeeper/");
  // The check can fail: the ZooKeeper entry point does load it.
  assert.ok((await loadedBy("zookeeper.ts")).some(zookeeper));
  for (const entry of ["mod.ts", "extend.ts"]) {
    assert.deepEqual((await loadedBy(entry)).filter(zookeeper), [], entry);
  }
});

Deno.test("importing an entry point does not load @opentelemetry/api: telemetry loads it when it is on", async () => {
  const api = (specifier: string) => specifier.includes("@opentelemetry/api");
  // The check can fail: the API is in the graph, behind telemetry's import().
  assert.ok((await loadedBy("mod.ts")).some(api));
  assert.ok(
    (await importedBy("src/telemetry/_spans.ts")).some(api),
    "src/telemetry/_spans.ts imports the API",
  );
  const entries = ["mod.ts", "extend.ts", "zookeeper.ts", "protocol.ts"];
  for (const entry of [...entries, "testing.ts", "cli.ts"]) {
    const imported = await importedBy(entry);
    // The walk follows imports: mod.ts evaluates most of src/.
    const least = entry === "mod.ts" ? 40 : 2;
    assert.ok(imported.length >= least, `${entry}: ${imported.length}`);
    assert.deepEqual(imported.filter(api), [], entry);
  }
});

Deno.test("every module an entry point loads is ASCII: V8 keeps a module's source in the heap, two bytes a character if one is not", async () => {
  const isAscii = (text: string) => !/\P{ASCII}/u.test(text);
  // The check can fail: one character past ASCII is enough.
  assert.equal(isAscii("host:port\u2026"), false);
  const entries = ["mod.ts", "extend.ts", "zookeeper.ts", "protocol.ts"];
  const local = new Set<string>();
  for (const entry of [...entries, "testing.ts", "cli.ts"]) {
    for (const specifier of await loadedBy(entry)) {
      if (specifier.startsWith("file:")) local.add(specifier);
    }
  }
  assert.ok(local.size >= 60, `${local.size} modules`);
  const notAscii: string[] = [];
  for (const specifier of local) {
    if (!isAscii(await Deno.readTextFile(new URL(specifier)))) {
      notAscii.push(specifier.slice(specifier.indexOf("/src/")));
    }
  }
  assert.deepEqual(notAscii, [], "write \\u2026 in strings, ... in comments");
});

/** Imports of another folder's `_` file that are allowed: none. */
const KNOWN_PRIVATE_IMPORTS: readonly string[] = [
  // The ZooKeeper configuration module is being made public to cli/, testing/.
  "src/cli/_shared.ts -> src/zookeeper/config.ts",
  "src/testing/zookeeper_cli.ts -> src/zookeeper/config.ts",
];

/** Whether `path` (relative to src/) is a `_` file inside a folder. */
function isFolderPrivate(path: string): boolean {
  const slash = path.lastIndexOf("/");
  return slash !== -1 && path[slash + 1] === "_";
}

Deno.test("no module imports another folder's _ file", () => {
  const violations = [...local].flatMap(([from, targets]) =>
    targets
      .filter((to) => isFolderPrivate(to) && unitOf(to) !== unitOf(from))
      .map((to) => `src/${from} -> src/${to}`)
  ).filter((edge) => !KNOWN_PRIVATE_IMPORTS.includes(edge));
  assert.deepEqual(violations, []);
  assert.ok(isFolderPrivate("client/_calls.ts"));
  assert.ok(!isFolderPrivate("_async.ts"), "src/_*.ts are shared by all");
});

/**
 * Registries filled at import time that the channel rework removes
 * (`installConnector`); nothing may be added here.
 */
const KNOWN_IMPORT_TIME_REGISTRIES: readonly string[] = [];

/**
 * Top-level calls (statements at column 0) of functions a module imports
 * from another folder: a module that, when imported, hands something to a
 * lower layer's module-level slot (a hidden circle between layers).
 */
async function importTimeCalls(): Promise<string[]> {
  const found: string[] = [];
  for (const [from, targets] of local) {
    const text = await Deno.readTextFile(new URL(from, SRC));
    const imported = new Map<string, string>();
    const pattern =
      /^import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*["']([^"']+)["']/gm;
    for (const [, names, specifier] of text.matchAll(pattern)) {
      const to = new URL(specifier!, new URL(from, SRC)).href.slice(
        SRC.href.length,
      );
      if (!targets.includes(to) || unitOf(to) === unitOf(from)) continue;
      for (const name of names!.split(",")) {
        const local = name.trim().replace(/^type\s+/, "").split(/\s+as\s+/)
          .pop();
        if (local) imported.set(local, to);
      }
    }
    for (const [, name] of text.matchAll(/^(?:await\s+)?(\w+)\s*\(/gm)) {
      const to = imported.get(name!);
      if (to !== undefined) {
        found.push(`src/${from} calls ${name}() of src/${to}`);
      }
    }
  }
  return found;
}

Deno.test("no module fills another folder's registry when it is imported", async () => {
  const calls = await importTimeCalls();
  assert.deepEqual(
    calls.filter((call) => !KNOWN_IMPORT_TIME_REGISTRIES.includes(call)),
    [],
  );
});
