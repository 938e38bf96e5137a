/**
 * The discovery contract: a registry hands out a {@linkcode Membership} per
 * service. ZooKeeper-free; `zooKeeperDiscovery()` implements it.
 *
 * `DistributedChannel` accepts a ZooKeeper connection string for
 * convenience; it turns it into a {@linkcode Discovery} through the
 * connector that the ZooKeeper module installs when it is loaded (importing
 * `@zkrpc/zkrpc` loads it), so that the channel never imports ZooKeeper code.
 *
 * @module
 */

import type { Membership } from "./membership.ts";
import type { SessionKeeperOptions } from "./session_options.ts";

/**
 * How to follow one service's members.
 *
 * @example Members of a flat layout, skipping bad ones quietly
 * ```ts
 * import type { MembershipOptions } from "@zkrpc/zkrpc/zookeeper";
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
 * import type { Discovery } from "@zkrpc/zkrpc/zookeeper";
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

/**
 * A registry session shared by several users (a `SessionKeeper` or a
 * `ZooKeeperDiscovery` from `@zkrpc/zkrpc/zookeeper`).
 *
 * @example The shape of a shared session
 * ```ts
 * import type { SharedSession } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const session: SharedSession = {
 *   connectionString: "127.0.0.1:2181",
 *   lastError: undefined,
 * };
 * assert.equal(session.connectionString, "127.0.0.1:2181");
 * ```
 */
export interface SharedSession {
  /** The ZooKeeper connection string. */
  readonly connectionString: string;
  /** Why the last attempt to reach the registry failed, if it did. */
  readonly lastError: Error | undefined;
}

/** Where a channel opens its registry. */
export interface ConnectOptions {
  /** A connection string, or a session to share. */
  zookeeper: string | SharedSession;
  /** Options of a session opened here. */
  session?: SessionKeeperOptions | undefined;
  /** Root of the registry. */
  root?: string | undefined;
}

/** A discovery opened for one user, and whether that user must close it. */
export interface Connected {
  /** The discovery. */
  discovery: Discovery;
  /** Releases what was opened for this user (nothing for a shared session). */
  release(): Promise<void>;
}

/** Opens a discovery from a connection string or shared session. */
export type Connector = (options: ConnectOptions) => Connected;

let connector: Connector | undefined;

/**
 * Installs the function that opens a registry from a connection string; the
 * ZooKeeper module calls it when loaded.
 *
 * @param connect The connector.
 */
export function installConnector(connect: Connector): void {
  connector = connect;
}

/**
 * Opens a registry from a connection string or a shared session.
 *
 * @param options Where.
 * @returns The discovery and its release.
 * @throws {TypeError} When no registry module is loaded.
 */
export function connect(options: ConnectOptions): Connected {
  if (connector === undefined) {
    throw new TypeError(
      'Cannot open discovery: the ZooKeeper module is not loaded; import DistributedChannel from "@zkrpc/zkrpc", or pass `membership`',
    );
  }
  return connector(options);
}
