/**
 * Throughput and latency at 1, 16 and 64 calls in flight on one connection,
 * and 64 in flight over 3 servers with one connection each: the raw echo
 * ceiling and the zkrpc core (`serve` + `Connection`, no discovery) measured
 * back to back.
 *
 * @module
 */
import { type BenchContext, missingModule } from "../context.ts";
import { measure, startServer, stopServers } from "../harness.ts";
import type { ServerHandle } from "../harness.ts";
import { figuresOf, medianFigures, ratios } from "./_figures.ts";
import type { ResultRow } from "../report.ts";
import type { LoadConfig } from "../load_client.ts";

/** Calls-in-flight levels measured on one connection. */
export const IN_FLIGHT_LEVELS: number[] = [1, 16, 64];

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
  // Alternate short rounds so that both sides see the same machine state;
  // each figure is the median over the rounds.
  const rounds = context.quick ? 2 : 3;
  const ceilingRuns: Record<string, number | null>[] = [];
  const rpcRuns: Record<string, number | null>[] = [];
  for (let round = 0; round < rounds; round++) {
    const c = loadConfig(context, "ceiling", inFlight);
    c.maxMs = Math.ceil(c.maxMs / rounds);
    c.maxCalls = Math.ceil(c.maxCalls / rounds);
    ceilingRuns.push(figuresOf(await measure(c, ceilingServers)));
    if (rpcServers === undefined) continue;
    const r = loadConfig(context, "rpc", inFlight);
    r.maxMs = Math.ceil(r.maxMs / rounds);
    r.maxCalls = Math.ceil(r.maxCalls / rounds);
    rpcRuns.push(figuresOf(await measure(r, rpcServers)));
  }
  const ceilingFigures = medianFigures(ceilingRuns);
  context.report.add({
    scenario: "throughput",
    label: `ceiling ${label}`,
    figures: ceilingFigures,
    vsCeiling: {},
  });
  if (rpcServers === undefined) return;
  const row: ResultRow = {
    scenario: "throughput",
    label: `zkrpc core ${label}`,
    figures: medianFigures(rpcRuns),
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
