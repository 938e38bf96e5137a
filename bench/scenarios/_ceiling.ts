/**
 * The ceiling figures a scenario compares to: taken from the throughput
 * scenario of the same run, or measured on demand when it did not run.
 *
 * @module
 */
import type { BenchContext } from "../context.ts";
import { measure, startServer, stopServers } from "../harness.ts";
import type { ServerHandle } from "../harness.ts";
import { figuresOf } from "./_figures.ts";

/**
 * Figures of the echo ceiling at `inFlight` calls in flight over `servers`
 * connections, for frames of `frameBytes`.
 *
 * @param context The bench context.
 * @param inFlight Calls in flight.
 * @param servers Number of servers (one connection each).
 * @returns Figures by name.
 */
export async function ceilingFigures(
  context: BenchContext,
  inFlight: number,
  servers = 1,
): Promise<Record<string, number | null>> {
  const label = servers === 1
    ? `ceiling ${inFlight} in flight`
    : `ceiling ${servers} servers ${inFlight} in flight`;
  const row = context.report.find("throughput", label);
  if (row !== undefined) return row.figures;
  const started: ServerHandle[] = [];
  try {
    for (let i = 0; i < servers; i++) {
      started.push(await startServer("ceiling"));
    }
    const m = await measure({
      driver: "ceiling",
      inFlight,
      maxCalls: context.caseCalls,
      maxMs: context.caseMs,
      warmupCalls: context.warmupCalls,
      warmupMs: context.warmupMs,
      payload: { method: "divide", frameBytes: context.divideFrameBytes },
    }, started);
    const figures = figuresOf(m);
    context.report.add({
      scenario: "throughput",
      label,
      figures,
      vsCeiling: {},
    });
    return figures;
  } finally {
    await stopServers(started);
  }
}
