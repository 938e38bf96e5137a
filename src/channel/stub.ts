/**
 * Typed proxies that make a remote call look local.
 *
 * @module
 */

import type { CallOptions } from "../client/connection.ts";

/**
 * Anything that can make a call: a {@linkcode DistributedChannel} or a `Connection`.
 *
 * @example A caller that answers locally
 * ```ts
 * import type { Caller } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const echo: Caller = {
 *   call: (method, params) => Promise.resolve(`${method}(${params.join(", ")})`),
 * };
 * assert.equal(await echo.call("add", [1, 2]), "add(1, 2)");
 * ```
 */
export interface Caller {
  /** Calls `method` with `params` remotely. */
  call(
    method: string,
    params: unknown[],
    options?: CallOptions,
  ): Promise<unknown>;
}

/**
 * The remote view of a handler type `T`: every method returns a promise of its
 * awaited result.
 *
 * @typeParam T The handler type (a class's static side or an object type).
 *
 * @example Typing a remote handler
 * ```ts
 * import { stub } from "@zkrpc/zkrpc";
 * import type { Stub } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * type Calculator = { divide(a: number, b: number): number };
 * const calc: Stub<Calculator> = stub<Calculator>({
 *   call: (_method, params) =>
 *     Promise.resolve((params[0] as number) / (params[1] as number)),
 * });
 * assert.equal(await calc.divide(10, 2), 5);
 * ```
 */
export type Stub<T> = {
  readonly [
    // deno-lint-ignore no-explicit-any
    K in keyof T as T[K] extends (...args: any[]) => unknown ? K : never
  ]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/**
 * Returns a typed proxy whose methods call `caller.call(name, args, options)`.
 *
 * @typeParam T The handler type, e.g. `typeof Handlers` for a class with
 * static methods.
 * @param caller The channel or connection that carries the calls.
 * @param options Call options applied to every call (timeout, signal).
 * @returns The proxy.
 *
 * @example Calling through a stub
 * ```ts
 * import { stub } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * class Handlers {
 *   static divide(a: number, b: number): number {
 *     return a / b;
 *   }
 * }
 * const local = {
 *   call: (method: string, params: unknown[]) =>
 *     Promise.resolve(method === "divide" ? (params[0] as number) / (params[1] as number) : 0),
 * };
 * const calc = stub<typeof Handlers>(local);
 * assert.equal(await calc.divide(10, 2), 5);
 * ```
 */
export function stub<T>(caller: Caller, options: CallOptions = {}): Stub<T> {
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy({} as Stub<T>, {
    get(_target, property) {
      // `then` must be absent so that a stub is not mistaken for a promise.
      if (typeof property !== "string" || property === "then") return undefined;
      let method = methods.get(property);
      if (method === undefined) {
        method = (...args) => caller.call(property, args, options);
        methods.set(property, method);
      }
      return method;
    },
  });
}
