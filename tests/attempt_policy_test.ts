/**
 * The channel's attempt policy at its edges: option checks, the attempt
 * count, the retry budget, connect waits, hedging and what counts against an
 * endpoint.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AttemptPolicy } from "../src/channel/attempt_policy.ts";
import {
  ConnectionError,
  DeadlineExceededError,
  RemoteError,
  ServerClosingError,
} from "../src/errors.ts";
import { RetryBudget } from "../src/channel/retry_budget.ts";

Deno.test("AttemptPolicy checks maxAttempts and connectTimeout, naming the bad value", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(
      () => new AttemptPolicy(bad, new RetryBudget(), 1000),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot create channel: maxAttempts must be an integer >= 1, got ${bad}`,
      String(bad),
    );
  }
  for (const bad of [0, -5, NaN]) {
    assert.throws(
      () => new AttemptPolicy(1, new RetryBudget(), bad),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot create channel: connectTimeout must be > 0, got ${bad}`,
      String(bad),
    );
  }
  const policy = new AttemptPolicy(1, new RetryBudget(), 0.5);
  assert.equal(policy.connectTimeout, 0.5);
});

Deno.test("AttemptPolicy stops exactly at maxAttempts counted attempts", () => {
  const maybeRun = new ConnectionError("reset", { written: true });
  const policy = new AttemptPolicy(3, new RetryBudget(), 1000);
  assert.equal(policy.afterFailure(maybeRun, true, 0, true), "retry");
  assert.equal(policy.afterFailure(maybeRun, true, 1, true), "retry");
  assert.equal(policy.afterFailure(maybeRun, true, 2, true), "attempts");
  assert.equal(policy.afterFailure(maybeRun, true, 3, true), "attempts");
  // Not idempotent, or not a connection failure: final at once.
  assert.equal(policy.afterFailure(maybeRun, false, 0, true), "final");
  assert.equal(
    policy.afterFailure(
      new RemoteError("m", { remoteName: "X" }),
      true,
      0,
      true,
    ),
    "final",
  );
  assert.equal(
    policy.afterFailure(new DeadlineExceededError("late"), true, 0, true),
    "final",
  );
  // A refusal after goaway never ran the call: free while endpoints remain.
  const refused = new ServerClosingError("bye", { notRun: true });
  assert.equal(policy.afterFailure(refused, false, 2, true), "retry-free");
  assert.equal(policy.afterFailure(refused, false, 2, false), "attempts");
  // A "closing" answer without goaway may have run: idempotent calls only.
  const untrusted = new ServerClosingError("bye");
  assert.equal(policy.afterFailure(untrusted, false, 0, true), "final");
  assert.equal(policy.afterFailure(untrusted, true, 0, true), "retry");
  // The client's own error is final, even for an idempotent call.
  assert.equal(
    policy.afterFailure(new TypeError("cannot encode"), true, 0, true),
    "final",
  );
});

Deno.test("AttemptPolicy spends the retry budget on counted failures and stops retrying when it runs out", () => {
  const budget = new RetryBudget({ maxTokens: 4, tokenRatio: 1 });
  const policy = new AttemptPolicy(10, budget, 1000);
  const unsent = new ConnectionError("refused", { written: false });
  // Free attempts cost nothing.
  assert.equal(policy.afterFailure(unsent, false, 0, true), "retry-free");
  assert.equal(budget.tokens, 4);
  assert.equal(policy.mayHedge(), true);
  assert.equal(policy.afterFailure(unsent, false, 0, false), "retry"); // 3 left
  assert.equal(budget.tokens, 3);
  assert.equal(policy.afterFailure(unsent, false, 1, false), "budget"); // 2 left
  assert.equal(policy.mayHedge(), false);
  budget.earn();
  assert.equal(budget.tokens, 3);
  assert.equal(policy.mayHedge(), true);
  // The attempt limit wins over the budget.
  const last = new AttemptPolicy(1, new RetryBudget({ maxTokens: 2 }), 1000);
  assert.equal(last.afterFailure(unsent, false, 0, false), "attempts");
});

Deno.test("AttemptPolicy.connectWait() gives half the remaining time while other endpoints remain", () => {
  const policy = new AttemptPolicy(3, new RetryBudget(), 1000);
  assert.equal(policy.connectWait(600, true), 300);
  assert.equal(policy.connectWait(600, false), 600);
  assert.equal(policy.connectWait(5000, true), 1000);
  assert.equal(policy.connectWait(5000, false), 1000);
  assert.equal(policy.connectWait(2000, true), 1000);
  assert.equal(policy.connectWait(-10, false), 0);
  assert.equal(policy.connectWait(-10, true), 0);
});
