/**
 * The one error class of the ZooKeeper session, with a string `code`.
 *
 * @module
 */

/**
 * What went wrong, as a stable string. The first group mirrors ZooKeeper's
 * own error codes; `TIMEOUT` and `CLOSED` are the session wrapper's, and so
 * are the permanent connect failures `NO_CHROOT` (the chroot of the
 * connection string does not exist), `UNKNOWN_HOST` (no host resolves) and
 * `NOT_PERMITTED` (the permissions deny every host, e.g. `--allow-net`).
 *
 * @example Codes whose outcome is unknown
 * ```ts
 * import { isZooKeeperError, ZooKeeperError } from "@zkrpc/zkrpc/zookeeper";
 * import type { ZooKeeperErrorCode } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const unknownOutcome: ZooKeeperErrorCode[] = ["CONNECTION_LOSS", "TIMEOUT"];
 * const error = new ZooKeeperError("TIMEOUT", 'Cannot create "/rpc"');
 * assert.ok(isZooKeeperError(error, ...unknownOutcome));
 * ```
 */
export type ZooKeeperErrorCode =
  | "NO_NODE"
  | "NODE_EXISTS"
  | "NOT_EMPTY"
  | "BAD_VERSION"
  | "NO_AUTH"
  | "AUTH_FAILED"
  | "INVALID_ACL"
  | "NO_CHILDREN_FOR_EPHEMERALS"
  | "BAD_ARGUMENTS"
  | "CONNECTION_LOSS"
  | "SESSION_EXPIRED"
  | "OPERATION_TIMEOUT"
  | "SYSTEM_ERROR"
  | "RUNTIME_INCONSISTENCY"
  | "DATA_INCONSISTENCY"
  | "MARSHALLING_ERROR"
  | "UNIMPLEMENTED"
  | "API_ERROR"
  | "INVALID_CALLBACK"
  | "TIMEOUT"
  | "CLOSED"
  | "NO_CHROOT"
  | "UNKNOWN_HOST"
  | "NOT_PERMITTED";

const DESCRIPTIONS: Record<ZooKeeperErrorCode, string> = {
  NO_NODE: "the node does not exist",
  NODE_EXISTS: "the node already exists",
  NOT_EMPTY: "the node has children",
  BAD_VERSION: "the version does not match",
  NO_AUTH: "not authorized",
  AUTH_FAILED: "authentication failed",
  INVALID_ACL: "invalid ACL (creator ACLs need an authenticated session)",
  NO_CHILDREN_FOR_EPHEMERALS: "ephemeral nodes cannot have children",
  BAD_ARGUMENTS: "bad arguments",
  CONNECTION_LOSS:
    "the connection was lost while the request was in flight; it may or may not have been applied",
  SESSION_EXPIRED: "the session has expired; create a new session",
  OPERATION_TIMEOUT: "the server timed out",
  SYSTEM_ERROR: "ZooKeeper system error",
  RUNTIME_INCONSISTENCY: "ZooKeeper runtime inconsistency",
  DATA_INCONSISTENCY: "ZooKeeper data inconsistency",
  MARSHALLING_ERROR: "marshalling error",
  UNIMPLEMENTED: "operation not implemented by the server",
  API_ERROR: "ZooKeeper API error",
  INVALID_CALLBACK: "invalid callback",
  TIMEOUT: "no answer in time",
  CLOSED: "the session is closed",
  NO_CHROOT: "create the chroot or fix the connection string",
  UNKNOWN_HOST: "fix the host names of the connection string",
  NOT_PERMITTED:
    "the permissions deny it; grant the ZooKeeper hosts with --allow-net",
};

/**
 * A failed ZooKeeper operation. Check {@linkcode ZooKeeperError.code} to
 * decide what to do: `NODE_EXISTS` and `NO_NODE` are often expected,
 * `SESSION_EXPIRED` means "make a new session", `TIMEOUT` and
 * `CONNECTION_LOSS` mean the outcome is unknown.
 *
 * @example Tell "already there" from a real failure
 * ```ts
 * import { ZooKeeperError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new ZooKeeperError("NODE_EXISTS", 'Cannot create "/rpc"', {
 *   path: "/rpc",
 * });
 * assert.equal(error.code, "NODE_EXISTS");
 * assert.equal(error.path, "/rpc");
 * ```
 */
export class ZooKeeperError extends Error {
  /** What went wrong. */
  readonly code: ZooKeeperErrorCode;
  /** The znode path the operation was about, when there is one. */
  readonly path: string | undefined;

  /**
   * Creates the error; the message gets the code's description appended.
   *
   * @param code What went wrong.
   * @param message A full message; `: <description> (<code>)` is appended.
   * @param options The path and the underlying cause.
   */
  constructor(
    code: ZooKeeperErrorCode,
    message: string,
    options: { path?: string; cause?: unknown } = {},
  ) {
    super(`${message}: ${DESCRIPTIONS[code]} (${code})`, {
      cause: options.cause,
    });
    this.name = "ZooKeeperError";
    this.code = code;
    this.path = options.path;
  }
}

/**
 * Converts an error of the client (`wireError`: a numeric `code` and the
 * code's name in `name`) into a {@linkcode ZooKeeperError}.
 *
 * @param error What the client passed to its callback.
 * @param message What failed, e.g. `Cannot create "/rpc"`.
 * @param path The znode path.
 * @returns The typed error.
 */
export function toZooKeeperError(
  error: unknown,
  message: string,
  path?: string,
): ZooKeeperError | Error {
  if (error instanceof ZooKeeperError) return error;
  const name = (error as { name?: unknown } | null)?.name;
  if (typeof name === "string" && name in DESCRIPTIONS) {
    return new ZooKeeperError(name as ZooKeeperErrorCode, message, {
      ...(path === undefined ? {} : { path }),
      cause: error,
    });
  }
  return new Error(`${message}: ${(error as Error)?.message ?? error}`, {
    cause: error,
  });
}

/**
 * Tells whether `error` is a {@linkcode ZooKeeperError}, optionally with one
 * of the given codes.
 *
 * @param error Anything caught.
 * @param codes Accept only these codes; any code when none is given.
 * @returns Whether it matches.
 *
 * @example Ignore a node that is already gone
 * ```ts
 * import { isZooKeeperError, ZooKeeperError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new ZooKeeperError("NO_NODE", 'Cannot delete "/x"');
 * assert.ok(isZooKeeperError(error, "NO_NODE"));
 * assert.ok(!isZooKeeperError(error, "NODE_EXISTS"));
 * assert.ok(!isZooKeeperError(new Error("other")));
 * ```
 */
export function isZooKeeperError(
  error: unknown,
  ...codes: ZooKeeperErrorCode[]
): error is ZooKeeperError {
  return error instanceof ZooKeeperError &&
    (codes.length === 0 || codes.includes(error.code));
}
