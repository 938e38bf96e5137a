/**
 * The handler-method table of a server: which of a handler object's
 * properties are callable (own function properties, never the names of
 * `Object.prototype` / `Function.prototype`), lookup of a request's method
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
 * The name of the health method every server answers: `[service?]` →
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
 * What a server answers to {@linkcode DESCRIBE_METHOD}.
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
 *   member: { host: "127.0.0.1", port: 9001 },
 * };
 * assert.equal(description.methods[0]?.name, "divide");
 * ```
 */
export interface ServiceDescription {
  /** The wire protocol version the server speaks. */
  protocol: number;
  /** The server's payload codecs, preferred first (`msgpack, json` by default). */
  codec: string;
  /** The callable methods, in the order of the handler object. */
  methods: MethodDescription[];
  /**
   * The member data the server registered in discovery (host, port, pid,
   * metadata…), when its registrar reports it.
   */
  member?: Record<string, unknown>;
}

/** Any handler function. */
// deno-lint-ignore no-explicit-any
export type AnyFunction = (...args: any[]) => unknown;

/**
 * The callable methods of `handlers`: its own function properties, minus the
 * denied names.
 */
export function collectMethods(handlers: object): Map<string, AnyFunction> {
  if (
    handlers === null ||
    (typeof handlers !== "object" && typeof handlers !== "function")
  ) {
    throw new TypeError(
      "Cannot serve handlers: expected an object or a class with static methods",
    );
  }
  const methods = new Map<string, AnyFunction>();
  for (const name of Object.getOwnPropertyNames(handlers)) {
    if (DENIED.has(name)) continue;
    const desc = Object.getOwnPropertyDescriptor(handlers, name);
    if (desc && typeof desc.value === "function") {
      if (name.startsWith(RESERVED_PREFIX)) {
        throw new TypeError(
          `Cannot serve handlers: method name "${name}" is reserved (names starting with "${RESERVED_PREFIX}" are zkrpc's own)`,
        );
      }
      methods.set(name, desc.value as AnyFunction);
    }
  }
  return methods;
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

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** One callable method, keyed in the table by the length of its name bytes. */
export interface MethodEntry {
  bytes: Uint8Array;
  name: string;
  fn: AnyFunction;
  /** Set for handlers made by `withContext`: called with the context first. */
  withContext: AnyFunction | undefined;
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
    list.push({ bytes, name, fn, withContext: contextHandlerOf(fn) });
  }
  return table;
}

/** The entry whose name bytes equal `bytes`, if any. */
export function findMethod(
  table: Map<number, MethodEntry[]>,
  bytes: Uint8Array,
): MethodEntry | undefined {
  const list = table.get(bytes.length);
  if (list === undefined) return undefined;
  outer: for (const entry of list) {
    const b = entry.bytes;
    for (let i = 0; i < b.length; i++) {
      if (b[i] !== bytes[i]) continue outer;
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
