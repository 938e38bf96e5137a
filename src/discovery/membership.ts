/**
 * The interface every source of service membership implements: the ZooKeeper
 * watcher and the static list.
 *
 * @module
 */

import type { MemberData } from "./member.ts";

/**
 * How current a membership list is.
 *
 * - `"connecting"`: no list read yet.
 * - `"fresh"`: the list was confirmed by the registry and a watch is armed.
 * - `"disconnected"`: the registry is unreachable; the last known list is kept.
 * - `"resyncing"`: the session expired; a new one is reading the list again.
 * - `"closed"`: the source was closed.
 *
 * @example Following a membership's state
 * ```ts
 * import { StaticMembership } from "@zkrpc/zkrpc";
 * import type { DiscoveryState } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const membership = new StaticMembership([{ host: "127.0.0.1", port: 9001 }]);
 * const before: DiscoveryState = membership.state;
 * await membership.close();
 * assert.equal(before, "fresh");
 * assert.equal(membership.state, "closed");
 * ```
 */
export type DiscoveryState =
  | "connecting"
  | "fresh"
  | "disconnected"
  | "resyncing"
  | "closed";

/**
 * The detail of a `"change"` event: who joined and who left.
 *
 * @example Reading a change event
 * ```ts
 * import { StaticMembership } from "@zkrpc/zkrpc";
 * import type { MembershipChange } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const membership = new StaticMembership([{ host: "127.0.0.1", port: 9001 }]);
 * const changes: MembershipChange[] = [];
 * membership.addEventListener("change", (event) => {
 *   changes.push((event as CustomEvent<MembershipChange>).detail);
 * });
 * membership.set([{ host: "127.0.0.1", port: 9002 }]);
 * assert.deepEqual(changes[0]?.removed, ["127.0.0.1:9001"]);
 * ```
 */
export interface MembershipChange {
  /** Members that joined, by id (their znode name). */
  readonly added: ReadonlyMap<string, MemberData>;
  /** Ids of members that left. */
  readonly removed: readonly string[];
}

/**
 * A live list of a service's members.
 *
 * Events: `"change"` (a `CustomEvent<MembershipChange>`) after the list
 * changed, and `"state"` (a plain `Event`) after {@linkcode Membership.state}
 * changed.
 *
 * @example Reading a static membership
 * ```ts
 * import { StaticMembership } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const membership = new StaticMembership([{ host: "127.0.0.1", port: 9001 }]);
 * assert.equal(membership.members.size, 1);
 * assert.equal(membership.state, "fresh");
 * ```
 */
export interface Membership extends EventTarget {
  /** The current members by id. */
  readonly members: ReadonlyMap<string, MemberData>;
  /** How current {@linkcode Membership.members} is. */
  readonly state: DiscoveryState;
  /** When the registry last confirmed the list, if ever. */
  readonly lastConfirmed: Date | undefined;
  /**
   * What the members come from, for error messages, e.g.
   * `"ZooKeeper at 127.0.0.1:2181"`.
   *
   * @default {"the membership source"}
   */
  readonly source?: string;
  /** Why the last attempt to reach the registry failed, if it did. */
  readonly lastError?: Error | undefined;
  /**
   * How the membership follows the registry, when it has a choice: for
   * ZooKeeper `"persistent"` (one persistent recursive watch, 3.6+) or
   * `"children"` (one-shot child watches, the automatic fallback), and
   * `undefined` before the first list. Read it as
   * `channel.membership.watchMode`; a change fires `"state"`.
   */
  readonly watchMode?: string | undefined;
  /** Stops watching. Idempotent. */
  close(): Promise<void>;
}
