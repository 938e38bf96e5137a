/**
 * Failover: a channel (default random balancer, 16 callers) calls 3
 * servers; one is killed with SIGKILL mid-run, once with `divide` declared
 * idempotent and once without (then calls in flight on the dead server fail,
 * since they may have run). Reports failed calls, the longest gap between
 * successful calls, the time until the channel stops choosing the dead
 * endpoint (first ejection or removal), the connection failures the channel
 * counted on it, and the time until ZooKeeper dropped it from membership.
 *
 * @module
 */
import { type BenchContext, requireModule } from "../context.ts";
import {
  type ServerHandle,
  startRegisteredServer,
  stopServers,
} from "../harness.ts";
import { round } from "../stats.ts";
import { openChannel, sleep, waitUntil } from "./_channel.ts";
import { longestGap, startBackgroundLoad } from "./_background_load.ts";

/**
 * Runs the failover scenario twice: with `divide` declared idempotent (calls
 * that may have run on the dead server are retried elsewhere) and with the
 * channel's default (only calls never written are retried).
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("src/server/server.ts", "serve");
  await trial(context, true, context.quick ? 2_500 : 15_000);
  await trial(context, false, 2_000);
}

async function trial(
  context: BenchContext,
  idempotent: boolean,
  afterKillMs: number,
): Promise<void> {
  const zk = await context.zookeeper();
  const service = `bench-failover-${idempotent ? "idempotent" : "default"}`;
  const servers: ServerHandle[] = [];
  const channel = await openChannel({
    zookeeper: zk.connectionString,
    service,
    ...(idempotent ? { idempotent: ["divide"] } : {}),
  });
  const beforeKillMs = context.quick ? 500 : 1_000;
  let load: ReturnType<typeof startBackgroundLoad> | undefined;
  try {
    for (let i = 0; i < 3; i++) {
      servers.push(await startRegisteredServer(zk.connectionString, service));
    }
    if (!await waitUntil(() => channel.endpoints().length >= 3, 10_000)) {
      throw new Error("Channel never saw the 3 servers");
    }
    const victim = servers[2] as ServerHandle;
    const key = `${victim.endpoint.hostname}:${victim.endpoint.port}`;
    const t0 = performance.now();
    load = startBackgroundLoad(channel, {
      inFlight: 16,
      // Stopped explicitly below; the bound only guards against a hang.
      maxMs: beforeKillMs + afterKillMs + 30_000,
      maxCalls: 10_000_000,
    });
    await sleep(beforeKillMs);
    const failuresBefore = load.failures;
    victim.child.kill("SIGKILL");
    const killedAt = performance.now();
    let ejectedAt: number | null = null;
    let removedAt: number | null = null;
    // The channel counts consecutive connection failures per endpoint.
    let failures = 0;
    while (performance.now() - killedAt < afterKillMs) {
      const endpoint = channel.endpoints().find((e) => e.key === key);
      const now = performance.now();
      if (endpoint === undefined) {
        ejectedAt ??= now;
        removedAt = now;
        break;
      }
      if (endpoint.state === "ejected") ejectedAt ??= now;
      failures = Math.max(failures, endpoint.failures);
      await sleep(1);
    }
    const end = performance.now();
    await load.stop();
    const successes = load.successes;
    const gap = longestGap(successes, killedAt, end);
    context.report.add({
      scenario: "failover",
      label: idempotent ? "SIGKILL 1 of 3" : "SIGKILL 1 of 3, not idempotent",
      figures: {
        calls: successes.length,
        failed_calls: load.failures,
        failed_before_kill: failuresBefore,
        longest_gap_ms: round(gap.gap),
        longest_gap_start_after_kill_ms: round(gap.at - killedAt),
        longest_gap_before_kill_ms: round(
          longestGap(successes, t0, killedAt).gap,
        ),
        stop_choosing_ms: ejectedAt === null
          ? null
          : round(ejectedAt - killedAt),
        dead_endpoint_failures: failures,
        removed_from_membership_ms: removedAt === null
          ? null
          : round(removedAt - killedAt),
      },
      vsCeiling: {},
    });
    if (load.firstError !== undefined) {
      console.log(`failover: first error: ${load.firstError}`);
    }
  } finally {
    await load?.stop();
    await channel.close();
    await stopServers(servers);
  }
}
