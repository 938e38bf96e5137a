/**
 * Internal: the wire payload of whatever a handler threw. A total function:
 * every read of the thrown value is guarded, so a null-prototype object, a
 * throwing getter or `toString`, a symbol or a revoked proxy still yields a
 * payload (and the faults are reported, never thrown).
 *
 * @module
 */

import {
  errorFields,
  errorName,
  type ErrorPayload,
  WIRE_NAMES,
} from "./errors.ts";

/** zkrpc's own names mean "not run" or "protocol": a handler may not claim them. */
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  WIRE_NAMES.serverClosing,
  WIRE_NAMES.methodNotFound,
  WIRE_NAMES.protocol,
  WIRE_NAMES.resourceExhausted,
]);

/**
 * A string for any value; never throws (`String()` throws for symbols in
 * template literals, null-prototype objects and throwing `toString`s).
 *
 * @param value Any value.
 * @returns A description.
 */
export function safeString(value: unknown): string {
  try {
    if (typeof value === "string") return value;
    if (typeof value === "symbol") return value.toString();
    return String(value);
  } catch {
    // fall through
  }
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return `[${typeof value}]`;
  }
}

/**
 * The constructor name of a thrown object, when it says more than `Error` or
 * `Object`; never throws.
 */
function classNameOf(error: unknown): string | undefined {
  try {
    const name = (error as { constructor?: { name?: unknown } }).constructor
      ?.name;
    return typeof name === "string" && name !== "" && name !== "Error" &&
        name !== "Object"
      ? name
      : undefined;
  } catch {
    return undefined; // a throwing getter or a revoked proxy
  }
}

function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false; // a revoked proxy
  }
}

/**
 * Builds the error payload of a thrown value. Never throws.
 *
 * @param error What the handler threw or rejected with.
 * @param exposeStack Whether to include the stack.
 * @param faults Receives a description of each read that threw.
 * @returns `{ name, message, data?, fields?, stack?, className? }`
 * (`className`: the constructor's name, when it differs from `name`).
 */
export function errorPayload(
  error: unknown,
  exposeStack: boolean | undefined,
  faults: string[],
): ErrorPayload {
  const isObject = (typeof error === "object" && error !== null) ||
    typeof error === "function";
  if (isObject) {
    try {
      void (error as { name?: unknown }).name;
    } catch (fault) {
      faults.push(`reading its name threw ${safeString(fault)}`);
    }
  }
  const name = errorName(error);
  let message: string | undefined;
  if (isObject) {
    try {
      const m = (error as { message?: unknown }).message;
      if (typeof m === "string") message = m;
    } catch (fault) {
      faults.push(`reading its message threw ${safeString(fault)}`);
    }
  }
  if (message === undefined) {
    message = isError(error) ? "" : safeString(error);
  }
  if (RESERVED_NAMES.has(name)) {
    // A re-thrown zkrpc error (e.g. from a nested call) must not make the
    // caller believe that this call did not run.
    return { name: WIRE_NAMES.rpc, message, data: { remoteName: name } };
  }
  const payload: ErrorPayload = { name, message };
  const className = isObject ? classNameOf(error) : undefined;
  if (className !== undefined && className !== name) {
    payload.className = className;
  }
  if (isObject) {
    try {
      if ("data" in (error as object)) {
        payload.data = (error as { data: unknown }).data;
      }
    } catch (fault) {
      faults.push(`reading its data threw ${safeString(fault)}`);
    }
    const fields = errorFields(error); // guarded: never throws
    if (fields !== undefined) payload.fields = fields;
    if (exposeStack && isError(error)) {
      try {
        const stack = error.stack;
        if (typeof stack === "string") payload.stack = stack;
      } catch (fault) {
        faults.push(`reading its stack threw ${safeString(fault)}`);
      }
    }
  }
  return payload;
}
