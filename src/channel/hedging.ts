/**
 * Hedged (backup) requests: for idempotent methods, a second attempt on
 * another endpoint after a delay, the first answer wins and the other
 * attempt is cancelled. The delay is fixed or a latency percentile the
 * channel tracks.
 *
 * @module
 */

/**
 * Options of hedged requests on a {@linkcode DistributedChannel}. Only
 * idempotent methods are hedged, and only while the channel's retry budget
 * allows retries (failed attempts spend it), so hedging stops when failures
 * outweigh successes.
 *
 * @example Hedging `divide` after the 95th percentile of recent latencies
 * ```ts
 * import type { HedgingOptions } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const hedging: HedgingOptions = { methods: ["divide"], delay: { percentile: 95 } };
 * assert.deepEqual(hedging.delay, { percentile: 95 });
 * ```
 */
export interface HedgingOptions {
  /**
   * Methods to hedge (they must also be idempotent).
   *
   * @default {every idempotent method}
   */
  methods?: Iterable<string>;
  /**
   * Milliseconds before the hedge, or a percentile of the latencies of the
   * channel's recent answered attempts (100 ms until 16 were answered).
   *
   * @default {{ percentile: 95 }}
   */
  delay?: number | { percentile: number };
  /**
   * Most extra attempts per call.
   *
   * @default {1}
   */
  maxHedges?: number;
}

const SAMPLES = 256;
const MIN_SAMPLES = 16;
const FALLBACK_DELAY = 100;

/**
 * Recent latencies (the last 256) and a cached percentile of them.
 *
 * @example The 90th percentile of 1..100 ms
 * ```ts
 * import { LatencyTracker } from "./hedging.ts";
 * import assert from "node:assert/strict";
 *
 * const tracker = new LatencyTracker(90);
 * for (let ms = 1; ms <= 100; ms++) tracker.record(ms);
 * assert.equal(tracker.value(), 91);
 * ```
 */
export class LatencyTracker {
  #samples = new Float64Array(SAMPLES);
  #count = 0;
  #percentile: number;
  #cached: number | undefined;
  #stale = 0;

  /** @param percentile The percentile to track (0..100). */
  constructor(percentile: number) {
    if (!(percentile > 0 && percentile <= 100)) {
      throw new RangeError(
        `Cannot create channel: hedging percentile must be in (0, 100], got ${percentile}`,
      );
    }
    this.#percentile = percentile;
  }

  /** Records an answered attempt's latency, in ms. */
  record(ms: number): void {
    this.#samples[this.#count++ % SAMPLES] = ms;
    this.#stale++;
  }

  /** The tracked percentile, in ms (recomputed every 32 samples). */
  value(): number {
    if (this.#count < MIN_SAMPLES) return FALLBACK_DELAY;
    if (this.#cached === undefined || this.#stale >= 32) {
      const n = Math.min(this.#count, SAMPLES);
      const sorted = this.#samples.slice(0, n).sort();
      this.#cached = sorted[
        Math.min(n - 1, Math.floor(n * this.#percentile / 100))
      ]!;
      this.#stale = 0;
    }
    return Math.max(1, this.#cached);
  }
}
