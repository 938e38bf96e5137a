/**
 * The picker: chooses a subchannel for an attempt and reports how the
 * attempt ended to whoever subscribed (outlier detection, the latency
 * tracker, the retry budget), in the shape of grpc-js's `onCallEnded`. The
 * channel never names those subscribers on the call path.
 *
 * @module
 */

import type { FailureKind } from "../errors.ts";
import type { Balancer } from "./balancer.ts";
import type { CandidateView, Subchannel } from "./subchannel.ts";

/** One attempt in this many has its latency measured (unless all are). */
const LATENCY_SAMPLE_EVERY = 8;

/**
 * How an attempt ended: `"ok"` (a result), an error's
 * {@linkcode FailureKind} (see `classify()`), or `"connect"` (the endpoint's
 * connection could not be opened).
 *
 * @example Outcomes of two attempts
 * ```ts
 * import type { CallOutcome } from "./picker.ts";
 * import assert from "node:assert/strict";
 *
 * const outcomes: CallOutcome[] = ["ok", "deadline"];
 * assert.equal(outcomes.length, 2);
 * ```
 */
export type CallOutcome = "ok" | "connect" | FailureKind;

/**
 * Something that learns from attempt outcomes.
 *
 * @example A listener that counts deadline misses
 * ```ts
 * import type { OutcomeListener } from "./picker.ts";
 * import assert from "node:assert/strict";
 *
 * let misses = 0;
 * const listener: OutcomeListener = {
 *   onCallEnded(_subchannel, outcome) {
 *     if (outcome === "deadline") misses++;
 *   },
 * };
 * assert.equal(typeof listener.onCallEnded, "function");
 * ```
 */
export interface OutcomeListener {
  /** Whether it needs the latency of every answered attempt (not a sample). */
  readonly measureAll?: boolean;
  /**
   * Called once per ended attempt (and once per failed connect).
   *
   * @param subchannel The endpoint.
   * @param outcome How it ended.
   * @param latency Its latency in ms when measured (answered attempts only).
   */
  onCallEnded(
    subchannel: Subchannel,
    outcome: CallOutcome,
    latency: number | undefined,
  ): void;
}

/**
 * One picked attempt: its subchannel, and the callback that ends it. The
 * attempts on one endpoint whose latency is not measured share one `Pick`
 * (it holds no state of theirs): end each with its own `onCallEnded`, and
 * never tell attempts apart by their `Pick`.
 *
 * @example Ending a picked attempt
 * ```ts
 * import { Picker } from "./picker.ts";
 * import { SubchannelPool } from "./pool.ts";
 * import { createBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const events = { onBroken() {}, onGoaway() {}, onReregistered() {}, onRetired() {} };
 * const pool = new SubchannelPool({}, events);
 * const member = { host: "127.0.0.1", port: 9001 };
 * pool.apply({ added: new Map([["a", member]]), removed: [] }, () => true);
 * const picker = new Picker(pool, createBalancer("random"));
 * const pick = picker.pick(undefined);
 * assert.equal(pick?.subchannel.candidate.inFlight, 1);
 * pick?.onCallEnded("ok");
 * assert.equal(pick?.subchannel.candidate.inFlight, 0);
 * await pool.close([]);
 * ```
 */
export interface Pick {
  /** The endpoint chosen. */
  readonly subchannel: Subchannel;
  /**
   * Ends the attempt (exactly once): books the outcome and tells the
   * subscribers.
   *
   * @param outcome `"ok"`, or `classify()` of the error it failed with.
   */
  onCallEnded(outcome: CallOutcome): void;
  /**
   * The answer began while the attempt goes on (a stream's first item):
   * its latency is measured to here, not to its end.
   */
  answered(): void;
}

type Ended = (
  subchannel: Subchannel,
  outcome: CallOutcome,
  started: number,
  answered: number,
) => void;

/** An attempt whose latency is measured: its own object. */
class Attempt implements Pick {
  readonly subchannel: Subchannel;
  readonly #started: number;
  readonly #ended: Ended;
  #answered = -1;

  constructor(subchannel: Subchannel, started: number, ended: Ended) {
    this.subchannel = subchannel;
    this.#started = started;
    this.#ended = ended;
  }

  onCallEnded(outcome: CallOutcome): void {
    this.#ended(this.subchannel, outcome, this.#started, this.#answered);
  }

  answered(): void {
    if (this.#answered < 0) this.#answered = performance.now();
  }
}

/**
 * The attempts on one endpoint whose latency is not measured: they hold no
 * state of their own, so one object per endpoint ends them all (each
 * attempt still ends exactly once, through its own `onCallEnded`).
 */
class UnmeasuredAttempt implements Pick {
  readonly subchannel: Subchannel;
  readonly #ended: Ended;

  constructor(subchannel: Subchannel, ended: Ended) {
    this.subchannel = subchannel;
    this.#ended = ended;
  }

  onCallEnded(outcome: CallOutcome): void {
    this.#ended(this.subchannel, outcome, -1, -1);
  }

  answered(): void {}
}

/**
 * The endpoints as the picker sees them (the channel's `SubchannelPool`).
 *
 * @example The shape of a pool
 * ```ts
 * import type { PickerPool } from "./picker.ts";
 * import { SubchannelPool } from "./pool.ts";
 * import assert from "node:assert/strict";
 *
 * const pool: PickerPool = new SubchannelPool({}, {
 *   onBroken() {},
 *   onGoaway() {},
 *   onReregistered() {},
 *   onRetired() {},
 * });
 * assert.equal(pool.usable.length, 0);
 * ```
 */
export interface PickerPool {
  /** Candidates neither ejected nor draining. */
  readonly usable: readonly CandidateView[];
  /** Every candidate. */
  readonly all: readonly CandidateView[];
  /** The subchannel of a candidate. */
  of(candidate: CandidateView): Subchannel | undefined;
  /** Every current subchannel. */
  subchannels(): Iterable<Subchannel>;
}

/**
 * Chooses endpoints from a pool with a balancer, counts attempts in flight,
 * and reports outcomes to subscribers.
 *
 * @example Subscribing to outcomes
 * ```ts
 * import { Picker } from "./picker.ts";
 * import type { CallOutcome } from "./picker.ts";
 * import { SubchannelPool } from "./pool.ts";
 * import { createBalancer } from "./balancer.ts";
 * import assert from "node:assert/strict";
 *
 * const events = { onBroken() {}, onGoaway() {}, onReregistered() {}, onRetired() {} };
 * const pool = new SubchannelPool({}, events);
 * pool.apply({ added: new Map([["a", { host: "127.0.0.1", port: 9001 }]]), removed: [] }, () => true);
 * const seen: CallOutcome[] = [];
 * const picker = new Picker(pool, createBalancer("random"));
 * picker.subscribe({ onCallEnded: (_s, outcome) => seen.push(outcome) });
 * picker.pick(undefined)?.onCallEnded("local");
 * assert.deepEqual(seen, ["local"]);
 * await pool.close([]);
 * ```
 */
export class Picker {
  #pool: PickerPool;
  #balancer: Balancer;
  #listeners: OutcomeListener[] = [];
  #measureAll = false;
  #count = 0;
  /** Each endpoint's {@linkcode UnmeasuredAttempt}: no object per attempt. */
  #unmeasured = new WeakMap<Subchannel, UnmeasuredAttempt>();
  /** Subchannels that left the membership with attempts still in flight. */
  readonly retired: Set<Subchannel> = new Set();

  /**
   * @param pool The endpoints.
   * @param balancer How to choose among them.
   */
  constructor(pool: PickerPool, balancer: Balancer) {
    this.#pool = pool;
    this.#balancer = balancer;
  }

  /**
   * Adds subscribers to every attempt's outcome.
   *
   * @param listeners The subscribers.
   */
  subscribe(...listeners: OutcomeListener[]): void {
    for (const listener of listeners) {
      this.#listeners.push(listener);
      if (listener.measureAll) this.#measureAll = true;
    }
  }

  /**
   * Picks an endpoint for an attempt, preferring ones not in `tried`, and
   * ejected ones when nothing else is left (no self-inflicted outage).
   *
   * @param tried Keys of the endpoints this call tried.
   * @returns The attempt, or `undefined` when no endpoint is known.
   */
  pick(tried: ReadonlySet<string> | undefined): Pick | undefined {
    let list = untried(this.#pool.usable, tried);
    if (list.length === 0) {
      list = untried(
        this.#pool.all.filter((c) => this.#pool.of(c)?.draining === false),
        tried,
      );
      if (list.length === 0) return undefined;
    }
    const candidate = list.length === 1
      ? list[0]!
      : this.#balancer.pick(list) ?? list[0]!;
    const subchannel = this.#pool.of(candidate);
    if (subchannel === undefined) return undefined;
    candidate.inFlight++;
    // A clock read costs a few percent of a call: latency is sampled on one
    // attempt in LATENCY_SAMPLE_EVERY, on every attempt while the endpoint
    // has none yet, and on all when a subscriber needs the spread.
    if (
      this.#measureAll || candidate.latency === undefined ||
      ++this.#count % LATENCY_SAMPLE_EVERY === 0
    ) return new Attempt(subchannel, performance.now(), this.#ended);
    return this.#unmeasured.get(subchannel) ?? this.#unmeasuredOf(subchannel);
  }

  #unmeasuredOf(subchannel: Subchannel): UnmeasuredAttempt {
    const pick = new UnmeasuredAttempt(subchannel, this.#ended);
    this.#unmeasured.set(subchannel, pick);
    return pick;
  }

  /**
   * Whether an endpoint other than `except`, not in `tried` and not
   * draining, remains.
   *
   * @param tried Keys of the endpoints a call tried.
   * @param except An endpoint not to count.
   */
  hasUntried(
    tried: ReadonlySet<string> | undefined,
    except?: Subchannel,
  ): boolean {
    for (const subchannel of this.#pool.subchannels()) {
      if (
        subchannel !== except && !subchannel.draining &&
        !tried?.has(subchannel.key)
      ) return true;
    }
    return false;
  }

  /**
   * Reports an outcome outside an attempt (a connection that could not be
   * opened or broke).
   *
   * @param subchannel The endpoint.
   * @param outcome How it ended.
   */
  report(subchannel: Subchannel, outcome: CallOutcome): void {
    for (const listener of this.#listeners) {
      listener.onCallEnded(subchannel, outcome, undefined);
    }
  }

  /**
   * Lets a subchannel that left the membership go once its last attempt
   * ends.
   *
   * @param subchannel The retired endpoint.
   */
  retire(subchannel: Subchannel): void {
    if (subchannel.candidate.inFlight === 0) subchannel.disconnect();
    else this.retired.add(subchannel);
  }

  #ended: Ended = (subchannel, outcome, started, answered) => {
    const candidate = subchannel.candidate;
    candidate.inFlight--;
    if (subchannel.retired && candidate.inFlight === 0) {
      this.retired.delete(subchannel);
      subchannel.disconnect();
    }
    const latency = started >= 0 &&
        (outcome === "ok" || outcome === "answered")
      ? (answered >= 0 ? answered : performance.now()) - started
      : undefined;
    // An answer, even an error, says the endpoint works.
    if (outcome === "ok" || outcome === "answered") {
      subchannel.succeeded(latency);
    }
    for (const listener of this.#listeners) {
      listener.onCallEnded(subchannel, outcome, latency);
    }
  };
}

/** The candidates not in `tried`; all of them when every one was tried. */
function untried<T extends { key: string }>(
  list: readonly T[],
  tried: ReadonlySet<string> | undefined,
): readonly T[] {
  if (tried === undefined || tried.size === 0) return list;
  const rest = list.filter((c) => !tried.has(c.key));
  return rest.length > 0 ? rest : list;
}
