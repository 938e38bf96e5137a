/**
 * Discovery: while a channel keeps calling a service (round-robin, 4
 * callers), a new server registers; we time registration -> its first call.
 * Then the server's `close()` (deregister, drain, stop); we time close() ->
 * the last call it served, and count calls that failed meanwhile. Median and
 * max over repeated trials against the run's ZooKeeper.
 *
 * @module
 */
import { type BenchContext, requireModule } from "../context.ts";
import {
  type ServerHandle,
  serverStats,
  startRegisteredServer,
  stopServers,
} from "../harness.ts";
import { median, round } from "../stats.ts";
import { openChannel, sleep, waitUntil } from "./_channel.ts";
import { startBackgroundLoad } from "./_background_load.ts";

interface CloseAnswer {
  closeStartedAt: number;
  closedAt: number;
  lastCallAt: number | null;
}

/**
 * Runs the discovery scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("src/server/server.ts", "serve");
  const zk = await context.zookeeper();
  const service = "bench-discovery";
  const trials = context.quick ? 3 : 10;
  const servers: ServerHandle[] = [];
  const channel = await openChannel({
    zookeeper: zk.connectionString,
    service,
    balancer: "round-robin",
  });
  const load = {
    current: undefined as ReturnType<typeof startBackgroundLoad> | undefined,
  };
  try {
    servers.push(await startRegisteredServer(zk.connectionString, service));
    if (!await waitUntil(() => channel.endpoints().length >= 1, 10_000)) {
      throw new Error("Channel never saw the first server");
    }
    load.current = startBackgroundLoad(channel, {
      inFlight: 4,
      maxMs: trials * 8_000,
      maxCalls: 50_000_000,
      pauseMs: 1,
    });
    const firstCall: number[] = [];
    const lastCall: number[] = [];
    const closeMs: number[] = [];
    let failures = 0;
    for (let trial = 0; trial < trials; trial++) {
      const before = load.current.failures;
      const server = await startRegisteredServer(zk.connectionString, service);
      servers.push(server);
      let stats = await serverStats(server);
      const deadline = performance.now() + 5_000;
      while (stats.firstCallAt == null && performance.now() < deadline) {
        await sleep(5);
        stats = await serverStats(server);
      }
      if (stats.firstCallAt != null && server.registeredAt != null) {
        firstCall.push(stats.firstCallAt - server.registeredAt);
      }
      await sleep(50);
      const answer = await server.child.request<CloseAnswer>({ cmd: "close" });
      closeMs.push(answer.closedAt - answer.closeStartedAt);
      if (answer.lastCallAt != null) {
        lastCall.push(Math.max(0, answer.lastCallAt - answer.closeStartedAt));
      }
      await sleep(50);
      failures += load.current.failures - before;
      await server.child.close();
      servers.pop();
    }
    context.report.add({
      scenario: "discovery",
      label: "register -> first call",
      figures: {
        trials,
        median_ms: round(median(firstCall)),
        max_ms: round(Math.max(...firstCall)),
        missed: trials - firstCall.length,
      },
      vsCeiling: {},
    });
    context.report.add({
      scenario: "discovery",
      label: "close() -> last call",
      figures: {
        trials,
        median_ms: round(median(lastCall)),
        max_ms: round(Math.max(...lastCall)),
        close_median_ms: round(median(closeMs)),
        failed_calls: failures,
      },
      vsCeiling: {},
    });
  } finally {
    await load.current?.stop();
    await channel.close();
    await stopServers(servers);
  }
}
