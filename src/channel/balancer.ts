/**
 * Balancers choose one endpoint among the live candidates for each call.
 *
 * @module
 */

import type { MemberData } from "../discovery/member.ts";

/**
 * What a balancer sees of an endpoint: a read-only view that the channel
 * keeps up to date (no internal object is handed out).
 *
 * @example Picking among candidates
 * ```ts
 * import { leastInFlightBalancer } from "./balancer.ts";
 * import type { BalancerCandidate } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const candidates: BalancerCandidate[] = [
 *   { key: "127.0.0.1:9001", inFlight: 4 },
 *   { key: "127.0.0.1:9002", inFlight: 0, weight: 2, latency: 1.5 },
 * ];
 * assert.equal(leastInFlightBalancer().pick(candidates)?.key, "127.0.0.1:9002");
 * ```
 */
export interface BalancerCandidate {
  /** A stable key for the endpoint, e.g. `"127.0.0.1:9001"`. */
  readonly key: string;
  /** Calls sent to the endpoint and not yet answered. */
  readonly inFlight: number;
  /**
   * The data the server registered (host, port, `weight`, metadata such as
   * a zone). Always set by the channel.
   */
  readonly member?: MemberData;
  /** The member's `weight` (1 when it registered none). Set by the channel. */
  readonly weight?: number;
  /**
   * Moving average of the endpoint's answered calls' latency, in ms,
   * measured on one call in eight (every call while hedging); `undefined`
   * until one was answered.
   */
  readonly latency?: number | undefined;
}

/**
 * Chooses an endpoint for one call. The channel only calls `pick` with a
 * non-empty list of endpoints that may be used now (not ejected, not
 * draining, not yet tried by this call when others remain); when every
 * endpoint is failing it passes them all, so that calls still try.
 *
 * @example Writing a balancer that prefers the lowest latency
 * ```ts
 * import type { Balancer } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const fastest: Balancer = {
 *   pick: (candidates) =>
 *     candidates.reduce((best, c) =>
 *       (c.latency ?? 0) < (best.latency ?? 0) ? c : best
 *     ),
 * };
 * const pick = fastest.pick([
 *   { key: "a", inFlight: 0, latency: 9 },
 *   { key: "b", inFlight: 0, latency: 2 },
 * ]);
 * assert.equal(pick?.key, "b");
 * ```
 */
export interface Balancer {
  /**
   * Returns one of `candidates` (the channel never passes an empty list;
   * `undefined` makes it take the first).
   */
  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined;
}

/**
 * The balancers zkrpc ships, by name.
 *
 * @example Creating each shipped balancer by name
 * ```ts
 * import { createBalancer } from "./balancer.ts";
 * import type { BalancerName } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const names: BalancerName[] = ["random", "round-robin", "least-in-flight"];
 * for (const name of names) {
 *   const pick = createBalancer(name).pick([{ key: "a", inFlight: 0 }]);
 *   assert.equal(pick?.key, "a");
 * }
 * ```
 */
export type BalancerName =
  | "random"
  | "round-robin"
  | "least-in-flight"
  | "weighted-random"
  | "weighted-least-in-flight";

/** A candidate's weight: its `weight`, 1 when unset, 0 when not a finite >= 0 number. */
function weightOf(candidate: BalancerCandidate): number {
  const w = candidate.weight ?? 1;
  return Number.isFinite(w) && w > 0 ? w : 0;
}

/** A candidate drawn with probability proportional to its weight. */
function drawWeighted<T extends BalancerCandidate>(
  candidates: readonly T[],
  random: RandomSource,
): T | undefined {
  let total = 0;
  for (const c of candidates) total += weightOf(c);
  if (total === 0) return candidates[Math.floor(random() * candidates.length)];
  let x = random() * total;
  for (const c of candidates) {
    x -= weightOf(c);
    if (x < 0) return c;
  }
  return candidates[candidates.length - 1];
}

/**
 * A source of numbers in `[0, 1)`, as `Math.random`.
 *
 * @example A deterministic source for tests
 * ```ts
 * import { randomBalancer } from "./balancer.ts";
 * import type { RandomSource } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const alwaysFirst: RandomSource = () => 0;
 * const pick = randomBalancer(alwaysFirst).pick([
 *   { key: "a", inFlight: 0 },
 *   { key: "b", inFlight: 0 },
 * ]);
 * assert.equal(pick?.key, "a");
 * ```
 */
export type RandomSource = () => number;

/**
 * Picks a uniformly random candidate: the seed's `random.choice`.
 *
 * @param random Source of randomness (for tests).
 * @returns A balancer.
 *
 * @example Picking at random
 * ```ts
 * import { randomBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const pick = randomBalancer(() => 0.99).pick([
 *   { key: "a", inFlight: 0 },
 *   { key: "b", inFlight: 0 },
 * ]);
 * assert.equal(pick?.key, "b");
 * ```
 */
export function randomBalancer(random: RandomSource = Math.random): Balancer {
  return {
    pick(candidates) {
      return candidates[Math.floor(random() * candidates.length)];
    },
  };
}

/**
 * Picks the candidates in turn.
 *
 * @returns A balancer with its own position.
 *
 * @example Taking turns
 * ```ts
 * import { roundRobinBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const balancer = roundRobinBalancer();
 * const endpoints = [{ key: "a", inFlight: 0 }, { key: "b", inFlight: 0 }];
 * assert.deepEqual(
 *   [1, 2, 3].map(() => balancer.pick(endpoints)?.key),
 *   ["a", "b", "a"],
 * );
 * ```
 */
export function roundRobinBalancer(): Balancer {
  let next = 0;
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      next = (next + 1) % Number.MAX_SAFE_INTEGER;
      return candidates[(next - 1) % candidates.length];
    },
  };
}

/**
 * Power of two choices: samples two distinct candidates at random and picks
 * the one with fewer calls in flight, so a slow endpoint gets less traffic.
 *
 * @param random Source of randomness (for tests).
 * @returns A balancer.
 *
 * @example Avoiding a busy endpoint
 * ```ts
 * import { leastInFlightBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const pick = leastInFlightBalancer().pick([
 *   { key: "busy", inFlight: 10 },
 *   { key: "idle", inFlight: 0 },
 * ]);
 * assert.equal(pick?.key, "idle");
 * ```
 */
export function leastInFlightBalancer(
  random: RandomSource = Math.random,
): Balancer {
  return {
    pick(candidates) {
      if (candidates.length < 2) return candidates[0];
      const i = Math.floor(random() * candidates.length);
      const j = (i + 1 + Math.floor(random() * (candidates.length - 1))) %
        candidates.length;
      const a = candidates[i]!;
      const b = candidates[j]!;
      return b.inFlight < a.inFlight ? b : a;
    },
  };
}

/**
 * Picks a candidate at random with probability proportional to its
 * `weight` (the member's published weight, 1 when none; weight 0 is picked
 * only when every weight is 0). Canary routing: weight 1 against 99.
 *
 * @param random Source of randomness (for tests).
 * @returns A balancer.
 *
 * @example Weights 1 and 3
 * ```ts
 * import { weightedRandomBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const endpoints = [
 *   { key: "a", inFlight: 0, weight: 1 },
 *   { key: "b", inFlight: 0, weight: 3 },
 * ];
 * assert.equal(weightedRandomBalancer(() => 0.2).pick(endpoints)?.key, "a");
 * assert.equal(weightedRandomBalancer(() => 0.3).pick(endpoints)?.key, "b");
 * ```
 */
export function weightedRandomBalancer(
  random: RandomSource = Math.random,
): Balancer {
  return {
    pick(candidates) {
      return drawWeighted(candidates, random);
    },
  };
}

/**
 * Power of two choices among candidates drawn by weight: draws two by
 * weight and picks the one with fewer calls in flight per unit of weight.
 *
 * @param random Source of randomness (for tests).
 * @returns A balancer.
 *
 * @example A heavier endpoint takes more in flight
 * ```ts
 * import { weightedLeastInFlightBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const pick = weightedLeastInFlightBalancer().pick([
 *   { key: "big", inFlight: 4, weight: 4 },
 *   { key: "small", inFlight: 2, weight: 1 },
 * ]);
 * assert.equal(pick?.key, "big"); // 1 per unit of weight against 2
 * ```
 */
export function weightedLeastInFlightBalancer(
  random: RandomSource = Math.random,
): Balancer {
  return {
    pick(candidates) {
      if (candidates.length < 2) return candidates[0];
      const a = drawWeighted(candidates, random)!;
      let b = drawWeighted(candidates, random)!;
      if (b === a) {
        const others = candidates.filter((c) => c !== a);
        b = drawWeighted(others, random) ?? a;
      }
      const load = (c: BalancerCandidate) =>
        (c.inFlight + 1) / Math.max(weightOf(c), Number.MIN_VALUE);
      return load(b) < load(a) ? b : a;
    },
  };
}

/**
 * Returns the balancer with the given name.
 *
 * @param name One of {@linkcode BalancerName}.
 * @returns A new balancer.
 *
 * @example Choosing a balancer by name
 * ```ts
 * import { createBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const balancer = createBalancer("round-robin");
 * assert.equal(balancer.pick([{ key: "a", inFlight: 0 }])?.key, "a");
 * ```
 */
export function createBalancer(name: BalancerName): Balancer {
  switch (name) {
    case "random":
      return randomBalancer();
    case "round-robin":
      return roundRobinBalancer();
    case "least-in-flight":
      return leastInFlightBalancer();
    case "weighted-random":
      return weightedRandomBalancer();
    case "weighted-least-in-flight":
      return weightedLeastInFlightBalancer();
    default:
      throw new RangeError(
        `Cannot create balancer: unknown name "${name as string}"`,
      );
  }
}
