/**
 * OutlierDetector as a unit: option checks, every threshold at and one past
 * its boundary, the ejection back-off and its reset, and the background
 * probes against an in-process server on 127.0.0.1. The behaviour under real
 * faults is in gray_failure_test.ts.
 */
import assert from "node:assert/strict";
import { waitFor } from "./_wait.ts";
import {
  type EjectionTarget,
  type OutlierDetectionOptions,
  OutlierDetector,
} from "../src/channel/outlier_detection.ts";
import { Subchannel } from "../src/channel/subchannel.ts";
import { serve } from "../src/server/server.ts";

const HOST = "127.0.0.1";

interface Pool extends EjectionTarget {
  list: Subchannel[];
  changes: number;
}

/** `n` subchannels on ports `port`, `port + step`, … */
function pool(n: number, port = 9001, step = 1): Pool {
  const events = { onBroken() {}, onGoaway() {} };
  const list = Array.from(
    { length: n },
    (_, i) => new Subchannel({ host: HOST, port: port + i * step }, {}, events),
  );
  return {
    list,
    changes: 0,
    subchannels: () => list.values(),
    get size() {
      return list.length;
    },
    changed() {
      this.changes++;
    },
  };
}

/** Runs `fn` with `Math.random` fixed, so back-off periods have no jitter. */
async function withRandom<T>(value: number, fn: () => T): Promise<Awaited<T>> {
  const random = Math.random;
  Math.random = () => value;
  try {
    return await fn();
  } finally {
    Math.random = random;
  }
}

/** Runs `fn` with `Date.now()` fixed at `now`. */
function withNow<T>(now: number, fn: () => T): T {
  const dateNow = Date.now;
  Date.now = () => now;
  try {
    return fn();
  } finally {
    Date.now = dateNow;
  }
}

Deno.test("the defaults are accepted and every option is checked, naming it and the value", async () => {
  await new OutlierDetector(pool(1), { ejectionTime: 1, maxEjectionTime: 1 })
    .close();
  const bad: [OutlierDetectionOptions, number, number, string][] = [
    [
      { consecutiveFailures: 0 },
      1,
      1,
      "consecutiveFailures must be > 0, got 0",
    ],
    [{ minimumCalls: 0 }, 1, 1, "minimumCalls must be > 0, got 0"],
    [{ probeInterval: 0 }, 1, 1, "probeInterval must be > 0, got 0"],
    [{ probeTimeout: -1 }, 1, 1, "probeTimeout must be > 0, got -1"],
    [{ probeTimeout: NaN }, 1, 1, "probeTimeout must be > 0, got NaN"],
    [{}, 0, 1, "ejectionTime must be > 0, got 0"],
    [{}, 1, 0, "maxEjectionTime must be > 0, got 0"],
  ];
  const range = (rate: number, percent: number) =>
    `failureRate must be in (0, 1] and maxEjectionPercent in [0, 100], got ${rate} and ${percent}`;
  bad.push(
    [{ failureRate: 0 }, 1, 1, range(0, 50)],
    [{ failureRate: 1.01 }, 1, 1, range(1.01, 50)],
    [{ failureRate: NaN }, 1, 1, range(NaN, 50)],
    [{ maxEjectionPercent: -1 }, 1, 1, range(0.5, -1)],
    [{ maxEjectionPercent: 101 }, 1, 1, range(0.5, 101)],
    [{ maxEjectionPercent: NaN }, 1, 1, range(0.5, NaN)],
  );
  for (const [options, ejectionTime, maxEjectionTime, message] of bad) {
    assert.throws(
      () =>
        new OutlierDetector(pool(1), {
          ...options,
          ejectionTime,
          maxEjectionTime,
        }),
      (error: unknown) =>
        error instanceof RangeError &&
        error.message === `Cannot create channel: ${message}`,
      JSON.stringify(options),
    );
  }
  // The edges of the ranges are accepted.
  for (
    const options of [
      { failureRate: 1, maxEjectionPercent: 0 },
      { failureRate: 1e-9, maxEjectionPercent: 100 },
      { consecutiveFailures: 0.5, minimumCalls: 0.5 },
      { probeInterval: 1, probeTimeout: 1 },
    ]
  ) {
    await new OutlierDetector(pool(1), {
      ...options,
      ejectionTime: 1,
      maxEjectionTime: 1,
    }).close();
  }
});

Deno.test("consecutiveFailures: one fewer does not eject, exactly that many does", async () => {
  const target = pool(2);
  const detector = new OutlierDetector(target, {
    consecutiveFailures: 3,
    minimumCalls: 1000,
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  const [a] = target.list as [Subchannel];
  detector.failure(a, "call");
  detector.failure(a, "call");
  assert.equal(a.ejected, false);
  assert.equal(target.changes, 0);
  detector.failure(a, "call");
  assert.equal(a.ejected, true);
  assert.equal(target.changes, 1);
  await detector.close();
});

Deno.test("failureRate: a rate equal to the threshold ejects, one just under it does not", async () => {
  // One failure from a clean history gives the endpoint's first moving rate.
  const probe = pool(1).list[0]!;
  probe.failed();
  const first = probe.failureRate;
  assert.ok(first > 0 && first < 1);

  const target = pool(2);
  const options = { consecutiveFailures: 100, minimumCalls: 1 };
  const at = new OutlierDetector(target, {
    ...options,
    failureRate: first,
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  at.failure(target.list[0]!, "call");
  assert.equal(target.list[0]!.ejected, true);
  await at.close();

  const other = pool(2);
  const above = new OutlierDetector(other, {
    ...options,
    failureRate: first * 1.000001,
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  above.failure(other.list[0]!, "call");
  assert.equal(other.list[0]!.ejected, false);
  await above.close();
});

Deno.test("minimumCalls: the failure rate counts from exactly that many attempts, not one before", async () => {
  const target = pool(2);
  const detector = new OutlierDetector(target, {
    consecutiveFailures: 100,
    minimumCalls: 3,
    failureRate: 0.01,
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  const [a] = target.list as [Subchannel];
  detector.failure(a, "call");
  detector.failure(a, "call");
  assert.equal(a.outcomes, 2);
  assert.ok(a.failureRate > 0.01);
  assert.equal(a.ejected, false);
  detector.failure(a, "call");
  assert.equal(a.ejected, true);
  await detector.close();
});

Deno.test("maxEjectionPercent: rounded down, at least one, and 0 lets no call failure eject", async () => {
  const cases: [size: number, percent: number, allowed: number][] = [
    [4, 50, 2],
    [3, 50, 1],
    [4, 25, 1],
    [10, 30, 3],
    [10, 100, 10],
    [10, 1, 1],
    [2, 0, 0],
  ];
  for (const [size, percent, allowed] of cases) {
    const target = pool(size);
    const detector = new OutlierDetector(target, {
      consecutiveFailures: 1,
      maxEjectionPercent: percent,
      ejectionTime: 60_000,
      maxEjectionTime: 60_000,
    });
    for (const subchannel of target.list) detector.failure(subchannel, "call");
    assert.equal(
      target.list.filter((s) => s.ejected).length,
      allowed,
      `${percent}% of ${size}`,
    );
    // A connect failure is not limited.
    for (const subchannel of target.list) {
      detector.failure(subchannel, "connect");
    }
    assert.equal(target.list.filter((s) => s.ejected).length, size);
    await detector.close();
  }
});

Deno.test("failures of an ejected endpoint, or after close(), are not counted", async () => {
  const target = pool(2);
  const detector = new OutlierDetector(target, {
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  const [a, b] = target.list as [Subchannel, Subchannel];
  detector.failure(a, "connect");
  assert.equal(a.failures, 1);
  detector.failure(a, "call");
  detector.failure(a, "connect");
  assert.equal(a.failures, 1);
  assert.equal(a.ejections, 1);
  await detector.close();
  detector.failure(b, "connect");
  assert.equal(b.failures, 0);
  assert.equal(b.ejected, false);
});

Deno.test("ejection periods double from ejectionTime up to maxEjectionTime, within the ±20% jitter", async () => {
  for (const [random, factor] of [[0, 0.8], [0.5, 1], [0.999999, 1.2]]) {
    await withRandom(random!, async () => {
      const target = pool(1);
      const detector = new OutlierDetector(target, {
        ejectionTime: 1000,
        maxEjectionTime: 5000,
      });
      const [a] = target.list as [Subchannel];
      const now = 1_000_000;
      const periods: number[] = [];
      withNow(now, () => {
        for (let i = 0; i < 5; i++) {
          detector.failure(a, "connect");
          periods.push(a.lastEjection);
          assert.equal(a.ejectedUntil, now + a.lastEjection);
          assert.equal(a.state, "ejected");
          detector.readmit(a);
          assert.equal(a.ejected, false);
          assert.equal(a.admittedAt, now);
        }
      });
      assert.equal(a.ejections, 5);
      assert.equal(target.changes, 10);
      const expected = [1000, 2000, 4000, 5000, 5000].map((p) =>
        Math.min(5000, p * factor!)
      );
      periods.forEach((period, i) =>
        assert.ok(
          Math.abs(period - expected[i]!) < 0.01,
          `random ${random}, ejection ${i + 1}: ${period} ms`,
        )
      );
      await detector.close();
    });
  }
});

Deno.test("the back-off starts over after more than four ejection periods admitted, not at exactly four", async () => {
  await withRandom(0.5, async () => {
    const target = pool(1);
    const detector = new OutlierDetector(target, {
      ejectionTime: 1000,
      maxEjectionTime: 60_000,
    });
    const [a] = target.list as [Subchannel];
    withNow(1_000_000, () => detector.failure(a, "connect"));
    assert.equal(a.lastEjection, 1000);
    withNow(1_001_000, () => detector.readmit(a));
    // Exactly four periods later: still in a row.
    withNow(1_005_000, () => detector.failure(a, "connect"));
    assert.equal(a.ejections, 2);
    assert.equal(a.lastEjection, 2000);
    withNow(1_006_000, () => detector.readmit(a));
    // One millisecond past four periods: the back-off starts over.
    withNow(1_014_001, () => detector.failure(a, "connect"));
    assert.equal(a.ejections, 1);
    assert.equal(a.lastEjection, 1000);
    await detector.close();
  });
});

Deno.test("readmit(), forget() and a second schedule cancel the pending probe timer", async () => {
  // The test sanitizer fails on a timer left behind (the periods are long).
  const target = pool(3);
  const detector = new OutlierDetector(target, {
    ejectionTime: 60_000,
    maxEjectionTime: 60_000,
  });
  const [a, b, c] = target.list as [Subchannel, Subchannel, Subchannel];
  detector.failure(a, "connect");
  detector.readmit(a);
  detector.failure(b, "connect");
  detector.forget(b);
  detector.failure(c, "connect");
  detector.drained(c);
  assert.equal(c.draining, true);
  assert.equal(c.state, "draining");
  assert.equal(target.changes, 5);
  await detector.close();
});

Deno.test("an ejected endpoint is probed after its period and re-admitted once it answers; a refused probe is retried every probeInterval", async () => {
  // A port nothing listens on, then a server on it.
  const first = serve({ ok: () => "ok" }, { hostname: HOST, port: 0 });
  const port = first.addr.port;
  await first.close();
  const target = pool(1, port);
  const [a] = target.list as [Subchannel];
  const detector = new OutlierDetector(target, {
    probeInterval: 20,
    probeTimeout: 2000,
    ejectionTime: 20,
    maxEjectionTime: 40,
  });
  detector.failure(a, "connect");
  detector.failure(a, "call"); // not counted while ejected
  assert.equal(a.state, "ejected");
  // Refused probes: still out, until the server is back.
  // sleep-ok: a window in which refused probes must keep it ejected
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(a.ejected, true);
  const server = serve({ ok: () => "ok" }, { hostname: HOST, port });
  try {
    await waitFor(() => !a.ejected, "re-admission", 10_000);
    assert.equal(a.failures, 0);
    assert.equal(a.outcomes, 0);
    assert.ok(target.changes >= 2);
    assert.notEqual(a.live, undefined);
    // A drained endpoint comes back the same way (the connection is live).
    detector.drained(a);
    assert.equal(a.state, "draining");
    await waitFor(() => !a.draining, "drain probe", 10_000);
    assert.equal(a.usable, true);
  } finally {
    await detector.close();
    await a.disconnect();
    await server.close();
  }
});

Deno.test("no probe runs for a retired or forgotten endpoint; a drained one is probed only after ejectionTime", async () => {
  await using server = serve({ ok: () => "ok" }, { hostname: HOST, port: 0 });
  const port = server.addr.port;
  await withRandom(0.5, async () => {
    const target = pool(3, port, 0);
    const [a, d, b] = target.list as [Subchannel, Subchannel, Subchannel];
    const detector = new OutlierDetector(target, {
      ejectionTime: 200,
      maxEjectionTime: 200,
    });
    detector.failure(a, "connect");
    a.retired = true;
    detector.failure(d, "connect");
    detector.forget(d);
    // b's timer has the same delay (no jitter) and is set later, so it fires
    // after a's and d's would have.
    const drainedAt = Date.now();
    detector.drained(b);
    await waitFor(() => !b.draining, "b's probe", 10_000);
    // clock-ok: a lower bound: the probe is not early (timers never fire early)
    assert.ok(Date.now() - drainedAt >= 150, "probed before ejectionTime");
    await detector.close();
    assert.equal(a.ejected, true);
    assert.equal(a.live, undefined);
    assert.equal(d.ejected, true);
    assert.equal(d.live, undefined);
    await b.disconnect();

    // Closed before the period ends: no probe.
    const closed = pool(1, port);
    const [c] = closed.list as [Subchannel];
    const later = new OutlierDetector(closed, {
      ejectionTime: 20,
      maxEjectionTime: 20,
    });
    later.failure(c, "connect");
    await later.close();
    assert.equal(c.ejected, true);
    assert.equal(c.live, undefined);
  });
});

Deno.test("a probe that succeeds after close() does not re-admit", async () => {
  await using server = serve({ ok: () => "ok" }, { hostname: HOST, port: 0 });
  // A relay in front of the server, to hold the probe until close() is called.
  using relay = Deno.listen({ hostname: HOST, port: 0 });
  const events = { onBroken() {}, onGoaway() {} };
  const a = new Subchannel(
    { host: HOST, port: relay.addr.port },
    { connectTimeout: 10_000 },
    events,
  );
  const target = { subchannels: () => [a].values(), size: 1, changed() {} };
  const detector = new OutlierDetector(target, {
    ejectionTime: 10,
    maxEjectionTime: 10,
  });
  detector.failure(a, "connect");
  const accepted = await relay.accept();
  const closing = detector.close();
  const upstream = await Deno.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const pipes = Promise.allSettled([
    accepted.readable.pipeTo(upstream.writable),
    upstream.readable.pipeTo(accepted.writable),
  ]);
  await closing;
  assert.notEqual(a.live, undefined, "the probe connected");
  assert.equal(a.ejected, true);
  await a.disconnect();
  await pipes;
});

Deno.test("close() waits for a probe under way, and a probe that fails after close() schedules nothing", async () => {
  // A listener that accepts but never answers: the probe's connect waits.
  using listener = Deno.listen({ hostname: HOST, port: 0 });
  const events = { onBroken() {}, onGoaway() {} };
  const a = new Subchannel(
    { host: HOST, port: listener.addr.port },
    { connectTimeout: 200 },
    events,
  );
  const target = {
    subchannels: () => [a].values(),
    size: 1,
    changed() {},
  };
  const detector = new OutlierDetector(target, {
    probeInterval: 60_000,
    ejectionTime: 10,
    maxEjectionTime: 10,
  });
  detector.failure(a, "connect");
  using _accepted = await listener.accept();
  // The probe is connecting: this is its connect attempt.
  let settled = false;
  a.connect().catch(() => settled = true);
  await detector.close();
  assert.equal(settled, true);
  assert.equal(a.ejected, true);
});
