/**
 * The per-call context a handler can ask for, and {@linkcode withContext},
 * the way to ask for it.
 *
 * @module
 */

import type { CallContext } from "../_call_scope.ts";

export type { CallContext };

const CONTEXT_HANDLER: unique symbol = Symbol("zkrpc.contextHandler");

/**
 * Marks a handler that wants its call's {@linkcode CallContext} (to observe
 * cancellation, say): the server calls it with the context as the first
 * argument, then the caller's arguments. Other handlers get exactly the
 * caller's arguments, so default parameters work as written. Callers (and
 * {@linkcode Stub} types) see the function without the context.
 *
 * @typeParam A The caller's arguments.
 * @typeParam R The result.
 * @param fn The handler, taking the context first.
 * @returns A function to put in the handler object.
 *
 * @example A handler that stops when its call is cancelled
 * ```ts
 * import { Connection, serve, withContext } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const handlers = {
 *   count: withContext(async (ctx, to: number): Promise<number> => {
 *     let i = 0;
 *     while (i < to && !ctx.signal.aborted) {
 *       i++;
 *       await new Promise((r) => setTimeout(r, 0));
 *     }
 *     return i;
 *   }),
 * };
 * await using server = serve(handlers, { hostname: "127.0.0.1" });
 * await using conn = await Connection.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 * });
 * assert.equal(await conn.call("count", [3]), 3);
 * ```
 */
export function withContext<A extends unknown[], R>(
  fn: (ctx: CallContext, ...args: A) => R,
): (...args: A) => R {
  const local = function (this: unknown, ...args: A): R {
    const ctx: CallContext = {
      signal: new AbortController().signal,
      method: fn.name,
      remoteAddr: undefined,
      deadline: Infinity,
      metadata: {},
    };
    return fn.call(this, ctx, ...args);
  };
  return Object.assign(local, { [CONTEXT_HANDLER]: fn });
}

/**
 * Returns the function to call with a context first, if `fn` was made by
 * {@linkcode withContext}. Internal: the server uses it; `mod.ts` does not
 * export it.
 *
 * @param fn A handler.
 * @returns The wrapped function, or `undefined`.
 */
export function contextHandlerOf(
  fn: unknown,
): ((ctx: CallContext, ...args: unknown[]) => unknown) | undefined {
  return typeof fn === "function"
    ? (fn as { [CONTEXT_HANDLER]?: () => unknown })[CONTEXT_HANDLER]
    : undefined;
}
