/**
 * Load generator process: a closed loop of `inFlight` concurrent callers on
 * one driver, bounded by a call count and a time limit.
 *
 * Usage: `deno run --allow-net=127.0.0.1 bench/load_client.ts '<LoadConfig JSON>'`.
 * Protocol on stdout/stdin (JSON lines): prints `{"ready":true}` after the
 * warm-up, waits for `{"cmd":"go"}`, runs, prints a {@linkcode LoadResult},
 * then exits.
 *
 * @module
 */
import { serveControl, writeJsonLine } from "./child.ts";
import { LatencyHistogram, type LatencySummary, round } from "./stats.ts";
import { usageSnapshot } from "./usage.ts";
import { gcDelta, idleThroughYoungCollections } from "./gc_stats.ts";
import type { LoopRun } from "./frame_echo.ts";
import type {
  DriverConfig,
  DriverFactory,
  LoadDriver,
} from "./drivers/types.ts";

/** Configuration of one load run. */
export interface LoadConfig extends DriverConfig {
  /**
   * Which driver: raw echo, zkrpc connection, zkrpc channel (discovering in
   * ZooKeeper, or over a static list), hand-written JSON RPC.
   */
  driver: "ceiling" | "rpc" | "channel" | "static-channel" | "handjson";
  /** Concurrent callers. */
  inFlight: number;
  /** Stop after this many calls. */
  maxCalls: number;
  /** Stop after this many ms. */
  maxMs: number;
  /** Calls made before measuring (so that the code is optimized). */
  warmupCalls: number;
  /** Bound on the warm-up's time, ms. @default 5000 */
  warmupMs?: number;
  /**
   * Before the warm-up, leave the connections idle through young
   * collections ({@linkcode idleThroughYoungCollections}), the state a
   * long-lived connection is in. @default false
   */
  ageConnections?: boolean;
}

/** What one load run measured. */
export interface LoadResult {
  /** Successful calls. */
  calls: number;
  /** Failed calls. */
  errors: number;
  /** First error message, if any. */
  firstError?: string;
  /** Measured wall time in ms. */
  elapsedMs: number;
  /** Successful calls per second. */
  callsPerSec: number;
  /** Latency of successful calls, ms. */
  latency: LatencySummary;
  /** Client CPU time per call, µs. */
  clientCpuUsPerCall: number;
  /** Client RSS at the end, bytes. */
  clientRss: number;
  /** Client old-generation (mark-compact) collections per second. */
  clientOldGcsPerSec?: number;
  /** Bytes the client's young-generation collections promoted, per call. */
  clientPromotedBytesPerCall?: number;
  /**
   * Bytes per call the client's old generation grew by between young
   * collections (allocated there directly, not promoted).
   */
  clientOldAllocatedBytesPerCall?: number;
  /** Client GC pause time per second of the run, ms. */
  clientGcMsPerSec?: number;
}

/**
 * Runs `inFlight` closed-loop callers until `maxCalls` calls were started or
 * `maxMs` elapsed: the driver's own loop when it has one (the ceiling's,
 * which allocates nothing per call), else callers awaiting `driver.call()`.
 *
 * @param driver The driver.
 * @param inFlight Concurrent callers.
 * @param maxCalls Bound on calls.
 * @param maxMs Bound on time.
 * @returns Latencies, errors and elapsed time.
 */
export async function runLoop(
  driver: LoadDriver,
  inFlight: number,
  maxCalls: number,
  maxMs: number,
): Promise<LoopRun> {
  if (driver.run !== undefined) return driver.run(inFlight, maxCalls, maxMs);
  if (driver.call === undefined) {
    throw new TypeError("Cannot run a load driver without call() or run()");
  }
  const call: () => Promise<unknown> = driver.call;
  const latency = new LatencyHistogram();
  let started = 0;
  let calls = 0;
  let errors = 0;
  let firstError: string | undefined;
  const begin = performance.now();
  const deadline = begin + maxMs;
  // One clock read per turn, as the ceiling's loop reads it once per read
  // burst: the callers one read woke resume in one run of microtasks and
  // share the reading (a read costs ~0.2 µs here, a tenth of a call). The
  // end of one call starts the next.
  let stamp = 0;
  let fresh = false;
  const expire = () => {
    fresh = false;
  };
  const clock = (): number => {
    if (!fresh) {
      stamp = performance.now();
      fresh = true;
      queueMicrotask(expire);
    }
    return stamp;
  };
  async function worker(): Promise<void> {
    let t0 = clock();
    while (started < maxCalls && t0 < deadline) {
      started++;
      try {
        await call();
        const t1 = clock();
        latency.record(t1 - t0);
        calls++;
        t0 = t1;
      } catch (error) {
        errors++;
        firstError ??= String(error);
        t0 = clock();
      }
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsedMs = performance.now() - begin;
  const result: LoopRun = {
    latency,
    calls,
    errors,
    elapsedMs,
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

// Each process loads only its own driver (the ceiling client never loads
// zkrpc); the literal specifiers keep the drivers in `deno check`'s graph.
async function loadDriver(name: LoadConfig["driver"]): Promise<DriverFactory> {
  switch (name) {
    case "ceiling":
      return (await import("./drivers/ceiling_driver.ts")).createDriver;
    case "rpc":
      return (await import("./drivers/rpc_driver.ts")).createDriver;
    case "channel":
      return (await import("./drivers/channel_driver.ts")).createDriver;
    case "static-channel":
      return (await import("./drivers/static_channel_driver.ts")).createDriver;
    case "handjson":
      return (await import("./drivers/handjson_driver.ts")).createDriver;
  }
}

async function main(config: LoadConfig): Promise<void> {
  const driver = await (await loadDriver(config.driver))(config);
  try {
    if (config.ageConnections === true) await idleThroughYoungCollections(3);
    const warmup = await runLoop(
      driver,
      Math.min(config.inFlight, config.warmupCalls),
      config.warmupCalls,
      config.warmupMs ?? 5_000,
    );
    if (warmup.calls === 0 && warmup.errors > 0) {
      writeJsonLine({ error: `Warm-up failed: ${warmup.firstError}` });
      return;
    }
    writeJsonLine({ ready: true });
    let go = false;
    await serveControl((command) => {
      if (command.cmd === "go") {
        go = true;
        throw new Error("stop reading");
      }
      return undefined;
    }).catch(() => {});
    if (!go) return;
    const before = usageSnapshot();
    const run = await runLoop(
      driver,
      config.inFlight,
      config.maxCalls,
      config.maxMs,
    );
    const after = usageSnapshot();
    const gcFigures = gcDelta(after.gc, before.gc);
    const result: LoadResult = {
      calls: run.calls,
      errors: run.errors,
      elapsedMs: round(run.elapsedMs),
      callsPerSec: round(run.calls / (run.elapsedMs / 1000)),
      latency: roundSummary(run.latency.summary()),
      clientCpuUsPerCall: round(
        (after.cpuUs - before.cpuUs) / Math.max(1, run.calls),
      ),
      clientRss: after.rss,
    };
    if (gcFigures !== undefined) {
      const seconds = run.elapsedMs / 1000;
      result.clientOldGcsPerSec = round(gcFigures.oldGcs / seconds);
      result.clientPromotedBytesPerCall = round(
        gcFigures.promotedBytes / Math.max(1, run.calls),
      );
      result.clientOldAllocatedBytesPerCall = round(
        gcFigures.oldAllocatedBytes / Math.max(1, run.calls),
      );
      result.clientGcMsPerSec = round(gcFigures.pauseMs / seconds);
    }
    if (run.firstError !== undefined) result.firstError = run.firstError;
    writeJsonLine(result);
  } finally {
    await driver.close();
  }
}

function roundSummary(summary: LatencySummary): LatencySummary {
  return {
    count: summary.count,
    p50: round(summary.p50),
    p90: round(summary.p90),
    p99: round(summary.p99),
    p999: round(summary.p999),
    max: round(summary.max),
    mean: round(summary.mean),
  };
}

if (import.meta.main) {
  const config = JSON.parse(Deno.args[0] ?? "{}") as LoadConfig;
  await main(config);
  Deno.exit(0);
}
