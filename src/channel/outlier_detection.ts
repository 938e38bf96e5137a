/**
 * Outlier detection: takes failing endpoints out of rotation and lets them
 * back in once a probe shows they answer again, in the spirit of gRPC's
 * outlier detection and Finagle's failure accrual.
 *
 * Signals: a failed connect or a connection that broke (refused, reset,
 * connect timeout, keepalive timeout) ejects at once; call failures
 * (deadline misses included) eject after `consecutiveFailures` in a row or
 * when the moving failure rate of at least `minimumCalls` attempts exceeds
 * `failureRate`. Call-failure ejections never take more than
 * `maxEjectionPercent` of the endpoints out, so outlier detection alone
 * cannot cause an outage. The n-th ejection in a row lasts
 * `ejectionTime * 2^(n-1)` (+/-20 % jitter, at most `maxEjectionTime`); then
 * the endpoint is probed every `probeInterval` (a connect, then a ping) in
 * the background, and the first probe answered re-admits it. No call is
 * spent on probing.
 *
 * @module
 */

import { backoff, type LongTimeout, setLongTimeout } from "../_async.ts";
import { OUTLIER_DETECTION_DEFAULTS } from "../_defaults.ts";
import type { Subchannel } from "./subchannel.ts";
import type { CallOutcome, OutcomeListener } from "./picker.ts";

/**
 * Options of the channel's outlier detection.
 *
 * @example Ejecting sooner, but never more than a third of the endpoints
 * ```ts
 * import type { OutlierDetectionOptions } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const options: OutlierDetectionOptions = {
 *   consecutiveFailures: 3,
 *   maxEjectionPercent: 33,
 * };
 * assert.equal(options.consecutiveFailures, 3);
 * ```
 */
export interface OutlierDetectionOptions {
  /**
   * First ejection period of a failing endpoint, in ms; each ejection in a
   * row doubles it (+/-20 % jitter). After it, probes decide re-admission.
   *
   * @default {250}
   */
  ejectionTime?: number;
  /**
   * Longest ejection period, in ms.
   *
   * @default {30000}
   */
  maxEjectionTime?: number;
  /**
   * Call failures in a row (deadline misses and broken calls) that eject an
   * endpoint.
   *
   * @default {5}
   */
  consecutiveFailures?: number;
  /**
   * Moving failure rate (0..1, over roughly the last 10 attempts) that
   * ejects an endpoint.
   *
   * @default {0.5}
   */
  failureRate?: number;
  /**
   * Attempts an endpoint must have had since it was admitted before its
   * failure rate counts.
   *
   * @default {10}
   */
  minimumCalls?: number;
  /**
   * Most endpoints (percent, rounded down, but at least one) that call
   * failures may eject at once. Connect failures are not limited: an
   * endpoint that cannot be reached is never useful.
   *
   * @default {50}
   */
  maxEjectionPercent?: number;
  /**
   * Milliseconds between background probes of an ejected endpoint once its
   * ejection period is over (+/-20 % jitter).
   *
   * @default {1000}
   */
  probeInterval?: number;
  /**
   * Milliseconds a probe waits for its connect and its ping.
   *
   * @default {2000}
   */
  probeTimeout?: number;
}

/** The pool as outlier detection sees it. */
export interface EjectionTarget {
  /** Every current (not retired) subchannel. */
  subchannels(): Iterable<Subchannel>;
  /** Number of current subchannels. */
  readonly size: number;
  /** Usability of a subchannel changed. */
  changed(): void;
}

/** Why an attempt failed, for outlier detection. */
export type FailureKind = "connect" | "call";

/**
 * Decides ejections and runs the probes that end them.
 *
 * @example Three call failures in a row eject an endpoint
 * ```ts
 * import { OutlierDetector } from "./outlier_detection.ts";
 * import { Subchannel } from "./subchannel.ts";
 * import assert from "node:assert/strict";
 *
 * const events = { onBroken() {}, onGoaway() {} };
 * const list = [9001, 9002].map((port) => new Subchannel({ host: "127.0.0.1", port }, {}, events));
 * const pool = { subchannels: () => list.values(), size: list.length, changed() {} };
 * const detector = new OutlierDetector(pool, { consecutiveFailures: 3, ejectionTime: 250, maxEjectionTime: 30_000 });
 * for (let i = 0; i < 3; i++) detector.failure(list[0]!, "call");
 * assert.equal(list[0]!.state, "ejected");
 * await detector.close();
 * ```
 */
export class OutlierDetector implements OutcomeListener {
  #target: EjectionTarget;
  #consecutive: number;
  #failureRate: number;
  #minimumCalls: number;
  #maxPercent: number;
  #probeInterval: number;
  #probeTimeout: number;
  #ejectionTime: number;
  #maxEjectionTime: number;
  #timers = new Map<Subchannel, LongTimeout>();
  #probes = new Set<Promise<void>>();
  #closed = false;

  /**
   * @param target The pool.
   * @param options Thresholds, ejection periods and probe timing.
   */
  constructor(target: EjectionTarget, options: OutlierDetectionOptions = {}) {
    const ejectionTime = options.ejectionTime ??
      OUTLIER_DETECTION_DEFAULTS.ejectionTime;
    const maxEjectionTime = options.maxEjectionTime ??
      OUTLIER_DETECTION_DEFAULTS.maxEjectionTime;
    this.#target = target;
    this.#consecutive = options.consecutiveFailures ??
      OUTLIER_DETECTION_DEFAULTS.consecutiveFailures;
    this.#failureRate = options.failureRate ??
      OUTLIER_DETECTION_DEFAULTS.failureRate;
    this.#minimumCalls = options.minimumCalls ??
      OUTLIER_DETECTION_DEFAULTS.minimumCalls;
    this.#maxPercent = options.maxEjectionPercent ??
      OUTLIER_DETECTION_DEFAULTS.maxEjectionPercent;
    this.#probeInterval = options.probeInterval ??
      OUTLIER_DETECTION_DEFAULTS.probeInterval;
    this.#probeTimeout = options.probeTimeout ??
      OUTLIER_DETECTION_DEFAULTS.probeTimeout;
    this.#ejectionTime = ejectionTime;
    this.#maxEjectionTime = maxEjectionTime;
    for (
      const [name, value] of [
        ["consecutiveFailures", this.#consecutive],
        ["minimumCalls", this.#minimumCalls],
        ["probeInterval", this.#probeInterval],
        ["probeTimeout", this.#probeTimeout],
        ["ejectionTime", ejectionTime],
        ["maxEjectionTime", maxEjectionTime],
      ] as const
    ) {
      if (!(value > 0)) {
        throw new RangeError(
          `Cannot create channel: ${name} must be > 0, got ${value}`,
        );
      }
    }
    if (
      !(this.#failureRate > 0 && this.#failureRate <= 1) ||
      !(this.#maxPercent >= 0 && this.#maxPercent <= 100)
    ) {
      throw new RangeError(
        `Cannot create channel: failureRate must be in (0, 1] and maxEjectionPercent in [0, 100], got ${this.#failureRate} and ${this.#maxPercent}`,
      );
    }
  }

  /**
   * Records a failed attempt; ejects the endpoint when a signal says so.
   * Outcomes of attempts that were under way when it was ejected are not
   * counted (one broken connection fails many calls at once).
   *
   * @param subchannel The endpoint.
   * @param kind `"connect"` (cannot reach it) or `"call"` (it did not answer
   * in time, or the call broke).
   */
  failure(subchannel: Subchannel, kind: FailureKind): void {
    if (subchannel.ejected || this.#closed) return;
    subchannel.failed();
    if (kind === "connect") {
      this.#eject(subchannel);
    } else if (
      (subchannel.failures >= this.#consecutive ||
        (subchannel.outcomes >= this.#minimumCalls &&
          subchannel.failureRate >= this.#failureRate)) &&
      this.#mayEject()
    ) {
      this.#eject(subchannel);
    }
  }

  /**
   * Counts a failed connect, a deadline miss or a broken call against the
   * endpoint (a picker subscription).
   *
   * @param subchannel The endpoint.
   * @param outcome How its attempt (or connect) ended.
   */
  onCallEnded(subchannel: Subchannel, outcome: CallOutcome): void {
    if (outcome === "connect") this.failure(subchannel, "connect");
    else if (outcome === "deadline" || outcome === "may-have-run") {
      this.failure(subchannel, "call");
    }
  }

  /** Whether one more endpoint may be ejected for call failures. */
  #mayEject(): boolean {
    let ejected = 0;
    for (const subchannel of this.#target.subchannels()) {
      if (subchannel.ejected) ejected++;
    }
    const allowed = Math.max(
      1,
      Math.floor(this.#target.size * this.#maxPercent / 100),
    );
    return ejected < allowed && this.#maxPercent > 0;
  }

  #eject(subchannel: Subchannel): void {
    const now = Date.now();
    // Healthy for a while since the last ejection: start the back-off over.
    if (now - subchannel.admittedAt > 4 * subchannel.lastEjection) {
      subchannel.ejections = 0;
    }
    subchannel.ejected = true;
    subchannel.ejections++;
    const period = backoff(subchannel.ejections, {
      minTimeout: this.#ejectionTime,
      maxTimeout: this.#maxEjectionTime,
    });
    subchannel.lastEjection = period;
    subchannel.ejectedUntil = now + period;
    this.#schedule(subchannel, period);
    this.#target.changed();
  }

  /** Ends an ejection now (the member registered again). */
  readmit(subchannel: Subchannel): void {
    this.#timers.get(subchannel)?.clear();
    this.#timers.delete(subchannel);
    subchannel.admit(Date.now());
    this.#target.changed();
  }

  /**
   * Takes a subchannel whose server sent `goaway` out of rotation; a probe
   * after `ejectionTime` lets it back in once the address answers again (a
   * restarted server).
   */
  drained(subchannel: Subchannel): void {
    subchannel.draining = true;
    this.#schedule(
      subchannel,
      backoff(1, {
        minTimeout: this.#ejectionTime,
        maxTimeout: this.#maxEjectionTime,
      }),
    );
    this.#target.changed();
  }

  /** Stops probing a subchannel that left. */
  forget(subchannel: Subchannel): void {
    this.#timers.get(subchannel)?.clear();
    this.#timers.delete(subchannel);
  }

  #schedule(subchannel: Subchannel, delay: number): void {
    this.#timers.get(subchannel)?.clear();
    this.#timers.set(
      subchannel,
      setLongTimeout(() => {
        this.#timers.delete(subchannel);
        const probe = this.#probe(subchannel);
        this.#probes.add(probe);
        probe.finally(() => this.#probes.delete(probe));
      }, delay),
    );
  }

  async #probe(subchannel: Subchannel): Promise<void> {
    if (
      this.#closed || subchannel.retired ||
      !(subchannel.ejected || subchannel.draining)
    ) return;
    try {
      const connection = subchannel.live ?? await subchannel.connect();
      await connection.ping(this.#probeTimeout);
    } catch {
      if (this.#closed || subchannel.retired) return;
      this.#schedule(
        subchannel,
        backoff(1, {
          minTimeout: this.#probeInterval,
          maxTimeout: this.#probeInterval * 2,
        }),
      );
      return;
    }
    if (this.#closed || subchannel.retired) return;
    subchannel.draining = false;
    subchannel.admit(Date.now());
    this.#target.changed();
  }

  /**
   * Stops every timer and waits for probes under way.
   *
   * @returns A promise that resolves when no probe runs.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers.values()) timer.clear();
    this.#timers.clear();
    await Promise.all(this.#probes);
  }
}
