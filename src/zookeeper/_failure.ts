/**
 * The one place that tells a permanent ZooKeeper failure (retrying cannot
 * help: fail at once, naming the cause) from a transient one (retry with the
 * back-off). The session uses it for each failed connect attempt, the keeper
 * to decide whether to keep reconnecting, and registrations and memberships
 * to decide whether to retry an operation.
 *
 * | failure | class | code |
 * |---|---|---|
 * | `Deno.errors.NotCapable` / `PermissionDenied`, `EPERM`, `EACCES` (the host is outside `--allow-net`) | permanent | `NOT_PERMITTED` |
 * | `ENOTFOUND`, `EAI_NONAME` (the host name does not resolve) | permanent | `UNKNOWN_HOST` |
 * | the chroot of the connection string does not exist | permanent | `NO_CHROOT` |
 * | `AUTH_FAILED`, `NO_AUTH`, `INVALID_ACL`, `BAD_ARGUMENTS`, `NO_CHILDREN_FOR_EPHEMERALS`, `UNIMPLEMENTED` | permanent | itself |
 * | `TypeError`, `RangeError` and any error that is neither a ZooKeeper nor a system error | permanent | - |
 * | `ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, `EHOSTUNREACH`, `EAI_AGAIN` and other system errors; `TIMEOUT`, `CONNECTION_LOSS`, `SESSION_EXPIRED`, `CLOSED`, `NO_NODE`... | transient | - |
 *
 * @module
 */

import { ZooKeeperError, type ZooKeeperErrorCode } from "./errors.ts";

/** What {@linkcode classifyFailure} says about an error. */
export interface Failure {
  /** Whether retrying cannot help. */
  readonly permanent: boolean;
  /**
   * For a permanent failure of a connect attempt: the code a connect rejects
   * with (`NOT_PERMITTED`, `UNKNOWN_HOST`); else `undefined`.
   */
  readonly connectCode: "NOT_PERMITTED" | "UNKNOWN_HOST" | undefined;
  /** The cause, in a few words, for messages. */
  readonly reason: string;
}

/** ZooKeeper answers that no retry changes. */
const PERMANENT_CODES: readonly ZooKeeperErrorCode[] = [
  "AUTH_FAILED",
  "NO_AUTH",
  "INVALID_ACL",
  "BAD_ARGUMENTS",
  "NO_CHILDREN_FOR_EPHEMERALS",
  "UNIMPLEMENTED",
  "NO_CHROOT",
  "UNKNOWN_HOST",
  "NOT_PERMITTED",
];

const DENIED = new Set(["EPERM", "EACCES"]);
const UNRESOLVED = new Set(["ENOTFOUND", "EAI_NONAME"]);

/**
 * Classifies a failure: a ZooKeeper error, the error of a socket that could
 * not reach a server, or anything else thrown while talking to ZooKeeper.
 *
 * @param error What failed.
 * @returns Whether it is permanent, and why.
 *
 * @example A refused connection is retried, a denied one is not
 * ```ts
 * import { classifyFailure } from "./_failure.ts";
 * import assert from "node:assert/strict";
 *
 * const refused = Object.assign(new Error("connect ECONNREFUSED"), {
 *   code: "ECONNREFUSED",
 * });
 * assert.equal(classifyFailure(refused).permanent, false);
 * const denied = new Deno.errors.NotCapable('Requires net access to "zk:2181"');
 * assert.equal(classifyFailure(denied).connectCode, "NOT_PERMITTED");
 * ```
 */
export function classifyFailure(error: unknown): Failure {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ZooKeeperError) {
    return {
      permanent: PERMANENT_CODES.includes(error.code),
      connectCode: undefined,
      reason: message,
    };
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (
    error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.PermissionDenied ||
    (typeof code === "string" && DENIED.has(code))
  ) {
    return {
      permanent: true,
      connectCode: "NOT_PERMITTED",
      reason: message,
    };
  }
  if (typeof code === "string" && UNRESOLVED.has(code)) {
    return {
      permanent: true,
      connectCode: "UNKNOWN_HOST",
      reason: message,
    };
  }
  if (typeof code === "string") {
    return { permanent: false, connectCode: undefined, reason: message };
  }
  return { permanent: true, connectCode: undefined, reason: message };
}

/**
 * Whether retrying cannot fix `error`; see {@linkcode classifyFailure}.
 *
 * @param error What failed.
 * @returns `true` for a permanent failure.
 *
 * @example Only transient failures are retried
 * ```ts
 * import { isPermanentFailure } from "./_failure.ts";
 * import { ZooKeeperError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isPermanentFailure(new ZooKeeperError("NO_AUTH", "Cannot create")));
 * assert.ok(!isPermanentFailure(new ZooKeeperError("TIMEOUT", "Cannot create")));
 * ```
 */
export function isPermanentFailure(error: unknown): boolean {
  return classifyFailure(error).permanent;
}
