/**
 * One call on a channel, as an object: its deadline, the endpoints it tried,
 * its attempts and hedges. The usual call (a first attempt on a ready
 * connection) and the retry loop are one code path: the first attempt runs
 * without the async machinery, and a failure continues in the loop with the
 * same object.
 *
 * @module
 */

import { STREAM_ATTEMPT, type StreamAttempt } from "./stream.ts";
import {
  type CallOptions,
  callPromise,
  callUnwrapped,
  type Connection,
  rejectWithCallerStack,
  resolvers,
  rethrowWithCallerStack,
  sendToSink,
} from "../client/connection.ts";
import {
  CancelledError,
  classify,
  ConnectionError,
  DeadlineExceededError,
  NoServersError,
} from "../errors.ts";
import { errorMessage } from "../_util.ts";
import { inheritedDeadline } from "../_call_scope.ts";
import {
  type ClientCall,
  type ClientInterceptor,
  runClientInterceptors,
} from "../_interceptors.ts";
import { deadline as raceDeadline } from "../_async.ts";
import { type Deadline, remaining } from "../_deadline.ts";
import type { AttemptPolicy } from "./attempt_policy.ts";
import { hedge, type HedgingPlan } from "./hedging.ts";
import type { Pick, Picker } from "./picker.ts";
import type { Subchannel } from "./subchannel.ts";

/**
 * What a channel lends its calls.
 *
 * @example The shape a channel provides
 * ```ts
 * import type { CallHost } from "./call.ts";
 * import assert from "node:assert/strict";
 *
 * const keys: (keyof CallHost)[] = ["picker", "policy", "waitForPick"];
 * assert.equal(keys.length, 3);
 * ```
 */
export interface CallHost {
  /** The service name, for messages. */
  readonly service: string;
  /** Chooses endpoints and hears outcomes. */
  readonly picker: Picker;
  /** Decides after a failed attempt. */
  readonly policy: AttemptPolicy;
  /** Interceptors around every attempt; `undefined` for none. */
  readonly interceptors: readonly ClientInterceptor[] | undefined;
  /** The channel's default timeout, in ms. */
  readonly timeout: number;
  /** `{ timeout }` shared by first attempts with the default timeout. */
  readonly defaultCallOptions: CallOptions;
  /** The methods idempotent unless a call's `idempotent` says otherwise. */
  readonly idempotent: ReadonlySet<string>;
  /** Whether calls may wait for a member, unless they say otherwise. */
  readonly waitForReady: boolean;
  /** Hedging of idempotent calls; `undefined` when off. */
  readonly hedging: HedgingPlan | undefined;
  /**
   * Waits for an endpoint until `call.deadline` (or gives up early, see the
   * channel's `waitForReady`).
   */
  waitForPick(call: ChannelCall, lastError: unknown): Promise<Pick>;
  /** Why no server can take a call, for error messages. */
  unavailable(lastError: unknown): string;
}

/**
 * The error a call (or wait) gets when its signal aborts it.
 *
 * @param what What was cancelled (`call method "x"`).
 * @param signal The signal.
 * @returns The error.
 *
 * @example
 * ```ts
 * import { cancelled } from "./call.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(cancelled("wait", undefined).message, "Cannot wait: cancelled");
 * ```
 */
export function cancelled(
  what: string,
  signal: AbortSignal | undefined,
): Error {
  return new CancelledError(`Cannot ${what}: cancelled`, {
    cause: signal?.reason,
  });
}

/**
 * A call's options when the caller gives none (read, never written): no
 * object per call.
 *
 * @example
 * ```ts
 * import { NO_OPTIONS } from "./call.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(Object.isFrozen(NO_OPTIONS));
 * ```
 */
export const NO_OPTIONS: CallOptions & { hedge?: boolean } = Object.freeze({});

// The clock read of the last callDeadline() ([0]) and the deadline it gave
// ([1], NaN once taken), for the ChannelCall run right after it with that
// deadline: its first attempt reads no clock again. Numbers in a typed
// array: no heap number per call.
const started = new Float64Array([0, NaN]);

/**
 * The deadline of a call that starts now: its `timeout` (default
 * `defaultTimeout`) within its parent's deadline; or, when that has
 * already passed, the `DeadlineExceededError` that refuses it unsent.
 *
 * @param method The method, for messages.
 * @param options The call's `timeout` and `parent`.
 * @param defaultTimeout The channel's timeout, in ms.
 * @returns The deadline, or the error.
 *
 * @example
 * ```ts
 * import { callDeadline } from "./call.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(callDeadline("m", { timeout: 0 }, 1000) instanceof Error);
 * assert.equal(typeof callDeadline("m", {}, 1000), "number");
 * ```
 */
export function callDeadline(
  method: string,
  options: CallOptions,
  defaultTimeout: number,
): Deadline | DeadlineExceededError {
  const now = Date.now();
  const deadline = inheritedDeadline(
    options.timeout ?? defaultTimeout,
    options.parent,
    now,
  );
  if (remaining(deadline, now) > 0) {
    started[0] = now;
    started[1] = deadline;
    return deadline;
  }
  started[1] = NaN;
  return new DeadlineExceededError(
    options.timeout === 0
      ? `Cannot call method "${method}": deadline of 0 ms exceeded (request not sent)`
      : `Cannot call method "${method}": the calling handler's deadline has passed`,
  );
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

/** What every attempt chain of one call shares. */
interface Shared {
  /** Endpoints tried (with hedging: also those in flight). */
  readonly tried: Set<string>;
  /** Attempts started so far, across hedges. */
  attempts: number;
}

/**
 * An attempt chain's state once it hedges or its first attempt fails (a
 * call that succeeds at once has none).
 */
interface Retries {
  readonly shared: Shared;
  /** The chain's signal: the call's, or its hedge's. */
  readonly signal: AbortSignal | undefined;
  /** Attempts of this chain that counted against `maxAttempts`. */
  counted: number;
  lastError: unknown;
  /** The number of this chain's current attempt in the call (from 1). */
  attempt: number;
}

/** The caller's options as a call reads them. */
type CallOptionsOf = CallOptions & {
  hedge?: boolean | undefined;
  idempotent?: boolean | undefined;
  waitForReady?: boolean | undefined;
};

/**
 * One call's attempts, one endpoint at a time, as the attempt policy
 * allows; with hedging, one `ChannelCall` per attempt chain, sharing the
 * tried set and the attempt count.
 *
 * @example A call needs a channel; see `DistributedChannel.call`
 * ```ts
 * import { ChannelCall } from "./call.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof ChannelCall.prototype.run, "function");
 * ```
 */
export class ChannelCall {
  /** The remote method. */
  readonly method: string;
  /** When the caller stops waiting. */
  readonly deadline: Deadline;
  #host: CallHost;
  #params: unknown[];
  #options: CallOptionsOf;
  /** `undefined` until the chain hedges or fails (no object per call). */
  #retries: Retries | undefined;
  /** The first attempt through the sink: its pick and the call's promise. */
  #pick: Pick | undefined = undefined;
  #resolve: (value: unknown) => void = resolvers.resolve;

  /**
   * @param host The channel.
   * @param method The remote method.
   * @param params Its arguments.
   * @param options The caller's options (`hedge`: whether to hedge this
   * call; `idempotent` and `waitForReady` default to the host's), read and
   * never written.
   * @param deadline The call's deadline (from `options`, see
   * {@linkcode callDeadline}).
   * @param hedge For one of a hedged call's chains: its signal, and the
   * state the chains share.
   */
  constructor(
    host: CallHost,
    method: string,
    params: unknown[],
    options: CallOptionsOf,
    deadline: Deadline,
    hedge?: { signal: AbortSignal; shared: Shared },
  ) {
    this.#host = host;
    this.method = method;
    this.#params = params;
    this.#options = options;
    this.deadline = deadline;
    this.#retries = hedge === undefined ? undefined : {
      shared: hedge.shared,
      signal: hedge.signal,
      counted: 0,
      lastError: undefined,
      attempt: 0,
    };
  }

  /** The call's (or this hedge's) signal. */
  get signal(): AbortSignal | undefined {
    const retries = this.#retries;
    return retries === undefined ? this.#options.signal : retries.signal;
  }

  /** Whether the call may wait for a member until its deadline. */
  get waitForReady(): boolean {
    return this.#options.waitForReady ?? this.#host.waitForReady;
  }

  /** Whether the method may run twice. */
  #idempotent(): boolean {
    return this.#options.idempotent ?? this.#host.idempotent.has(this.method);
  }

  /** The endpoints this call tried. */
  get tried(): ReadonlySet<string> | undefined {
    return this.#retries?.shared.tried;
  }

  /**
   * Runs the call: hedged when the channel hedges and the method is
   * idempotent (and `hedge` or the channel's hedging methods say so).
   *
   * @returns The remote result.
   */
  run(): Promise<unknown> {
    // callDeadline()'s clock read, when it gave this call's deadline.
    let now = 0;
    if (started[1] === this.deadline) {
      now = started[0]!;
      started[1] = NaN;
    }
    const hedging = this.#host.hedging;
    if (
      hedging === undefined || !this.#idempotent() ||
      !(this.#options.hedge ?? hedging.methods?.has(this.method) ?? true)
    ) return this.#first(now);
    const shared: Shared = { tried: new Set(), attempts: 0 };
    return hedge(
      (signal) =>
        new ChannelCall(
          this.#host,
          this.method,
          this.#params,
          this.#options,
          this.deadline,
          { signal, shared },
        ).#first(0),
      {
        delay: hedging.delay(),
        maxHedges: hedging.maxHedges,
        signal: this.signal,
        mayHedge: () =>
          Date.now() < this.deadline &&
          this.#host.picker.hasUntried(shared.tried) &&
          this.#host.policy.mayHedge(),
        isAnswer: settlesHedge,
      },
    ).then(undefined, rethrowWithCallerStack);
  }

  /**
   * A first attempt on a ready connection, without the async machinery of
   * the loop (a tenth of a call's cost); anything else continues there.
   *
   * @param now The call's start (callDeadline()'s clock read), or 0: read
   * the clock.
   */
  #first(now: number): Promise<unknown> {
    const pick = this.signal?.aborted
      ? undefined
      : this.#host.picker.pick(this.tried);
    const connection = pick?.subchannel.live;
    // Every promise of a call gives its errors the caller's frames.
    if (pick === undefined || connection === undefined) {
      return this.#loop(pick).then(undefined, rethrowWithCallerStack);
    }
    this.#started(pick);
    if (now === 0) now = Date.now();
    if (
      this.#host.interceptors === undefined &&
      (this.#options as { [STREAM_ATTEMPT]?: StreamAttempt })[
          STREAM_ATTEMPT
        ] === undefined
    ) return this.#sinkAttempt(pick, connection, now);
    let sent: Promise<unknown>;
    try {
      sent = this.#send(pick, connection, now);
    } catch (error) {
      sent = Promise.reject(error);
    }
    return sent.then((result) => {
      pick.onCallEnded("ok");
      return result;
    }, (error) => {
      this.#failed(pick, error);
      return this.#loop(undefined);
    }).then(undefined, rethrowWithCallerStack);
  }

  /**
   * The usual first attempt: the connection hands its outcome to this
   * object ({@linkcode ChannelCall.prototype.onValue} /
   * {@linkcode ChannelCall.prototype.onError}), which settles the one
   * promise of the call: no promise or reaction of the connection's.
   */
  #sinkAttempt(
    pick: Pick,
    connection: Connection,
    now: number,
  ): Promise<unknown> {
    const promise = callPromise();
    this.#resolve = resolvers.resolve;
    resolvers.clear();
    this.#pick = pick;
    let refused: Promise<unknown> | undefined;
    try {
      refused = sendToSink(
        connection,
        this.method,
        this.#params,
        this.#attemptOptions(now),
        now,
        this,
      );
    } catch (error) {
      refused = Promise.reject(error);
    }
    refused?.catch((error) => this.onError(error));
    return promise;
  }

  /**
   * The first attempt's result (called by the connection).
   *
   * @param value The result.
   */
  onValue(value: unknown): void {
    const pick = this.#pick!;
    this.#pick = undefined;
    try {
      pick.onCallEnded("ok");
    } catch (error) {
      // A subscriber's failure is the call's, as in a `then` callback.
      this.#fail(error);
      return;
    }
    this.#resolve(value);
  }

  /**
   * Why the first attempt failed (called by the connection): retried as
   * the policy allows, in the loop.
   *
   * @param error The attempt's error.
   */
  onError(error: unknown): void {
    const pick = this.#pick!;
    this.#pick = undefined;
    try {
      this.#failed(pick, error);
    } catch (final) {
      this.#fail(final);
      return;
    }
    this.#loop(undefined).then(this.#resolve, (error) => this.#fail(error));
  }

  /** Fails the first attempt's promise, with the caller's frames. */
  #fail(error: unknown): void {
    rejectWithCallerStack(this.#resolve, error);
  }

  /** Attempts until one answers or the policy gives up. */
  async #loop(chosen: Pick | undefined): Promise<unknown> {
    while (true) {
      if (this.signal?.aborted) {
        throw cancelled(`call method "${this.method}"`, this.signal);
      }
      const pick = chosen ?? this.#host.picker.pick(this.tried) ??
        await this.#host.waitForPick(this, this.#retries?.lastError);
      chosen = undefined;
      this.#started(pick);
      try {
        const connection = pick.subchannel.live ??
          await this.#connect(pick.subchannel);
        const result = await this.#send(pick, connection, Date.now());
        pick.onCallEnded("ok");
        return result;
      } catch (error) {
        this.#failed(pick, error);
      }
    }
  }

  /**
   * Numbers an attempt (none: the call's first); with hedging, keeps its
   * endpoint from the others.
   */
  #started(pick: Pick): void {
    const retries = this.#retries;
    if (retries === undefined) return;
    retries.attempt = ++retries.shared.attempts;
    retries.shared.tried.add(pick.subchannel.key);
  }

  /** The connection's options for an attempt that starts at `now`. */
  #attemptOptions(now: number): CallOptions {
    const host = this.#host;
    const options = this.#options;
    // What is left, relative: the connection's own deadline starts from it.
    const timeout = Math.max(1, remaining(this.deadline, now));
    // A first attempt with the default timeout and no signal, metadata or
    // parent shares one options object (at most 1 ms longer than its exact
    // remaining time). `parent` is always `null` otherwise: the channel
    // folded the inherited deadline in already, and a caller's
    // `parent: null` must not be undone by the connection looking up the
    // running handler again.
    let callOptions: CallOptions;
    if (
      options.metadata === undefined && this.signal === undefined &&
      options.timeout === undefined && options.parent === undefined &&
      timeout >= host.timeout - 1
    ) {
      callOptions = host.defaultCallOptions;
    } else {
      callOptions = { timeout, parent: null };
      // A copy: nothing done to one attempt reaches the caller or the next.
      if (options.metadata !== undefined) {
        callOptions.metadata = { ...options.metadata };
      }
      if (this.signal !== undefined) callOptions.signal = this.signal;
    }
    return callOptions;
  }

  /**
   * Sends one attempt on `connection`, through the interceptors if any.
   *
   * @param now When the attempt starts.
   */
  #send(pick: Pick, connection: Connection, now: number): Promise<unknown> {
    const host = this.#host;
    const options = this.#options;
    const callOptions = this.#attemptOptions(now);
    // A stream's attempt (channel.stream()): opened, not called.
    const stream = (options as { [STREAM_ATTEMPT]?: StreamAttempt })[
      STREAM_ATTEMPT
    ];
    if (host.interceptors === undefined) {
      // The channel's call() adds the caller's stack to errors.
      return stream === undefined
        ? callUnwrapped(
          connection,
          this.method,
          this.#params,
          callOptions,
          now,
        )
        : stream(
          connection,
          this.method,
          this.#params,
          callOptions,
          () => pick.answered(),
        );
    }
    // Copies: an interceptor's writes stay in this attempt.
    const params = this.#params;
    const call: ClientCall = {
      method: this.method,
      // (not an array: left to the connection's specific TypeError)
      params: Array.isArray(params) ? [...params] : params,
      metadata: { ...callOptions.metadata },
      timeout: callOptions.timeout ?? Infinity,
      attempt: this.#retries?.attempt ?? 1,
      target: pick.subchannel.key,
    };
    return runClientInterceptors(
      host.interceptors,
      call,
      callOptions.signal,
      (m, p, o) =>
        stream === undefined
          ? connection.call(m, p, o)
          : stream(connection, m, p, o, () => pick.answered()),
    );
  }

  /**
   * Ends a failed attempt and adds its endpoint to the tried set; throws
   * what the caller gets when the attempt policy allows no other attempt.
   */
  #failed(pick: Pick, error: unknown): void {
    const kind = classify(error);
    pick.onCallEnded(kind);
    // An answer, or the client's own error: nothing to retry.
    if (kind === "answered" || kind === "local") throw error;
    // The call's first attempt (attempt 1) failed: its chain's state now.
    const retries = this.#retries ??= {
      shared: { tried: new Set(), attempts: 1 },
      signal: this.#options.signal,
      counted: 0,
      lastError: undefined,
      attempt: 1,
    };
    const tried = retries.shared.tried;
    tried.add(pick.subchannel.key);
    const picker = this.#host.picker;
    const verdict = this.#host.policy.afterFailure(
      error,
      this.#idempotent(),
      retries.counted,
      picker.hasUntried(tried),
    );
    if (verdict === "final") throw error;
    if (verdict === "attempts" || verdict === "budget") {
      if (kind !== "not-run") throw error;
      const service = this.#host.service;
      const counted = retries.counted;
      throw new NoServersError(
        service,
        `Cannot call method "${this.method}": ${
          picker.hasUntried(tried)
            ? `no live servers for service "${service}"`
            : this.#host.unavailable(undefined)
        }: ${counted + 1} ${counted === 0 ? "attempt" : "attempts"} failed${
          verdict === "budget" ? " (retry budget exhausted)" : ""
        }, the last with: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    if (verdict === "retry") retries.counted++;
    retries.lastError = error;
  }

  /**
   * Waits for the endpoint's shared connection, no longer than the attempt
   * policy allows: a connect that fails is the endpoint's failure; one that
   * is only slow is left running for later calls while this call moves on.
   */
  async #connect(subchannel: Subchannel): Promise<Connection> {
    const host = this.#host;
    const left = remaining(this.deadline);
    const wait = host.policy.connectWait(
      left,
      host.picker.hasUntried(this.tried, subchannel),
    );
    const bySelf = wait >= host.policy.connectTimeout;
    const connecting = subchannel.connect().catch((error) => {
      host.picker.report(subchannel, "connect");
      throw error;
    });
    const method = `call method "${this.method}"`;
    try {
      return await raceDeadline(connecting, wait, { signal: this.signal });
    } catch (error) {
      if (this.signal?.aborted && error === this.signal.reason) {
        throw cancelled(method, this.signal);
      }
      if (!(error instanceof DOMException && error.name === "TimeoutError")) {
        throw error;
      }
      throw bySelf
        // The connect's own timeout ends it at the same time.
        ? new ConnectionError(
          `Cannot ${method}: no connection to ${subchannel.key} within ${wait} ms`,
          { written: false },
        )
        : wait >= left
        ? new DeadlineExceededError(
          `Cannot ${method}: deadline exceeded while connecting to ${subchannel.key}`,
        )
        : new ConnectionError(
          `Cannot ${method}: no connection to ${subchannel.key} within ${
            Math.round(wait)
          } ms (half the call's remaining time); trying another endpoint`,
          { written: false },
        );
    }
  }
}
