/**
 * Full stack: `divide(10, 2)` through `DistributedChannel` (ZooKeeper
 * discovery -> balancer -> connection -> server -> handler) at 1, 16 and 64
 * calls in flight with one server (64 also with every client's connection
 * aged first, on both sides), and 64 in flight over 3 servers (one
 * connection each), alternating in rounds with the echo ceiling of the
 * same layout.
 *
 * @module
 */
import { type BenchContext, requireModule } from "../context.ts";
import {
  type ServerHandle,
  startRegisteredServer,
  startServer,
  stopServers,
} from "../harness.ts";
import { ratios } from "./_figures.ts";
import { compareAlternating, divideLoad } from "./_compare.ts";
import { AGED_LABEL, IN_FLIGHT_LEVELS } from "./throughput.ts";

/**
 * Runs the full-stack scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("src/server/server.ts", "serve");
  await requireModule("mod.ts", "DistributedChannel");
  const zk = await context.zookeeper();
  const servers: ServerHandle[] = [];
  const ceilings: ServerHandle[] = [];
  try {
    const service = "bench-full";
    servers.push(await startRegisteredServer(zk.connectionString, service));
    const cases: [string, number, number, boolean][] = IN_FLIGHT_LEVELS.map((
      n,
    ) => [`channel ${n} in flight`, n, 1, false]);
    // Connections first idle through young collections on both sides.
    cases.push([`channel ${AGED_LABEL}`, 64, 1, true]);
    cases.push(["channel 3 servers 64 in flight", 64, 3, false]);
    for (const [label, inFlight, count, ageConnections] of cases) {
      while (servers.length < count) {
        servers.push(await startRegisteredServer(zk.connectionString, service));
      }
      while (ceilings.length < count) {
        ceilings.push(await startServer("ceiling"));
      }
      const result = await compareAlternating(
        context,
        {
          config: {
            ...divideLoad(context, "ceiling", inFlight),
            ageConnections,
          },
          servers: ceilings.slice(0, count),
        },
        {
          config: {
            ...divideLoad(context, "channel", inFlight),
            zookeeper: zk.connectionString,
            service,
            balancer: "round-robin",
            endpoints: servers.map((s) => s.endpoint),
            ageConnections,
          },
          servers,
        },
      );
      const figures = result.subject ?? {};
      context.report.add({
        scenario: "full stack",
        label: label.replace("channel", "ceiling"),
        figures: result.ceiling,
        vsCeiling: {},
      });
      context.report.add({
        scenario: "full stack",
        label,
        figures,
        vsCeiling: ratios(figures, result.ceiling),
      });
    }
  } finally {
    await stopServers([...servers, ...ceilings]);
  }
}
