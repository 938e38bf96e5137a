/**
 * Throughput and latency at 1, 16 and 64 calls in flight on one connection,
 * and 64 in flight over 3 servers with one connection each: the raw echo
 * ceiling and the zkrpc core (`serve` + `Connection`, no discovery) measured
 * back to back.
 *
 * @module
 */
import { type BenchContext, missingModule } from "../context.ts";
import {
  measure,
  type Measurement,
  startServer,
  stopServers,
} from "../harness.ts";
import type { ServerHandle } from "../harness.ts";
import { ratio } from "../stats.ts";
import type { ResultRow } from "../report.ts";
import type { LoadConfig } from "../load_client.ts";

/** Calls-in-flight levels measured on one connection. */
export const IN_FLIGHT_LEVELS: number[] = [1, 16, 64];

/**
 * Turns a measurement into table figures.
 *
 * @param m The measurement.
 * @returns Named figures.
 */
export function figuresOf(m: Measurement): Record<string, number | null> {
  return {
    calls_per_s: m.callsPerSec,
    p50_ms: m.latency.p50,
    p90_ms: m.latency.p90,
    p99_ms: m.latency.p99,
    max_ms: m.latency.max,
    client_cpu_us: m.clientCpuUsPerCall,
    server_cpu_us: m.serverCpuUsPerCall,
    server_rss_mib: m.serverRssMib,
    errors: m.errors,
  };
}

/**
 * Ratio of every figure to the same-named ceiling figure.
 *
 * @param figures The zkrpc figures.
 * @param ceiling The ceiling figures.
 * @returns Ratios (null where not comparable).
 */
export function ratios(
  figures: Record<string, number | null>,
  ceiling: Record<string, number | null>,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [name, value] of Object.entries(figures)) {
    if (name === "errors") continue;
    out[name] = ratio(value, ceiling[name]);
  }
  return out;
}

function loadConfig(
  context: BenchContext,
  driver: LoadConfig["driver"],
  inFlight: number,
): Omit<LoadConfig, "endpoints"> {
  return {
    driver,
    inFlight,
    maxCalls: inFlight === 1
      ? Math.ceil(context.caseCalls / 4)
      : context.caseCalls,
    maxMs: context.caseMs,
    warmupCalls: context.quick ? 300 : 2000,
    payload: { method: "divide", frameBytes: context.divideFrameBytes },
  };
}

async function pair(
  context: BenchContext,
  label: string,
  inFlight: number,
  ceilingServers: ServerHandle[],
  rpcServers: ServerHandle[] | undefined,
): Promise<void> {
  const ceiling = await measure(
    loadConfig(context, "ceiling", inFlight),
    ceilingServers,
  );
  const ceilingFigures = figuresOf(ceiling);
  context.report.add({
    scenario: "throughput",
    label: `ceiling ${label}`,
    figures: ceilingFigures,
    vsCeiling: {},
  });
  if (rpcServers === undefined) return;
  const rpc = await measure(loadConfig(context, "rpc", inFlight), rpcServers);
  const row: ResultRow = {
    scenario: "throughput",
    label: `zkrpc core ${label}`,
    figures: figuresOf(rpc),
    vsCeiling: {},
  };
  row.vsCeiling = ratios(row.figures, ceilingFigures);
  context.report.add(row);
}

/**
 * Runs the throughput scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  const missing = await missingModule("src/server.ts", "serve") ??
    await missingModule("src/connection.ts", "Connection");
  if (missing !== undefined) {
    context.report.skip("throughput/zkrpc core", missing);
  }
  const servers: ServerHandle[] = [];
  try {
    const ceiling = await startServer("ceiling");
    servers.push(ceiling);
    let rpc: ServerHandle | undefined;
    if (missing === undefined) {
      rpc = await startServer("rpc");
      servers.push(rpc);
    }
    for (const inFlight of IN_FLIGHT_LEVELS) {
      await pair(
        context,
        `${inFlight} in flight`,
        inFlight,
        [ceiling],
        rpc && [rpc],
      );
    }
    const ceilings = [
      ceiling,
      await startServer("ceiling"),
      await startServer("ceiling"),
    ];
    servers.push(...ceilings.slice(1));
    let rpcs: ServerHandle[] | undefined;
    if (rpc !== undefined) {
      rpcs = [rpc, await startServer("rpc"), await startServer("rpc")];
      servers.push(...rpcs.slice(1));
    }
    await pair(context, "3 servers 64 in flight", 64, ceilings, rpcs);
  } finally {
    await stopServers(servers);
  }
}
