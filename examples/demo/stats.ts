/**
 * Call statistics for the demo: counts, latency percentiles, calls per
 * second and the longest gap between successful calls.
 *
 * @module
 */

/**
 * The `p`-th percentile (0..100) of sorted values.
 *
 * @param sorted Values in ascending order.
 * @param p The percentile.
 * @returns The value, or `NaN` when there is none.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(
    sorted.length - 1,
    Math.max(0, Math.ceil((p / 100) * sorted.length) - 1),
  );
  return sorted[index] as number;
}

/** What one finished call contributes. */
interface Sample {
  at: number;
  latency: number;
}

/** Counts calls as they finish. Times are `performance.now()` values. */
export class CallStats {
  /** Calls started. */
  started = 0;
  /** Calls answered correctly. */
  ok = 0;
  /** Calls that failed (first messages in {@linkcode CallStats.failures}). */
  failed = 0;
  /** The first few failure messages. */
  readonly failures: string[] = [];
  /** Longest time between two successful calls, in ms. */
  longestGap = 0;
  /** When the longest gap ended. */
  longestGapAt = 0;
  #latencies: number[] = [];
  #recent: Sample[] = [];
  #lastOk: number | undefined;

  /**
   * Records an answered call.
   *
   * @param at When it finished.
   * @param latency How long it took, in ms.
   */
  success(at: number, latency: number): void {
    this.ok++;
    this.#latencies.push(latency);
    this.#recent.push({ at, latency });
    if (this.#lastOk !== undefined && at - this.#lastOk > this.longestGap) {
      this.longestGap = at - this.#lastOk;
      this.longestGapAt = at;
    }
    this.#lastOk = at;
  }

  /**
   * Records a failed call.
   *
   * @param message What went wrong.
   */
  failure(message: string): void {
    this.failed++;
    if (this.failures.length < 5) this.failures.push(message);
  }

  /**
   * Calls per second and latency over the last second.
   *
   * @param now The current time.
   * @returns The window's figures.
   */
  window(now: number): { rate: number; p50: number; p99: number } {
    while (
      this.#recent.length > 0 && (this.#recent[0] as Sample).at < now - 1000
    ) {
      this.#recent.shift();
    }
    const sorted = this.#recent.map((s) => s.latency).sort((a, b) => a - b);
    return {
      rate: this.#recent.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
    };
  }

  /** Latency over the whole run: p50, p99 and max, in ms. */
  overall(): { p50: number; p99: number; max: number } {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    return {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1) ?? NaN,
    };
  }
}

/** One method's figures in {@linkcode MethodStats}. */
export interface MethodFigures {
  /** Attempts made. */
  calls: number;
  /** Attempts that failed, by error class name. */
  errors: Record<string, number>;
  /** Median attempt latency, ms. */
  p50: number;
  /** 99th percentile attempt latency, ms. */
  p99: number;
}

/**
 * Per-method metrics gathered by a channel interceptor (one record per
 * attempt): what the telemetry metrics would show, without a collector.
 */
export class MethodStats {
  #onError: (() => void) | undefined;
  #methods = new Map<
    string,
    { calls: number; errors: Record<string, number>; latencies: number[] }
  >();

  /**
   * @param onError Called when an attempt fails (for the timeline).
   */
  constructor(onError?: () => void) {
    this.#onError = onError;
  }

  /**
   * The interceptor to give the channel (`interceptors: [stats.interceptor]`).
   *
   * @param call The attempt.
   * @param next The rest of the chain.
   * @returns The attempt's outcome.
   */
  interceptor = async (
    call: { method: string },
    next: () => Promise<unknown>,
  ): Promise<unknown> => {
    let entry = this.#methods.get(call.method);
    if (entry === undefined) {
      entry = { calls: 0, errors: {}, latencies: [] };
      this.#methods.set(call.method, entry);
    }
    const started = performance.now();
    entry.calls++;
    try {
      return await next();
    } catch (error) {
      const name = error instanceof Error ? error.name : typeof error;
      entry.errors[name] = (entry.errors[name] ?? 0) + 1;
      this.#onError?.();
      throw error;
    } finally {
      entry.latencies.push(performance.now() - started);
    }
  };

  /**
   * The figures of every method seen, by method name.
   *
   * @returns The figures.
   */
  figures(): Record<string, MethodFigures> {
    const out: Record<string, MethodFigures> = {};
    for (const [method, entry] of this.#methods) {
      const sorted = [...entry.latencies].sort((a, b) => a - b);
      out[method] = {
        calls: entry.calls,
        errors: { ...entry.errors },
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
      };
    }
    return out;
  }
}
