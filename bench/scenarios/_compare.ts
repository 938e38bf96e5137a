/**
 * Measures the ceiling and a zkrpc target in alternating short rounds, so
 * that both see the same machine state (other processes, CPU frequency),
 * and reports the median of each figure over the rounds.
 *
 * @module
 */
import type { BenchContext } from "../context.ts";
import { measure, type ServerHandle } from "../harness.ts";
import type { LoadConfig } from "../load_client.ts";
import type { BenchEndpoint } from "../drivers/types.ts";
import { figuresOf, medianFigures } from "./_figures.ts";

/** One side of a comparison: what to run and whose CPU to count. */
export interface Side {
  /** Load configuration (endpoints default to the servers'). */
  config: Omit<LoadConfig, "endpoints"> & { endpoints?: BenchEndpoint[] };
  /** Servers the calls go to. */
  servers: ServerHandle[];
}

/**
 * Runs `context.rounds` alternating rounds of each side, each round with
 * 1/rounds of the time and call budget.
 *
 * @param context The bench context.
 * @param ceiling The ceiling side.
 * @param subject The zkrpc side, or undefined to measure the ceiling only.
 * @returns Median figures of each side.
 */
export async function compareAlternating(
  context: BenchContext,
  ceiling: Side,
  subject: Side | undefined,
): Promise<{
  ceiling: Record<string, number | null>;
  subject: Record<string, number | null> | undefined;
}> {
  const rounds = context.rounds;
  const ceilingRuns: Record<string, number | null>[] = [];
  const subjectRuns: Record<string, number | null>[] = [];
  const slice = (side: Side): Side["config"] => ({
    ...side.config,
    maxMs: Math.ceil(side.config.maxMs / rounds),
    maxCalls: Math.ceil(side.config.maxCalls / rounds),
  });
  for (let round = 0; round < rounds; round++) {
    ceilingRuns.push(figuresOf(await measure(slice(ceiling), ceiling.servers)));
    if (subject === undefined) continue;
    subjectRuns.push(figuresOf(await measure(slice(subject), subject.servers)));
  }
  return {
    ceiling: medianFigures(ceilingRuns),
    subject: subject === undefined ? undefined : medianFigures(subjectRuns),
  };
}

/**
 * The load configuration of a `divide` throughput case.
 *
 * @param context The bench context.
 * @param driver Which driver.
 * @param inFlight Calls in flight.
 * @returns The configuration (endpoints to be filled in).
 */
export function divideLoad(
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
    warmupCalls: context.warmupCalls,
    warmupMs: context.warmupMs,
    payload: { method: "divide", frameBytes: context.divideFrameBytes },
  };
}
