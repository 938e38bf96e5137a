/**
 * Latency and throughput statistics for the load generator.
 *
 * @module
 */

/** Percentiles of a latency sample, in milliseconds. */
export interface LatencySummary {
  /** Number of samples. */
  count: number;
  /** Median latency in ms. */
  p50: number;
  /** 90th percentile latency in ms. */
  p90: number;
  /** 99th percentile latency in ms. */
  p99: number;
  /** 99.9th percentile latency in ms. */
  p999: number;
  /** Largest latency in ms. */
  max: number;
  /** Arithmetic mean in ms. */
  mean: number;
}

/**
 * Returns the `q`-quantile (0..1) of an ascending sorted sample using the
 * nearest-rank method; `NaN` for an empty sample.
 *
 * @param sorted Samples sorted ascending.
 * @param q Quantile between 0 and 1.
 * @returns The sample at that rank.
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  const index = Math.min(sorted.length - 1, Math.max(0, rank));
  return sorted[index] as number;
}

/**
 * Summarizes a latency sample (milliseconds).
 *
 * @param samples Latencies in ms, in any order; not modified.
 * @returns Count, p50, p90, p99, p99.9, max and mean.
 */
export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length === 0 ? NaN : sorted[sorted.length - 1] as number,
    mean: sorted.length === 0 ? NaN : sum / sorted.length,
  };
}

/**
 * Median of a sample; `NaN` when empty.
 *
 * @param samples Values in any order.
 * @returns The median (nearest rank).
 */
export function median(samples: ArrayLike<number>): number {
  return quantile(Float64Array.from(samples).sort(), 0.5);
}

/**
 * `value / reference`, rounded to three decimals; `null` when either side is
 * missing, not finite, or the reference is zero.
 *
 * @param value The measured figure.
 * @param reference The ceiling's figure.
 * @returns The ratio or `null`.
 */
export function ratio(
  value: number | null | undefined,
  reference: number | null | undefined,
): number | null {
  if (value == null || reference == null) return null;
  if (!Number.isFinite(value) || !Number.isFinite(reference)) return null;
  if (reference === 0) return null;
  return Math.round((value / reference) * 1000) / 1000;
}

/**
 * Rounds to a number of significant digits for display and JSON.
 *
 * @param value Any number.
 * @param digits Significant digits, default 4.
 * @returns The rounded number (non-finite values unchanged).
 */
export function round(value: number, digits = 4): number {
  if (!Number.isFinite(value) || value === 0) return value;
  return Number(value.toPrecision(digits));
}
