/**
 * Full stack: `divide(10, 2)` through `DistributedChannel` (ZooKeeper
 * discovery -> balancer -> connection -> server -> handler) at 1, 16 and 64
 * calls in flight with one server, and 64 in flight over 3 servers (one
 * connection each), compared to the echo ceiling of the same run.
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
import { figuresOf, ratios } from "./_figures.ts";
import { ceilingFigures } from "./_ceiling.ts";
import { IN_FLIGHT_LEVELS } from "./throughput.ts";

/**
 * Runs the full-stack scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("src/server.ts", "serve");
  await requireModule("src/channel.ts", "DistributedChannel");
  const zk = await context.zookeeper();
  const servers: ServerHandle[] = [];
  try {
    const service = "bench-full";
    servers.push(await startRegisteredServer(zk.connectionString, service));
    const cases: [string, number, number][] = IN_FLIGHT_LEVELS.map((n) => [
      `channel ${n} in flight`,
      n,
      1,
    ]);
    cases.push(["channel 3 servers 64 in flight", 64, 3]);
    for (const [label, inFlight, count] of cases) {
      while (servers.length < count) {
        servers.push(await startRegisteredServer(zk.connectionString, service));
      }
      const ceiling = await ceilingFigures(context, inFlight, count);
      const m = await measure({
        driver: "channel",
        zookeeper: zk.connectionString,
        service,
        balancer: "round-robin",
        inFlight,
        maxCalls: inFlight === 1
          ? Math.ceil(context.caseCalls / 4)
          : context.caseCalls,
        maxMs: context.caseMs,
        warmupCalls: context.quick ? 300 : 2000,
        payload: { method: "divide", frameBytes: context.divideFrameBytes },
        endpoints: servers.map((s) => s.endpoint),
      }, servers);
      const figures = figuresOf(m);
      context.report.add({
        scenario: "full stack",
        label,
        figures,
        vsCeiling: ratios(figures, ceiling),
      });
    }
  } finally {
    await stopServers(servers);
  }
}
