import assert from "node:assert/strict";
import { RetryBudget } from "../src/channel/retry_budget.ts";

Deno.test("RetryBudget allows retries while more than half of its tokens are left", () => {
  const budget = new RetryBudget({ maxTokens: 10, tokenRatio: 0.5 });
  const allowed = Array.from({ length: 7 }, () => budget.spend());
  assert.deepEqual(allowed, [true, true, true, true, false, false, false]);
  assert.equal(budget.tokens, 3);
});

Deno.test("RetryBudget earns tokens back with successes, up to its size", () => {
  const budget = new RetryBudget({ maxTokens: 10, tokenRatio: 0.5 });
  for (let i = 0; i < 6; i++) budget.spend();
  assert.equal(budget.spend(), false);
  for (let i = 0; i < 4; i++) budget.earn(); // 3 + 2 = 5 tokens
  assert.equal(budget.spend(), false); // 4 left
  for (let i = 0; i < 100; i++) budget.earn();
  assert.equal(budget.tokens, 10);
  assert.equal(budget.spend(), true);
});

Deno.test("RetryBudget rejects a size that is not positive with a RangeError", () => {
  assert.throws(() => new RetryBudget({ maxTokens: 0 }), RangeError);
  assert.throws(() => new RetryBudget({ tokenRatio: -1 }), RangeError);
});

Deno.test("RetryBudget.allows() tells whether retries are allowed without spending", () => {
  const budget = new RetryBudget({ maxTokens: 4, tokenRatio: 1 });
  assert.equal(budget.allows(), true);
  assert.equal(budget.tokens, 4);
  budget.spend();
  budget.spend(); // 2 left: not more than half
  assert.equal(budget.allows(), false);
});

Deno.test("RetryBudget accepts a ratio of 0 and names bad options in its error", () => {
  const budget = new RetryBudget({ maxTokens: 2, tokenRatio: 0 });
  budget.spend();
  budget.earn();
  assert.equal(budget.tokens, 1);
  assert.throws(
    () => new RetryBudget({ maxTokens: 0, tokenRatio: 0.5 }),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot create retry budget: maxTokens must be > 0 and tokenRatio >= 0, got 0 and 0.5",
  );
  assert.throws(() => new RetryBudget({ maxTokens: NaN }), RangeError);
  assert.throws(() => new RetryBudget({ tokenRatio: NaN }), RangeError);
  assert.equal(new RetryBudget().tokens, 100);
});
