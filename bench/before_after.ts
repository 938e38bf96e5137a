/**
 * Before/after in one run: the no-alloc echo ceiling, and zkrpc's
 * `Connection` and `DistributedChannel` of two checkouts (this one and
 * `--before`, e.g. `git archive <commit> | tar -x -C /tmp/before`),
 * alternating in rounds so that all of them see the same machine state.
 * Prints, per case, the median over the rounds of calls/s, p99.9, client
 * old-generation GCs/s, bytes promoted and allocated in the old generation
 * per call, and their ratios to the ceiling.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-run --allow-read
 * --allow-write --allow-env --allow-sys bench/before_after.ts
 * --before=/tmp/before [--after=/tmp/after] [--also=label=/tmp/x,…]
 * [--in-flight=64] [--rounds=5] [--ms=3000]
 * [--drivers=rpc,channel,static-channel] [--bytes=0] [--servers=1]
 * [--method=divide|divideAsync]
 * [--age-connections]`
 *
 * `static-channel` is the channel over a static list of the same server: no
 * ZooKeeper client in its process.
 *
 * `--age-connections` first leaves every client's connections idle through
 * young collections (`idleThroughYoungCollections`), on all sides.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { closeAllChildren } from "./child.ts";
import {
  BENCH_DIR,
  measure,
  serverCountOption,
  type ServerHandle,
  startRegisteredServer,
  startServer,
  stopServers,
} from "./harness.ts";
import type { LoadConfig } from "./load_client.ts";
import { requestFrameBytes } from "./frame_size.ts";
import { sharedZooKeeper } from "./zookeeper.ts";
import { figuresOf, medianFigures } from "./scenarios/_figures.ts";
import { ratio } from "./stats.ts";

/** The figures printed per case. */
export const SHOWN = [
  "calls_per_s",
  "p50_ms",
  "p999_ms",
  "client_cpu_us",
  "server_cpu_us",
  "client_old_gc_per_s",
  "client_promoted_b_per_call",
  "client_old_alloc_b_per_call",
  "server_promoted_b_per_call",
] as const;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      before: { type: "string" },
      after: { type: "string" },
      also: { type: "string", default: "" },
      "in-flight": { type: "string", default: "64" },
      rounds: { type: "string", default: "5" },
      ms: { type: "string", default: "3000" },
      drivers: { type: "string", default: "rpc,channel" },
      bytes: { type: "string", default: "0" },
      method: { type: "string", default: "divide" },
      servers: { type: "string", default: "1" },
      "age-connections": { type: "boolean", default: false },
    },
  });
  if (values.before === undefined) {
    throw new TypeError("Cannot compare: --before=<checkout dir> is required");
  }
  const beforeDir = new URL(
    `file://${Deno.realPathSync(values.before)}/bench/`,
  );
  // Default: this checkout (a snapshot keeps edits made during the run out).
  const afterDir = values.after === undefined
    ? BENCH_DIR
    : new URL(`file://${Deno.realPathSync(values.after)}/bench/`);
  const inFlight = Number(values["in-flight"]);
  const serverCount = serverCountOption(values.servers);
  const bytes = Number(values.bytes);
  const drivers = values.drivers.split(",").filter((d) =>
    d === "rpc" || d === "channel" || d === "static-channel"
  ) as ("rpc" | "channel" | "static-channel")[];
  const zookeeper = sharedZooKeeper();
  const servers: ServerHandle[] = [];
  try {
    const zk = drivers.includes("channel") ? await zookeeper.get() : undefined;
    // Each side (and the ceiling) runs `--servers` servers; the clients
    // spread their calls over all of them.
    const side = async (label: string, dir: URL, service: string) => {
      const own: ServerHandle[] = [];
      for (let i = 0; i < serverCount; i++) {
        const server = zk === undefined
          ? await startServer("rpc", [], dir)
          : await startRegisteredServer(zk.connectionString, service, 0, dir);
        servers.push(server);
        own.push(server);
      }
      return { label, dir, service, servers: own };
    };
    const ceilings: ServerHandle[] = [];
    for (let i = 0; i < serverCount; i++) {
      const ceiling = await startServer("ceiling");
      servers.push(ceiling);
      ceilings.push(ceiling);
    }
    const sides = [
      await side("before", beforeDir, "bench-before"),
      await side("after", afterDir, "bench-after"),
    ];
    // More checkouts, as `label=dir` (variants of one change).
    for (const item of values.also.split(",").filter((a) => a !== "")) {
      const [label, dir] = item.split("=") as [string, string];
      sides.push(
        await side(
          label,
          new URL(`file://${Deno.realPathSync(dir)}/bench/`),
          `bench-${label}`,
        ),
      );
    }
    const payload: LoadConfig["payload"] = bytes > 0
      ? { method: "echo", bytes, frameBytes: bytes + 9 }
      : values.method === "divideAsync"
      ? { method: "divideAsync", frameBytes: requestFrameBytes("divideAsync") }
      : { method: "divide", frameBytes: requestFrameBytes() };
    const base = {
      inFlight,
      maxCalls: 50_000_000,
      maxMs: Number(values.ms),
      warmupCalls: 20_000,
      payload,
      ageConnections: values["age-connections"],
    };
    const runs = new Map<string, Record<string, number | null>[]>();
    const add = (label: string, figures: Record<string, number | null>) =>
      runs.set(label, [...(runs.get(label) ?? []), figures]);
    for (let round = 0; round < Number(values.rounds); round++) {
      add(
        "ceiling",
        figuresOf(await measure({ ...base, driver: "ceiling" }, ceilings)),
      );
      for (const driver of drivers) {
        for (const s of sides) {
          const config = driver !== "channel" ? { ...base, driver } : {
            ...base,
            driver,
            zookeeper: zk!.connectionString,
            service: s.service,
            balancer: "round-robin",
            endpoints: s.servers.map((server) => server.endpoint),
          };
          add(
            `${driver} ${s.label}`,
            figuresOf(await measure(config, s.servers, s.dir)),
          );
        }
      }
      console.log(`round ${round + 1} done`);
    }
    const ceilingFigures = medianFigures(runs.get("ceiling") ?? []);
    console.log(
      `\n${inFlight} in flight, ${serverCount} server(s), ${payload.method}${
        bytes > 0 ? ` ${bytes} B` : ""
      }, median of ${values.rounds} rounds of ${values.ms} ms; (x) = ratio to the ceiling`,
    );
    console.log(["case", ...SHOWN].join(" | "));
    for (const [label, list] of runs) {
      const figures = medianFigures(list);
      const cells = SHOWN.map((name) => {
        const value = figures[name];
        const r = label === "ceiling"
          ? null
          : ratio(value, ceilingFigures[name]);
        return `${value ?? "-"}${r === null ? "" : ` (${r}x)`}`;
      });
      console.log([label, ...cells].join(" | "));
    }
  } finally {
    await stopServers(servers);
    await closeAllChildren();
    await zookeeper.stop();
  }
}
