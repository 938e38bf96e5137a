/**
 * The subchannel pool: one {@linkcode Subchannel} per endpoint address,
 * following the membership, and the lists the balancer picks from (rebuilt
 * when membership or usability changes, never per call).
 *
 * @module
 */

import type { BalancerCandidate } from "./balancer.ts";
import type { ConnectionOptions } from "../client/connection.ts";
import { type MemberData, memberKey } from "../discovery/member.ts";
import type { MembershipChange } from "../discovery/membership.ts";
import type { EjectionTarget } from "./outlier_detection.ts";
import type { EndpointStatus } from "./options.ts";
import {
  type CandidateView,
  Subchannel,
  type SubchannelEvents,
} from "./subchannel.ts";

/** What the pool tells the channel. */
export interface PoolEvents extends SubchannelEvents {
  /** A member at an address that was known before registered again. */
  onReregistered(subchannel: Subchannel): void;
  /** A subchannel left the membership. */
  onRetired(subchannel: Subchannel): void;
}

/**
 * Subchannels by address, and the candidate lists the balancer sees.
 *
 * @example Two registrations at one address are one subchannel
 * ```ts
 * import { SubchannelPool } from "./pool.ts";
 * import assert from "node:assert/strict";
 *
 * const pool = new SubchannelPool({}, {
 *   onBroken() {},
 *   onGoaway() {},
 *   onReregistered() {},
 *   onRetired() {},
 * });
 * const member = { host: "127.0.0.1", port: 9001 };
 * pool.apply({ added: new Map([["a", member], ["b", member]]), removed: [] }, () => true);
 * assert.equal(pool.size, 1);
 * assert.equal(pool.usable.length, 1);
 * await pool.close([]);
 * ```
 */
export class SubchannelPool implements EjectionTarget {
  #byKey = new Map<string, Subchannel>();
  #byCandidate = new Map<BalancerCandidate, Subchannel>();
  #keyOfId = new Map<string, string>();
  #usable: CandidateView[] = [];
  #all: CandidateView[] = [];
  #options: ConnectionOptions;
  #events: PoolEvents;

  /**
   * @param options Options of every connection.
   * @param events Where to report.
   */
  constructor(options: ConnectionOptions, events: PoolEvents) {
    this.#options = options;
    this.#events = events;
  }

  /** Number of current subchannels. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Every current subchannel. */
  subchannels(): IterableIterator<Subchannel> {
    return this.#byKey.values();
  }

  /**
   * A snapshot of every endpoint's status.
   *
   * @returns One status per subchannel.
   */
  statuses(): EndpointStatus[] {
    return [...this.subchannels()].map((subchannel) => ({
      key: subchannel.key,
      member: subchannel.member,
      state: subchannel.state,
      inFlight: subchannel.candidate.inFlight,
      calls: subchannel.calls,
      failures: subchannel.failures,
      ejections: subchannel.ejected ? subchannel.ejections : 0,
      latency: subchannel.candidate.latency,
    }));
  }

  /** The subchannel behind a candidate the balancer returned. */
  of(candidate: BalancerCandidate): Subchannel | undefined {
    return this.#byCandidate.get(candidate);
  }

  /** Candidates that may be picked now (cached). */
  get usable(): readonly CandidateView[] {
    return this.#usable;
  }

  /** Every current candidate, usable or not (cached). */
  get all(): readonly CandidateView[] {
    return this.#all;
  }

  /**
   * Applies a membership change.
   *
   * @param change Who joined and who left.
   * @param admit Whether a joining member may be used (TLS and permission
   * policy); members it refuses are not added.
   */
  apply(
    change: MembershipChange,
    admit: (id: string, member: MemberData) => boolean,
  ): void {
    for (const id of change.removed) this.#forget(id);
    for (const [id, member] of change.added) {
      const key = memberKey(member);
      // A known id that moved leaves its old address.
      if (this.#keyOfId.get(id) !== key) this.#forget(id);
      if (!admit(id, member)) continue;
      this.#keyOfId.set(id, key);
      let subchannel = this.#byKey.get(key);
      if (subchannel === undefined) {
        subchannel = new Subchannel(member, this.#options, this.#events);
        subchannel.admittedAt = Date.now();
        this.#byKey.set(key, subchannel);
        this.#byCandidate.set(subchannel.candidate, subchannel);
      } else if (subchannel.ids.has(id)) {
        subchannel.member = member; // the same registration, new data
      } else {
        // A new registration at the same address: a restarted server.
        subchannel.member = member;
        subchannel.draining = false;
        this.#events.onReregistered(subchannel);
      }
      subchannel.ids.add(id);
    }
    this.changed();
  }

  /**
   * Drops a member id; its address is retired only when no other id (a
   * restarted server registered at the same address) still uses it.
   */
  #forget(id: string): void {
    const key = this.#keyOfId.get(id);
    this.#keyOfId.delete(id);
    const subchannel = key === undefined ? undefined : this.#byKey.get(key);
    if (subchannel === undefined) return;
    subchannel.ids.delete(id);
    if (subchannel.ids.size === 0) this.#retire(subchannel);
  }

  #retire(subchannel: Subchannel): void {
    this.#byKey.delete(subchannel.key);
    this.#byCandidate.delete(subchannel.candidate);
    subchannel.retired = true;
    subchannel.draining = true;
    this.#events.onRetired(subchannel);
  }

  /** Rebuilds the candidate lists after a usability change. */
  changed(): void {
    const all: CandidateView[] = [];
    const usable: CandidateView[] = [];
    for (const subchannel of this.#byKey.values()) {
      all.push(subchannel.candidate);
      if (subchannel.usable) usable.push(subchannel.candidate);
    }
    this.#all = all;
    this.#usable = usable;
  }

  /**
   * Forgets every subchannel and closes their connections.
   *
   * @param retired Subchannels that left but still had calls in flight.
   * @returns A promise that resolves when every connection is closed.
   */
  async close(retired: Iterable<Subchannel>): Promise<void> {
    const subchannels = [...this.#byKey.values(), ...retired];
    this.#byKey.clear();
    this.#byCandidate.clear();
    this.#keyOfId.clear();
    this.#usable = [];
    this.#all = [];
    await Promise.all(subchannels.map((s) => s.disconnect()));
  }
}
