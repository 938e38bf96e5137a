/**
 * The attempt policy: whether a failed attempt is tried again, and how long
 * one attempt may wait for a connection.
 *
 * - An attempt that provably never ran (`classify()` says `"not-run"`:
 *   refused, connect timeout, refused by a server after its `goaway`) is
 *   tried on another endpoint at once and does not count towards
 *   `maxAttempts` while untried endpoints remain.
 * - An attempt that may have run (the connection broke after the request
 *   was written, or a "closing" answer without a `goaway` before it) is
 *   retried only for idempotent methods; it counts.
 * - Retries that count spend the channel's {@linkcode RetryBudget}.
 * - Nothing is retried past the call's deadline.
 *
 * @module
 */

import { classify } from "../errors.ts";
import type { RetryBudget } from "./retry_budget.ts";

/**
 * What to do after a failed attempt.
 *
 * - `"retry"`: try again; the attempt counted.
 * - `"retry-free"`: try again; the attempt did not count (never sent).
 * - `"final"`: the error is the call's answer (not retriable).
 * - `"attempts"`: retriable, but `maxAttempts` attempts counted.
 * - `"budget"`: retriable, but the retry budget is exhausted.
 */
export type Verdict = "retry" | "retry-free" | "final" | "attempts" | "budget";

/**
 * The attempt policy of one channel.
 *
 * @example An unsent attempt is free while other endpoints remain
 * ```ts
 * import { AttemptPolicy } from "./attempt_policy.ts";
 * import { ConnectionError } from "../errors.ts";
 * import { RetryBudget } from "./retry_budget.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = new AttemptPolicy(3, new RetryBudget(), 2000);
 * const refused = new ConnectionError("refused", { written: false });
 * assert.equal(policy.afterFailure(refused, false, 0, true), "retry-free");
 * assert.equal(policy.connectWait(1000, true), 500);
 * ```
 */
export class AttemptPolicy {
  #maxAttempts: number;
  #budget: RetryBudget;
  #connectTimeout: number;

  /**
   * @param maxAttempts Most attempts that count per call.
   * @param budget The channel's retry budget.
   * @param connectTimeout Bound of one connect attempt, in ms.
   */
  constructor(
    maxAttempts: number,
    budget: RetryBudget,
    connectTimeout: number,
  ) {
    if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
      throw new RangeError(
        `Cannot create channel: maxAttempts must be an integer >= 1, got ${maxAttempts}`,
      );
    }
    if (!(connectTimeout > 0)) {
      throw new RangeError(
        `Cannot create channel: connectTimeout must be > 0, got ${connectTimeout}`,
      );
    }
    this.#maxAttempts = maxAttempts;
    this.#budget = budget;
    this.#connectTimeout = connectTimeout;
  }

  /** Bound of one connect attempt, in ms. */
  get connectTimeout(): number {
    return this.#connectTimeout;
  }

  /**
   * Decides after a failed attempt.
   *
   * @param error What the attempt failed with.
   * @param idempotent Whether the method may run twice.
   * @param counted Attempts that counted before this one.
   * @param untried Whether endpoints this call has not tried remain.
   * @returns The verdict.
   */
  afterFailure(
    error: unknown,
    idempotent: boolean,
    counted: number,
    untried: boolean,
  ): Verdict {
    const kind = classify(error);
    if (kind === "not-run") {
      if (untried) return "retry-free";
    } else if (!(idempotent && kind === "may-have-run")) {
      return "final";
    }
    const budgetLeft = this.#budget.spend();
    if (counted + 1 >= this.#maxAttempts) return "attempts";
    return budgetLeft ? "retry" : "budget";
  }

  /**
   * How long an attempt may wait for its endpoint's connection: the
   * connect timeout, but at most half the call's remaining time while other
   * endpoints could still be tried (so a black hole costs one attempt, not
   * the call), and all of it for the last chance.
   *
   * @param remaining The call's remaining time, in ms.
   * @param alternatives Whether other endpoints could be tried.
   * @returns Milliseconds.
   */
  connectWait(remaining: number, alternatives: boolean): number {
    return Math.max(
      0,
      Math.min(this.#connectTimeout, alternatives ? remaining / 2 : remaining),
    );
  }

  /**
   * Whether a hedge may be sent now: while the retry budget allows retries
   * (failed attempts spend it; a cancelled losing hedge does not).
   */
  mayHedge(): boolean {
    return this.#budget.allows();
  }
}
