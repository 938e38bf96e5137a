/**
 * The discovery contract: a registry hands out a {@linkcode Membership} per
 * service. ZooKeeper-free; `zooKeeperDiscovery()` (in
 * `@zkrpc/zkrpc/zookeeper`) implements it. A channel is handed a
 * `Discovery` (or a `Membership`) explicitly: no module-level registry
 * connects the layers, so a program that does not use ZooKeeper never loads
 * its client.
 *
 * @module
 */

import type { Membership } from "./membership.ts";

/**
 * How to follow one service's members.
 *
 * @example Members of a flat layout, skipping bad ones quietly
 * ```ts
 * import type { MembershipOptions } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const options: MembershipOptions = { path: "/rpc", onInvalidMember: () => {} };
 * assert.equal(options.path, "/rpc");
 * ```
 */
export interface MembershipOptions {
  /**
   * The exact path whose children are the members; overrides
   * `<root>/<service>`.
   *
   * @default {undefined}
   */
  path?: string | undefined;
  /**
   * Called once per registered member whose data is unusable (not JSON, no
   * host or port); the member is skipped.
   *
   * @default {console.warn}
   */
  onInvalidMember?: ((id: string, error: Error) => void) | undefined;
}

/**
 * A registry: hands out the live membership of any service.
 *
 * @example A discovery over fixed lists
 * ```ts
 * import { StaticMembership } from "@zkrpc/zkrpc";
 * import type { Discovery } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const discovery: Discovery = {
 *   membership: () => new StaticMembership([{ host: "127.0.0.1", port: 9001 }]),
 * };
 * const membership = discovery.membership("calculator");
 * assert.equal(membership.members.size, 1);
 * await membership.close();
 * ```
 */
export interface Discovery {
  /**
   * Starts following a service's members.
   *
   * @param service The service name.
   * @param options Where its members live and what to do with bad ones.
   * @returns The membership; the caller closes it.
   */
  membership(service: string, options?: MembershipOptions): Membership;
}
