/**
 * The handler-method table of a server: which of a handler object's
 * properties are callable (function properties along its prototype chain,
 * never the names of `Object.prototype` / `Function.prototype`, `then` or
 * `_`-prefixed ones), lookup of a request's method
 * by its raw UTF-8 name bytes, and the built-in `zkrpc.describe` method.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";
import { contextHandlerOf } from "./call_context.ts";

// Names never callable, even when a handler object defines them itself.
const DENIED: ReadonlySet<string> = new Set([
  ...Object.getOwnPropertyNames(Object.prototype),
  ...Object.getOwnPropertyNames(Function.prototype),
  "prototype",
  "constructor",
  "__proto__",
  "length",
  "name",
  "caller",
  "arguments",
]);

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The reserved name of the built-in method every server answers with its
 * {@linkcode ServiceDescription}. Method names starting with `zkrpc.` are
 * zkrpc's own: `serve()` refuses handler methods named like that.
 *
 * @example Describing a server
 * ```ts
 * import { Connection, serve } from "@zkrpc/zkrpc";
 * import { DESCRIBE_METHOD, type ServiceDescription } from "@zkrpc/zkrpc/protocol";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ add: (a: number, b: number) => a + b }, {
 *   hostname: "127.0.0.1",
 * });
 * await using conn = await Connection.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 * });
 * const description = await conn.call(DESCRIBE_METHOD, []) as ServiceDescription;
 * assert.deepEqual(description.methods, [{ name: "add", params: 2 }]);
 * ```
 */
export const DESCRIBE_METHOD = "zkrpc.describe";

/**
 * The name of the health method every server answers: `[service?]` ->
 * `{ status: "serving" | "not-serving" | "unknown" }`.
 *
 * @example Ask a server whether it serves
 * ```ts
 * import { serve } from "@zkrpc/zkrpc";
 * import { HEALTH_METHOD } from "@zkrpc/zkrpc/protocol";
 * import { Connection } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ ok: () => true }, { hostname: "127.0.0.1" });
 * await using conn = await Connection.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 * });
 * assert.deepEqual(await conn.call(HEALTH_METHOD, []), { status: "serving" });
 * ```
 */
export const HEALTH_METHOD = "zkrpc.health";

/** What {@linkcode HEALTH_METHOD} answers. */
export type HealthStatus = "serving" | "not-serving" | "unknown";

/** Method names starting with this are reserved for zkrpc. */
const RESERVED_PREFIX = "zkrpc.";

/**
 * One callable method, as {@linkcode DESCRIBE_METHOD} reports it.
 *
 * @example Reading a method's parameter count
 * ```ts
 * import type { MethodDescription } from "@zkrpc/zkrpc/protocol";
 * import assert from "node:assert/strict";
 *
 * const divide: MethodDescription = { name: "divide", params: 2 };
 * assert.ok([10].length < divide.params, "a missing argument");
 * ```
 */
export interface MethodDescription {
  /** The method name. */
  name: string;
  /**
   * The handler's declared parameter count (`fn.length`; for a
   * `withContext()` handler, without the context). JavaScript counts the
   * parameters before the first one with a default value or a rest
   * parameter, so this is a **minimum**: `(a, b = 1)` and `(a, ...rest)`
   * report 1 and accept more. A TypeScript optional parameter (`b?: number`)
   * has no default at run time and counts.
   */
  params: number;
}

/**
 * What a server answers to {@linkcode DESCRIBE_METHOD}: what a client needs
 * to call it, and nothing about the process (no pid, start time, host or
 * registry data: the registry's member data is where a client finds those).
 *
 * @example The description of the seed's calculator
 * ```ts
 * import type { ServiceDescription } from "@zkrpc/zkrpc/protocol";
 * import assert from "node:assert/strict";
 *
 * const description: ServiceDescription = {
 *   protocol: 2,
 *   codec: "json",
 *   methods: [{ name: "divide", params: 2 }],
 * };
 * assert.equal(description.methods[0]?.name, "divide");
 * ```
 */
export interface ServiceDescription {
  /** The wire protocol version the server speaks. */
  protocol: number;
  /** The server's payload codecs, preferred first (`msgpack, json` by default). */
  codec: string;
  /**
   * The callable methods: the object's own first, then its class's, then
   * each superclass's, each in definition order.
   */
  methods: MethodDescription[];
}

/** Any handler function. */
// deno-lint-ignore no-explicit-any
export type AnyFunction = (...args: any[]) => unknown;

const GeneratorFunction = Object.getPrototypeOf(function* () {});
const functionSource = Function.prototype.toString;

/**
 * The prototypes of the platform's classes (`EventTarget`, `Array`, `Map`,
 * `Error`...): the global constructors' `prototype`, read once, from data
 * properties only (no global getter is run).
 */
let platformPrototypes: Set<unknown> | undefined;

/**
 * Whether `proto` is a built-in prototype (`Object.prototype`,
 * `Function.prototype`, a global class's prototype, or one whose
 * `constructor` is native code). The scan stops there: the platform's
 * methods are never a handler's.
 */
function isBuiltinPrototype(proto: object): boolean {
  if (proto === Object.prototype || proto === Function.prototype) return true;
  platformPrototypes ??= new Set(
    Object.getOwnPropertyNames(globalThis).map((name) => {
      const value = Object.getOwnPropertyDescriptor(globalThis, name)?.value;
      return typeof value === "function"
        ? Object.getOwnPropertyDescriptor(value, "prototype")?.value
        : undefined;
    }).filter((p) => p !== null && typeof p === "object"),
  );
  if (platformPrototypes.has(proto)) return true;
  const ctor = Object.getOwnPropertyDescriptor(proto, "constructor")?.value;
  if (typeof ctor !== "function") return false;
  try {
    return /\{\s*\[native code\]\s*\}\s*$/.test(functionSource.call(ctor));
  } catch {
    return false;
  }
}

/**
 * Names JavaScript calls implicitly (`await`, `JSON.stringify`): a stub
 * never sends them, so a handler never serves them.
 */
const IMPLICIT: ReadonlySet<string> = new Set(["then", "toJSON"]);

/** Whether `name` may never be a remote method, wherever it is defined. */
function isHiddenName(name: string): boolean {
  return DENIED.has(name) || IMPLICIT.has(name) || name.startsWith("_");
}

/**
 * The callable methods of `handlers`: the function-valued data properties
 * found on it and along its prototype chain, up to (not including) the first
 * built-in prototype (`Object.prototype` for objects and instances,
 * `Function.prototype` for classes). The nearest definition of a name wins
 * (an override, or a non-function own property, hides the inherited
 * method). Never callable: symbols, `constructor`, `__proto__`, the names of
 * `Object.prototype` and `Function.prototype`, `then`, `toJSON`, names starting with
 * `_`, accessors (getters are never run while scanning), and generator
 * functions (a generator is not a value a codec carries).
 *
 * @throws {TypeError} when `handlers` is not an object or function, when a
 * method name starts with `zkrpc.`, is longer than 255 UTF-8 bytes, or when
 * nothing is callable (the message says why).
 */
export function collectMethods(handlers: object): Map<string, AnyFunction> {
  if (
    handlers === null ||
    (typeof handlers !== "object" && typeof handlers !== "function")
  ) {
    throw new TypeError(
      "Cannot serve handlers: expected an object, a class instance or a class with static methods",
    );
  }
  const methods = new Map<string, AnyFunction>();
  const seen = new Set<string>();
  const skipped: string[] = [];
  for (
    let level: object | null = handlers;
    level !== null &&
    (level === handlers
      ? level !== Object.prototype && level !== Function.prototype
      : !isBuiltinPrototype(level));
    level = Object.getPrototypeOf(level)
  ) {
    for (const name of Object.getOwnPropertyNames(level)) {
      if (seen.has(name)) continue; // a nearer level defines it
      seen.add(name);
      if (isHiddenName(name)) continue;
      const desc = Object.getOwnPropertyDescriptor(level, name);
      if (desc === undefined) continue;
      const fn = desc.value;
      if (typeof fn !== "function") {
        if (desc.get !== undefined || desc.set !== undefined) {
          skipped.push(`${name} (a getter)`);
        }
        continue;
      }
      const kind = Object.getPrototypeOf(fn);
      // An async generator is a streaming method (docs/streaming.md); a
      // sync generator's iterator is no value a codec carries.
      if (kind === GeneratorFunction) {
        skipped.push(`${name} (a generator)`);
        continue;
      }
      if (name.startsWith(RESERVED_PREFIX)) {
        throw new TypeError(
          `Cannot serve handlers: method name "${name}" is reserved (names starting with "${RESERVED_PREFIX}" are zkrpc's own)`,
        );
      }
      if (utf8.encode(name).length > 255) {
        throw new TypeError(
          `Cannot serve handlers: method name "${
            name.slice(0, 32)
          }\u2026" is longer than 255 UTF-8 bytes (the protocol's limit)`,
        );
      }
      methods.set(name, fn as AnyFunction);
    }
  }
  if (methods.size === 0) throw noMethods(handlers, skipped);
  return methods;
}

/** The error of `serve()` for a handler object with nothing callable. */
function noMethods(handlers: object, skipped: string[]): TypeError {
  let hint = "";
  if (typeof handlers === "function") {
    const proto = (handlers as { prototype?: unknown }).prototype;
    const instanceMethods = proto !== null && typeof proto === "object"
      ? Object.getOwnPropertyNames(proto).filter((n) =>
        !isHiddenName(n) &&
        typeof Object.getOwnPropertyDescriptor(proto, n)?.value === "function"
      )
      : [];
    if (instanceMethods.length > 0) {
      hint = `; it is a class whose methods are instance methods (${
        instanceMethods.slice(0, 5).join(", ")
      }): serve an instance, serve(new ${handlers.name || "Handlers"}())`;
    }
  }
  if (hint === "" && skipped.length > 0) {
    hint = `; not methods: ${skipped.slice(0, 5).join(", ")}`;
  }
  return new TypeError(
    `Cannot serve handlers: no callable method found (methods are function properties of the object, its class and superclasses, or a class's static methods; names starting with "_", "then", "toJSON", "constructor" and Object's and Function's own names are never callable)${hint}`,
  );
}

/**
 * The description of each method: its name and declared parameter count.
 */
export function describeMethods(
  methods: Map<string, AnyFunction>,
): MethodDescription[] {
  return [...methods].map(([name, fn]) => {
    const inner = contextHandlerOf(fn);
    return {
      name,
      params: inner === undefined ? fn.length : Math.max(0, inner.length - 1),
    };
  });
}

/** One callable method, keyed in the table by the length of its name bytes. */
export interface MethodEntry {
  bytes: Uint8Array;
  name: string;
  fn: AnyFunction;
  /** Set for handlers made by `withContext`: called with the context first. */
  withContext: AnyFunction | undefined;
  /**
   * zkrpc's own method (`zkrpc.health`, `zkrpc.describe`): answered on every
   * open connection, also after `goaway`.
   */
  builtin: boolean;
}

/** Method lookup by raw name bytes, without decoding known names. */
export function methodTable(
  methods: Iterable<[string, AnyFunction]>,
): Map<number, MethodEntry[]> {
  const table = new Map<number, MethodEntry[]>();
  for (const [name, fn] of methods) {
    const bytes = utf8.encode(name);
    if (bytes.length > 255) continue;
    let list = table.get(bytes.length);
    if (!list) table.set(bytes.length, list = []);
    list.push({
      bytes,
      name,
      fn,
      withContext: contextHandlerOf(fn),
      builtin: name.startsWith(RESERVED_PREFIX),
    });
  }
  return table;
}

/** The entry whose name bytes equal `bytes`, if any. */
export function findMethod(
  table: Map<number, MethodEntry[]>,
  bytes: Uint8Array,
): MethodEntry | undefined {
  return findMethodAt(table, bytes, 0, bytes.length);
}

/**
 * The entry whose name bytes equal `bytes` from `start` to `stop`
 * (exclusive), if any: the name where the request's frame lies, no view.
 */
export function findMethodAt(
  table: Map<number, MethodEntry[]>,
  bytes: Uint8Array,
  start: number,
  stop: number,
): MethodEntry | undefined {
  const list = table.get(stop - start);
  if (list === undefined) return undefined;
  outer: for (const entry of list) {
    const b = entry.bytes;
    for (let i = 0; i < b.length; i++) {
      if (b[i] !== bytes[start + i]) continue outer;
    }
    return entry;
  }
  return undefined;
}

/** A request's method name as a string (for error messages). */
export function decodeMethod(bytes: Uint8Array): string {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      try {
        return utf8Decoder.decode(bytes);
      } catch {
        throw new ProtocolError(
          "Cannot read request: method name is not valid UTF-8",
        );
      }
    }
  }
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}
