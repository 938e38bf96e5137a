/**
 * The handler-method table of a server: which of a handler object's
 * properties are callable (own function properties, never the names of
 * `Object.prototype` / `Function.prototype`), and lookup of a request's method
 * by its raw UTF-8 name bytes.
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
      methods.set(name, desc.value as AnyFunction);
    }
  }
  return methods;
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
  methods: Map<string, AnyFunction>,
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
