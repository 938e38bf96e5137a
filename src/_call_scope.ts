/**
 * The call a handler is running for, so that calls made from inside it
 * inherit its deadline without passing the context along (gRPC's default).
 *
 * One `AsyncLocalStorage` is created the first time a server runs a handler
 * that takes a context (`withContext()`, or any handler when the server has
 * interceptors); until then a client's lookup is a single `undefined` check.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { type Deadline, deadlineFrom, NO_DEADLINE } from "./_deadline.ts";

/** What a nested call inherits from the call its handler runs for. */
export interface ParentCall {
  /**
   * When the parent's caller stops waiting (`Infinity`: never; `undefined`
   * is read as `Infinity`).
   */
  readonly deadline: Deadline | undefined;
}

/**
 * What a handler wrapped with `withContext()` receives as its first
 * argument.
 *
 * @example Reading the context in a handler
 * ```ts
 * import { withContext } from "@zkrpc/zkrpc";
 * import type { CallContext } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * function caller(ctx: CallContext): string {
 *   return ctx.remoteAddr?.hostname ?? "local";
 * }
 * const handlers = { caller: withContext(caller) };
 * assert.equal(handlers.caller(), "local");
 * ```
 */
export interface CallContext extends ParentCall {
  /**
   * Aborted when the client cancels the call (timeout or `AbortSignal`),
   * when its connection drops, when `close()` runs out of time, or at
   * `deadline` (with a `CancelledError`) even if the client's cancel
   * does not arrive.
   */
  readonly signal: AbortSignal;
  /** The method being called. */
  readonly method: string;
  /** The client's address; `undefined` when the handler is called locally. */
  readonly remoteAddr: Deno.NetAddr | undefined;
  /**
   * When the caller stops waiting, in epoch milliseconds (`Date.now()`
   * scale): the arrival time plus the remaining timeout the client sent in
   * the request header; `Infinity` when the call has no deadline (and for a
   * handler called locally). `signal` aborts at this instant; a handler may
   * also use it to give up early, and calls made inside the handler inherit
   * it.
   */
  readonly deadline: Deadline;
  /**
   * Metadata the client sent with the call (`CallOptions.metadata`): string
   * keys and values, at most `MAX_METADATA_SIZE` bytes. Empty when none.
   */
  readonly metadata: Readonly<Record<string, string>>;
}

let storage: AsyncLocalStorage<ParentCall> | undefined;

/**
 * Runs `fn` with `parent` as the current call.
 *
 * @param parent The call.
 * @param fn What to run.
 * @returns What `fn` returns.
 */
export function runAsParent<R>(parent: ParentCall, fn: () => R): R {
  return (storage ??= new AsyncLocalStorage()).run(parent, fn);
}

/**
 * The call whose handler is running, if any.
 *
 * @returns The call, or `undefined` outside a handler.
 */
export function currentParent(): ParentCall | undefined {
  return storage?.getStore();
}

/**
 * The deadline of a call made now with `timeout`: its own, capped by the
 * parent's deadline (`parent` `null`: no inheritance; `undefined`: the
 * running handler's call, if any).
 *
 * @param timeout The call's own timeout in ms (`Infinity`: none).
 * @param parent The explicit parent, `null`, or `undefined`.
 * @param now The current time in epoch ms.
 * @returns The deadline (may have passed when the parent's has).
 * @throws {RangeError} When `timeout` is not a valid timeout.
 */
export function inheritedDeadline(
  timeout: number,
  parent: ParentCall | null | undefined,
  now: number = Date.now(),
): Deadline {
  const from = parent === undefined ? storage?.getStore() : parent;
  return deadlineFrom(timeout, from?.deadline ?? NO_DEADLINE, now);
}

/**
 * The timeout a call may use: its own, capped by what is left of the
 * parent's deadline (`parent` `null`: no inheritance; `undefined`: the
 * running handler's call, if any). Kept for the channel until it carries a
 * `Deadline` (prefer {@linkcode inheritedDeadline}).
 *
 * @param timeout The call's own timeout in ms (`Infinity`: none).
 * @param parent The explicit parent, `null`, or `undefined`.
 * @returns The timeout in ms (may be <= 0 when the parent's deadline passed).
 */
export function inheritedTimeout(
  timeout: number,
  parent: ParentCall | null | undefined,
): number {
  const from = parent === undefined ? storage?.getStore() : parent;
  const deadline = from?.deadline ?? NO_DEADLINE;
  return Math.min(timeout, deadline - Date.now());
}
