/**
 * A slow server: three servers whose `divide` takes 1 ms, 1 ms and 10 ms;
 * p50/p99 of all calls at 16 in flight through the channel under the
 * random, round-robin and least-in-flight (power of two choices) balancers,
 * and the share of calls the slow server got.
 *
 * @module
 */
import { type BenchContext, requireModule } from "../context.ts";
import {
  measure,
  type ServerHandle,
  startRegisteredServer,
  stopServers,
} from "../harness.ts";
import { ratios } from "./_figures.ts";
import { ceilingFigures } from "./_ceiling.ts";
import { round } from "../stats.ts";

/** Balancers compared. */
export const BALANCERS: string[] = ["random", "round-robin", "least-in-flight"];

/** Service time of the fast servers, ms; the slow one takes 10×. */
export const FAST_MS = 1;

const IN_FLIGHT = 16;

/**
 * Runs the slow-server scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("src/server/server.ts", "serve");
  await requireModule("mod.ts", "DistributedChannel");
  const zk = await context.zookeeper();
  const service = "bench-slow";
  const servers: ServerHandle[] = [];
  try {
    for (const delay of [FAST_MS, FAST_MS, FAST_MS * 10]) {
      servers.push(
        await startRegisteredServer(zk.connectionString, service, delay),
      );
    }
    const ceiling = await ceilingFigures(context, IN_FLIGHT);
    for (const balancer of BALANCERS) {
      const m = await measure({
        driver: "channel",
        zookeeper: zk.connectionString,
        service,
        balancer,
        inFlight: IN_FLIGHT,
        maxCalls: context.caseCalls,
        maxMs: context.caseMs,
        warmupCalls: context.quick ? 100 : 500,
        payload: { method: "divide", frameBytes: context.divideFrameBytes },
        endpoints: servers.map((s) => s.endpoint),
      }, servers);
      const total = m.serverCalls.reduce((a, b) => a + b, 0);
      const figures: Record<string, number | null> = {
        calls_per_s: m.callsPerSec,
        p50_ms: m.latency.p50,
        p90_ms: m.latency.p90,
        p99_ms: m.latency.p99,
        max_ms: m.latency.max,
        slow_share: round((m.serverCalls[2] ?? 0) / Math.max(1, total), 3),
        errors: m.errors,
      };
      context.report.add({
        scenario: "slow server",
        label: balancer,
        figures,
        vsCeiling: ratios(
          {
            calls_per_s: figures.calls_per_s ?? null,
            p50_ms: figures.p50_ms ?? null,
            p99_ms: figures.p99_ms ?? null,
          },
          ceiling,
        ),
      });
    }
  } finally {
    await stopServers(servers);
  }
}
