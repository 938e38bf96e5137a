/**
 * The per-call context a handler can ask for, and {@linkcode withContext},
 * the way to ask for it.
 *
 * @module
 */

/**
 * What a handler wrapped with {@linkcode withContext} receives as its first
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
export interface CallContext {
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
   * the request header. `undefined` when the call has no timeout. The server
   * does not enforce it; a handler may use it to give up early.
   */
  readonly deadline: number | undefined;
  /**
   * Metadata the client sent with the call (`CallOptions.metadata`): string
   * keys and values, at most `MAX_METADATA_SIZE` bytes. Empty when none.
   */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * The items the caller streams to this call (`input` in its
   * `connection.stream()` / `call()` options), read with `for await`, once;
   * `undefined` when the caller sent none. Reading it grants the caller
   * more items (flow control); it throws the call's abort reason when the
   * call is cancelled. See docs/streaming.md.
   */
  readonly input?: AsyncIterable<unknown> | undefined;
}

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
      deadline: undefined,
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
