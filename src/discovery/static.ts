/**
 * A membership that is a fixed list, for tests, benchmarks and deployments
 * without ZooKeeper.
 *
 * @module
 */

import { type MemberData, memberKey } from "./member.ts";
import type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "./membership.ts";

/**
 * A membership given as a list of endpoints, changed by {@linkcode StaticMembership.set}.
 *
 * @example Pointing a channel at known servers
 * ```ts
 * import { StaticMembership } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const membership = new StaticMembership([{ host: "127.0.0.1", port: 9001 }]);
 * membership.set([{ host: "127.0.0.1", port: 9002 }]);
 * assert.deepEqual([...membership.members.keys()], ["127.0.0.1:9002"]);
 * ```
 */
export class StaticMembership extends EventTarget implements Membership {
  #members = new Map<string, MemberData>();
  #state: DiscoveryState = "fresh";
  #lastConfirmed: Date = new Date();

  /**
   * Creates the membership.
   *
   * @param members The initial endpoints.
   */
  constructor(members: readonly MemberData[] = []) {
    super();
    this.set(members);
  }

  /** The current members, keyed by `host:port`. */
  get members(): ReadonlyMap<string, MemberData> {
    return this.#members;
  }

  /** Always `"fresh"` until closed. */
  get state(): DiscoveryState {
    return this.#state;
  }

  /** When the list was last set. */
  get lastConfirmed(): Date {
    return this.#lastConfirmed;
  }

  /**
   * Replaces the list and emits a `"change"` event when it differs.
   *
   * @param members The new endpoints.
   */
  set(members: readonly MemberData[]): void {
    const next = new Map(members.map((member) => [memberKey(member), member]));
    const added = new Map(
      [...next].filter(([key]) => !this.#members.has(key)),
    );
    const removed = [...this.#members.keys()].filter((key) => !next.has(key));
    this.#members = next;
    this.#lastConfirmed = new Date();
    if (added.size > 0 || removed.length > 0) {
      this.dispatchEvent(
        new CustomEvent<MembershipChange>("change", {
          detail: { added, removed },
        }),
      );
    }
  }

  /** Marks the membership closed. */
  close(): Promise<void> {
    this.#state = "closed";
    return Promise.resolve();
  }
}
