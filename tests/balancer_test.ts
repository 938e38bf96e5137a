import assert from "node:assert/strict";
import {
  type Balancer,
  createBalancer,
  leastInFlightBalancer,
  randomBalancer,
  roundRobinBalancer,
} from "../src/channel/balancer.ts";

const endpoints = ["a", "b", "c"].map((key) => ({ key, inFlight: 0 }));

function countPicks(
  balancer: Balancer,
  candidates: readonly { key: string; inFlight: number }[],
  picks: number,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const key = balancer.pick(candidates)!.key;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

Deno.test("randomBalancer spreads picks roughly evenly over all candidates", () => {
  const counts = countPicks(randomBalancer(), endpoints, 3000);
  assert.equal(counts.size, 3);
  for (const count of counts.values()) assert.ok(count > 800, `${count}`);
});

Deno.test("roundRobinBalancer picks each candidate in turn", () => {
  const balancer = roundRobinBalancer();
  const keys = Array.from({ length: 6 }, () => balancer.pick(endpoints)!.key);
  assert.deepEqual(keys, ["a", "b", "c", "a", "b", "c"]);
});

Deno.test("leastInFlightBalancer sends less traffic to a busy candidate", () => {
  const loaded = [
    { key: "busy", inFlight: 50 },
    { key: "idle1", inFlight: 0 },
    { key: "idle2", inFlight: 1 },
  ];
  const counts = countPicks(leastInFlightBalancer(), loaded, 3000);
  // p2c picks the busy one only when it samples it twice, which it never does.
  assert.equal(counts.get("busy") ?? 0, 0);
  assert.ok((counts.get("idle1") ?? 0) > (counts.get("idle2") ?? 0));
});

Deno.test("balancers return undefined for no candidates", () => {
  for (const name of ["random", "round-robin", "least-in-flight"] as const) {
    assert.equal(createBalancer(name).pick([]), undefined);
  }
});

Deno.test("createBalancer() rejects an unknown name with a RangeError", () => {
  assert.throws(
    () => createBalancer("fastest" as "random"),
    RangeError,
  );
});

/** A random source that returns `values` in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

Deno.test("randomBalancer maps its random source onto every candidate index", () => {
  for (let k = 0; k < 3; k++) {
    const pick = randomBalancer(() => (k + 0.5) / 3).pick(endpoints);
    assert.equal(pick?.key, endpoints[k]!.key);
  }
  assert.equal(randomBalancer(() => 0.999).pick(endpoints)?.key, "c");
  assert.equal(randomBalancer().pick([]), undefined);
});

Deno.test("roundRobinBalancer does not advance on an empty list", () => {
  const balancer = roundRobinBalancer();
  assert.equal(balancer.pick([]), undefined);
  assert.equal(balancer.pick(endpoints)?.key, "a");
  assert.equal(balancer.pick([]), undefined);
  assert.equal(balancer.pick(endpoints)?.key, "b");
  // A shorter list: the turn continues modulo its length.
  assert.equal(balancer.pick(endpoints.slice(0, 2))?.key, "a");
});

Deno.test("leastInFlightBalancer samples two distinct candidates and keeps the less busy", () => {
  // Two candidates: both are always sampled; the idle one wins either way.
  const two = [{ key: "busy", inFlight: 3 }, { key: "idle", inFlight: 0 }];
  for (const r of [0, 0.5, 0.99]) {
    assert.equal(leastInFlightBalancer(() => r).pick(two)?.key, "idle");
  }
  assert.equal(leastInFlightBalancer().pick([two[0]!])?.key, "busy");
  assert.equal(leastInFlightBalancer().pick([]), undefined);
  // Every pair (i, j) with j != i is reachable, and j is never i.
  for (let n = 2; n <= 5; n++) {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n - 1; k++) {
        // Only candidate j is idle: it wins whenever it is sampled.
        const pairs: string[] = [];
        for (let j = 0; j < n; j++) {
          const list = Array.from(
            { length: n },
            (_, x) => ({ key: String(x), inFlight: x === j ? 0 : 1 }),
          );
          const chosen = leastInFlightBalancer(
            sequence((i + 0.5) / n, (k + 0.5) / (n - 1)),
          ).pick(list)!.key;
          if (chosen === String(j) && j !== i) pairs.push(`${i}-${j}`);
        }
        assert.equal(pairs.length, 1, `n=${n} i=${i} k=${k}: ${pairs}`);
        seen.add(pairs[0]!);
      }
    }
    assert.equal(seen.size, n * (n - 1), `n=${n}`);
  }
});

Deno.test("leastInFlightBalancer keeps the first sample on a tie", () => {
  const tied = [
    { key: "a", inFlight: 2 },
    { key: "b", inFlight: 2 },
    { key: "c", inFlight: 2 },
  ];
  // First sample index 1, second (1 + 1 + 0) % 3 = 2.
  assert.equal(
    leastInFlightBalancer(sequence(0.4, 0)).pick(tied)?.key,
    "b",
  );
  // First sample index 2, second (2 + 1 + 1) % 3 = 1: the busier loses.
  const loads = [
    { key: "a", inFlight: 0 },
    { key: "b", inFlight: 1 },
    { key: "c", inFlight: 5 },
  ];
  assert.equal(
    leastInFlightBalancer(sequence(0.9, 0.9)).pick(loads)?.key,
    "b",
  );
});

Deno.test("createBalancer() builds the balancer it names", () => {
  const rr = createBalancer("round-robin");
  assert.deepEqual(
    Array.from({ length: 4 }, () => rr.pick(endpoints)?.key),
    ["a", "b", "c", "a"],
  );
  // least-in-flight never picks the busier of two.
  const two = [{ key: "busy", inFlight: 3 }, { key: "idle", inFlight: 0 }];
  const lif = createBalancer("least-in-flight");
  assert.ok(
    Array.from({ length: 100 }, () => lif.pick(two)?.key).every((k) =>
      k === "idle"
    ),
  );
  // random picks the busy one about half the time, and not in turn.
  const random = createBalancer("random");
  const keys = Array.from({ length: 200 }, () => random.pick(two)?.key);
  assert.ok(keys.filter((k) => k === "busy").length > 40);
  const fresh = createBalancer("random");
  const turns = Array.from({ length: 60 }, () => fresh.pick(endpoints)?.key);
  assert.notDeepEqual(
    turns,
    Array.from({ length: 60 }, (_, i) => "abc"[i % 3]),
  );
  assert.throws(
    () => createBalancer("fastest" as "random"),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message === 'Cannot create balancer: unknown name "fastest"',
  );
});
