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
