/**
 * Outlier detection and the attempt policy as units: which failures eject,
 * how many endpoints may be out, how ejection periods grow, which attempts
 * count. The behaviour under real faults is in gray_failure_test.ts.
 */
import assert from "node:assert/strict";
import { backoff } from "../src/_async.ts";
import { AttemptPolicy } from "../src/channel/attempt_policy.ts";
import {
  type EjectionTarget,
  OutlierDetector,
} from "../src/channel/outlier_detection.ts";
import { Subchannel } from "../src/channel/subchannel.ts";
import {
  ConnectionError,
  DeadlineExceededError,
  RemoteError,
} from "../src/errors.ts";
import { RetryBudget } from "../src/channel/retry_budget.ts";

function target(n: number): EjectionTarget & { list: Subchannel[] } {
  const events = { onBroken() {}, onGoaway() {} };
  const list = Array.from(
    { length: n },
    (_, i) => new Subchannel({ host: "127.0.0.1", port: 9001 + i }, {}, events),
  );
  return {
    list,
    subchannels: () => list.values(),
    get size() {
      return list.length;
    },
    changed() {},
  };
}

Deno.test("five call failures in a row eject an endpoint; fewer, or a success between, do not", async () => {
  const pool = target(3);
  const detector = new OutlierDetector(pool, {
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  const [a, b] = pool.list as [Subchannel, Subchannel];
  for (let i = 0; i < 4; i++) detector.failure(a, "call");
  assert.equal(a.ejected, false);
  a.succeeded(1);
  for (let i = 0; i < 4; i++) detector.failure(a, "call");
  assert.equal(a.ejected, false);
  detector.failure(a, "call");
  assert.equal(a.ejected, true);
  assert.equal(a.state, "ejected");
  // A connect failure ejects at once.
  detector.failure(b, "connect");
  assert.equal(b.ejected, true);
  await detector.close();
});

Deno.test("call failures never eject more than maxEjectionPercent of the endpoints, connect failures may", async () => {
  const pool = target(4);
  const detector = new OutlierDetector(pool, {
    maxEjectionPercent: 50,
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  for (const subchannel of pool.list) {
    for (let i = 0; i < 10; i++) detector.failure(subchannel, "call");
  }
  assert.equal(pool.list.filter((s) => s.ejected).length, 2);
  for (const subchannel of pool.list) detector.failure(subchannel, "connect");
  assert.equal(pool.list.filter((s) => s.ejected).length, 4);
  await detector.close();
});

Deno.test("a high failure rate ejects an endpoint whose failures are not consecutive", async () => {
  const pool = target(3);
  const detector = new OutlierDetector(pool, {
    consecutiveFailures: 100,
    failureRate: 0.5,
    minimumCalls: 10,
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  const [a] = pool.list as [Subchannel];
  for (let i = 0; i < 40 && !a.ejected; i++) {
    detector.failure(a, "call");
    detector.failure(a, "call");
    detector.failure(a, "call");
    a.succeeded(1);
  }
  assert.equal(a.ejected, true);
  await detector.close();
});

Deno.test("each ejection in a row lasts about twice the previous one, with jitter, up to the maximum", async () => {
  const pool = target(2);
  const detector = new OutlierDetector(pool, {
    ejectionTime: 1000,
    maxEjectionTime: 5000,
  });
  const [a] = pool.list as [Subchannel];
  const periods: number[] = [];
  for (let i = 0; i < 5; i++) {
    detector.failure(a, "connect");
    periods.push(a.lastEjection);
    detector.readmit(a); // as a probe would, right away
  }
  await detector.close();
  const expected = [1000, 2000, 4000, 5000, 5000];
  periods.forEach((period, i) => {
    assert.ok(
      period >= expected[i]! * 0.8 - 1 &&
        period <= Math.min(5000, expected[i]! * 1.2),
      `ejection ${i + 1}: ${period} ms`,
    );
  });
  assert.equal(
    backoff(3, { minTimeout: 100, maxTimeout: 10_000, random: () => 0.5 }),
    400,
  );
  assert.equal(
    backoff(10, { minTimeout: 100, maxTimeout: 1000, random: () => 0.99 }),
    1000,
  );
});

Deno.test("unsent attempts do not count while untried endpoints remain; calls that may have run are retried only when idempotent", () => {
  const policy = new AttemptPolicy(2, new RetryBudget(), 2000);
  const unsent = new ConnectionError("refused", { written: false });
  const maybeRun = new ConnectionError("reset", { written: true });
  assert.equal(policy.afterFailure(unsent, false, 0, true), "retry-free");
  assert.equal(policy.afterFailure(unsent, false, 5, true), "retry-free");
  assert.equal(policy.afterFailure(unsent, false, 0, false), "retry");
  assert.equal(policy.afterFailure(unsent, false, 1, false), "attempts");
  assert.equal(policy.afterFailure(maybeRun, false, 0, true), "final");
  assert.equal(policy.afterFailure(maybeRun, true, 0, true), "retry");
  assert.equal(
    policy.afterFailure(new DeadlineExceededError("late"), true, 0, true),
    "final",
  );
  assert.equal(
    policy.afterFailure(
      new RemoteError("no", { remoteName: "RangeError" }),
      true,
      0,
      true,
    ),
    "final",
  );
  // One connect wait: the connect timeout, or half the remaining time while
  // other endpoints could be tried, or all of it for the last one.
  assert.equal(policy.connectWait(10_000, true), 2000);
  assert.equal(policy.connectWait(1000, true), 500);
  assert.equal(policy.connectWait(1000, false), 1000);
});
