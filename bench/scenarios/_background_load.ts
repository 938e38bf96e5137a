/**
 * A bounded closed-loop load on an in-process channel, recording the time
 * of every successful call, for the discovery and failover scenarios.
 *
 * @module
 */
import type { ChannelView } from "./_channel.ts";

/** A running background load. */
export interface BackgroundLoad {
  /** `performance.now()` of every successful completion, in order. */
  readonly successes: number[];
  /** Failed calls so far. */
  readonly failures: number;
  /** First failure message. */
  readonly firstError: string | undefined;
  /** Stops the callers and waits for them. */
  stop(): Promise<void>;
}

/**
 * Starts `inFlight` callers of `divide(10, 2)`, bounded by `maxMs` and
 * `maxCalls`; each caller waits `pauseMs` between calls (0: none).
 *
 * @param channel The channel.
 * @param options Bounds and pacing.
 * @returns The load handle.
 */
export function startBackgroundLoad(
  channel: ChannelView,
  options: {
    inFlight: number;
    maxMs: number;
    maxCalls: number;
    pauseMs?: number;
  },
): BackgroundLoad {
  const successes: number[] = [];
  let failures = 0;
  let firstError: string | undefined;
  let stopped = false;
  let started = 0;
  const deadline = performance.now() + options.maxMs;
  const pauseMs = options.pauseMs ?? 0;
  async function caller(): Promise<void> {
    while (
      !stopped && started < options.maxCalls && performance.now() < deadline
    ) {
      started++;
      try {
        await channel.call("divide", [10, 2]);
        successes.push(performance.now());
      } catch (error) {
        failures++;
        firstError ??= String(error);
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
  const callers = Promise.all(Array.from({ length: options.inFlight }, caller));
  return {
    successes,
    get failures(): number {
      return failures;
    },
    get firstError(): string | undefined {
      return firstError;
    },
    async stop(): Promise<void> {
      stopped = true;
      await callers;
    },
  };
}

/**
 * Longest interval between consecutive times (and from `from` to the first,
 * and from the last to `to`), and where it started.
 *
 * @param times Ascending times, ms.
 * @param from Start of the window, ms.
 * @param to End of the window, ms.
 * @returns The longest gap in ms and its start time.
 */
export function longestGap(
  times: number[],
  from: number,
  to: number,
): { gap: number; at: number } {
  let previous = from;
  let longest = { gap: 0, at: from };
  for (const t of times) {
    if (t < from) continue;
    if (t > to) break;
    if (t - previous > longest.gap) {
      longest = { gap: t - previous, at: previous };
    }
    previous = t;
  }
  if (to - previous > longest.gap) {
    longest = { gap: to - previous, at: previous };
  }
  return longest;
}
