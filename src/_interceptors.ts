/**
 * Interceptors: one composable shape, `(call, next) => Promise<result>`, on
 * both sides. The first interceptor of a list is the outermost: it runs
 * first and sees the outcome last.
 *
 * @module
 */

import { abortable, deadline, isTimeoutError } from "./_async.ts";
import { CancelledError, DeadlineExceededError } from "./errors.ts";
import type { CallContext } from "./_call_scope.ts";

/**
 * What a client interceptor sees of one attempt of a call. It may change
 * `params`, `metadata` and `timeout` before calling `next()`.
 *
 * @example A client call
 * ```ts
 * import type { ClientCall } from "./_interceptors.ts";
 * import assert from "node:assert/strict";
 *
 * const call: ClientCall = {
 *   method: "add",
 *   params: [1, 2],
 *   metadata: {},
 *   timeout: 1000,
 *   attempt: 1,
 *   target: "127.0.0.1:9001",
 * };
 * assert.equal(call.attempt, 1);
 * ```
 */
export interface ClientCall {
  /** The method called. */
  readonly method: string;
  /** The call's arguments (an interceptor may replace them). */
  params: unknown[];
  /** Metadata sent with the call (an interceptor may add entries). */
  metadata: Record<string, string>;
  /** Milliseconds the call may still take; `Infinity`: no deadline. */
  timeout: number;
  /**
   * 1 for a call's first attempt on a channel, 2 for its first retry... An
   * attempt whose connection could not be opened counts but is not
   * intercepted (nothing was sent). Always 1 on a `Connection`.
   */
  readonly attempt: number;
  /** `host:port` of the server the attempt goes to. */
  readonly target: string;
}

/**
 * A client interceptor: calls `next()` to go on (and gets the result or the
 * error), or returns/throws without calling it to short-circuit. The
 * caller's `signal` and timeout bound the whole chain: a call an interceptor
 * still holds when the caller aborts or the deadline passes ends at once
 * (`CancelledError` / `DeadlineExceededError`), and a later `next()` sends
 * nothing. Each attempt of a channel call gets its own copy of the caller's
 * `params` and `metadata`.
 *
 * @example Add a header and time the call
 * ```ts
 * import type { ClientInterceptor } from "./_interceptors.ts";
 *
 * export const timed: ClientInterceptor = async (call, next) => {
 *   call.metadata["tenant"] = "acme";
 *   const started = performance.now();
 *   try {
 *     return await next();
 *   } finally {
 *     console.log(call.method, performance.now() - started);
 *   }
 * };
 * ```
 */
export type ClientInterceptor = (
  call: ClientCall,
  next: () => Promise<unknown>,
) => Promise<unknown>;

/**
 * What a server interceptor sees of one handled call: the handler's
 * {@linkcode CallContext} and the decoded arguments.
 *
 * @example A server call
 * ```ts
 * import type { ServerCall } from "./_interceptors.ts";
 * import assert from "node:assert/strict";
 *
 * const call: ServerCall = {
 *   method: "add",
 *   params: [1, 2],
 *   metadata: {},
 *   deadline: Infinity,
 *   remoteAddr: undefined,
 *   signal: new AbortController().signal,
 * };
 * assert.equal(call.method, "add");
 * ```
 */
export interface ServerCall extends CallContext {
  /** The decoded arguments (an interceptor may replace them). */
  params: unknown[];
}

/**
 * A server interceptor: calls `next()` to run the handler (and gets its
 * result or error), or returns/throws without calling it to short-circuit.
 *
 * @example Refuse calls without a token
 * ```ts
 * import type { ServerInterceptor } from "./_interceptors.ts";
 *
 * export const auth: ServerInterceptor = (call, next) => {
 *   if (call.metadata["token"] !== "s3cret") {
 *     return Promise.reject(new Error("Cannot call: not authorised"));
 *   }
 *   return next();
 * };
 * ```
 */
export type ServerInterceptor = (
  call: ServerCall,
  next: () => Promise<unknown>,
) => Promise<unknown>;

/**
 * Composes interceptors around a terminal step; the first is outermost.
 *
 * @param interceptors The interceptors.
 * @param call The call they see.
 * @param last The terminal step (the handler, or the send).
 * @returns The outcome.
 */
export function runInterceptors<C>(
  interceptors:
    readonly ((call: C, next: () => Promise<unknown>) => Promise<unknown>)[],
  call: C,
  last: (call: C) => Promise<unknown>,
): Promise<unknown> {
  let index = -1;
  const dispatch = (i: number): Promise<unknown> => {
    if (i <= index) {
      return Promise.reject(
        new Error("Cannot intercept call: next() called more than once"),
      );
    }
    index = i;
    const interceptor = interceptors[i];
    try {
      return interceptor === undefined
        ? last(call)
        : Promise.resolve(interceptor(call, () => dispatch(i + 1)));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return dispatch(0);
}

/** What a client interceptor chain's last step sends. */
export interface SentOptions {
  timeout: number;
  metadata: Record<string, string>;
  parent: null;
  signal?: AbortSignal;
}

/** The longest timer the guard arms (a plain timer's range). */
const MAX_GUARD_TIMER = 0x7fff_ffff;

/**
 * Runs client interceptors around one send: the last step sends the call
 * as the interceptors left it (with the caller's `signal`, and no further
 * deadline inheritance: `timeout` already has it). The caller's signal and
 * timeout bound the whole chain, not only the send: an interceptor that is
 * still working (or hung) when the caller aborts or the deadline passes ends
 * the call with `CancelledError` / `DeadlineExceededError` at once, and a
 * `next()` called after that sends nothing.
 *
 * @param interceptors The interceptors.
 * @param call The call they see.
 * @param signal The caller's abort signal, if any.
 * @param send Sends the call.
 * @returns The outcome.
 */
export function runClientInterceptors(
  interceptors: readonly ClientInterceptor[],
  call: ClientCall,
  signal: AbortSignal | undefined,
  send: (
    method: string,
    params: unknown[],
    options: SentOptions,
  ) => Promise<unknown>,
): Promise<unknown> {
  const { method, timeout } = call;
  let ended: Error | undefined;
  const chain = runInterceptors(interceptors, call, (c) => {
    if (ended !== undefined) return Promise.reject(ended); // never sent
    const sent: SentOptions = {
      timeout: c.timeout,
      metadata: c.metadata,
      parent: null,
    };
    if (signal !== undefined) sent.signal = signal;
    return send(c.method, c.params, sent);
  });
  const timed = timeout <= MAX_GUARD_TIMER;
  if (signal === undefined && !timed) return chain;
  const guarded = timed
    ? deadline(chain, timeout, { signal })
    : abortable(chain, signal!);
  return guarded.catch((error) => {
    if (signal?.aborted && error === signal.reason) {
      throw ended = new CancelledError(
        `Cannot call method "${method}": cancelled`,
        { cause: signal.reason },
      );
    }
    if (isTimeoutError(error)) {
      throw ended = new DeadlineExceededError(
        `Cannot call method "${method}": deadline of ${timeout} ms exceeded`,
      );
    }
    throw error;
  });
}
