/**
 * A channel's readiness: whether any endpoint is known, waiting for one
 * (until a deadline, or less for a registry that has not answered), and why
 * none can take a call.
 *
 * @module
 */

import { NoServersError } from "../errors.ts";
import { errorMessage } from "../_util.ts";
import { isValidTimeout, setLongTimeout, timeoutError } from "../_async.ts";
import { deadlineFrom } from "../_deadline.ts";
import type { Membership } from "../discovery/membership.ts";
import { cancelled, type ChannelCall } from "./call.ts";
import type { Pick, Picker } from "./picker.ts";
import type { SubchannelPool } from "./pool.ts";

/**
 * Waits for endpoints on behalf of a channel and explains their absence.
 *
 * @example Nothing known: a wait that may not wait fails with the reason
 * ```ts
 * import { Readiness } from "./readiness.ts";
 * import { SubchannelPool } from "./pool.ts";
 * import { StaticMembership } from "../discovery/static.ts";
 * import assert from "node:assert/strict";
 *
 * const events = { onBroken() {}, onGoaway() {}, onReregistered() {}, onRetired() {} };
 * const pool = new SubchannelPool({}, events);
 * const readiness = new Readiness({
 *   service: "calculator",
 *   membership: new StaticMembership([]),
 *   pool,
 *   discoveryTimeout: 5000,
 *   closedError: () => undefined,
 * });
 * await assert.rejects(readiness.ready({ timeout: 0 }, 1000), /no registered members/);
 * await pool.close([]);
 * ```
 */
export class Readiness {
  #service: string;
  #membership: Membership;
  #pool: SubchannelPool;
  #discoveryTimeout: number;
  #closedError: (what: string) => Error | undefined;
  #changed = new Set<() => void>();
  #stateSince = Date.now();
  /** Members not admitted, by id: why (for messages). */
  readonly excluded: Map<string, string> = new Map();

  /**
   * @param options The service, its membership and pool, how long to wait
   * for a registry that has not answered, and the channel's error once it
   * is closed (`undefined` while open).
   */
  constructor(options: {
    service: string;
    membership: Membership;
    pool: SubchannelPool;
    discoveryTimeout: number;
    closedError: (what: string) => Error | undefined;
  }) {
    this.#service = options.service;
    this.#membership = options.membership;
    this.#pool = options.pool;
    this.#discoveryTimeout = options.discoveryTimeout;
    this.#closedError = options.closedError;
  }

  /** The discovery state changed: its age restarts, waiters look again. */
  stateChanged(): void {
    this.#stateSince = Date.now();
    this.wake();
  }

  /** Wakes every waiter (membership, state or channel closed). */
  wake(): void {
    for (const wake of this.#changed) wake();
  }

  /**
   * Why no server can take a call, for error messages: registry
   * unreachable, no registered members, members excluded, or all failing.
   */
  unavailable(lastError: unknown): string {
    const service = `service "${this.#service}"`;
    if (this.#pool.size > 0) {
      return `no live servers for ${service}: all ${this.#pool.size} ${
        this.#pool.size === 1 ? "member" : "members"
      } failing${
        lastError === undefined
          ? ""
          : ` (last error: ${errorMessage(lastError)})`
      }`;
    }
    if (this.excluded.size > 0) {
      return `no usable servers for ${service}: all ${this.excluded.size} ${
        this.excluded.size === 1 ? "member is" : "members are"
      } skipped (${[...this.excluded.values()][0]})`;
    }
    const state = this.#membership.state;
    if (state === "fresh") {
      const confirmed = this.#membership.lastConfirmed;
      return `no servers for ${service}: it has no registered members${
        confirmed ? ` (list confirmed at ${confirmed.toISOString()})` : ""
      }`;
    }
    if (state === "closed") {
      const why = this.#membership.lastError;
      return `no servers for ${service}: discovery closed${
        why === undefined ? "" : ` (${errorMessage(why)})`
      }`;
    }
    const since = this.#stateSince;
    const registry = this.#membership.source ?? "the membership source";
    const why = this.#membership.lastError;
    return `no servers for ${service}: ${registry} unreachable (discovery ${state} since ${
      new Date(since).toISOString()
    }, ${((Date.now() - since) / 1000).toFixed(1)} s ago${
      why === undefined ? "" : `; last attempt: ${errorMessage(why)}`
    })`;
  }

  /**
   * When a wait for members should give up though the caller's deadline is
   * later: at once for a confirmed-empty service, after `discoveryTimeout`
   * for a registry that has not answered. `Infinity` to wait on.
   */
  #giveUpAt(waitForReady: boolean): number {
    if (this.#pool.size > 0) return Infinity;
    const state = this.#membership.state;
    if (state === "closed") return 0;
    if (state === "fresh") return waitForReady ? Infinity : 0;
    return waitForReady ? Infinity : this.#stateSince + this.#discoveryTimeout;
  }

  /** Waits for a membership or discovery-state change, or `wakeAt`. */
  #waitForChange(
    what: string,
    wakeAt: number,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        timer.clear();
        this.#changed.delete(wake);
        signal?.removeEventListener("abort", onAbort);
      };
      const wake = () => {
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(cancelled(what, signal));
      };
      // Infinity (waitForReady, ready({ timeout: Infinity })): no timer.
      const timer = setLongTimeout(wake, wakeAt - Date.now());
      this.#changed.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Resolves once at least one endpoint is known.
   *
   * @param timeout The channel's timeout.
   * @param options `timeout` in ms and `signal`. Without a timeout it waits
   * up to the channel's timeout, but only `discoveryTimeout` for a registry
   * that has not answered yet.
   * @throws {NoServersError} When none appeared in time; the message names
   * the cause (no registered members, or the registry unreachable since
   * when).
   */
  async ready(
    options: { timeout?: number; signal?: AbortSignal },
    timeout: number,
  ): Promise<void> {
    if (!isValidTimeout(options.timeout)) {
      throw timeoutError(options.timeout, "wait for servers");
    }
    const deadline = deadlineFrom(options.timeout ?? timeout);
    while (this.#pool.size === 0) {
      const closed = this.#closedError("wait for servers");
      if (closed !== undefined) throw closed;
      // An explicit timeout is waited out; without one, an unreachable
      // registry fails after `discoveryTimeout`, not the channel's timeout.
      const giveUp =
        this.#membership.state === "fresh" || this.excluded.size > 0 ||
          options.timeout !== undefined
          ? deadline
          : Math.min(deadline, this.#giveUpAt(false));
      if (Date.now() >= giveUp) {
        throw new NoServersError(
          this.#service,
          `Cannot find servers: ${this.unavailable(undefined)}`,
        );
      }
      await this.#waitForChange("wait for servers", giveUp, options.signal);
    }
  }

  /** Waits for a usable endpoint until the call's deadline (or gives up early). */
  /**
   * Waits for a usable endpoint until the call's deadline (or gives up
   * early).
   *
   * @param call The call.
   * @param lastError Its last attempt's error, for the message.
   * @param picker Where to pick.
   * @returns The attempt.
   */
  async waitForPick(
    call: ChannelCall,
    lastError: unknown,
    picker: Picker,
  ): Promise<Pick> {
    const what = `call method "${call.method}"`;
    while (true) {
      const closed = this.#closedError(what);
      if (closed !== undefined) throw closed;
      const giveUp = Math.min(call.deadline, this.#giveUpAt(call.waitForReady));
      if (Date.now() >= giveUp) {
        throw new NoServersError(
          this.#service,
          `Cannot ${what}: ${this.unavailable(lastError)}`,
          lastError === undefined ? undefined : { cause: lastError },
        );
      }
      await this.#waitForChange(what, giveUp, call.signal);
      const pick = picker.pick(call.tried);
      if (pick !== undefined) return pick;
    }
  }
}
