/**
 * The options of a registry session (timeouts, credentials, reconnect
 * back-off): plain data, shared by `DistributedChannel` (which may open a
 * session) and the ZooKeeper module that implements it.
 *
 * @module
 */

/**
 * Options for `ZooKeeperSession.connect()`.
 *
 * @example Short timeouts and digest credentials
 * ```ts
 * import type { ZooKeeperSessionOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperSessionOptions = {
 *   connectTimeout: 2_000,
 *   sessionTimeout: 4_000,
 *   operationTimeout: 5_000,
 *   auth: "admin:secret",
 * };
 * assert.equal(options.sessionTimeout, 4_000);
 * ```
 */
export interface ZooKeeperSessionOptions {
  /**
   * Milliseconds to wait for the first connection. The client itself
   * retries forever; the session gives up after this.
   *
   * @default {10000}
   */
  connectTimeout?: number | undefined;
  /**
   * Requested session timeout in milliseconds. The server clamps it to
   * [2, 20] x its `tickTime`; the negotiated value is
   * `ZooKeeperSession.sessionTimeout`.
   *
   * @default {10000}
   */
  sessionTimeout?: number | undefined;
  /**
   * Milliseconds an operation may take, including time spent waiting for a
   * reconnection while disconnected. It then rejects with code `TIMEOUT`.
   *
   * @default {10000}
   */
  operationTimeout?: number | undefined;
  /**
   * Digest credentials, `"user:password"`, added with `addAuthInfo` before
   * connecting (and re-sent on every reconnection).
   *
   * @default {undefined}
   */
  auth?: string | readonly string[] | undefined;
  /**
   * Gives up connecting when aborted: `connect()` rejects with the signal's
   * reason and releases everything. Has no effect once connected.
   *
   * @default {undefined}
   */
  signal?: AbortSignal | undefined;
  /**
   * Called with the reason of each failed attempt to reach a server
   * (connection refused, unknown host, missing `--allow-net`, no answer to
   * the session request), while connecting and while reconnecting. The
   * session keeps trying; the last reason also ends the `TIMEOUT` message of
   * `ZooKeeperSession.connect()`.
   *
   * @default {undefined}
   */
  onConnectError?: ((error: Error) => void) | undefined;
}

/**
 * Options for `SessionKeeper`.
 *
 * @example Faster reconnects
 * ```ts
 * import type { SessionKeeperOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: SessionKeeperOptions = {
 *   sessionTimeout: 4_000,
 *   retryDelay: 50,
 *   maxRetryDelay: 1_000,
 * };
 * assert.equal(options.maxRetryDelay, 1_000);
 * ```
 */
export interface SessionKeeperOptions extends ZooKeeperSessionOptions {
  /**
   * First delay before retrying a failed connect, in ms.
   *
   * @default {100}
   */
  retryDelay?: number | undefined;
  /**
   * Longest delay between connect attempts, in ms.
   *
   * @default {2000}
   */
  maxRetryDelay?: number | undefined;
}
