/**
 * The discovery channel: membership -> pool -> balancer -> failover.
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
  Connection,
  type ConnectionCloseDetail,
  type ConnectionOptions,
} from "./connection.ts";
import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  type ErrorClass,
  ErrorRegistry,
  isRetriableBeforeSend,
  NoServersError,
  ServerClosingError,
} from "./errors.ts";
import { type MemberData, memberKey } from "./registry/member.ts";
import type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "./registry/membership.ts";
import {
  SessionKeeper,
  type SessionKeeperOptions,
} from "./registry/session_keeper.ts";
import { ZooKeeperMembership } from "./registry/zookeeper_membership.ts";
import { servicePath } from "./registry/zookeeper_registrar.ts";
import { RetryBudget, type RetryBudgetOptions } from "./retry_budget.ts";
import { type Stub, stub } from "./stub.ts";

/** The error a call (or wait) gets when its signal aborts it. */
function cancelled(what: string, signal: AbortSignal | undefined): Error {
  return new CancelledError(`Cannot ${what}: cancelled`, {
    cause: signal?.reason,
  });
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
 * };
 * assert.equal(options.service, "calculator"); // members under /rpc/calculator
 * ```
 */
export interface DistributedChannelOptions {
  /**
   * ZooKeeper connection string (`host:port[,host:port…][/chroot]`) or a
   * {@linkcode SessionKeeper} to share. Either this or `membership` is needed.
   */
  zookeeper?: string | SessionKeeper;
  /** Options for the channel's own ZooKeeper session. */
  session?: SessionKeeperOptions;
  /** The service to call; its members live under `<root>/<service>`. */
  service?: string;
  /** Root of the registry. @default "/rpc" */
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
  /** How to choose an endpoint. @default "random" */
  balancer?: BalancerName | Balancer;
  /** Default timeout of a call, in ms, including retries. @default 10000 */
  timeout?: number;
  /** Most endpoints one call is sent to (the first try included). @default 3 */
  maxAttempts?: number;
  /**
   * The retry budget shared by the channel's calls (gRPC-style throttling):
   * when failures outweigh successes, calls stop being retried.
   * @default {{ maxTokens: 100, tokenRatio: 0.1 }}
   */
  retryBudget?: RetryBudgetOptions;
  /**
   * Methods that are safe to run twice: a call that may have run when its
   * connection failed is retried elsewhere only for these.
   */
  idempotent?: Iterable<string>;
  /** First ejection period of a failing endpoint, in ms; doubles per failure. @default 250 */
  ejectionTime?: number;
  /** Longest ejection period, in ms. @default 30000 */
  maxEjectionTime?: number;
  /**
   * Called once per registered member whose data is unusable (not JSON, no
   * host or port); the member is skipped. @default console.warn
   */
  onInvalidMember?: (id: string, error: Error) => void;
  /** Options for each endpoint's connection (TLS, limits, keepalive). */
  connection?: ConnectionOptions;
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
}

/**
 * How an endpoint looks from the channel.
 *
 * @example Telling usable endpoints apart
 * ```ts
 * import type { EndpointState } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const usable = (state: EndpointState): boolean =>
 *   state === "idle" || state === "connected";
 * assert.ok(usable("idle"));
 * assert.ok(!usable("ejected"));
 * ```
 */
export type EndpointState = "idle" | "connected" | "ejected" | "draining";

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
  /** Consecutive connection failures. */
  failures: number;
}

interface Endpoint {
  readonly key: string;
  member: MemberData;
  ids: Set<string>;
  /** The connection being opened or open, shared by all calls. */
  connection: Promise<Connection> | undefined;
  /** The same connection once open, so calls skip an await. */
  live: Connection | undefined;
  inFlight: number;
  calls: number;
  failures: number;
  ejectedUntil: number;
  draining: boolean;
}

/**
 * A client for one service: it follows the service's members in ZooKeeper,
 * keeps one multiplexed connection per endpoint (opened lazily), picks an
 * endpoint per call with a balancer, and fails over.
 *
 * A call whose request was never written (connection refused or already
 * broken, server draining) moves to another endpoint at once. A call that may
 * have run is retried only for idempotent methods. A failing endpoint is
 * ejected for a period that doubles with each failure, then tried again.
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
  #ownedKeeper: SessionKeeper | undefined;
  #ownsMembership: boolean;
  #errors: ErrorRegistry;
  #balancer: Balancer;
  #timeout: number;
  #maxAttempts: number;
  #retryBudget: RetryBudget;
  #idempotent: Set<string>;
  #ejectionTime: number;
  #maxEjectionTime: number;
  #connectionOptions: ConnectionOptions;
  #endpoints = new Map<string, Endpoint>();
  /** `#endpoints`' values, rebuilt on membership changes only. */
  #endpointList: Endpoint[] = [];
  /** `{ timeout }` for a first attempt with the channel's default timeout. */
  #defaultCallOptions: CallOptions;
  #memberKeys = new Map<string, string>();
  #changed = new Set<() => void>();
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
    this.#errors = new ErrorRegistry().register(...(options.errors ?? []));
    this.#balancer = typeof options.balancer === "object"
      ? options.balancer
      : createBalancer(options.balancer ?? "random");
    this.#timeout = options.timeout ?? 10_000;
    this.#defaultCallOptions = { timeout: this.#timeout };
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#retryBudget = new RetryBudget(options.retryBudget);
    this.#idempotent = new Set(options.idempotent ?? []);
    this.#ejectionTime = options.ejectionTime ?? 250;
    this.#maxEjectionTime = options.maxEjectionTime ?? 30_000;
    this.#connectionOptions = {
      ...options.connection,
      errors: this.#errors,
    };
    this.#ownsMembership = options.membership === undefined;
    this.#membership = options.membership ?? this.#watch(options);
    this.#onChange = (event) => {
      this.#apply((event as CustomEvent<MembershipChange>).detail);
      this.dispatchEvent(
        new CustomEvent("change", {
          detail: (event as CustomEvent<MembershipChange>).detail,
        }),
      );
    };
    this.#onState = () => this.dispatchEvent(new Event("state"));
    this.#membership.addEventListener("change", this.#onChange);
    this.#membership.addEventListener("state", this.#onState);
    this.#apply({ added: this.#membership.members, removed: [] });
  }

  #watch(options: DistributedChannelOptions): Membership {
    if (options.zookeeper === undefined) {
      throw new TypeError(
        "Cannot create channel: give either `zookeeper` or `membership`",
      );
    }
    const path = servicePath(options);
    let keeper = options.zookeeper;
    if (typeof keeper === "string") {
      keeper = new SessionKeeper(keeper, options.session);
      this.#ownedKeeper = keeper;
    }
    return new ZooKeeperMembership(
      keeper,
      path,
      options.onInvalidMember
        ? { onInvalidMember: options.onInvalidMember }
        : {},
    );
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
    const now = Date.now();
    return [...this.#endpoints.values()].map((endpoint) => ({
      key: endpoint.key,
      member: endpoint.member,
      state: endpoint.draining
        ? "draining"
        : endpoint.ejectedUntil > now
        ? "ejected"
        : endpoint.connection
        ? "connected"
        : "idle",
      inFlight: endpoint.inFlight,
      calls: endpoint.calls,
      failures: endpoint.failures,
    }));
  }

  #apply(change: MembershipChange): void {
    for (const id of change.removed) {
      const key = this.#memberKeys.get(id);
      this.#memberKeys.delete(id);
      const endpoint = key === undefined ? undefined : this.#endpoints.get(key);
      if (endpoint === undefined) continue;
      endpoint.ids.delete(id);
      if (endpoint.ids.size === 0) this.#retire(endpoint);
    }
    for (const [id, member] of change.added) {
      const key = memberKey(member);
      this.#memberKeys.set(id, key);
      let endpoint = this.#endpoints.get(key);
      if (endpoint === undefined) {
        endpoint = {
          key,
          member,
          ids: new Set(),
          connection: undefined,
          live: undefined,
          inFlight: 0,
          calls: 0,
          failures: 0,
          ejectedUntil: 0,
          draining: false,
        };
        this.#endpoints.set(key, endpoint);
        this.#endpointList = [...this.#endpoints.values()];
      } else {
        // A new registration at the same address: a restarted server.
        endpoint.member = member;
        endpoint.draining = false;
        endpoint.ejectedUntil = 0;
        endpoint.failures = 0;
      }
      endpoint.ids.add(id);
    }
    for (const wake of this.#changed) wake();
  }

  /** Drops an endpoint that left; its connection closes once idle. */
  #retire(endpoint: Endpoint): void {
    this.#endpoints.delete(endpoint.key);
    this.#endpointList = [...this.#endpoints.values()];
    endpoint.draining = true;
    if (endpoint.inFlight === 0) this.#disconnect(endpoint);
  }

  #disconnect(endpoint: Endpoint): void {
    const connection = endpoint.connection;
    this.#forget(endpoint, connection);
    connection?.then((c) => c.close(), () => {});
  }

  /** Drops `connection` from the endpoint if it is still the current one. */
  #forget(
    endpoint: Endpoint,
    connection: Promise<Connection> | undefined,
  ): void {
    if (endpoint.connection !== connection) return;
    endpoint.connection = undefined;
    endpoint.live = undefined;
  }

  /**
   * Takes a failing endpoint out of rotation. Many calls fail together when
   * one connection breaks: only the first of them counts as a failure.
   */
  #eject(endpoint: Endpoint): void {
    this.#disconnect(endpoint);
    if (endpoint.ejectedUntil > Date.now()) return;
    endpoint.failures++;
    endpoint.ejectedUntil = Date.now() +
      Math.min(
        this.#ejectionTime * 2 ** (endpoint.failures - 1),
        this.#maxEjectionTime,
      );
  }

  /**
   * The endpoints a call may use now, preferring those it has not tried.
   * Without failures this is the cached list itself: no allocation per call.
   */
  #candidates(tried: ReadonlySet<string> | undefined): readonly Endpoint[] {
    const now = Date.now();
    const list = this.#endpointList;
    if (tried === undefined) {
      let allUsable = true;
      for (const endpoint of list) {
        if (endpoint.ejectedUntil > now) {
          allUsable = false;
          break;
        }
      }
      if (allUsable) return list;
    }
    const healthy = list.filter((endpoint) => endpoint.ejectedUntil <= now);
    const untried = healthy.filter((endpoint) => !tried?.has(endpoint.key));
    return untried.length > 0 ? untried : healthy;
  }

  /**
   * Waits until an endpoint may be usable: a membership change, the end of
   * an ejection, or the deadline.
   */
  #waitForEndpoint(
    what: string,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const now = Date.now();
    let wakeAt = deadline;
    for (const endpoint of this.#endpoints.values()) {
      if (endpoint.ejectedUntil > now) {
        wakeAt = Math.min(wakeAt, endpoint.ejectedUntil);
      }
    }
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#changed.delete(done);
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
      const timer = setTimeout(wake, Math.max(0, wakeAt - now));
      this.#changed.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #connect(endpoint: Endpoint): Promise<Connection> {
    if (endpoint.connection !== undefined) return endpoint.connection;
    const connection = Connection.connect(
      {
        hostname: endpoint.member.host,
        port: endpoint.member.port,
        tls: endpoint.member.tls === true,
      },
      this.#connectionOptions,
    ).catch((error) => {
      this.#forget(endpoint, connection);
      // Nothing was sent, whatever went wrong (refused, TLS, not zkrpc).
      throw isRetriableBeforeSend(error) ? error : new ConnectionError(
        `Cannot connect to ${endpoint.key}: ${(error as Error).message}`,
        { written: false, cause: error },
      );
    });
    endpoint.connection = connection;
    connection.then((c) => {
      if (endpoint.connection === connection) {
        endpoint.live = c;
        endpoint.draining = false; // it accepts connections again
      }
      c.addEventListener("goaway", () => {
        // New calls go elsewhere; after an ejection period the endpoint is
        // tried again, in case it came back at the same address.
        endpoint.draining = true;
        endpoint.ejectedUntil = Math.max(
          endpoint.ejectedUntil,
          Date.now() + this.#ejectionTime,
        );
        this.#forget(endpoint, connection);
      }, { once: true });
      c.addEventListener("close", (event) => {
        if (endpoint.connection !== connection) return;
        this.#forget(endpoint, connection);
        const { error } = (event as CustomEvent<ConnectionCloseDetail>).detail;
        if (error !== undefined && !this.#closed) this.#eject(endpoint);
      }, { once: true });
    }, () => {});
    return connection;
  }

  /**
   * Waits for the endpoint's shared connection, but no longer than the call's
   * deadline and signal allow (the connect itself goes on for later calls).
   */
  async #connectWithin(
    endpoint: Endpoint,
    method: string,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Connection> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        this.#connect(endpoint),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new DeadlineExceededError(
                  `Cannot call method "${method}": deadline exceeded while connecting to ${endpoint.key}`,
                ),
              ),
            Math.max(0, deadline - Date.now()),
          );
          onAbort = () => reject(cancelled(`call method "${method}"`, signal));
          signal?.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Resolves once at least one endpoint is known.
   *
   * @param options `timeout` in ms (default: the channel's) and `signal`.
   * @throws {NoServersError} When none appeared in time.
   */
  async ready(
    options: { timeout?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    const deadline = Date.now() + (options.timeout ?? this.#timeout);
    while (this.#endpoints.size === 0) {
      if (this.#closed) throw this.#closedError("wait for servers");
      if (Date.now() >= deadline) {
        throw new NoServersError(
          this.#service,
          `Cannot find servers: none registered for service "${this.#service}" (discovery ${this.state})`,
        );
      }
      await this.#waitForEndpoint("wait for servers", deadline, options.signal);
    }
  }

  /**
   * Calls `method` on one of the service's endpoints.
   *
   * @param method The remote method's name.
   * @param params Its arguments.
   * @param options Timeout (ms, default the channel's), `signal`, `idempotent`.
   * @returns The remote result.
   * @throws {NoServersError} When no endpoint was usable before the deadline.
   */
  async call(
    method: string,
    params: unknown[],
    options: ChannelCallOptions = {},
  ): Promise<unknown> {
    if (this.#closed) throw this.#closedError(`call method "${method}"`);
    const signal = options.signal;
    const deadline = Date.now() + (options.timeout ?? this.#timeout);
    let tried: Set<string> | undefined;
    let lastError: unknown;
    for (let attempt = 1;; attempt++) {
      if (signal?.aborted) throw cancelled(`call method "${method}"`, signal);
      const endpoint = this.#balancer.pick(this.#candidates(tried)) ??
        await this.#waitAndChoose(method, tried, deadline, lastError, signal);
      endpoint.inFlight++;
      try {
        const connection = endpoint.live ??
          await this.#connectWithin(endpoint, method, deadline, signal);
        const timeout = Math.max(1, deadline - Date.now());
        const result = await connection.call(
          method,
          params,
          // A first attempt with the default timeout shares one options
          // object (at most 1 ms longer than its exact remaining time).
          signal === undefined
            ? (options.timeout === undefined && timeout >= this.#timeout - 1
              ? this.#defaultCallOptions
              : { timeout })
            : { timeout, signal },
        );
        endpoint.failures = 0;
        endpoint.calls++;
        this.#retryBudget.earn();
        return result;
      } catch (error) {
        const idempotent = options.idempotent ??
          this.#idempotent.has(method);
        if (!this.#mayRetry(error, idempotent)) {
          if (!(error instanceof ConnectionError)) endpoint.calls++;
          throw error;
        }
        if (!(error instanceof ServerClosingError)) this.#eject(endpoint);
        lastError = error;
        (tried ??= new Set()).add(endpoint.key);
        const budgetLeft = this.#retryBudget.spend();
        if (attempt >= this.#maxAttempts || !budgetLeft) {
          throw isRetriableBeforeSend(error)
            ? new NoServersError(
              this.#service,
              `Cannot call method "${method}": no live servers for service "${this.#service}": ${attempt} ${
                attempt === 1 ? "attempt" : "attempts"
              } failed${
                budgetLeft ? "" : " (retry budget exhausted)"
              }, the last with: ${(error as Error).message}`,
              { cause: error },
            )
            : error;
        }
      } finally {
        endpoint.inFlight--;
        if (endpoint.inFlight === 0 && endpoint.ids.size === 0) {
          this.#disconnect(endpoint);
        }
      }
    }
  }

  #mayRetry(error: unknown, idempotent: boolean): boolean {
    return isRetriableBeforeSend(error) ||
      (idempotent && error instanceof ConnectionError);
  }

  /** Waits for a usable endpoint until the deadline. */
  async #waitAndChoose(
    method: string,
    tried: ReadonlySet<string> | undefined,
    deadline: number,
    lastError: unknown,
    signal: AbortSignal | undefined,
  ): Promise<Endpoint> {
    while (true) {
      if (this.#closed) throw this.#closedError(`call method "${method}"`);
      if (Date.now() >= deadline) {
        const known = this.#endpoints.size;
        throw new NoServersError(
          this.#service,
          known === 0
            ? `Cannot call method "${method}": no servers for service "${this.#service}" (discovery ${this.state})`
            : `Cannot call method "${method}": no live servers for service "${this.#service}": ${known} known, all failing`,
          lastError === undefined ? undefined : { cause: lastError },
        );
      }
      await this.#waitForEndpoint(`call method "${method}"`, deadline, signal);
      const endpoint = this.#balancer.pick(this.#candidates(tried));
      if (endpoint !== undefined) return endpoint;
    }
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
    for (const wake of this.#changed) wake();
    this.#membership.removeEventListener("change", this.#onChange);
    this.#membership.removeEventListener("state", this.#onState);
    const connections = [...this.#endpoints.values()].map((endpoint) =>
      endpoint.connection
    );
    for (const endpoint of this.#endpoints.values()) {
      this.#forget(endpoint, endpoint.connection);
    }
    this.#endpoints.clear();
    this.#endpointList = [];
    await Promise.all(connections.map(async (pending) => {
      const connection = await pending?.catch(() => undefined);
      connection?.close();
      await connection?.closed;
    }));
    if (this.#ownsMembership) await this.#membership.close();
    await this.#ownedKeeper?.close();
  }

  /** Same as {@linkcode DistributedChannel.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
