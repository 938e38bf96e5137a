/**
 * Hedging as a unit, with scripted attempts (no server): the latency
 * tracker's percentile, fallback, cache and ring; the plan built from the
 * channel's `hedging` option (defaults, checks); and `hedge()` itself: a
 * hedge after the delay and no more than `maxHedges`, the first result wins
 * and cancels the others, a server's answer is final, other failures wait
 * for the remaining attempts, the caller's abort reaches every attempt.
 */
import assert from "node:assert/strict";
import {
  hedge,
  type HedgeOptions,
  hedgingPlan,
  LatencyTracker,
} from "../src/channel/hedging.ts";
import { CHANNEL_DEFAULTS } from "../src/_defaults.ts";
import type { Subchannel } from "../src/channel/subchannel.ts";
import { stillPending, within } from "./_wait.ts";

const SUBCHANNEL = {} as Subchannel;

/** Records `values` as answered latencies. */
function fill(tracker: LatencyTracker, values: number[]): void {
  for (const v of values) tracker.record(v);
}

Deno.test("LatencyTracker: the percentile must be in (0, 100]", () => {
  for (const bad of [0, -1, 100.5, NaN]) {
    assert.throws(
      () => new LatencyTracker(bad),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot create channel: hedging percentile must be in (0, 100], got ${bad}`,
      String(bad),
    );
  }
  assert.equal(new LatencyTracker(100).value(), 100, "100 is allowed");
  assert.equal(new LatencyTracker(0.01).value(), 100, "so is a tiny one");
});

Deno.test("LatencyTracker: 100 ms until 16 answers, then the percentile of the samples, at least 1 ms", () => {
  const t = new LatencyTracker(50);
  assert.equal(t.measureAll, true);
  fill(t, Array.from({ length: 15 }, (_, i) => i + 1));
  assert.equal(t.value(), 100, "15 samples: the fallback");
  t.record(16);
  // 1..16: index floor(16 * 0.5) = 8 of the sorted samples.
  assert.equal(t.value(), 9);
  const all = new LatencyTracker(100);
  fill(all, [30, 4, 200, 1000, 5, ...Array(11).fill(2)]);
  assert.equal(all.value(), 1000, "p100: the largest (sorted as numbers)");
  const low = new LatencyTracker(1);
  fill(low, [30, 4, 200, 1000, 5, ...Array(11).fill(2)]);
  assert.equal(low.value(), 2, "p1: the smallest");
  const zero = new LatencyTracker(50);
  fill(zero, Array(16).fill(0.2));
  assert.equal(zero.value(), 1, "never below 1 ms");
});

Deno.test("LatencyTracker: the percentile is recomputed after 32 new samples, and only the last 256 count", () => {
  const t = new LatencyTracker(50);
  fill(t, Array(16).fill(10));
  assert.equal(t.value(), 10);
  fill(t, Array(31).fill(1000));
  assert.equal(t.value(), 10, "cached: 31 new samples");
  t.record(1000);
  assert.equal(t.value(), 1000, "32 new samples: recomputed");
  const ring = new LatencyTracker(100);
  fill(ring, Array(256).fill(50));
  assert.equal(ring.value(), 50);
  fill(ring, Array(256).fill(3));
  assert.equal(ring.value(), 3, "the old samples are overwritten");
});

Deno.test("LatencyTracker: only answered calls with a latency are recorded", () => {
  const t = new LatencyTracker(50);
  for (let i = 0; i < 20; i++) {
    t.onCallEnded(SUBCHANNEL, "answered", 7);
    t.onCallEnded(SUBCHANNEL, "ok", undefined);
    t.onCallEnded(SUBCHANNEL, "deadline", 7);
  }
  assert.equal(t.value(), 100, "nothing recorded");
  for (let i = 0; i < 16; i++) t.onCallEnded(SUBCHANNEL, "ok", 7);
  assert.equal(t.value(), 7);
});

Deno.test("hedgingPlan(): off by default; true is the defaults; a fixed delay, the methods and maxHedges as given", () => {
  assert.equal(hedgingPlan(undefined), undefined);
  assert.equal(hedgingPlan(false), undefined);
  const defaults = hedgingPlan(true)!;
  assert.equal(defaults.methods, undefined, "every idempotent method");
  assert.equal(defaults.maxHedges, CHANNEL_DEFAULTS.maxHedges);
  assert.ok(defaults.tracker instanceof LatencyTracker);
  assert.equal(defaults.delay(), 100, "the tracker's fallback");
  fill(defaults.tracker!, Array.from({ length: 100 }, (_, i) => i + 1));
  // The default percentile (95): index 95 of 1..100.
  assert.equal(defaults.delay(), CHANNEL_DEFAULTS.hedgePercentile + 1);
  const fixed = hedgingPlan({ delay: 0, maxHedges: 3, methods: ["a", "b"] })!;
  assert.equal(fixed.tracker, undefined);
  assert.equal(fixed.delay(), 0);
  assert.equal(fixed.maxHedges, 3);
  assert.deepEqual(fixed.methods, new Set(["a", "b"]));
  const p = hedgingPlan({ delay: { percentile: 50 } })!;
  fill(p.tracker!, Array.from({ length: 16 }, (_, i) => i + 1));
  assert.equal(p.delay(), 9);
});

Deno.test("hedgingPlan(): a negative or NaN delay and a bad percentile are RangeErrors", () => {
  for (const bad of [-1, NaN]) {
    assert.throws(
      () => hedgingPlan({ delay: bad }),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot create channel: hedging delay must be >= 0 ms, got ${bad}`,
    );
  }
  assert.throws(() => hedgingPlan({ delay: { percentile: 0 } }), RangeError);
});

/** Scripted attempts: each waits until the test settles it. */
function attempts() {
  const list: {
    signal: AbortSignal;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
  }[] = [];
  const waiters = new Map<number, () => void>();
  const attempt = (signal: AbortSignal): Promise<unknown> => {
    const d = Promise.withResolvers<unknown>();
    if (signal.aborted) d.reject(signal.reason);
    signal.addEventListener("abort", () => d.reject(signal.reason), {
      once: true,
    });
    list.push({ signal, resolve: d.resolve, reject: d.reject });
    waiters.get(list.length)?.();
    return d.promise;
  };
  /** Resolves when the `n`th attempt has started. */
  const launched = (n: number): Promise<void> => {
    if (list.length >= n) return Promise.resolve();
    const d = Promise.withResolvers<void>();
    waiters.set(n, d.resolve);
    return within(d.promise, 2000, `attempt ${n} started`);
  };
  return { list, attempt, launched };
}

const ANSWER = new Error("an answer from the server");
const isAnswer = (e: unknown) => e === ANSWER;

function options(over: Partial<HedgeOptions> = {}): HedgeOptions {
  return {
    delay: 0,
    maxHedges: 1,
    signal: undefined,
    mayHedge: () => true,
    isAnswer,
    ...over,
  };
}

Deno.test("hedge(): no more than maxHedges hedges, each after the delay and only when mayHedge() allows", async () => {
  const a = attempts();
  let asked = 0;
  const result = hedge(
    a.attempt,
    options({ maxHedges: 2, mayHedge: () => ++asked > 0 }),
  );
  await a.launched(3);
  assert.equal(await stillPending(result), true);
  assert.equal(a.list.length, 3, "the first attempt and two hedges");
  assert.equal(asked, 2);
  a.list[1]!.resolve("second");
  assert.equal(await within(result, 2000, "result"), "second");
  // The others are cancelled; the winner's signal too (its work is done).
  for (const { signal } of a.list) {
    assert.equal(signal.aborted, true);
    assert.equal(
      (signal.reason as Error).message,
      "another attempt answered first",
    );
  }
  const refused = attempts();
  let mayAsked = 0;
  const alone = hedge(
    refused.attempt,
    options({
      mayHedge: () => {
        mayAsked++;
        return false;
      },
    }),
  );
  assert.equal(await stillPending(alone), true);
  assert.equal(mayAsked, 1, "asked once, when the delay passed");
  assert.equal(refused.list.length, 1, "mayHedge() said no");
  refused.list[0]!.resolve("only");
  assert.equal(await within(alone, 2000, "alone"), "only");
});

Deno.test("hedge(): a first attempt that answers before the delay is the only one", async () => {
  const a = attempts();
  const result = hedge(a.attempt, options({ delay: 60_000 }));
  await a.launched(1);
  a.list[0]!.resolve("fast");
  assert.equal(await within(result, 2000, "result"), "fast");
  assert.equal(a.list.length, 1);
});

Deno.test("hedge(): a server's answer is final; other failures wait for the remaining attempts", async () => {
  const a = attempts();
  const answered = hedge(a.attempt, options());
  await a.launched(2);
  a.list[0]!.reject(ANSWER);
  await assert.rejects(within(answered, 2000, "answered"), (e) => e === ANSWER);
  assert.equal(a.list[1]!.signal.aborted, true, "the hedge is cancelled");

  const b = attempts();
  const failed = hedge(b.attempt, options());
  await b.launched(2);
  const first = new Error("connection lost");
  const second = new Error("connection refused");
  b.list[0]!.reject(first);
  assert.equal(await stillPending(failed), true, "the hedge still runs");
  assert.equal(b.list[1]!.signal.aborted, false);
  b.list[1]!.reject(second);
  await assert.rejects(within(failed, 2000, "failed"), (e) => e === second);

  // The last attempt failing ends the call even with no hedge left to send.
  const c = attempts();
  const one = hedge(c.attempt, options({ maxHedges: 0 }));
  await c.launched(1);
  assert.equal(await stillPending(one), true);
  assert.equal(c.list.length, 1, "maxHedges 0: no hedge");
  c.list[0]!.reject(first);
  await assert.rejects(within(one, 2000, "one"), (e) => e === first);
});

Deno.test("hedge(): the caller's abort reaches every attempt and ends the call with its reason", async () => {
  const a = attempts();
  const controller = new AbortController();
  const result = hedge(a.attempt, options({ signal: controller.signal }));
  await a.launched(2);
  const reason = new Error("cancelled by the caller");
  controller.abort(reason);
  await assert.rejects(within(result, 2000, "result"), (e) => e === reason);
  for (const { signal } of a.list) assert.equal(signal.reason, reason);

  // Already aborted: the attempt starts aborted, and no hedge is sent.
  const b = attempts();
  const gone = new AbortController();
  gone.abort(reason);
  const early = hedge(b.attempt, options({ signal: gone.signal }));
  await assert.rejects(within(early, 2000, "early"), (e) => e === reason);
  assert.equal(b.list.length, 1);
  assert.equal(b.list[0]!.signal.reason, reason);
});
