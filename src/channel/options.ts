/**
 * The options of a channel and of its calls, and what it reports about its
 * endpoints.
 *
 * @module
 */

import type { CallOptions, ConnectionOptions } from "../client/connection.ts";
import { type ErrorClass, ErrorRegistry } from "../errors.ts";
import type { MemberData } from "../discovery/member.ts";
import type { Discovery } from "../discovery/discovery.ts";
import type { Membership } from "../discovery/membership.ts";
import type { ClientInterceptor } from "../_interceptors.ts";
import { printableMessage } from "../_printable.ts";
import { MemberAdmission } from "./admission.ts";
import type { Balancer, BalancerName } from "./balancer.ts";
import type { HedgingOptions } from "./hedging.ts";
import type { OutlierDetectionOptions } from "./outlier_detection.ts";
import type { RetryBudgetOptions } from "./retry_budget.ts";
import type { EndpointState } from "./subchannel.ts";

/**
 * A channel's TLS: the CAs it trusts and whether plaintext members are
 * still called.
 *
 * @example A channel that trusts a private CA
 * ```ts
 * import type { ChannelTlsOptions } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const tls: ChannelTlsOptions = { caCerts: ["-----BEGIN CERTIFICATE-----\u2026"] };
 * assert.equal(tls.allowPlaintext, undefined); // plaintext members skipped
 * ```
 */
export interface ChannelTlsOptions {
  /**
   * Extra CA certificates (PEM) to trust, beside the system's.
   *
   * @default {[]}
   */
  caCerts?: string[];
  /**
   * Still call members without TLS (a mixed fleet during a migration).
   * Every such member is warned about once.
   *
   * @default {false}
   */
  allowPlaintext?: boolean;
}

/**
 * Options for {@linkcode DistributedChannel}.
 *
 * @example Options for a ZooKeeper-backed channel
 * ```ts
 * import type { DistributedChannelOptions } from "@zkrpc/zkrpc";
 * import type { Discovery } from "@zkrpc/zkrpc/extend";
 * import { StaticMembership } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * // Usually `zooKeeperDiscovery()` from "@zkrpc/zkrpc/zookeeper".
 * const discovery: Discovery = {
 *   membership: () => new StaticMembership([{ host: "127.0.0.1", port: 9001 }]),
 * };
 * const options: DistributedChannelOptions = {
 *   discovery,
 *   service: "calculator",
 *   balancer: "least-in-flight",
 *   idempotent: ["divide"],
 *   hedging: { delay: { percentile: 95 } },
 * };
 * assert.equal(options.service, "calculator");
 * ```
 */
export interface DistributedChannelOptions {
  /**
   * The registry to follow the service in, e.g. `zooKeeperDiscovery()`
   * from `@zkrpc/zkrpc/zookeeper` (where members live is the discovery's
   * business: its root, its session). The channel opens one membership of
   * `service` and closes it; the discovery itself stays open (its owner
   * closes it). Either this or `membership` is needed.
   */
  discovery?: Discovery;
  /** The service to call (what `discovery` follows). */
  service?: string;
  /**
   * The members to call, instead of a `discovery` (e.g.
   * {@linkcode StaticMembership}); the channel does not close it.
   */
  membership?: Membership;
  /** Error classes that remote errors of the same name come back as. */
  errors?: ErrorClass[];
  /**
   * How to choose an endpoint.
   *
   * @default {"random"}
   */
  balancer?: BalancerName | Balancer;
  /**
   * Default timeout of a call, in ms, including retries.
   *
   * @default {10000}
   */
  timeout?: number;
  /**
   * Most attempts of one call that count: attempts that provably never
   * reached a server (refused, connect timeout, draining) do not count while
   * the call has untried endpoints left.
   *
   * @default {3}
   */
  maxAttempts?: number;
  /**
   * The retry budget shared by the channel's calls (gRPC-style throttling):
   * when failures outweigh successes, calls stop being retried (and hedged).
   * @default {maxTokens: 100, tokenRatio: 0.1}
   */
  retryBudget?: RetryBudgetOptions;
  /**
   * Methods that are safe to run twice: a call that may have run when its
   * connection failed is retried elsewhere only for these.
   */
  idempotent?: Iterable<string>;
  /**
   * Hedged requests for idempotent methods: `true` for the defaults of
   * {@linkcode HedgingOptions}.
   *
   * @default {false}
   */
  hedging?: boolean | HedgingOptions;
  /** Thresholds, ejection periods and probing of outlier detection. */
  outlierDetection?: OutlierDetectionOptions;
  /**
   * When no member is known, wait for one until the call's deadline instead
   * of failing fast (a confirmed-empty service fails at once by default; an
   * unreachable registry fails after `discoveryTimeout`).
   *
   * @default {false}
   */
  waitForReady?: boolean;
  /**
   * Milliseconds a call (or `ready()` without a timeout) waits for a
   * registry that has not delivered a member list yet (ZooKeeper
   * unreachable) before failing with an error that names it.
   *
   * @default {5000}
   */
  discoveryTimeout?: number;
  /**
   * This side's TLS, as on `serve({ tls })`: when given, every member must
   * use TLS; members whose data does not say `tls: true` are skipped (with a
   * warning once per member) unless `allowPlaintext`. Implied by
   * `connection.caCerts`.
   *
   * @default {undefined} (members are called as they register: TLS where
   * their data says `tls: true`)
   */
  tls?: ChannelTlsOptions;
  /**
   * Called once per member the channel skips (no TLS where required, no
   * `--allow-net` permission for its address), once per plaintext member
   * allowed by `tls.allowPlaintext`, and once per remote error name revived by
   * its class name only (see `ErrorRegistry.registerAs`).
   *
   * @default {console.warn}
   */
  onWarning?: (message: string) => void;
  /**
   * Called once per registered member whose data is unusable (not JSON, no
   * host or port); the member is skipped.
   *
   * @default {console.warn}
   */
  onInvalidMember?: (id: string, error: Error) => void;
  /**
   * Options for each endpoint's connection (TLS CA certificates, limits,
   * keepalive, `connectTimeout`: the bound of one connect attempt, default
   * 2000 ms).
   */
  connection?: ConnectionOptions;
  /**
   * Which members to call (Curator's `InstanceFilter`): members for which
   * it returns `false` are skipped, e.g. `(m) => m.zone === "eu-1"` or
   * `(m) => m.version === "2.1.0"`. Applied when a member joins or changes.
   *
   * @default {undefined} (every member)
   */
  filter?: (member: MemberData) => boolean;
  /**
   * Interceptors around every attempt of every call (`attempt` counts a
   * call's attempts from 1); the first is the outermost. With none, calls
   * take the path they take without the feature.
   *
   * @default {[]}
   */
  interceptors?: readonly ClientInterceptor[];
}

/**
 * A call's options on a channel.
 *
 * @example Options for one call
 * ```ts
 * import type { ChannelCallOptions } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * const options: ChannelCallOptions = {
 *   timeout: 2_000,
 *   signal: controller.signal,
 *   idempotent: true, // may be retried on another endpoint
 * };
 * assert.equal(options.idempotent, true);
 * ```
 */
export interface ChannelCallOptions extends CallOptions {
  /** Treat this call as idempotent whatever the channel's list says. */
  idempotent?: boolean;
  /**
   * Hedge this (idempotent) call, or not, whatever the channel's hedging
   * methods say; needs `hedging` on the channel.
   */
  hedge?: boolean;
  /** Overrides the channel's `waitForReady` for this call. */
  waitForReady?: boolean;
}

export type { EndpointState };

/**
 * A snapshot of one endpoint, from {@linkcode DistributedChannel.endpoints}.
 *
 * @example Inspecting a channel's endpoints
 * ```ts
 * import { DistributedChannel, StaticMembership } from "@zkrpc/zkrpc";
 * import type { EndpointStatus } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * await using channel = new DistributedChannel({
 *   membership: new StaticMembership([{ host: "127.0.0.1", port: 9001 }]),
 * });
 * const [status]: EndpointStatus[] = channel.endpoints();
 * assert.equal(status?.key, "127.0.0.1:9001");
 * assert.equal(status?.state, "idle");
 * ```
 */
export interface EndpointStatus {
  /** `host:port`. */
  key: string;
  /** The member data the server registered. */
  member: MemberData;
  /** Connection state. */
  state: EndpointState;
  /** Calls in flight. */
  inFlight: number;
  /** Calls this endpoint answered (results and remote errors). */
  calls: number;
  /** Consecutive failed attempts. */
  failures: number;
  /** Ejections in a row (the back-off exponent); 0 when healthy. */
  ejections: number;
  /**
   * Moving average latency of answered calls, in ms (measured on one call
   * in eight, and on every call while hedging).
   */
  latency: number | undefined;
}

/**
 * The membership a channel follows: its `membership`, or one it opens from
 * its `discovery` for its `service`.
 *
 * @param options The channel's options.
 * @returns The membership.
 * @throws {TypeError} Without `membership`, or `discovery` and `service`.
 *
 * @example A channel's options without a source fail
 * ```ts
 * import { membershipOf } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => membershipOf({ service: "calculator" }), TypeError);
 * ```
 */
export function membershipOf(options: DistributedChannelOptions): Membership {
  if (options.membership !== undefined) return options.membership;
  if (
    options.discovery !== undefined &&
    typeof options.discovery.membership !== "function"
  ) {
    throw new TypeError(
      "Cannot create channel: `discovery` must have a membership(service, options) method",
    );
  }
  if (options.discovery === undefined || options.service === undefined) {
    throw new TypeError(
      "zookeeper" in options
        ? 'Cannot create channel: `zookeeper` is no longer a channel option; pass `discovery: zooKeeperDiscovery(...)` from "@zkrpc/zkrpc/zookeeper" and `service`'
        : "Cannot create channel: give `membership`, or `discovery` and `service`",
    );
  }
  return options.discovery.membership(options.service, {
    onInvalidMember: options.onInvalidMember,
  });
}

/**
 * The error registry of a channel: its `errors`, named for its `service`,
 * warning through its `onWarning`.
 *
 * @param options The channel's options.
 * @returns The registry.
 *
 * @example
 * ```ts
 * import { errorsOf } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * class InvalidOperation extends Error {}
 * const errors = errorsOf({ service: "calculator", errors: [InvalidOperation] });
 * assert.ok(errors);
 * ```
 */
export function errorsOf(options: DistributedChannelOptions): ErrorRegistry {
  return new ErrorRegistry({
    ...(options.service !== undefined ? { service: options.service } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  }).register(...(options.errors ?? []));
}

/**
 * Who decides whether a joining member may be used: the channel's
 * `filter`, its TLS policy (`tls` or `connection.caCerts` set: plaintext
 * members only with `tls.allowPlaintext`) and `--allow-net`; refusals warn
 * through `onWarning` (default: `console.warn`).
 *
 * @param options The channel's options.
 * @returns The admission.
 *
 * @example
 * ```ts
 * import { admissionOf } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * const admission = admissionOf({ service: "calculator", filter: () => false });
 * assert.equal(typeof admission.refusal, "function");
 * ```
 */
export function admissionOf(
  options: DistributedChannelOptions,
): MemberAdmission {
  return new MemberAdmission({
    service: options.service ?? "static",
    tls: options.tls !== undefined ||
      options.connection?.caCerts !== undefined,
    allowPlaintext: options.tls?.allowPlaintext ?? false,
    filter: options.filter,
    warn: options.onWarning ??
      ((message) => console.warn(printableMessage(message))),
  });
}
