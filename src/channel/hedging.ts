/**
 * Hedged (backup) requests: for idempotent methods, a second attempt on
 * another endpoint after a delay, the first answer wins and the other
 * attempt is cancelled. The delay is fixed or a latency percentile the
 * channel tracks.
 *
 * @module
 */

import { type LongTimeout, setLongTimeout } from "../_async.ts";
import { CHANNEL_DEFAULTS } from "../_defaults.ts";
import type { CallOutcome, OutcomeListener } from "./picker.ts";
import type { Subchannel } from "./subchannel.ts";

/**
 * Options of hedged requests on a {@linkcode DistributedChannel}. Only
 * idempotent methods are hedged, and only while the channel's retry budget
 * allows retries (failed attempts spend it), so hedging stops when failures
 * outweigh successes.
 *
 * @example Hedging `divide` after the 95th percentile of recent latencies
 * ```ts
 * import type { HedgingOptions } from "@zkrpc/zkrpc/extend";
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
   * @default {percentile: 95}
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
export class LatencyTracker implements OutcomeListener {
  /** A percentile needs every answered attempt's latency. */
  readonly measureAll = true;
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

  /**
   * Records the latency of a successful attempt (a picker subscription).
   *
   * @param _subchannel The endpoint.
   * @param outcome How the attempt ended.
   * @param latency Its latency in ms.
   */
  onCallEnded(
    _subchannel: Subchannel,
    outcome: CallOutcome,
    latency: number | undefined,
  ): void {
    if (outcome === "ok" && latency !== undefined) this.record(latency);
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

/**
 * A channel's hedging, from its options: which methods, after how long, how
 * many hedges.
 *
 * @example The delay of a fixed plan
 * ```ts
 * import { hedgingPlan } from "./hedging.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hedgingPlan({ delay: 50 })?.delay(), 50);
 * assert.equal(hedgingPlan(false), undefined);
 * ```
 */
export interface HedgingPlan {
  /** Methods to hedge; `undefined` for every idempotent one. */
  methods: Set<string> | undefined;
  /** Most extra attempts per call. */
  maxHedges: number;
  /** The tracker of a percentile delay, to subscribe to outcomes. */
  tracker: LatencyTracker | undefined;
  /** Milliseconds before the next hedge. */
  delay(): number;
}

/**
 * Validates a channel's `hedging` option.
 *
 * @param options The option (`true` for the defaults).
 * @returns The plan, or `undefined` without hedging.
 * @throws {RangeError} For a negative delay or a percentile out of (0, 100].
 *
 * @example Hedging after the 90th percentile
 * ```ts
 * import { hedgingPlan } from "./hedging.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = hedgingPlan({ delay: { percentile: 90 } });
 * assert.equal(plan?.tracker !== undefined, true);
 * assert.throws(() => hedgingPlan({ delay: -1 }), RangeError);
 * ```
 */
export function hedgingPlan(
  options: boolean | HedgingOptions | undefined,
): HedgingPlan | undefined {
  if (options === undefined || options === false) return undefined;
  const hedging = options === true ? {} : options;
  const delay = hedging.delay ??
    { percentile: CHANNEL_DEFAULTS.hedgePercentile };
  if (typeof delay === "number" && !(delay >= 0)) {
    throw new RangeError(
      `Cannot create channel: hedging delay must be >= 0 ms, got ${delay}`,
    );
  }
  const tracker = typeof delay === "number"
    ? undefined
    : new LatencyTracker(delay.percentile);
  return {
    methods: hedging.methods === undefined
      ? undefined
      : new Set(hedging.methods),
    maxHedges: hedging.maxHedges ?? CHANNEL_DEFAULTS.maxHedges,
    tracker,
    delay: tracker === undefined
      ? () => delay as number
      : () => tracker.value(),
  };
}

/** How {@linkcode hedge} runs one call. */
export interface HedgeOptions {
  /** Milliseconds before each extra attempt. */
  delay: number;
  /** Most extra attempts. */
  maxHedges: number;
  /** The caller's signal: aborting it cancels every attempt. */
  signal: AbortSignal | undefined;
  /** Asked when a hedge is due: whether it may be sent. */
  mayHedge: () => boolean;
  /** Whether an attempt's error is a final answer (from the server). */
  isAnswer: (error: unknown) => boolean;
}

/**
 * Runs `attempt` once, and again after each `delay` (at most `maxHedges`
 * times, while `mayHedge()` allows); the first result, or the first error
 * that is an answer, settles the call and the other attempts are aborted
 * (their connection sends `cancel`). When every attempt failed otherwise,
 * the call rejects with the last failure.
 *
 * @param attempt Runs one attempt; it must stop when its signal aborts.
 * @param options Timing, limits and the caller's signal.
 * @returns The first answer.
 *
 * @example The faster of two attempts wins
 * ```ts
 * import { hedge } from "./hedging.ts";
 * import assert from "node:assert/strict";
 *
 * let n = 0;
 * const attempt = (signal: AbortSignal) => {
 *   const ms = n++ === 0 ? 1000 : 1; // the first one is stuck
 *   return new Promise((resolve, reject) => {
 *     const timer = setTimeout(() => resolve(ms), ms);
 *     signal.addEventListener("abort", () => {
 *       clearTimeout(timer);
 *       reject(signal.reason);
 *     }, { once: true });
 *   });
 * };
 * const result = await hedge(attempt, {
 *   delay: 10,
 *   maxHedges: 1,
 *   signal: undefined,
 *   mayHedge: () => true,
 *   isAnswer: () => false,
 * });
 * assert.equal(result, 1);
 * ```
 */
export function hedge(
  attempt: (signal: AbortSignal) => Promise<unknown>,
  options: HedgeOptions,
): Promise<unknown> {
  const { signal } = options;
  const controllers: AbortController[] = [];
  return new Promise((resolve, reject) => {
    let settled = false;
    let running = 0;
    let timer: LongTimeout | undefined;
    const onAbort = () => {
      for (const controller of controllers) controller.abort(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const finish = (settle: () => void) => {
      settled = true;
      timer?.clear();
      signal?.removeEventListener("abort", onAbort);
      for (const controller of controllers) {
        controller.abort(new Error("another attempt answered first"));
      }
      settle();
    };
    const launch = () => {
      const controller = new AbortController();
      if (signal?.aborted) controller.abort(signal.reason);
      controllers.push(controller);
      running++;
      attempt(controller.signal).then((value) => {
        if (!settled) finish(() => resolve(value));
      }, (error) => {
        running--;
        if (settled) return;
        // An answer from a server, or the caller's own abort, is final;
        // otherwise wait for the other attempts.
        if (options.isAnswer(error) || signal?.aborted || running === 0) {
          finish(() => reject(error));
        }
      });
      if (controllers.length <= options.maxHedges) {
        // Any delay a caller configures (Infinity: never hedge).
        timer = setLongTimeout(() => {
          if (!settled && options.mayHedge()) launch();
        }, options.delay);
      }
    };
    launch();
  });
}
