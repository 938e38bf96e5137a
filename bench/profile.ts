/**
 * Profiles one throughput case: the zkrpc server process and the load
 * client both run under `deno run --cpu-prof`, then the self time of each
 * is summarized by file and function.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-run --allow-read
 * --allow-write --allow-env --allow-sys bench/profile.ts [--driver=rpc|channel|ceiling]
 * [--in-flight=64] [--ms=3000] [--method=divide] [--bytes=0] [--servers=1]`
 * (with several servers, the server profile shown is one of them)
 *
 * @module
 */
import { parseArgs } from "node:util";
import { closeAllChildren, spawnChild } from "./child.ts";
import {
  CLIENT_CPU,
  RPC_PERMISSIONS,
  SERVER_CPU,
  serverCountOption,
} from "./harness.ts";
import type { LoadConfig, LoadResult } from "./load_client.ts";
import {
  type CpuProfile,
  formatProfile,
  summarizeProfile,
} from "./profile_summary.ts";
import { requestFrameBytes } from "./frame_size.ts";
import { sharedZooKeeper } from "./zookeeper.ts";

/** Starts a bench process under `--cpu-prof`, its profile in `dir`. */
function spawnProfiled(
  module: string,
  options: unknown,
  dir: string,
  cpu: number,
  label: string,
) {
  return spawnChild(new URL(module, import.meta.url), {
    args: [JSON.stringify(options)],
    permissions: ["--cpu-prof", `--cpu-prof-dir=${dir}`, ...RPC_PERMISSIONS],
    cpu,
    label,
  });
}

async function newestProfile(dir: string): Promise<CpuProfile> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".cpuprofile")) {
      return JSON.parse(
        await Deno.readTextFile(`${dir}/${entry.name}`),
      ) as CpuProfile;
    }
  }
  throw new Error(`No .cpuprofile in ${dir}`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      driver: { type: "string", default: "rpc" },
      "in-flight": { type: "string", default: "64" },
      ms: { type: "string", default: "3000" },
      method: { type: "string", default: "divide" },
      bytes: { type: "string", default: "0" },
      servers: { type: "string", default: "1" },
    },
  });
  const root = await Deno.makeTempDir({ prefix: "zkrpc-prof-" });
  const serverDir = `${root}/server`;
  const clientDir = `${root}/client`;
  const zookeeper = sharedZooKeeper();
  try {
    const driver: LoadConfig["driver"] = values.driver === "ceiling"
      ? "ceiling"
      : values.driver === "channel"
      ? "channel"
      : "rpc";
    const service = "bench-profile";
    const zk = driver === "channel" ? await zookeeper.get() : undefined;
    const serverOptions = zk === undefined
      ? {}
      : { zookeeper: zk.connectionString, service };
    const serverCount = serverCountOption(values.servers);
    const servers = Array.from(
      { length: serverCount },
      () =>
        spawnProfiled(
          driver === "ceiling" ? "./ceiling_server.ts" : "./rpc_server.ts",
          serverOptions,
          serverDir,
          SERVER_CPU,
          `${driver} server (profiled)`,
        ),
    );
    const ports: number[] = [];
    for (const server of servers) {
      ports.push((await server.readJson<{ port: number }>()).port);
    }
    const method = values.method === "echo" ? "echo" : "divide";
    const bytes = Number(values.bytes);
    const config: LoadConfig = {
      driver,
      endpoints: ports.map((port) => ({ hostname: "127.0.0.1", port })),
      inFlight: Number(values["in-flight"]),
      maxCalls: 50_000_000,
      maxMs: Number(values.ms),
      warmupCalls: 2000,
      payload: {
        method,
        bytes,
        frameBytes: method === "echo" ? bytes + 9 : requestFrameBytes(),
      },
      ...(zk === undefined ? {} : { zookeeper: zk.connectionString, service }),
    };
    const client = spawnProfiled(
      "./load_client.ts",
      config,
      clientDir,
      CLIENT_CPU,
      "load_client (profiled)",
    );
    await client.readJson();
    const result = await client.request<LoadResult>(
      { cmd: "go" },
      config.maxMs + 30_000,
    );
    await client.close(10_000);
    for (const server of servers) await server.close(10_000);
    console.log(
      `${config.inFlight} in flight, ${method}: ${result.callsPerSec} calls/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
    );
    console.log(
      formatProfile("server", summarizeProfile(await newestProfile(serverDir))),
    );
    console.log(
      formatProfile("client", summarizeProfile(await newestProfile(clientDir))),
    );
    console.log(`\nprofiles kept in ${root}`);
  } finally {
    await closeAllChildren();
    await zookeeper.stop();
  }
}
