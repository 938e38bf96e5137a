/**
 * The discovery channel, as wiring: membership -> subchannel pool -> picker
 * (balancer; outlier detection, latency and retry budget hear every
 * outcome) -> one {@linkcode ChannelCall} per call. Readiness and close live
 * here; a call's attempts live in `call.ts`.
 *
 * @module
 */

import { createBalancer } from "./balancer.ts";
import {
  CHANNEL_OWNED,
  type ConnectionOptions,
  DEFAULT_CONNECT_TIMEOUT,
  rethrowWithCallerStack,
} from "../client/connection.ts";
import { ConnectionError } from "../errors.ts";
import { type MemberData, memberKey } from "../discovery/member.ts";
import type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "../discovery/membership.ts";
import { RetryBudget } from "./retry_budget.ts";
import { type Stub, stub } from "./stub.ts";
import { type ChannelStreamOptions, streamThroughChannel } from "./stream.ts";
import {
  channelCallTelemetry,
  clientTelemetry,
  observeChannel,
} from "../telemetry/telemetry.ts";
import { isValidTimeout, timeoutError } from "../_async.ts";
import { CHANNEL_DEFAULTS } from "../_defaults.ts";
import type { MemberAdmission } from "./admission.ts";
import { AttemptPolicy } from "./attempt_policy.ts";
import {
  callDeadline,
  type CallHost,
  ChannelCall,
  NO_OPTIONS,
} from "./call.ts";
import { hedgingPlan } from "./hedging.ts";
import { OutlierDetector } from "./outlier_detection.ts";
import { Picker } from "./picker.ts";
import { Readiness } from "./readiness.ts";
import { SubchannelPool } from "./pool.ts";
import {
  admissionOf,
  type ChannelCallOptions,
  type DistributedChannelOptions,
  type EndpointStatus,
  errorsOf,
  membershipOf,
} from "./options.ts";

export type {
  ChannelCallOptions,
  DistributedChannelOptions,
  EndpointState,
  EndpointStatus,
} from "./options.ts";

/**
 * A client for one service: it follows the service's members (from a
 * `Discovery` such as ZooKeeper, or a `Membership`),
 * keeps one multiplexed connection per endpoint (opened lazily), picks an
 * endpoint per call with a balancer, and fails over.
 *
 * A call that provably did not run (connection refused or already broken,
 * connect timeout, refused by a draining server after its `goaway`) moves to
 * another endpoint at once. A call that may have run (the connection broke
 * after the request was written, or a "closing" answer without a `goaway`
 * before it) is retried only for idempotent methods; see `classify()` and
 * docs/errors.md.
 * Outlier detection ejects failing endpoints (connect failures, broken
 * connections, deadline misses, a high failure rate) and re-admits them
 * after a background probe. Hedging sends a backup attempt for slow
 * idempotent calls. See docs/failure-modes.md for what each fault costs.
 *
 * Events: `"change"` (membership changed) and `"state"` (discovery state
 * changed), forwarded from the membership.
 *
 * @example Calling a service found in ZooKeeper
 * ```ts ignore
 * import { DistributedChannel } from "@zkrpc/zkrpc";
 * import { zooKeeperDiscovery } from "@zkrpc/zkrpc/zookeeper";
 *
 * class InvalidOperation extends Error {}
 * await using discovery = zooKeeperDiscovery({ zookeeper: "127.0.0.1:2181" });
 * await using channel = new DistributedChannel({
 *   discovery,
 *   service: "calculator",
 *   errors: [InvalidOperation],
 * });
 * await channel.ready({ timeout: 5000 });
 * console.log(await channel.call("divide", [10, 2]));
 * ```
 */
export class DistributedChannel extends EventTarget implements AsyncDisposable {
  #service: string;
  #membership: Membership;
  #ownsMembership: boolean;
  #timeout: number;
  #pool: SubchannelPool;
  #picker: Picker;
  #detector: OutlierDetector;
  #host: CallHost;
  #readiness: Readiness;
  #admission: MemberAdmission;
  #unobserve: () => void;
  #traceCall: ReturnType<typeof channelCallTelemetry>;
  #closing = new AbortController();
  #closed = false;
  #onChange: (event: Event) => void;
  #onState: () => void;

  /**
   * Starts following the service's membership.
   *
   * @param options Where to find members and how to call them.
   * @throws {TypeError} Without `membership`, or `discovery` and `service`.
   */
  constructor(options: DistributedChannelOptions) {
    super();
    this.#service = options.service ?? "static";
    const errors = errorsOf(options);
    if (!isValidTimeout(options.timeout)) {
      throw timeoutError(options.timeout, "create channel");
    }
    this.#timeout = options.timeout ?? CHANNEL_DEFAULTS.timeout;
    const interceptors = [
      ...clientTelemetry(this.#service),
      ...(options.interceptors ?? []),
    ];
    this.#traceCall = channelCallTelemetry(this.#service);
    const connectTimeout = options.connection?.connectTimeout ??
      DEFAULT_CONNECT_TIMEOUT;
    const budget = new RetryBudget(options.retryBudget);
    const policy = new AttemptPolicy(
      options.maxAttempts ?? CHANNEL_DEFAULTS.maxAttempts,
      budget,
      connectTimeout,
    );
    const hedging = hedgingPlan(options.hedging);
    this.#admission = admissionOf(options);
    this.#pool = new SubchannelPool({
      ...options.connection,
      // Telemetry spans attempts here, not again on the connection.
      ...{ [CHANNEL_OWNED]: true } as ConnectionOptions,
      connectTimeout,
      errors,
      signal: this.#closing.signal,
      ...options.tls?.caCerts && { caCerts: options.tls.caCerts },
    }, {
      onBroken: (subchannel) => {
        if (!this.#closed) this.#picker.report(subchannel, "connect");
      },
      onGoaway: (subchannel) => this.#detector.drained(subchannel),
      onReregistered: (subchannel) => this.#detector.readmit(subchannel),
      onRetired: (subchannel) => {
        this.#detector.forget(subchannel);
        this.#picker.retire(subchannel);
      },
    });
    this.#detector = new OutlierDetector(this.#pool, options.outlierDetection);
    this.#picker = new Picker(
      this.#pool,
      typeof options.balancer === "object"
        ? options.balancer
        : createBalancer(options.balancer ?? "random"),
    );
    this.#picker.subscribe(this.#detector, budget);
    if (hedging?.tracker) this.#picker.subscribe(hedging.tracker);
    this.#host = {
      service: this.#service,
      picker: this.#picker,
      policy,
      interceptors: interceptors.length > 0 ? interceptors : undefined,
      timeout: this.#timeout,
      defaultCallOptions: { timeout: this.#timeout },
      idempotent: new Set(options.idempotent ?? []),
      waitForReady: options.waitForReady ?? false,
      hedging,
      waitForPick: (call, lastError) =>
        this.#readiness.waitForPick(call, lastError, this.#picker),
      unavailable: (lastError) => this.#readiness.unavailable(lastError),
    };
    this.#ownsMembership = options.membership === undefined;
    this.#membership = membershipOf(options);
    this.#readiness = new Readiness({
      service: this.#service,
      membership: this.#membership,
      pool: this.#pool,
      discoveryTimeout: options.discoveryTimeout ??
        CHANNEL_DEFAULTS.discoveryTimeout,
      closedError: (what) => this.#closed ? this.#closedError(what) : undefined,
    });
    this.#onChange = (event) => {
      const detail = (event as CustomEvent<MembershipChange>).detail;
      this.#apply(detail);
      this.dispatchEvent(new CustomEvent("change", { detail }));
    };
    this.#onState = () => {
      this.#readiness.stateChanged();
      this.dispatchEvent(new Event("state"));
    };
    this.#membership.addEventListener("change", this.#onChange);
    this.#membership.addEventListener("state", this.#onState);
    this.#unobserve = observeChannel(this.#service, () => ({
      state: this.state,
      endpoints: this.endpoints(),
    }));
    this.#apply({ added: this.#membership.members, removed: [] });
  }

  /** The service this channel calls. */
  get service(): string {
    return this.#service;
  }

  /** How current the endpoint list is. */
  get state(): DiscoveryState {
    return this.#membership.state;
  }

  /** When the registry last confirmed the endpoint list. */
  get lastConfirmed(): Date | undefined {
    return this.#membership.lastConfirmed;
  }

  /** The membership this channel follows. */
  get membership(): Membership {
    return this.#membership;
  }

  /** A snapshot of every known endpoint. */
  endpoints(): EndpointStatus[] {
    return this.#pool.statuses();
  }

  #apply(change: MembershipChange): void {
    for (const id of change.removed) this.#readiness.excluded.delete(id);
    this.#pool.apply(change, this.#admit);
    this.#readiness.wake();
  }

  /** Filter, TLS policy, `--allow-net`: whether a joining member may be used. */
  #admit = (id: string, member: MemberData): boolean => {
    const reason = this.#admission.refusal(member);
    if (reason === undefined) return true;
    this.#readiness.excluded.set(id, `${memberKey(member)}: ${reason}`);
    return false;
  };

  /**
   * Resolves once at least one endpoint is known.
   *
   * @param options `timeout` in ms and `signal`. Without a timeout it waits
   * up to the channel's timeout, but only `discoveryTimeout` for a registry
   * that has not answered yet.
   * @throws {NoServersError} When none appeared in time; the message names
   * the cause (no registered members, or the registry unreachable since
   * when).
   */
  ready(
    options: { timeout?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    return this.#readiness.ready(options, this.#timeout);
  }

  /**
   * Calls `method` on one of the service's endpoints.
   *
   * @param method The remote method's name.
   * @param params Its arguments.
   * @param options Timeout (ms, default the channel's), `signal`,
   * `idempotent`, `hedge`, `waitForReady`.
   * @returns The remote result.
   * @throws {NoServersError} When no endpoint could take the call; the
   * message says why (registry unreachable, no registered members, all
   * members failing). Errors from the server (revived classes,
   * `RemoteError`s), deadlines and connection failures carry the stack of
   * the code that awaited the call.
   */
  call(
    method: string,
    params: unknown[],
    options: ChannelCallOptions = NO_OPTIONS,
  ): Promise<unknown> {
    const trace = this.#traceCall;
    let promise: Promise<unknown>;
    try {
      // Errors get the caller's frames from the call's promise, and from
      // this reaction for a span's promise or a refusal.
      if (trace === undefined) return this.#call(method, params, options);
      // Bound, not an arrow: no closure context on every untraced call.
      promise = trace(method, this.#call.bind(this, method, params, options));
    } catch (error) {
      promise = Promise.reject(error);
    }
    return promise.then(undefined, rethrowWithCallerStack);
  }

  #call(
    method: string,
    params: unknown[],
    options: ChannelCallOptions,
  ): Promise<unknown> {
    if (!isValidTimeout(options.timeout)) {
      throw timeoutError(options.timeout, `call method "${method}"`);
    }
    if (this.#closed) throw this.#closedError(`call method "${method}"`);
    const deadline = callDeadline(method, options, this.#timeout);
    if (deadline instanceof Error) throw deadline;
    return new ChannelCall(this.#host, method, params, options, deadline).run();
  }

  #closedError(what: string): Error {
    return new ConnectionError(
      `Cannot ${what}: the channel for service "${this.#service}" is closed`,
      { written: false },
    );
  }

  /**
   * Returns a typed proxy whose methods call this channel.
   *
   * @typeParam T The handler type, e.g. `typeof Handlers`.
   * @param options Options for every call through the stub.
   * @returns The stub.
   */
  stub<T>(options: ChannelCallOptions = {}): Stub<T> {
    return stub<T>(this, options);
  }

  /**
   * Calls a streaming method on one endpoint: the items arrive through the
   * returned `ReadableStream` (see `Connection.prototype.stream`). The
   * stream is pinned to the endpoint that sent its first item; before that
   * item an idempotent stream without `input` fails over like a call;
   * after it, a broken stream fails with a `ConnectionError` that says how
   * many items arrived. `timeout` covers the whole stream (default: none,
   * not the channel's call timeout); it is never hedged. See
   * docs/streaming.md.
   *
   * @param method The method name.
   * @param params The arguments.
   * @param options Timeout, signal, metadata, `idempotent`, `input`.
   * @returns The items.
   *
   * @example Read a stream through a channel
   * ```ts
   * import { DistributedChannel, serve, StaticMembership } from "@zkrpc/zkrpc";
   * import assert from "node:assert/strict";
   *
   * await using server = serve({
   *   async *count(n: number) {
   *     for (let i = 0; i < n; i++) yield i;
   *   },
   * }, { hostname: "127.0.0.1" });
   * await using channel = new DistributedChannel({
   *   membership: new StaticMembership([{ host: "127.0.0.1", port: server.addr.port }]),
   * });
   * const items = [];
   * for await (const item of channel.stream("count", [3])) items.push(item);
   * assert.deepEqual(items, [0, 1, 2]);
   * ```
   */
  stream(
    method: string,
    params: unknown[] = [],
    options: ChannelStreamOptions = {},
  ): ReadableStream<unknown> {
    return streamThroughChannel(this, method, params, options);
  }

  /** Closes every connection and stops following membership. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unobserve();
    this.#readiness.wake();
    this.#membership.removeEventListener("change", this.#onChange);
    this.#membership.removeEventListener("state", this.#onState);
    this.#closing.abort(
      new Error(`the channel for service "${this.#service}" is closed`),
    );
    const probes = this.#detector.close();
    await this.#pool.close(this.#picker.retired);
    this.#picker.retired.clear();
    await probes;
    if (this.#ownsMembership) await this.#membership.close();
  }

  /** Same as {@linkcode DistributedChannel.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
