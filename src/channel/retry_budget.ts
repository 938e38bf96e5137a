/**
 * A retry budget shared by every call of a channel, after gRPC's retry
 * throttling: failures spend tokens, successes earn a fraction back, and
 * retries stop while fewer than half the tokens are left. A cluster that
 * fails everything then gets each call once, not `maxAttempts` times.
 *
 * @module
 */
import { RETRY_BUDGET_DEFAULTS } from "../_defaults.ts";
import type { CallOutcome, OutcomeListener } from "./picker.ts";
import type { Subchannel } from "./subchannel.ts";

/** Options of a channel's retry budget (`DistributedChannelOptions.retryBudget`). */
export interface RetryBudgetOptions {
  /**
   * Tokens the budget holds when full; retries are allowed while more than
   * half are left. Each failed attempt spends one.
   *
   * @default {100}
   */
  maxTokens?: number;
  /**
   * Tokens each successful call earns back.
   *
   * @default {0.1}
   */
  tokenRatio?: number;
}

/**
 * Decides whether a failed attempt may be retried, from the recent ratio of
 * failures to successes.
 *
 * @example A burst of failures stops retries until calls succeed again
 * ```ts
 * import { RetryBudget } from "./retry_budget.ts";
 * import assert from "node:assert/strict";
 *
 * const budget = new RetryBudget({ maxTokens: 4, tokenRatio: 1 });
 * assert.equal(budget.spend(), true); // 3 left
 * assert.equal(budget.spend(), false); // 2 left: not more than half
 * budget.earn();
 * budget.earn(); // 4 left
 * assert.equal(budget.spend(), true); // 3 left
 * ```
 */
export class RetryBudget implements OutcomeListener {
  #tokens: number;
  #maxTokens: number;
  #tokenRatio: number;

  /**
   * Creates a full budget.
   *
   * @param options Size and refill ratio.
   */
  constructor(options: RetryBudgetOptions = {}) {
    this.#maxTokens = options.maxTokens ?? RETRY_BUDGET_DEFAULTS.maxTokens;
    this.#tokenRatio = options.tokenRatio ?? RETRY_BUDGET_DEFAULTS.tokenRatio;
    if (!(this.#maxTokens > 0) || !(this.#tokenRatio >= 0)) {
      throw new RangeError(
        `Cannot create retry budget: maxTokens must be > 0 and tokenRatio >= 0, got ${this.#maxTokens} and ${this.#tokenRatio}`,
      );
    }
    this.#tokens = this.#maxTokens;
  }

  /** Tokens left. */
  get tokens(): number {
    return this.#tokens;
  }

  /**
   * Records a failed attempt.
   *
   * @returns Whether the call may be retried.
   */
  spend(): boolean {
    this.#tokens = Math.max(0, this.#tokens - 1);
    return this.#tokens > this.#maxTokens / 2;
  }

  /**
   * Whether retries (and hedges) are allowed now, without spending: more
   * than half the tokens are left.
   *
   * @returns `true` while failures have not outweighed successes.
   */
  allows(): boolean {
    return this.#tokens > this.#maxTokens / 2;
  }

  /** Records a successful call. */
  earn(): void {
    this.#tokens = Math.min(this.#maxTokens, this.#tokens + this.#tokenRatio);
  }

  /**
   * Earns on every successful attempt (a picker subscription; failed
   * attempts spend through the attempt policy).
   *
   * @param _subchannel The endpoint.
   * @param outcome How the attempt ended.
   */
  onCallEnded(_subchannel: Subchannel, outcome: CallOutcome): void {
    if (outcome === "ok") this.earn();
  }
}
