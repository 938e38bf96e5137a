/**
 * One endpoint of a channel: its member data, its one shared connection and
 * the state machine the channel reports (`idle` -> `connecting` -> `ready`,
 * `draining` after a `goaway`, `ejected` while outlier detection keeps it out
 * of rotation).
 *
 * @module
 */

import type { BalancerCandidate } from "./balancer.ts";
import {
  Connection,
  type ConnectionCloseDetail,
  type ConnectionOptions,
} from "../client/connection.ts";
import { classify, ConnectionError } from "../errors.ts";
import { type MemberData, memberKey } from "../discovery/member.ts";
import { errorMessage } from "../_util.ts";

/**
 * How an endpoint looks from the channel.
 *
 * - `"idle"`: no connection; the next call opens one.
 * - `"connecting"`: a connection is being opened (never reported as ready).
 * - `"ready"`: a connection is open and usable.
 * - `"draining"`: the server sent `goaway` or left the membership; no new
 *   calls go there, calls in flight finish.
 * - `"ejected"`: out of rotation after failures, until a probe succeeds.
 *
 * @example Telling usable endpoints apart
 * ```ts
 * import type { EndpointState } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const usable = (state: EndpointState): boolean =>
 *   state === "idle" || state === "connecting" || state === "ready";
 * assert.ok(usable("ready"));
 * assert.ok(!usable("ejected"));
 * ```
 */
export type EndpointState =
  | "idle"
  | "connecting"
  | "ready"
  | "draining"
  | "ejected";

/** The view a balancer gets; the subchannel updates it in place. */
export interface CandidateView extends BalancerCandidate {
  member: MemberData;
  weight: number;
  inFlight: number;
  latency: number | undefined;
}

/** What a subchannel tells its pool. */
export interface SubchannelEvents {
  /** The connection closed with an error (broken, keepalive timeout). */
  onBroken(subchannel: Subchannel, error: Error): void;
  /** The server sent `goaway`. */
  onGoaway(subchannel: Subchannel): void;
}

/** Weight of a new sample in the latency and failure moving averages. */
const EWMA = 0.1;

/**
 * One endpoint and its shared connection. Internal to the channel: balancers
 * see only {@linkcode Subchannel.candidate}.
 *
 * @example A new subchannel is idle and usable
 * ```ts
 * import { Subchannel } from "./subchannel.ts";
 * import assert from "node:assert/strict";
 *
 * const events = { onBroken() {}, onGoaway() {} };
 * const subchannel = new Subchannel({ host: "127.0.0.1", port: 9001, weight: 2 }, {}, events);
 * assert.equal(subchannel.state, "idle");
 * assert.equal(subchannel.candidate.weight, 2);
 * ```
 */
export class Subchannel {
  readonly key: string;
  /** Member ids (znode names) registered at this address. */
  readonly ids: Set<string> = new Set();
  /** The balancer's view of this endpoint. */
  readonly candidate: CandidateView;
  /** The open connection, so that calls skip an await. */
  live: Connection | undefined;
  /** Calls the endpoint answered (results and remote errors). */
  calls = 0;
  /** Consecutive failed attempts (connect, broken, deadline). */
  failures = 0;
  /** Moving average of the failure rate of recent attempts (0..1). */
  failureRate = 0;
  /** Attempts counted since the endpoint was (re-)admitted. */
  outcomes = 0;
  /** Out of rotation until a probe succeeds. */
  ejected = false;
  /** Ejections in a row (the back-off exponent). */
  ejections = 0;
  /** When the current ejection period ends (then probes start). */
  ejectedUntil = 0;
  /** When it was last admitted (`Date.now()`). */
  admittedAt = 0;
  /** Length of the last ejection period, in ms. */
  lastEjection = 0;
  /** The server sent `goaway`, or the member left. */
  draining = false;
  /** The member left the membership. */
  retired = false;
  #connecting: Promise<Connection> | undefined;
  /** Connections left after a `goaway`, closed by the server when done. */
  #old = new Set<Connection>();
  #options: ConnectionOptions;
  #events: SubchannelEvents;

  /**
   * @param member The member's data.
   * @param options Options of its connection (`connectTimeout` included).
   * @param events Where to report breakage.
   */
  constructor(
    member: MemberData,
    options: ConnectionOptions,
    events: SubchannelEvents,
  ) {
    this.key = memberKey(member);
    this.#options = options;
    this.#events = events;
    this.candidate = {
      key: this.key,
      member,
      weight: weightOf(member),
      inFlight: 0,
      latency: undefined,
    };
  }

  /** The member's data. */
  get member(): MemberData {
    return this.candidate.member;
  }

  /** Replaces the member data (a new registration at the same address). */
  set member(member: MemberData) {
    this.candidate.member = member;
    this.candidate.weight = weightOf(member);
  }

  /** The state reported by `endpoints()`. */
  get state(): EndpointState {
    if (this.draining) return "draining";
    if (this.ejected) return "ejected";
    if (this.live !== undefined) return this.live.isClosed ? "idle" : "ready";
    if (this.#connecting !== undefined) return "connecting";
    return "idle";
  }

  /** Whether the balancer may pick it. */
  get usable(): boolean {
    return !this.draining && !this.ejected;
  }

  /** Records an answered attempt and its latency, when it was measured. */
  succeeded(latency: number | undefined): void {
    this.failures = 0;
    this.calls++;
    this.outcomes++;
    this.failureRate *= 1 - EWMA;
    if (latency === undefined) return;
    const previous = this.candidate.latency;
    this.candidate.latency = previous === undefined
      ? latency
      : previous + EWMA * (latency - previous);
  }

  /** Records a failed attempt. */
  failed(): void {
    this.failures++;
    this.outcomes++;
    this.failureRate += EWMA * (1 - this.failureRate);
  }

  /** Forgets the failure history (re-admission). */
  admit(now: number): void {
    this.ejected = false;
    this.failures = 0;
    this.failureRate = 0;
    this.outcomes = 0;
    this.admittedAt = now;
  }

  /**
   * The shared connection, opened on first use. Fails with a
   * {@linkcode ConnectionError} (`written: false`) within `connectTimeout`.
   */
  connect(): Promise<Connection> {
    if (this.#connecting !== undefined) return this.#connecting;
    const member = this.member;
    const connecting: Promise<Connection> = Connection.connect(
      { hostname: member.host, port: member.port, tls: member.tls === true },
      this.#options,
    ).then(async (connection) => {
      if (this.#connecting !== connecting) {
        connection.close(); // dropped while connecting
        await connection.closed;
        throw new ConnectionError(
          `Cannot connect to ${this.key}: the endpoint was dropped`,
          { written: false },
        );
      }
      this.live = connection;
      this.#watch(connection, connecting);
      return connection;
    }, (error) => {
      if (this.#connecting === connecting) this.#connecting = undefined;
      // Nothing was sent, whatever went wrong (refused, timeout, TLS).
      throw classify(error) === "not-run" ? error : new ConnectionError(
        `Cannot connect to ${this.key}: ${errorMessage(error)}`,
        { written: false, cause: error },
      );
    });
    this.#connecting = connecting;
    return connecting;
  }

  #watch(connection: Connection, connecting: Promise<Connection>): void {
    connection.addEventListener("goaway", () => {
      if (this.#forget(connecting)) this.#old.add(connection);
      this.#events.onGoaway(this);
    }, { once: true });
    connection.addEventListener("close", (event) => {
      this.#old.delete(connection);
      if (!this.#forget(connecting)) return;
      const { error } = (event as CustomEvent<ConnectionCloseDetail>).detail;
      if (error !== undefined) this.#events.onBroken(this, error);
    }, { once: true });
  }

  /** Drops `connecting` if it is still current; returns whether it was. */
  #forget(connecting: Promise<Connection>): boolean {
    if (this.#connecting !== connecting) return false;
    this.#connecting = undefined;
    this.live = undefined;
    return true;
  }

  /**
   * Closes the connection (calls in flight on it fail).
   *
   * @returns A promise that resolves once it is closed.
   */
  async disconnect(): Promise<void> {
    const old = [...this.#old];
    this.#old.clear();
    for (const connection of old) connection.close();
    await Promise.all(old.map((connection) => connection.closed));
    const connecting = this.#connecting;
    if (connecting === undefined) return;
    this.#forget(connecting);
    const connection = await connecting.catch(() => undefined);
    connection?.close();
    await connection?.closed;
  }
}

function weightOf(member: MemberData): number {
  const weight = member.weight;
  return typeof weight === "number" && weight > 0 && Number.isFinite(weight)
    ? weight
    : 1;
}
