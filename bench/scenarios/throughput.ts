/**
 * Throughput and latency at 1, 16 and 64 calls in flight on one connection,
 * and 64 in flight over 3 servers with one connection each: the raw echo
 * ceiling and the zkrpc core (`serve` + `Connection`, no discovery) measured
 * back to back; and a hand-written minimal JSON RPC over the same framing
 * (bench/handjson_server.ts) at 64 in flight, the second baseline. Also 64
 * in flight with every client's connection aged first (see
 * `idleThroughYoungCollections` in bench/gc_stats.ts), on both sides.
 *
 * @module
 */
import { type BenchContext, missingModule } from "../context.ts";
import { startServer, stopServers } from "../harness.ts";
import type { ServerHandle } from "../harness.ts";
import { ratios } from "./_figures.ts";
import { compareAlternating, divideLoad } from "./_compare.ts";

/** Calls-in-flight levels measured on one connection. */
export const IN_FLIGHT_LEVELS: number[] = [1, 16, 64];

/** Label of the 64-in-flight case whose connections were aged first. */
export const AGED_LABEL = "64 in flight, aged connections";

async function pair(
  context: BenchContext,
  label: string,
  inFlight: number,
  ceilingServers: ServerHandle[],
  rpcServers: ServerHandle[] | undefined,
  ageConnections = false,
): Promise<void> {
  const result = await compareAlternating(
    context,
    {
      config: { ...divideLoad(context, "ceiling", inFlight), ageConnections },
      servers: ceilingServers,
    },
    rpcServers && {
      config: { ...divideLoad(context, "rpc", inFlight), ageConnections },
      servers: rpcServers,
    },
  );
  context.report.add({
    scenario: "throughput",
    label: `ceiling ${label}`,
    figures: result.ceiling,
    vsCeiling: {},
  });
  if (result.subject === undefined) return;
  context.report.add({
    scenario: "throughput",
    label: `zkrpc core ${label}`,
    figures: result.subject,
    vsCeiling: ratios(result.subject, result.ceiling),
  });
}

/**
 * Runs the throughput scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  const missing = await missingModule("src/server/server.ts", "serve") ??
    await missingModule("src/client/connection.ts", "Connection");
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
    // Both clients' connections first idle through young collections: the
    // state of a long-lived connection (see idleThroughYoungCollections).
    await pair(
      context,
      AGED_LABEL,
      64,
      [ceiling],
      rpc && [rpc],
      true,
    );
    // The second baseline: what a user would write instead of zkrpc.
    const hand = await startServer("handjson");
    servers.push(hand);
    const handResult = await compareAlternating(
      context,
      { config: divideLoad(context, "ceiling", 64), servers: [ceiling] },
      { config: divideLoad(context, "handjson", 64), servers: [hand] },
    );
    context.report.add({
      scenario: "throughput",
      label: "hand-written JSON RPC 64 in flight",
      figures: handResult.subject!,
      vsCeiling: ratios(handResult.subject!, handResult.ceiling),
    });
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
