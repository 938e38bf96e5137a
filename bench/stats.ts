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

/** Exact buckets below this many units; above, this many per power of two. */
const EXACT = 128;
/** One unit of {@linkcode LatencyHistogram}: 0.1 µs, in ms. */
const UNIT_MS = 1e-4;
/** Buckets for values up to 2^31-1 units (about 214 s). */
const BUCKETS = EXACT + (31 - 7) * (EXACT / 2);

/**
 * Latencies recorded into log-linear buckets (exact below 12.8 µs, then 64
 * buckets per power of two: within 1.6 %), so that a run of any length keeps
 * one 6.5 KiB array and allocates nothing per call. (A `Float64Array` of
 * one slot per call was not neutral: a process that holds an `ArrayBuffer`
 * of more than ~0.5 MiB did mark-compacts at a rate tied to its young
 * collections, so the more a client allocated, the more old-generation
 * collections the bench charged it; see docs/performance.md.) Count, max
 * and mean are exact.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LatencyHistogram } from "./stats.ts";
 * const h = new LatencyHistogram();
 * for (let i = 1; i <= 1000; i++) h.record(i / 1000); // 0.001 .. 1 ms
 * const s = h.summary();
 * assert.equal(s.count, 1000);
 * assert.equal(s.max, 1);
 * assert.ok(Math.abs(s.p50 - 0.5) <= 0.5 * 0.016);
 * assert.ok(Math.abs(s.p999 - 0.999) <= 0.999 * 0.016);
 * ```
 */
export class LatencyHistogram {
  #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #max = 0;

  /**
   * Records one latency.
   *
   * @param ms The latency in ms (negative counts as 0).
   */
  record(ms: number): void {
    this.#count++;
    this.#sum += ms;
    if (ms > this.#max) this.#max = ms;
    const units = ms <= 0 ? 0 : Math.min(0x7fffffff, ms / UNIT_MS + 0.5) | 0;
    this.#counts[bucketOf(units)]!++;
  }

  /**
   * The percentiles of what was recorded (nearest rank; a percentile is its
   * bucket's middle).
   *
   * @returns Count, p50, p90, p99, p99.9, max and mean.
   */
  summary(): LatencySummary {
    const count = this.#count;
    return {
      count,
      p50: this.#quantile(0.5),
      p90: this.#quantile(0.9),
      p99: this.#quantile(0.99),
      p999: this.#quantile(0.999),
      max: count === 0 ? NaN : this.#max,
      mean: count === 0 ? NaN : this.#sum / count,
    };
  }

  #quantile(q: number): number {
    if (this.#count === 0) return NaN;
    const rank = Math.min(
      this.#count - 1,
      Math.max(0, Math.ceil(q * this.#count) - 1),
    );
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen > rank) return Math.min(this.#max, middleOf(i) * UNIT_MS);
    }
    return this.#max;
  }
}

/** The bucket of a value in units (0 .. 2^31-1). */
function bucketOf(units: number): number {
  if (units < EXACT) return units;
  const shift = 31 - Math.clz32(units) - 6; // units >>> shift: 64 .. 127
  return EXACT + (shift - 1) * (EXACT / 2) + (units >>> shift) - EXACT / 2;
}

/** The middle of a bucket, in units. */
function middleOf(bucket: number): number {
  if (bucket < EXACT) return bucket;
  const shift = ((bucket - EXACT) >> 6) + 1;
  const top = ((bucket - EXACT) & 63) + EXACT / 2;
  return top * 2 ** shift + 2 ** (shift - 1);
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
