/**
 * What a call leaves alive: runs one load driver in this process against a
 * bench server process, takes V8 heap snapshots a second apart under load,
 * and lists the objects alive at that instant by constructor (or closure)
 * name, with who holds them. On this V8 anything alive at a young-generation
 * collection is promoted at once, so every object alive here beyond the
 * calls in flight is old-generation garbage later.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-run --allow-read
 * --allow-write --allow-env --allow-sys bench/retained.ts
 * [--driver=rpc|channel|ceiling] [--in-flight=64] [--top=30]
 * [--retainers=PendingCall,Promise]`
 *
 * @module
 */
import v8 from "node:v8";
import { parseArgs } from "node:util";
import { closeAllChildren, spawnChild } from "./child.ts";
import { RPC_PERMISSIONS, SERVER_CPU } from "./harness.ts";
import { type LoadConfig, runLoop } from "./load_client.ts";
import { requestFrameBytes } from "./frame_size.ts";
import { sharedZooKeeper } from "./zookeeper.ts";
import { watchGc } from "./gc_stats.ts";
import type { DriverFactory } from "./drivers/types.ts";

/** Objects of one name in a snapshot. */
export interface NameCount {
  /** `type:name`, e.g. `object:PendingCall` or `closure:resolve`. */
  name: string;
  /** Objects alive. */
  count: number;
  /** Their own bytes. */
  bytes: number;
}

interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** A parsed heap snapshot, queried by object name. */
export class SnapshotIndex {
  #s: HeapSnapshot;
  #nodeFields: number;
  #edgeFields: number;
  #firstEdge: Uint32Array;

  /** @param snapshot The parsed `.heapsnapshot` JSON. */
  constructor(snapshot: HeapSnapshot) {
    this.#s = snapshot;
    this.#nodeFields = snapshot.snapshot.meta.node_fields.length;
    this.#edgeFields = snapshot.snapshot.meta.edge_fields.length;
    const nodes = snapshot.nodes.length / this.#nodeFields;
    this.#firstEdge = new Uint32Array(nodes + 1);
    for (let i = 0; i < nodes; i++) {
      this.#firstEdge[i + 1] = (this.#firstEdge[i] ?? 0) +
        (snapshot.nodes[i * this.#nodeFields + 4] ?? 0);
    }
  }

  #label(node: number): string {
    const s = this.#s;
    const base = node * this.#nodeFields;
    const type = s.snapshot.meta.node_types[0][s.nodes[base] ?? 0];
    return `${type}:${s.strings[s.nodes[base + 1] ?? 0]}`;
  }

  /**
   * Counts objects by `type:name`, largest count first.
   *
   * @returns Every name with its count and bytes.
   */
  counts(): NameCount[] {
    const by = new Map<string, NameCount>();
    const nodes = this.#s.nodes.length / this.#nodeFields;
    for (let i = 0; i < nodes; i++) {
      const name = this.#label(i);
      const entry = by.get(name) ?? { name, count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += this.#s.nodes[i * this.#nodeFields + 3] ?? 0;
      by.set(name, entry);
    }
    return [...by.values()].sort((a, b) => b.count - a.count);
  }

  /**
   * Who holds the objects named `name`: `holder -edge-> ` counts over all
   * of them (weak edges skipped).
   *
   * @param name A `type:name` from {@linkcode SnapshotIndex.counts}.
   * @returns Holder labels with counts, most frequent first.
   */
  retainers(name: string): [string, number][] {
    const s = this.#s;
    const edgeTypes = s.snapshot.meta.edge_types[0];
    const nodes = s.nodes.length / this.#nodeFields;
    const by = new Map<string, number>();
    for (let from = 0; from < nodes; from++) {
      const end = this.#firstEdge[from + 1] ?? 0;
      for (let e = this.#firstEdge[from] ?? 0; e < end; e++) {
        const base = e * this.#edgeFields;
        const type = edgeTypes[s.edges[base] ?? 0];
        if (type === "weak" || type === "shortcut") continue;
        const to = (s.edges[base + 2] ?? 0) / this.#nodeFields;
        if (this.#label(to) !== name) continue;
        const edgeName = type === "element" || type === "hidden"
          ? `[${type}]`
          : String(s.strings[s.edges[base + 1] ?? 0]);
        const key = `${this.#label(from)} .${edgeName}`;
        by.set(key, (by.get(key) ?? 0) + 1);
      }
    }
    return [...by.entries()].sort((a, b) => b[1] - a[1]);
  }
}

async function loadFactory(
  driver: LoadConfig["driver"],
): Promise<DriverFactory> {
  switch (driver) {
    case "ceiling":
      return (await import("./drivers/ceiling_driver.ts")).createDriver;
    case "channel":
      return (await import("./drivers/channel_driver.ts")).createDriver;
    default:
      return (await import("./drivers/rpc_driver.ts")).createDriver;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      driver: { type: "string", default: "rpc" },
      "in-flight": { type: "string", default: "64" },
      top: { type: "string", default: "30" },
      retainers: { type: "string", default: "" },
    },
  });
  const driverName = (["ceiling", "channel"].includes(values.driver)
    ? values.driver
    : "rpc") as LoadConfig["driver"];
  const inFlight = Number(values["in-flight"]);
  const dir = await Deno.makeTempDir({ prefix: "zkrpc-retained-" });
  const zookeeper = sharedZooKeeper();
  try {
    const service = "bench-retained";
    const zk = driverName === "channel" ? await zookeeper.get() : undefined;
    const server = spawnChild(
      new URL(
        driverName === "ceiling" ? "./ceiling_server.ts" : "./rpc_server.ts",
        import.meta.url,
      ),
      {
        args: [
          JSON.stringify(
            zk === undefined ? {} : { zookeeper: zk.connectionString, service },
          ),
        ],
        permissions: RPC_PERMISSIONS,
        cpu: SERVER_CPU,
        label: `${driverName} server`,
      },
    );
    const { port } = await server.readJson<{ port: number }>();
    const config: LoadConfig = {
      driver: driverName,
      endpoints: [{ hostname: "127.0.0.1", port }],
      inFlight,
      maxCalls: 50_000_000,
      maxMs: 2_500,
      warmupCalls: 20_000,
      payload: { method: "divide", frameBytes: requestFrameBytes() },
      ...(zk === undefined ? {} : { zookeeper: zk.connectionString, service }),
    };
    const driver = await (await loadFactory(driverName))(config);
    try {
      await runLoop(driver, inFlight, config.warmupCalls, 10_000);
      const paths = [`${dir}/a.heapsnapshot`, `${dir}/b.heapsnapshot`];
      const timers = paths.map((path, i) =>
        setTimeout(() =>
          v8.writeHeapSnapshot(path), 700 + 1000 * i)
      );
      const gc = watchGc();
      const run = await runLoop(driver, inFlight, config.maxCalls, 2_500);
      const figures = gc.stop();
      timers.forEach(clearTimeout);
      console.log(
        `${driverName}, ${inFlight} in flight: ${run.calls} calls, ${run.errors} errors; GC (snapshots included): ${
          JSON.stringify(figures)
        }`,
      );
      const [a, b] = await Promise.all(
        paths.map(async (path) =>
          new SnapshotIndex(JSON.parse(await Deno.readTextFile(path)))
        ),
      );
      const before = new Map(a!.counts().map((c) => [c.name, c]));
      console.log(`\nalive under load (second snapshot; Δ vs the first)`);
      for (const c of b!.counts().slice(0, Number(values.top))) {
        const delta = c.count - (before.get(c.name)?.count ?? 0);
        console.log(
          `${String(c.count).padStart(8)} ${String(delta).padStart(7)} ${
            String(c.bytes).padStart(10)
          } B  ${c.name}`,
        );
      }
      for (const name of values.retainers.split(",").filter(Boolean)) {
        console.log(`\nheld by (${name}):`);
        for (const [holder, n] of b!.retainers(name).slice(0, 12)) {
          console.log(`${String(n).padStart(8)}  ${holder}`);
        }
      }
    } finally {
      await driver.close();
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await closeAllChildren();
    await zookeeper.stop();
  }
}
