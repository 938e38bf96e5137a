/**
 * The documented defaults of the client, channel, ZooKeeper session and
 * registrar options, defined once. The code falls back to these objects, each
 * option's `@default` tag gives the same figure, and
 * `tests/docs_defaults_test.ts` fails when a table in `docs/*.md` or the
 * README (or a `@default` tag) disagrees with them.
 *
 * The server's own defaults are `SERVER_DEFAULTS` (src/server), the frame
 * limit `DEFAULT_MAX_FRAME_SIZE` (src/protocol/frame.ts), the bigint limit
 * `DEFAULT_MAX_BIGINT_DIGITS` (src/protocol/_values.ts) and the client's
 * connect timeout `DEFAULT_CONNECT_TIMEOUT` (src/client/_connect.ts).
 *
 * @module
 */

/**
 * Defaults of `ConnectionOptions` (one client connection).
 *
 * @example
 * ```ts
 * import { CONNECTION_DEFAULTS } from "./_defaults.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CONNECTION_DEFAULTS.keepaliveInterval, 1000);
 * ```
 */
export const CONNECTION_DEFAULTS = {
  /** Requests sent and unanswered at once. */
  maxInFlight: 1024,
  /** Ms without a received frame, calls in flight, before a ping. */
  keepaliveInterval: 1000,
  /** Ms to wait for any frame after a ping. */
  keepaliveTimeout: 2000,
  /** Ms without a received frame, no call in flight, before a ping. */
  idleKeepaliveInterval: 30_000,
} as const;

/**
 * Defaults of `DistributedChannelOptions`.
 *
 * @example
 * ```ts
 * import { CHANNEL_DEFAULTS } from "./_defaults.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CHANNEL_DEFAULTS.timeout, 10_000);
 * ```
 */
export const CHANNEL_DEFAULTS = {
  /** Ms of a call, retries included. */
  timeout: 10_000,
  /** Attempts of a call, the first included. */
  maxAttempts: 3,
  /** Hedged attempts after the first. */
  maxHedges: 1,
  /** Latency percentile after which a hedge is sent. */
  hedgePercentile: 95,
  /** Ms a call waits for discovery's first member list. */
  discoveryTimeout: 5000,
} as const;

/**
 * Defaults of `OutlierDetectionOptions`.
 *
 * @example
 * ```ts
 * import { OUTLIER_DETECTION_DEFAULTS } from "./_defaults.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(OUTLIER_DETECTION_DEFAULTS.consecutiveFailures, 5);
 * ```
 */
export const OUTLIER_DETECTION_DEFAULTS = {
  /** Ms of a first ejection. */
  ejectionTime: 250,
  /** Longest ejection, in ms. */
  maxEjectionTime: 30_000,
  /** Failures in a row that eject an endpoint. */
  consecutiveFailures: 5,
  /** Failure rate (of at least `minimumCalls`) that ejects. */
  failureRate: 0.5,
  /** Calls in the window before the rate counts. */
  minimumCalls: 10,
  /** Most endpoints ejected at once, in percent. */
  maxEjectionPercent: 50,
  /** Ms between probes of an ejected endpoint. */
  probeInterval: 1000,
  /** Ms a probe may take. */
  probeTimeout: 2000,
} as const;

/**
 * Defaults of `RetryBudgetOptions`.
 *
 * @example
 * ```ts
 * import { RETRY_BUDGET_DEFAULTS } from "./_defaults.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(RETRY_BUDGET_DEFAULTS.maxTokens, 100);
 * ```
 */
export const RETRY_BUDGET_DEFAULTS = {
  /** Tokens of a full budget. */
  maxTokens: 100,
  /** Tokens a success refills. */
  tokenRatio: 0.1,
} as const;

/**
 * Defaults of `ZooKeeperSessionOptions` and `SessionKeeperOptions`.
 *
 * @example
 * ```ts
 * import { ZOOKEEPER_SESSION_DEFAULTS } from "./_defaults.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ZOOKEEPER_SESSION_DEFAULTS.sessionTimeout, 10_000);
 * ```
 */
export const ZOOKEEPER_SESSION_DEFAULTS = {
  /** Ms to connect to an ensemble member. */
  connectTimeout: 10_000,
  /** Ms of the session timeout asked of ZooKeeper. */
  sessionTimeout: 10_000,
  /** Ms of one ZooKeeper operation. */
  operationTimeout: 10_000,
  /** First delay before retrying a failed connect, in ms. */
  retryDelay: 100,
  /** Longest delay between connect attempts, in ms. */
  maxRetryDelay: 2000,
} as const;

/**
 * Defaults of `ZooKeeperRegistrarOptions`.
 *
 * @example
 * ```ts
 * import { REGISTRAR_DEFAULTS } from "./_defaults.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(REGISTRAR_DEFAULTS.warnAfter, 5000);
 * ```
 */
export const REGISTRAR_DEFAULTS = {
  /** Relative weight of the member. */
  weight: 1,
  /** Ms serving but not registered before one warning. */
  warnAfter: 5000,
  /** First delay before retrying a failed registration, in ms. */
  retryDelay: 250,
  /** Longest delay between registration attempts, in ms. */
  maxRetryDelay: 5000,
} as const;
