/**
 * Starts bench server processes and runs a load client process against
 * them, combining client and server figures into one measurement.
 *
 * @module
 */
import { type ChildProcessHandle, spawnChild } from "./child.ts";
import type { LoadConfig, LoadResult } from "./load_client.ts";
import type { BenchEndpoint } from "./drivers/types.ts";
import type { UsageSnapshot } from "./usage.ts";
import { round } from "./stats.ts";
import { gcDelta } from "./gc_stats.ts";

/** Which server program to start. */
export type ServerKind = "ceiling" | "rpc" | "handjson";

/** A running bench server process. */
export interface ServerHandle {
  /** Where it listens. */
  endpoint: BenchEndpoint;
  /** The process. */
  child: ChildProcessHandle;
  /** Epoch ms when its ZooKeeper registration completed, if registered. */
  registeredAt: number | null;
}

/** A server's cumulative counters. */
export interface ServerStats extends UsageSnapshot {
  /** Calls served since start. */
  calls: number;
  /** Epoch ms of the first call (zkrpc servers). */
  firstCallAt?: number | null;
  /** Epoch ms of the latest call (zkrpc servers). */
  lastCallAt?: number | null;
}

/**
 * Starts a zkrpc server registered in ZooKeeper.
 *
 * @param zookeeper Connection string.
 * @param service Service name.
 * @param delayMs Delay of each divide, ms.
 * @param benchDir The `bench/` directory of the checkout to run.
 * @returns The handle (with `registeredAt`).
 */
export function startRegisteredServer(
  zookeeper: string,
  service: string,
  delayMs = 0,
  benchDir: URL = BENCH_DIR,
): Promise<ServerHandle> {
  return startServer(
    "rpc",
    [JSON.stringify({ zookeeper, service, delayMs })],
    benchDir,
  );
}

/** Client result plus server-side figures. */
export interface Measurement extends LoadResult {
  /** Server CPU per call (all servers), µs. */
  serverCpuUsPerCall: number;
  /** Largest server RSS after the run, MiB. */
  serverRssMib: number;
  /** Calls each server handled during the run, in `servers` order. */
  serverCalls: number[];
  /** Old-generation collections per second, all servers. */
  serverOldGcsPerSec?: number;
  /** Bytes promoted to the old generation per call, all servers. */
  serverPromotedBytesPerCall?: number;
}

/** CPU the load client is pinned to (when `taskset` exists). */
export const CLIENT_CPU = 0;
/** CPU the servers are pinned to (when `taskset` exists). */
export const SERVER_CPU = 1;

const SCRIPTS: Record<ServerKind, string> = {
  ceiling: "ceiling_server.ts",
  rpc: "rpc_server.ts",
  handjson: "handjson_server.ts",
};

/** This checkout's `bench/` directory: where the child scripts are. */
export const BENCH_DIR: URL = new URL("./", import.meta.url);

/** Permissions of the zkrpc server process (ZooKeeper client needs env). */
export const RPC_PERMISSIONS: string[] = [
  "--allow-net=127.0.0.1",
  "--allow-env",
  "--allow-read",
  "--allow-sys",
];

/**
 * Reads a `--servers=N` option: how many servers a bench case runs.
 *
 * @param value The option's text.
 * @returns N, a positive integer.
 * @throws {RangeError} For anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverCountOption } from "./harness.ts";
 * assert.equal(serverCountOption("3"), 3);
 * assert.throws(() => serverCountOption("0"), RangeError);
 * ```
 */
export function serverCountOption(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(
      `Cannot run the bench: --servers must be a positive integer, got ${value}`,
    );
  }
  return count;
}

/**
 * Starts one server process and waits for its port.
 *
 * @param kind Ceiling echo or zkrpc.
 * @param args Extra script arguments (rpc: JSON options).
 * @param benchDir The `bench/` directory of the checkout to run (another
 *   version of zkrpc, for before/after comparisons). @default BENCH_DIR
 * @returns The handle.
 */
export async function startServer(
  kind: ServerKind,
  args: string[] = [],
  benchDir: URL = BENCH_DIR,
): Promise<ServerHandle> {
  const child = spawnChild(new URL(SCRIPTS[kind], benchDir), {
    args,
    label: `${kind}_server`,
    cpu: SERVER_CPU,
    permissions: kind !== "rpc" ? ["--allow-net=127.0.0.1"] : RPC_PERMISSIONS,
  });
  try {
    const hello = await child.readJson<
      { port: number; registeredAt?: number | null }
    >(30_000);
    return {
      endpoint: { hostname: "127.0.0.1", port: hello.port },
      child,
      registeredAt: hello.registeredAt ?? null,
    };
  } catch (error) {
    await child.close(100);
    throw error;
  }
}

/**
 * Asks a server for its counters.
 *
 * @param server The server.
 * @returns CPU, RSS, calls.
 */
export function serverStats(server: ServerHandle): Promise<ServerStats> {
  return server.child.request<ServerStats>({ cmd: "stats" });
}

/**
 * Runs one load client process against `servers` and measures both sides.
 *
 * @param config Load configuration (endpoints are filled from `servers`
 *   unless the driver is "channel").
 * @param servers Servers whose CPU is attributed to the calls.
 * @param benchDir The `bench/` directory whose load client runs.
 *   @default BENCH_DIR
 * @returns The measurement.
 */
export async function measure(
  config: Omit<LoadConfig, "endpoints"> & { endpoints?: BenchEndpoint[] },
  servers: ServerHandle[],
  benchDir: URL = BENCH_DIR,
): Promise<Measurement> {
  const full: LoadConfig = {
    ...config,
    endpoints: config.endpoints ?? servers.map((s) => s.endpoint),
  };
  const client = spawnChild(new URL("load_client.ts", benchDir), {
    args: [JSON.stringify(full)],
    label: `load_client(${config.driver})`,
    cpu: CLIENT_CPU,
    permissions: RPC_PERMISSIONS,
  });
  try {
    const ready = await client.readJson<{ error?: string }>(60_000);
    if (ready.error !== undefined) throw new Error(ready.error);
    const before = await Promise.all(servers.map(serverStats));
    const result = await client.request<LoadResult>(
      { cmd: "go" },
      config.maxMs + 30_000,
    );
    const after = await Promise.all(servers.map(serverStats));
    let cpu = 0;
    let rss = 0;
    let oldGcs: number | undefined = 0;
    let promoted = 0;
    after.forEach((a, i) => {
      cpu += a.cpuUs - (before[i]?.cpuUs ?? 0);
      rss = Math.max(rss, a.rss);
      const gc = gcDelta(a.gc, before[i]?.gc);
      if (gc === undefined) oldGcs = undefined;
      else if (oldGcs !== undefined) {
        oldGcs += gc.oldGcs;
        promoted += gc.promotedBytes;
      }
    });
    if (result.firstError !== undefined) {
      console.log(
        `  ${config.driver}: ${result.errors} failed calls, first: ${result.firstError}`,
      );
    }
    const measurement: Measurement = {
      ...result,
      serverCpuUsPerCall: round(cpu / Math.max(1, result.calls)),
      serverRssMib: round(rss / 1048576),
      serverCalls: after.map((a, i) => a.calls - (before[i]?.calls ?? 0)),
    };
    if (oldGcs !== undefined && servers.length > 0) {
      measurement.serverOldGcsPerSec = round(
        oldGcs / (result.elapsedMs / 1000),
      );
      measurement.serverPromotedBytesPerCall = round(
        promoted / Math.max(1, result.calls),
      );
    }
    return measurement;
  } finally {
    await client.close();
  }
}

/**
 * Stops servers (closes stdin, then SIGKILL after a grace period).
 *
 * @param servers The servers.
 */
export async function stopServers(servers: ServerHandle[]): Promise<void> {
  await Promise.allSettled(servers.map((s) => s.child.close()));
}
