/**
 * The discovery channel, as glue: membership → subchannel pool → balancer →
 * attempt policy, with outlier detection watching the outcomes.
 *
 * @module
 */

import {
  type Balancer,
  type BalancerName,
  createBalancer,
} from "./balancer.ts";
import {
  type CallOptions,
  CHANNEL_OWNED,
  type Connection,
  type ConnectionOptions,
} from "../client/connection.ts";
import {
  CancelledError,
  classify,
  ConnectionError,
  DeadlineExceededError,
  type ErrorClass,
  ErrorRegistry,
  NoServersError,
  withCallerStack,
} from "../errors.ts";
import { type MemberData, memberKey } from "../discovery/member.ts";
import type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "../discovery/membership.ts";
import { connect, type SharedSession } from "../discovery/discovery.ts";
import { servicePath } from "../discovery/service_path.ts";
import type { SessionKeeperOptions } from "../discovery/session_options.ts";
import { RetryBudget, type RetryBudgetOptions } from "./retry_budget.ts";
import { type Stub, stub } from "./stub.ts";
import { errorMessage } from "../_util.ts";
import { printableMessage } from "../_printable.ts";
import { inheritedTimeout } from "../_call_scope.ts";
import {
  type ClientCall,
  type ClientInterceptor,
  runClientInterceptors,
} from "../_interceptors.ts";
import {
  channelCallTelemetry,
  clientTelemetry,
  observeChannel,
} from "../telemetry/telemetry.ts";
import {
  deadline as raceDeadline,
  isValidTimeout,
  setLongTimeout,
  timeoutError,
} from "../_async.ts";
import { DEFAULT_CONNECT_TIMEOUT } from "../client/_connect.ts";
import { CHANNEL_DEFAULTS } from "../_defaults.ts";
import { MemberAdmission } from "./admission.ts";
import { AttemptPolicy } from "./attempt_policy.ts";
import { hedge, type HedgingOptions, LatencyTracker } from "./hedging.ts";
import {
  type OutlierDetectionOptions,
  OutlierDetector,
} from "./outlier_detection.ts";
import { SubchannelPool } from "./pool.ts";
import type { EndpointState, Subchannel } from "./subchannel.ts";

/** One attempt in this many has its latency measured (see `#attempts`). */
const LATENCY_SAMPLE_EVERY = 8;

/** The error a call (or wait) gets when its signal aborts it. */
function cancelled(what: string, signal: AbortSignal | undefined): Error {
  return new CancelledError(`Cannot ${what}: cancelled`, {
    cause: signal?.reason,
  });
}

/**
 * An attempt's options on its connection. `parent` is always `null`: the
 * channel folded the inherited deadline into `timeout` already, and a
 * caller's `parent: null` must not be undone by the connection looking up
 * the running handler again. The caller's metadata is copied, so that
 * nothing done to one attempt's options reaches the caller or the next
 * attempt.
 */
function attemptOptions(
  timeout: number,
  signal: AbortSignal | undefined,
  metadata: Readonly<Record<string, string>> | undefined,
): CallOptions {
  const options: CallOptions = { timeout, parent: null };
  if (metadata !== undefined) options.metadata = { ...metadata };
  if (signal !== undefined) options.signal = signal;
  return options;
}

/**
 * Whether an attempt's error settles a hedged call at once: an answer from
 * a server, or the client's own error (the other attempts would fail the
 * same way). An attempt chain that ran out of endpoints or budget
 * (`NoServersError`) leaves the other attempts running.
 */
function settlesHedge(error: unknown): boolean {
  const kind = classify(error);
  return kind === "answered" ||
    (kind === "local" && !(error instanceof NoServersError));
}

/**
 * Options for {@linkcode DistributedChannel}.
 *
 * @example Options for a ZooKeeper-backed channel
 * ```ts
 * import type { DistributedChannelOptions } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const options: DistributedChannelOptions = {
 *   zookeeper: "127.0.0.1:2181",
 *   service: "calculator",
 *   balancer: "least-in-flight",
 *   idempotent: ["divide"],
 *   hedging: { delay: { percentile: 95 } },
 * };
 * assert.equal(options.service, "calculator"); // members under /rpc/calculator
 * ```
 */
export interface DistributedChannelOptions {
  /**
   * ZooKeeper connection string (`host:port[,host:port…][/chroot]`), or a
   * session to share (a `SessionKeeper` or `ZooKeeperDiscovery` from
   * `@zkrpc/zkrpc/zookeeper`). Either this or `membership` is needed.
   */
  zookeeper?: string | SharedSession;
  /** Options for the channel's own ZooKeeper session. */
  session?: SessionKeeperOptions;
  /** The service to call; its members live under `<root>/<service>`. */
  service?: string;
  /**
   * Root of the registry.
   *
   * @default {"/rpc"}
   */
  root?: string;
  /**
   * The exact path whose children are the members; overrides `root` and
   * `service` (e.g. `"/rpc"` for the seed tutorial's flat layout).
   */
  path?: string;
  /** A membership source to use instead of ZooKeeper (e.g. {@linkcode StaticMembership}). */
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
  /**
   * First ejection period of a failing endpoint, in ms; each ejection in a
   * row doubles it (±20 % jitter). After it, probes decide re-admission.
   * @default {250}
   */
  ejectionTime?: number;
  /**
   * Longest ejection period, in ms.
   *
   * @default {30000}
   */
  maxEjectionTime?: number;
  /** Thresholds of outlier detection and probing. */
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
   * Require TLS on every member. Implied by `connection.caCerts`. Members
   * whose data does not say `tls: true` are then skipped (with a warning
   * once per member) unless `allowPlaintext` is set.
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * With TLS required, still call members without TLS (a mixed fleet during
   * a migration). Every such member is warned about once.
   *
   * @default {false}
   */
  allowPlaintext?: boolean;
  /**
   * Called once per member the channel skips (no TLS where required, no
   * `--allow-net` permission for its address), once per plaintext member
   * allowed by `allowPlaintext`, and once per remote error name revived by
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
 * A client for one service: it follows the service's members in ZooKeeper,
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
 *
 * class InvalidOperation extends Error {}
 * await using channel = new DistributedChannel({
 *   zookeeper: "127.0.0.1:2181",
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
  /** Releases the registry opened for this channel (if it opened one). */
  #release: (() => Promise<void>) | undefined;
  #balancer: Balancer;
  #timeout: number;
  #idempotent: Set<string>;
  #policy: AttemptPolicy;
  #pool: SubchannelPool;
  #detector: OutlierDetector;
  #hedgeMethods: Set<string> | undefined;
  #hedging: boolean;
  #hedgeDelay: number | LatencyTracker;
  #maxHedges: number;
  #tracker: LatencyTracker | undefined;
  #attemptCount = 0;
  #waitForReady: boolean;
  #discoveryTimeout: number;
  #admission: MemberAdmission;
  #excluded = new Map<string, string>();
  #retired = new Set<Subchannel>();
  /** `{ timeout }` for a first attempt with the channel's default timeout. */
  #defaultCallOptions: CallOptions;
  #filter: ((member: MemberData) => boolean) | undefined;
  #interceptors: readonly ClientInterceptor[] | undefined;
  #unobserve: () => void;
  #traceCall:
    | ((method: string, run: () => Promise<unknown>) => Promise<unknown>)
    | undefined;
  #stateSince = Date.now();
  #changed = new Set<() => void>();
  #closing = new AbortController();
  #closed = false;
  #onChange: (event: Event) => void;
  #onState: () => void;

  /**
   * Starts following the service's membership.
   *
   * @param options Where to find members and how to call them.
   */
  constructor(options: DistributedChannelOptions) {
    super();
    this.#service = options.service ?? options.path ?? "static";
    const errors = new ErrorRegistry({
      ...(options.service ?? options.path ? { service: this.#service } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    }).register(...(options.errors ?? []));
    this.#balancer = typeof options.balancer === "object"
      ? options.balancer
      : createBalancer(options.balancer ?? "random");
    if (!isValidTimeout(options.timeout)) {
      throw timeoutError(options.timeout, "create channel");
    }
    this.#timeout = options.timeout ?? CHANNEL_DEFAULTS.timeout;
    this.#defaultCallOptions = { timeout: this.#timeout };
    this.#filter = options.filter;
    const interceptors = [
      ...clientTelemetry(this.#service),
      ...(options.interceptors ?? []),
    ];
    this.#interceptors = interceptors.length > 0 ? interceptors : undefined;
    this.#traceCall = channelCallTelemetry(this.#service);
    this.#idempotent = new Set(options.idempotent ?? []);
    const connectTimeout = options.connection?.connectTimeout ??
      DEFAULT_CONNECT_TIMEOUT;
    this.#policy = new AttemptPolicy(
      options.maxAttempts ?? CHANNEL_DEFAULTS.maxAttempts,
      new RetryBudget(options.retryBudget),
      connectTimeout,
    );
    const hedging = options.hedging === true
      ? {}
      : options.hedging || undefined;
    this.#hedging = hedging !== undefined;
    this.#hedgeMethods = hedging?.methods === undefined
      ? undefined
      : new Set(hedging.methods);
    const delay = hedging?.delay ??
      { percentile: CHANNEL_DEFAULTS.hedgePercentile };
    if (typeof delay === "number") {
      if (!(delay >= 0)) {
        throw new RangeError(
          `Cannot create channel: hedging delay must be >= 0 ms, got ${delay}`,
        );
      }
      this.#hedgeDelay = delay;
    } else {
      this.#tracker = hedging
        ? new LatencyTracker(delay.percentile)
        : undefined;
      this.#hedgeDelay = this.#tracker ?? 0;
    }
    this.#maxHedges = hedging?.maxHedges ?? CHANNEL_DEFAULTS.maxHedges;
    this.#waitForReady = options.waitForReady ?? false;
    this.#discoveryTimeout = options.discoveryTimeout ??
      CHANNEL_DEFAULTS.discoveryTimeout;
    this.#admission = new MemberAdmission({
      service: this.#service,
      tls: options.tls === true || options.connection?.caCerts !== undefined,
      allowPlaintext: options.allowPlaintext ?? false,
      warn: options.onWarning ??
        ((message) => console.warn(printableMessage(message))),
    });
    this.#pool = new SubchannelPool({
      ...options.connection,
      // Telemetry spans attempts here, not again on the connection.
      ...{ [CHANNEL_OWNED]: true } as ConnectionOptions,
      connectTimeout,
      errors,
      signal: this.#closing.signal,
    }, {
      onBroken: (subchannel) => {
        if (!this.#closed) this.#detector.failure(subchannel, "connect");
      },
      onGoaway: (subchannel) => this.#detector.drained(subchannel),
      onReregistered: (subchannel) => this.#detector.readmit(subchannel),
      onRetired: (subchannel) => {
        this.#detector.forget(subchannel);
        if (subchannel.candidate.inFlight === 0) subchannel.disconnect();
        else this.#retired.add(subchannel);
      },
    });
    this.#detector = new OutlierDetector(
      this.#pool,
      options.outlierDetection ?? {},
      options.ejectionTime ?? CHANNEL_DEFAULTS.ejectionTime,
      options.maxEjectionTime ?? CHANNEL_DEFAULTS.maxEjectionTime,
    );
    this.#ownsMembership = options.membership === undefined;
    this.#membership = options.membership ?? this.#watch(options);
    this.#onChange = (event) => {
      const detail = (event as CustomEvent<MembershipChange>).detail;
      this.#apply(detail);
      this.dispatchEvent(new CustomEvent("change", { detail }));
    };
    this.#onState = () => {
      this.#stateSince = Date.now();
      this.#wake();
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

  #watch(options: DistributedChannelOptions): Membership {
    if (options.zookeeper === undefined) {
      throw new TypeError(
        "Cannot create channel: give either `zookeeper` or `membership`",
      );
    }
    servicePath(options); // a malformed name fails before any connection
    const { discovery, release } = connect({
      zookeeper: options.zookeeper,
      session: options.session,
      root: options.root,
    });
    try {
      return discovery.membership(options.service ?? "", {
        path: options.path,
        onInvalidMember: options.onInvalidMember,
      });
    } catch (error) {
      release().catch(() => {});
      throw error;
    } finally {
      this.#release = release;
    }
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
    return [...this.#pool.subchannels()].map((subchannel) => ({
      key: subchannel.key,
      member: subchannel.member,
      state: subchannel.state,
      inFlight: subchannel.candidate.inFlight,
      calls: subchannel.calls,
      failures: subchannel.failures,
      ejections: subchannel.ejected ? subchannel.ejections : 0,
      latency: subchannel.candidate.latency,
    }));
  }

  #apply(change: MembershipChange): void {
    for (const id of change.removed) this.#excluded.delete(id);
    this.#pool.apply(change, this.#admit);
    this.#wake();
  }

  /** TLS policy and `--allow-net`: whether a joining member may be used. */
  #admit = (id: string, member: MemberData): boolean => {
    const reason = this.#filter !== undefined && !this.#filter(member)
      ? "excluded by the channel's filter"
      : this.#admission.refusal(member);
    if (reason === undefined) return true;
    this.#excluded.set(id, `${memberKey(member)}: ${reason}`);
    return false;
  };

  #wake(): void {
    for (const wake of this.#changed) wake();
  }

  /** Picks an endpoint for an attempt; `undefined` when none is known. */
  #choose(tried: ReadonlySet<string> | undefined): Subchannel | undefined {
    let list = this.#pool.usable;
    if (tried !== undefined && tried.size > 0) {
      const untried = list.filter((c) => !tried.has(c.key));
      if (untried.length > 0) list = untried;
    }
    if (list.length === 0) {
      // Every endpoint is ejected or draining: try the ejected ones anyway
      // rather than fail calls that might succeed (no self-inflicted outage).
      list = this.#pool.all.filter((c) => {
        const subchannel = this.#pool.of(c);
        return subchannel !== undefined && !subchannel.draining;
      });
      if (tried !== undefined && tried.size > 0) {
        const untried = list.filter((c) => !tried.has(c.key));
        if (untried.length > 0) list = untried;
      }
      if (list.length === 0) return undefined;
    }
    const candidate = list.length === 1
      ? list[0]!
      : this.#balancer.pick(list) ?? list[0]!;
    return this.#pool.of(candidate);
  }

  /** Whether an endpoint not in `tried` (and not draining) remains. */
  #hasUntried(tried: ReadonlySet<string> | undefined): boolean {
    for (const subchannel of this.#pool.subchannels()) {
      if (!subchannel.draining && !tried?.has(subchannel.key)) return true;
    }
    return false;
  }

  /**
   * Why no server can take a call, for error messages: registry
   * unreachable, no registered members, members excluded, or all failing.
   */
  #unavailable(lastError: unknown): string {
    const service = `service "${this.#service}"`;
    if (this.#pool.size > 0) {
      return `no live servers for ${service}: all ${this.#pool.size} ${
        this.#pool.size === 1 ? "member" : "members"
      } failing${
        lastError === undefined
          ? ""
          : ` (last error: ${errorMessage(lastError)})`
      }`;
    }
    if (this.#excluded.size > 0) {
      return `no usable servers for ${service}: all ${this.#excluded.size} ${
        this.#excluded.size === 1 ? "member is" : "members are"
      } skipped (${[...this.#excluded.values()][0]})`;
    }
    const state = this.state;
    if (state === "fresh") {
      const confirmed = this.lastConfirmed;
      return `no servers for ${service}: it has no registered members${
        confirmed ? ` (list confirmed at ${confirmed.toISOString()})` : ""
      }`;
    }
    if (state === "closed") {
      const why = this.#membership.lastError;
      return `no servers for ${service}: discovery closed${
        why === undefined ? "" : ` (${errorMessage(why)})`
      }`;
    }
    const since = this.#stateSince;
    const registry = this.#membership.source ?? "the membership source";
    const why = this.#membership.lastError;
    return `no servers for ${service}: ${registry} unreachable (discovery ${state} since ${
      new Date(since).toISOString()
    }, ${((Date.now() - since) / 1000).toFixed(1)} s ago${
      why === undefined ? "" : `; last attempt: ${errorMessage(why)}`
    })`;
  }

  /**
   * When a wait for members should give up though the caller's deadline is
   * later: at once for a confirmed-empty service, after `discoveryTimeout`
   * for a registry that has not answered. `Infinity` to wait on.
   */
  #giveUpAt(waitForReady: boolean): number {
    if (this.#pool.size > 0) return Infinity;
    const state = this.state;
    if (state === "closed") return 0;
    if (state === "fresh") return waitForReady ? Infinity : 0;
    return waitForReady ? Infinity : this.#stateSince + this.#discoveryTimeout;
  }

  /** Waits for a membership or discovery-state change, or `wakeAt`. */
  #waitForChange(
    what: string,
    wakeAt: number,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        timer.clear();
        this.#changed.delete(wake);
        signal?.removeEventListener("abort", onAbort);
      };
      const wake = () => {
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(cancelled(what, signal));
      };
      // Infinity (waitForReady, ready({ timeout: Infinity })): no timer.
      const timer = setLongTimeout(wake, wakeAt - Date.now());
      this.#changed.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

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
  async ready(
    options: { timeout?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (!isValidTimeout(options.timeout)) {
      throw timeoutError(options.timeout, "wait for servers");
    }
    const deadline = Date.now() + (options.timeout ?? this.#timeout);
    while (this.#pool.size === 0) {
      if (this.#closed) throw this.#closedError("wait for servers");
      // An explicit timeout is waited out; without one, an unreachable
      // registry fails after `discoveryTimeout`, not the channel's timeout.
      const giveUp = this.state === "fresh" || this.#excluded.size > 0 ||
          options.timeout !== undefined
        ? deadline
        : Math.min(deadline, this.#giveUpAt(false));
      if (Date.now() >= giveUp) {
        throw new NoServersError(
          this.#service,
          `Cannot find servers: ${this.#unavailable(undefined)}`,
        );
      }
      await this.#waitForChange("wait for servers", giveUp, options.signal);
    }
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
  async call(
    method: string,
    params: unknown[],
    options: ChannelCallOptions = {},
  ): Promise<unknown> {
    try {
      return await (this.#traceCall === undefined
        ? this.#call(method, params, options)
        : this.#traceCall(method, () => this.#call(method, params, options)));
    } catch (error) {
      // Created in the read loop or a timer: give it the caller's frames.
      throw withCallerStack(error);
    }
  }

  #call(
    method: string,
    params: unknown[],
    options: ChannelCallOptions,
  ): Promise<unknown> {
    if (!isValidTimeout(options.timeout)) {
      return Promise.reject(
        timeoutError(options.timeout, `call method "${method}"`),
      );
    }
    if (this.#closed) {
      return Promise.reject(this.#closedError(`call method "${method}"`));
    }
    const timeout = inheritedTimeout(
      options.timeout ?? this.#timeout,
      options.parent,
    );
    if (timeout <= 0) {
      return Promise.reject(
        new DeadlineExceededError(
          options.timeout === 0
            ? `Cannot call method "${method}": deadline of 0 ms exceeded (request not sent)`
            : `Cannot call method "${method}": the calling handler's deadline has passed`,
        ),
      );
    }
    const deadline = Date.now() + timeout;
    const idempotent = options.idempotent ?? this.#idempotent.has(method);
    if (
      this.#hedging && idempotent &&
      (options.hedge ?? this.#hedgeMethods?.has(method) ?? true)
    ) {
      return this.#hedged(method, params, options, deadline);
    }
    // The usual call: a first attempt on a ready connection, without the
    // async machinery of #attempts (a tenth of a call's cost); a failure
    // continues there.
    const subchannel = options.signal?.aborted ? undefined : this.#choose(
      undefined,
    );
    const connection = subchannel?.live;
    if (subchannel === undefined || connection === undefined) {
      return this.#attempts(
        method,
        params,
        options,
        deadline,
        idempotent,
        options.signal,
        undefined,
        undefined,
        subchannel,
      );
    }
    const started = this.#startAttempt(subchannel);
    let sent: Promise<unknown>;
    try {
      sent = this.#send(
        connection,
        subchannel,
        method,
        params,
        options,
        deadline,
        options.signal,
        1,
      );
    } catch (error) {
      sent = Promise.reject(error);
    }
    return sent.then((result) => {
      this.#attemptSucceeded(subchannel, started);
      this.#endAttempt(subchannel);
      return result;
    }, (error) => {
      this.#endAttempt(subchannel);
      const tried = new Set<string>();
      const counted = this.#afterFailure(
          error,
          subchannel,
          started,
          method,
          idempotent,
          0,
          tried,
        )
        ? 1
        : 0;
      return this.#attempts(
        method,
        params,
        options,
        deadline,
        idempotent,
        options.signal,
        undefined,
        { tried, counted, attempt: 1, lastError: error },
      );
    });
  }

  /** Counts an attempt in flight; returns its start time, or -1 unsampled. */
  #startAttempt(subchannel: Subchannel): number {
    const candidate = subchannel.candidate;
    candidate.inFlight++;
    // A clock read costs a few percent of a call: latency is sampled on one
    // attempt in LATENCY_SAMPLE_EVERY, on every attempt while the endpoint
    // has none yet, and on all when hedging needs the spread.
    return this.#tracker !== undefined || candidate.latency === undefined ||
        ++this.#attemptCount % LATENCY_SAMPLE_EVERY === 0
      ? performance.now()
      : -1;
  }

  /** Books an answered attempt. */
  #attemptSucceeded(subchannel: Subchannel, started: number): void {
    const latency = started < 0 ? undefined : performance.now() - started;
    subchannel.succeeded(latency);
    if (latency !== undefined) this.#tracker?.record(latency);
    this.#policy.succeeded();
  }

  /** Ends an attempt, answered or not; lets a retired endpoint go. */
  #endAttempt(subchannel: Subchannel): void {
    const candidate = subchannel.candidate;
    candidate.inFlight--;
    if (subchannel.retired && candidate.inFlight === 0) {
      this.#retired.delete(subchannel);
      subchannel.disconnect();
    }
  }

  /**
   * One call's attempts, one endpoint at a time, as the attempt policy
   * allows. `shared` is the tried set of a hedged call's attempts; `resume`
   * continues after a first attempt made by `#call`; `chosen` is the
   * endpoint `#call` picked for the first attempt.
   */
  async #attempts(
    method: string,
    params: unknown[],
    options: ChannelCallOptions,
    deadline: number,
    idempotent: boolean,
    signal: AbortSignal | undefined,
    shared: Set<string> | undefined,
    resume?: {
      tried: Set<string>;
      counted: number;
      attempt: number;
      lastError: unknown;
    },
    chosen?: Subchannel,
  ): Promise<unknown> {
    let tried = resume?.tried ?? shared;
    let counted = resume?.counted ?? 0;
    let attempt = resume?.attempt ?? 0;
    let lastError: unknown = resume?.lastError;
    while (true) {
      if (signal?.aborted) throw cancelled(`call method "${method}"`, signal);
      const subchannel = chosen ?? this.#choose(tried) ??
        await this.#waitAndChoose(method, tried, deadline, lastError, {
          signal,
          waitForReady: options.waitForReady ?? this.#waitForReady,
        });
      chosen = undefined;
      shared?.add(subchannel.key);
      attempt++;
      const started = this.#startAttempt(subchannel);
      try {
        const connection = subchannel.live ??
          await this.#connectWithin(
            subchannel,
            method,
            deadline,
            signal,
            tried,
          );
        const result = await this.#send(
          connection,
          subchannel,
          method,
          params,
          options,
          deadline,
          signal,
          attempt,
        );
        this.#attemptSucceeded(subchannel, started);
        return result;
      } catch (error) {
        tried ??= new Set();
        if (
          this.#afterFailure(
            error,
            subchannel,
            started,
            method,
            idempotent,
            counted,
            tried,
          )
        ) counted++;
        lastError = error;
      } finally {
        this.#endAttempt(subchannel);
      }
    }
  }

  /** Sends one attempt on `connection`, through the interceptors if any. */
  #send(
    connection: Connection,
    subchannel: Subchannel,
    method: string,
    params: unknown[],
    options: ChannelCallOptions,
    deadline: number,
    signal: AbortSignal | undefined,
    attempt: number,
  ): Promise<unknown> {
    const timeout = Math.max(1, deadline - Date.now());
    // A first attempt with the default timeout and no signal, metadata or
    // parent shares one options object (at most 1 ms longer than its exact
    // remaining time; the connection's own lookup of the running handler's
    // deadline then finds what the channel already applied).
    const callOptions: CallOptions = options.metadata === undefined &&
        signal === undefined && options.timeout === undefined &&
        options.parent === undefined && timeout >= this.#timeout - 1
      ? this.#defaultCallOptions
      : attemptOptions(timeout, signal, options.metadata);
    return this.#interceptors === undefined
      ? connection.call(method, params, callOptions)
      : this.#intercept(
        this.#interceptors,
        connection,
        subchannel.key,
        method,
        params,
        callOptions,
        attempt,
      );
  }

  /**
   * Books a failed attempt (`started` as in `#attempts`) and adds its
   * endpoint to `tried`; throws what the caller gets when the attempt policy
   * allows no other attempt.
   *
   * @returns Whether the next attempt counts against `maxAttempts`.
   */
  #afterFailure(
    error: unknown,
    subchannel: Subchannel,
    started: number,
    method: string,
    idempotent: boolean,
    counted: number,
    tried: Set<string>,
  ): boolean {
    const kind = classify(error);
    if (kind === "answered") {
      subchannel.succeeded(
        started < 0 ? undefined : performance.now() - started,
      );
      throw error;
    }
    // The client's own error says nothing of the endpoint: no success.
    if (kind === "local") throw error;
    if (kind === "deadline" || kind === "may-have-run") {
      this.#detector.failure(subchannel, "call");
    }
    tried.add(subchannel.key);
    const verdict = this.#policy.afterFailure(
      error,
      idempotent,
      counted,
      this.#hasUntried(tried),
    );
    if (verdict === "final") throw error;
    if (verdict === "attempts" || verdict === "budget") {
      throw kind === "not-run"
        ? new NoServersError(
          this.#service,
          `Cannot call method "${method}": ${
            this.#hasUntried(tried)
              ? `no live servers for service "${this.#service}"`
              : this.#unavailable(undefined)
          }: ${counted + 1} ${counted === 0 ? "attempt" : "attempts"} failed${
            verdict === "budget" ? " (retry budget exhausted)" : ""
          }, the last with: ${errorMessage(error)}`,
          { cause: error },
        )
        : error;
    }
    return verdict === "retry";
  }

  /** One attempt through the channel's interceptors. */
  #intercept(
    interceptors: readonly ClientInterceptor[],
    connection: Connection,
    target: string,
    method: string,
    params: unknown[],
    options: CallOptions,
    attempt: number,
  ): Promise<unknown> {
    // Copies: an interceptor's writes stay in this attempt.
    const call: ClientCall = {
      method,
      // (not an array: left to the connection's specific TypeError)
      params: Array.isArray(params) ? [...params] : params,
      metadata: { ...options.metadata },
      timeout: options.timeout ?? Infinity,
      attempt,
      target,
    };
    return runClientInterceptors(
      interceptors,
      call,
      options.signal,
      (m, p, o) => connection.call(m, p, o),
    );
  }

  /**
   * Waits for the endpoint's shared connection, no longer than the attempt
   * policy allows: a connect that fails is the endpoint's failure; one that
   * is only slow is left running for later calls while this call moves on.
   */
  async #connectWithin(
    subchannel: Subchannel,
    method: string,
    deadline: number,
    signal: AbortSignal | undefined,
    tried: ReadonlySet<string> | undefined,
  ): Promise<Connection> {
    const remaining = deadline - Date.now();
    let alternatives = false;
    for (const other of this.#pool.subchannels()) {
      if (
        other !== subchannel && !other.draining && !tried?.has(other.key)
      ) {
        alternatives = true;
        break;
      }
    }
    const wait = this.#policy.connectWait(remaining, alternatives);
    const bySelf = wait >= this.#policy.connectTimeout;
    const connecting = subchannel.connect().catch((error) => {
      this.#detector.failure(subchannel, "connect");
      throw error;
    });
    try {
      return await raceDeadline(connecting, wait, { signal });
    } catch (error) {
      if (signal?.aborted && error === signal.reason) {
        throw cancelled(`call method "${method}"`, signal);
      }
      if (!(error instanceof DOMException && error.name === "TimeoutError")) {
        throw error;
      }
      throw bySelf
        // The connect's own timeout ends it at the same time.
        ? new ConnectionError(
          `Cannot call method "${method}": no connection to ${subchannel.key} within ${wait} ms`,
          { written: false },
        )
        : wait >= remaining
        ? new DeadlineExceededError(
          `Cannot call method "${method}": deadline exceeded while connecting to ${subchannel.key}`,
        )
        : new ConnectionError(
          `Cannot call method "${method}": no connection to ${subchannel.key} within ${
            Math.round(wait)
          } ms (half the call's remaining time); trying another endpoint`,
          { written: false },
        );
    }
  }

  /** Waits for a usable endpoint until the deadline (or gives up early). */
  async #waitAndChoose(
    method: string,
    tried: ReadonlySet<string> | undefined,
    deadline: number,
    lastError: unknown,
    options: { signal: AbortSignal | undefined; waitForReady: boolean },
  ): Promise<Subchannel> {
    const what = `call method "${method}"`;
    while (true) {
      if (this.#closed) throw this.#closedError(what);
      const giveUp = Math.min(deadline, this.#giveUpAt(options.waitForReady));
      if (Date.now() >= giveUp) {
        throw new NoServersError(
          this.#service,
          `Cannot ${what}: ${this.#unavailable(lastError)}`,
          lastError === undefined ? undefined : { cause: lastError },
        );
      }
      await this.#waitForChange(what, giveUp, options.signal);
      const subchannel = this.#choose(tried);
      if (subchannel !== undefined) return subchannel;
    }
  }

  /**
   * A hedged call: attempt chains on distinct endpoints (they share one
   * tried set), a new one after the hedging delay while the call has time,
   * an untried endpoint and retry budget.
   */
  #hedged(
    method: string,
    params: unknown[],
    options: ChannelCallOptions,
    deadline: number,
  ): Promise<unknown> {
    const tried = new Set<string>();
    return hedge(
      (signal) =>
        this.#attempts(method, params, options, deadline, true, signal, tried),
      {
        delay: typeof this.#hedgeDelay === "number"
          ? this.#hedgeDelay
          : this.#hedgeDelay.value(),
        maxHedges: this.#maxHedges,
        signal: options.signal,
        mayHedge: () =>
          Date.now() < deadline && this.#hasUntried(tried) &&
          this.#policy.mayHedge(),
        isAnswer: settlesHedge,
      },
    );
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

  /** Closes every connection and stops following membership. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unobserve();
    this.#wake();
    this.#membership.removeEventListener("change", this.#onChange);
    this.#membership.removeEventListener("state", this.#onState);
    this.#closing.abort(
      new Error(`the channel for service "${this.#service}" is closed`),
    );
    const probes = this.#detector.close();
    await this.#pool.close(this.#retired);
    this.#retired.clear();
    await probes;
    if (this.#ownsMembership) await this.#membership.close();
    await this.#release?.();
  }

  /** Same as {@linkcode DistributedChannel.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
