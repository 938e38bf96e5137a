/**
 * Typed proxies that make a remote call look local.
 *
 * @module
 */

import type { CallOptions } from "../client/connection.ts";
import { withCallerStack } from "../errors.ts";

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
 * Names that are never remote calls on a stub, whatever the handler type
 * says: the names JavaScript, Deno, Node and common libraries probe to
 * coerce, print, compare, serialise or await a value (`then`, `toString`,
 * `toJSON`, `valueOf`, `constructor`, `asymmetricMatch`, `$$typeof`,
 * `nodeType`...) and every property of `Object.prototype`. Every symbol is
 * inert too. A handler method with one of these names is called with
 * `caller.call(name, params)`.
 */
export const INERT_STUB_NAMES: ReadonlySet<string> = new Set([
  ...Object.getOwnPropertyNames(Object.prototype),
  // promises and thenables (`await stub`, Promise.resolve(stub))
  "then",
  "catch",
  "finally",
  // printing, serialising, comparing
  "toJSON",
  "prototype",
  "asymmetricMatch",
  "$$typeof",
  "nodeType",
  "tagName",
  "@@__IMMUTABLE_ITERABLE__@@",
  "@@__IMMUTABLE_RECORD__@@",
  "_isMockFunction",
]);

/**
 * The text a stub prints as: `Stub<service>` for a channel's stub,
 * `Stub<host:port>` for a connection's, else `Stub`.
 */
function stubLabel(caller: Caller): string {
  try {
    const { service, endpoint } = caller as {
      service?: unknown;
      endpoint?: { hostname?: unknown; port?: unknown };
    };
    if (typeof service === "string" && service !== "") {
      return `Stub<${service}>`;
    }
    if (typeof endpoint?.hostname === "string") {
      return `Stub<${endpoint.hostname}:${endpoint.port}>`;
    }
  } catch {
    // a caller with throwing getters prints plainly
  }
  return "Stub";
}

/**
 * The target behind a stub's proxy: the local answers to coercion (Deno's
 * inspect reads the target itself, without the proxy's traps).
 */
function stubTarget(label: string): object {
  const target = Object.create(null) as Record<PropertyKey, unknown>;
  const print = () => label;
  for (
    const key of [
      Symbol.toPrimitive,
      "toString",
      "toJSON",
      "toLocaleString",
      Symbol.for("Deno.customInspect"),
      Symbol.for("nodejs.util.inspect.custom"),
    ]
  ) {
    Object.defineProperty(target, key, { value: print });
  }
  Object.defineProperty(target, Symbol.toStringTag, { value: label });
  return target;
}

/**
 * Returns a typed proxy whose methods call `caller.call(name, args, options)`.
 *
 * A stub is inert to coercion: symbols, the names of `Object.prototype` and
 * the names runtimes and libraries probe (`then`, `catch`, `finally`,
 * `toJSON`, `asymmetricMatch`, `$$typeof`, `nodeType`...) are never
 * remote calls (call such a method with `caller.call(name, params)`), so `` `${stub}` ``,
 * `String(stub)`, `JSON.stringify(stub)`, `Deno.inspect(stub)`,
 * `console.log(stub)` and `await stub` work locally; a stub prints as
 * `Stub<service>` (`Stub<host:port>` for a connection's stub). It is not a
 * thenable, not iterable, and has no own enumerable keys.
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
 *   service: "calculator",
 *   call: (method: string, params: unknown[]) =>
 *     Promise.resolve(method === "divide" ? (params[0] as number) / (params[1] as number) : 0),
 * };
 * const calc = stub<typeof Handlers>(local);
 * assert.equal(await calc.divide(10, 2), 5);
 * assert.equal(`${calc}`, "Stub<calculator>"); // no remote call
 * assert.equal(await calc, calc); // not a thenable
 * ```
 */
export function stub<T>(caller: Caller, options: CallOptions = {}): Stub<T> {
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy(stubTarget(stubLabel(caller)) as Stub<T>, {
    get(target, property) {
      if (typeof property !== "string" || INERT_STUB_NAMES.has(property)) {
        return Reflect.get(target, property);
      }
      let method = methods.get(property);
      if (method === undefined) {
        method = async (...args) => {
          try {
            return await caller.call(property, args, options);
          } catch (error) {
            throw withCallerStack(error);
          }
        };
        methods.set(property, method);
      }
      return method;
    },
    has(target, property) {
      return typeof property === "string" && !INERT_STUB_NAMES.has(property)
        ? true
        : Reflect.has(target, property);
    },
  });
}
