/**
 * Figures of a measurement and their ratios to the ceiling.
 *
 * @module
 */
import type { Measurement } from "../harness.ts";
import { median, ratio, round } from "../stats.ts";

/**
 * Turns a measurement into table figures.
 *
 * @param m The measurement.
 * @returns Named figures.
 */
export function figuresOf(m: Measurement): Record<string, number | null> {
  return {
    calls_per_s: m.callsPerSec,
    p50_ms: m.latency.p50,
    p90_ms: m.latency.p90,
    p99_ms: m.latency.p99,
    p999_ms: m.latency.p999 ?? null,
    max_ms: m.latency.max,
    client_cpu_us: m.clientCpuUsPerCall,
    server_cpu_us: m.serverCpuUsPerCall,
    server_rss_mib: m.serverRssMib,
    client_old_gc_per_s: m.clientOldGcsPerSec ?? null,
    client_promoted_b_per_call: m.clientPromotedBytesPerCall ?? null,
    client_old_alloc_b_per_call: m.clientOldAllocatedBytesPerCall ?? null,
    client_gc_ms_per_s: m.clientGcMsPerSec ?? null,
    server_old_gc_per_s: m.serverOldGcsPerSec ?? null,
    server_promoted_b_per_call: m.serverPromotedBytesPerCall ?? null,
    errors: m.errors,
  };
}

/**
 * Ratio of every figure to the same-named ceiling figure.
 *
 * @param figures The zkrpc figures.
 * @param ceiling The ceiling figures.
 * @returns Ratios (null where not comparable).
 */
export function ratios(
  figures: Record<string, number | null>,
  ceiling: Record<string, number | null>,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [name, value] of Object.entries(figures)) {
    if (name === "errors" || name === "rounds") continue;
    out[name] = ratio(value, ceiling[name]);
  }
  return out;
}

/**
 * The median of each figure over several runs (errors are summed).
 *
 * @param runs Figures of each run.
 * @returns Median figures.
 */
export function medianFigures(
  runs: Record<string, number | null>[],
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  const names = new Set(runs.flatMap((r) => Object.keys(r)));
  for (const name of names) {
    const values = runs.map((r) => r[name]).filter((v): v is number =>
      v != null && Number.isFinite(v)
    );
    if (name === "errors") out[name] = values.reduce((a, b) => a + b, 0);
    else out[name] = values.length === 0 ? null : round(median(values));
  }
  if (runs.length > 1) out.rounds = runs.length;
  return out;
}
