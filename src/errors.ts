/**
 * The error classes of zkrpc and the {@linkcode ErrorRegistry} that turns an
 * error received from a server back into the caller's own error class.
 *
 * @module
 */

/**
 * Base class of every error raised by zkrpc itself.
 *
 * @example Catch any zkrpc error
 * ```ts
 * import { DeadlineExceededError, RpcError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new DeadlineExceededError("Cannot call method \"slow\": deadline of 10 ms exceeded");
 * assert.ok(error instanceof RpcError);
 * ```
 */
export class RpcError extends Error {
  /**
   * Constructs a new instance.
   *
   * @param message The error message.
   * @param options Standard error options (`cause`).
   */
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * An error thrown by a remote handler whose name is not registered in the
 * caller's {@linkcode ErrorRegistry}. It keeps the remote name and data.
 *
 * @example Inspect a remote error
 * ```ts
 * import { RemoteError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new RemoteError("Boom", { remoteName: "RangeError", data: { x: 1 } });
 * assert.equal(error.remoteName, "RangeError");
 * assert.deepEqual(error.data, { x: 1 });
 * ```
 */
export class RemoteError extends RpcError {
  /** The `name` of the error thrown on the server. */
  readonly remoteName: string;
  /** The `data` property of the error thrown on the server, if any. */
  readonly data: unknown;
  /**
   * The other own enumerable properties of the error thrown on the server
   * (string-keyed, except `name`, `message`, `stack`, `cause` and `data`),
   * if it had any.
   */
  readonly fields: Readonly<Record<string, unknown>> | undefined;

  /**
   * Constructs a new instance.
   *
   * @param message The remote error message.
   * @param options The remote name, data, fields and an optional cause.
   */
  constructor(
    message: string,
    options: {
      remoteName: string;
      data?: unknown;
      fields?: Record<string, unknown>;
      cause?: unknown;
    },
  ) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.remoteName = options.remoteName;
    this.data = options.data;
    this.fields = options.fields;
  }
}

/**
 * The server has no callable method of that name. Inherited names such as
 * `constructor`, `__proto__` or `toString` are never callable.
 *
 * @example Check the missing method
 * ```ts
 * import { MethodNotFoundError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new MethodNotFoundError("toString");
 * assert.equal(error.method, "toString");
 * assert.equal(error.message, 'Cannot call method "toString": method not found');
 * ```
 */
export class MethodNotFoundError extends RpcError {
  /** The method that was called. */
  readonly method: string;

  /**
   * Constructs a new instance.
   *
   * @param method The method that was called.
   * @param message The message; a standard one by default.
   */
  constructor(method: string, message?: string) {
    super(message ?? `Cannot call method "${method}": method not found`);
    this.method = method;
  }
}

/**
 * The call did not complete within its timeout. The server was sent a cancel.
 *
 * @example Create one
 * ```ts
 * import { DeadlineExceededError, RpcError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(new DeadlineExceededError("late") instanceof RpcError);
 * ```
 */
export class DeadlineExceededError extends RpcError {}

/**
 * The caller aborted the call through its `AbortSignal`; `cause` holds
 * `signal.reason`. The server was sent a cancel.
 *
 * @example Create one
 * ```ts
 * import { CancelledError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new CancelledError("stopped", { cause: "user" });
 * assert.equal(error.cause, "user");
 * ```
 */
export class CancelledError extends RpcError {}

/**
 * The connection failed or closed before the call got its response.
 * `written` tells whether the request may have reached the server: when it is
 * `false` the request was never handed to the socket, so the call did not run
 * and is safe to retry anywhere.
 *
 * @example Decide whether to retry
 * ```ts
 * import { ConnectionError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new ConnectionError("Connection refused", { written: false });
 * assert.equal(error.written, false);
 * ```
 */
export class ConnectionError extends RpcError {
  /** Whether the request may have been sent (and run) before the failure. */
  readonly written: boolean;

  /**
   * Constructs a new instance.
   *
   * @param message The error message.
   * @param options Whether the request was written, and an optional cause.
   */
  constructor(message: string, options: { written: boolean; cause?: unknown }) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.written = options.written;
  }
}

/**
 * A peer broke the wire protocol: bad preface, malformed or oversize frame,
 * unknown frame type, or a violated limit.
 *
 * @example Create one
 * ```ts
 * import { ProtocolError, RpcError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(new ProtocolError("Bad preface") instanceof RpcError);
 * ```
 */
export class ProtocolError extends RpcError {}

/**
 * The server is closing (it sent `goaway`, or refused a new connection): the
 * request was NOT run, so it is safe to retry on any other server.
 *
 * @example Create one
 * ```ts
 * import { ServerClosingError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new ServerClosingError("draining").name, "ServerClosingError");
 * ```
 */
export class ServerClosingError extends RpcError {}

/**
 * A limit was reached for this one call; the connection stays usable. Raised
 * when a result or error would exceed the receiving side's `maxFrameSize`
 * (`ran` is `true`: the handler ran, its answer could not be delivered), and
 * sent by a server whose connection already has `maxInFlightPerConnection`
 * handlers running (`ran` is `false`: the request was not run).
 *
 * @example Tell whether the call ran
 * ```ts
 * import { ResourceExhaustedError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new ResourceExhaustedError("Too big", { ran: true });
 * assert.equal(error.ran, true);
 * ```
 */
export class ResourceExhaustedError extends RpcError {
  /** Whether the handler ran (its answer was lost) or the request was refused. */
  readonly ran: boolean;

  /**
   * Constructs a new instance.
   *
   * @param message The error message.
   * @param options Whether the handler ran.
   */
  constructor(message: string, options: { ran: boolean }) {
    super(message);
    this.ran = options.ran;
  }
}

/**
 * No server is registered for a service (raised by the discovery channel).
 *
 * @example Create one
 * ```ts
 * import { NoServersError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new NoServersError("calculator");
 * assert.equal(error.service, "calculator");
 * ```
 */
export class NoServersError extends RpcError {
  /** The service that has no live servers. */
  readonly service: string;

  /**
   * Constructs a new instance.
   *
   * @param service The service name.
   * @param message The message; a standard one by default.
   * @param options Standard error options (`cause`: the last failure).
   */
  constructor(service: string, message?: string, options?: ErrorOptions) {
    super(message ?? `No servers registered for service "${service}"`, options);
    this.service = service;
  }
}

/**
 * Whether a failed call is known not to have run on the server, so that it may
 * be retried on another endpoint even when its method is not idempotent:
 * a {@linkcode ConnectionError} with `written: false` or a
 * {@linkcode ServerClosingError}.
 *
 * @param error The error a call rejected with.
 * @returns `true` when the request never ran.
 *
 * @example Retry only what never ran
 * ```ts
 * import { ConnectionError, isRetriableBeforeSend, ServerClosingError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isRetriableBeforeSend(new ConnectionError("refused", { written: false })));
 * assert.ok(isRetriableBeforeSend(new ServerClosingError("draining")));
 * assert.ok(!isRetriableBeforeSend(new ConnectionError("reset", { written: true })));
 * ```
 */
export function isRetriableBeforeSend(error: unknown): boolean {
  return (error instanceof ConnectionError && !error.written) ||
    error instanceof ServerClosingError;
}

/**
 * The shape in which an error travels on the wire.
 *
 * @example Revive a payload
 * ```ts
 * import { type ErrorPayload, ErrorRegistry, RemoteError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const payload: ErrorPayload = { name: "QuotaError", message: "Too many", data: { limit: 3 } };
 * const error = new ErrorRegistry().revive(payload);
 * assert.ok(error instanceof RemoteError && error.remoteName === "QuotaError");
 * ```
 */
export interface ErrorPayload {
  /** The error name, e.g. `"InvalidOperation"`. */
  name: string;
  /** The error message. */
  message: string;
  /** Optional structured data (the error's own `data` property). */
  data?: unknown;
  /**
   * The error's other own enumerable string-keyed properties (except
   * `name`, `message`, `stack`, `cause` and `data`), e.g. `{ sku: "A-1" }`.
   */
  fields?: Record<string, unknown>;
  /** The server-side stack, only when the server sets `exposeStack`. */
  stack?: string;
}

/**
 * A constructor of an error class that can be registered. It may have a
 * static `fromRemote(payload)` that rebuilds an instance from what the server
 * sent (its `message`, `data` and `fields`); without it,
 * {@linkcode ErrorRegistry.prototype.revive} does not call the constructor:
 * it creates an object with the class's prototype and sets the message, the
 * data and the fields on it.
 *
 * @example Register a class, and one that rebuilds itself
 * ```ts
 * import { type ErrorClass, type ErrorPayload, ErrorRegistry } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * class InvalidOperation extends Error {}
 * class OutOfStock extends Error {
 *   constructor(readonly sku: string, message: string) {
 *     super(message);
 *   }
 *   static fromRemote(payload: ErrorPayload): OutOfStock {
 *     return new OutOfStock(String(payload.fields?.sku), payload.message);
 *   }
 * }
 * const classes: ErrorClass[] = [InvalidOperation, OutOfStock];
 * const errors = new ErrorRegistry().register(...classes);
 * const error = errors.revive({ name: "OutOfStock", message: "Sold out", fields: { sku: "A-1" } });
 * assert.ok(error instanceof OutOfStock && error.sku === "A-1");
 * ```
 */
// deno-lint-ignore no-explicit-any
export type ErrorClass = (new (...args: any[]) => Error) & {
  /**
   * Rebuilds an instance from a received payload. If it throws, or returns
   * something that is not an `Error`, the default revival is used.
   */
  fromRemote?: (payload: ErrorPayload) => Error;
};

/**
 * Maps error names to the caller's error classes. An {@linkcode ErrorPayload}
 * whose name is registered is revived as an instance of that class: by the
 * class's static `fromRemote(payload)` when it has one, else without calling
 * its constructor (an object with the class's prototype, a local stack, the
 * remote message, `data` and `fields` as own properties), so a constructor
 * such as `(sku, message)` never receives the message as its `sku`. Any other
 * name becomes a {@linkcode RemoteError} keeping the remote name, `data` and
 * `fields`. The names of zkrpc's own errors that a server sends
 * (`MethodNotFoundError`, `ServerClosingError`, `ProtocolError`,
 * `ResourceExhaustedError`) are always revived as those classes.
 *
 * @example Revive the seed's InvalidOperation
 * ```ts
 * import { ErrorRegistry, RemoteError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * class InvalidOperation extends Error {}
 * const errors = new ErrorRegistry().register(InvalidOperation);
 * const revived = errors.revive({ name: "InvalidOperation", message: "Cannot divide by zero" });
 * assert.ok(revived instanceof InvalidOperation);
 * assert.equal(revived.message, "Cannot divide by zero");
 * assert.ok(errors.revive({ name: "Other", message: "x" }) instanceof RemoteError);
 * ```
 */
export class ErrorRegistry {
  #classes = new Map<string, ErrorClass>();

  /**
   * Registers error classes under their class name.
   *
   * @param classes The classes to register.
   * @returns This registry, for chaining.
   */
  register(...classes: ErrorClass[]): this {
    for (const cls of classes) {
      if (typeof cls !== "function" || !cls.name) {
        throw new TypeError(
          "Cannot register error class: expected a named class",
        );
      }
      this.#classes.set(cls.name, cls);
    }
    return this;
  }

  /**
   * Registers one error class under an explicit wire name.
   *
   * @param name The name the server sends.
   * @param cls The class to revive it as.
   * @returns This registry, for chaining.
   */
  registerAs(name: string, cls: ErrorClass): this {
    this.#classes.set(name, cls);
    return this;
  }

  /**
   * Whether a name is registered.
   *
   * @param name The wire name.
   * @returns `true` when a class is registered under `name`.
   */
  has(name: string): boolean {
    return this.#classes.has(name);
  }

  /**
   * Turns a received error payload into an error instance.
   *
   * @param payload The error as received.
   * @returns An instance of the registered class, a zkrpc error, or a
   * {@linkcode RemoteError}.
   */
  revive(payload: ErrorPayload): Error {
    const error = this.#revive(payload);
    if (typeof payload.stack === "string") {
      // The server chose to expose its stack: keep it below the local one.
      Object.defineProperty(error, "stack", {
        value: `${error.stack ?? `${error.name}: ${error.message}`}\n` +
          `    --- remote stack ---\n${payload.stack}`,
        writable: true,
        configurable: true,
        enumerable: false,
      });
    }
    return error;
  }

  #revive(payload: ErrorPayload): Error {
    const { name, message, data } = payload;
    const fields = isRecord(payload.fields) ? payload.fields : undefined;
    const cls = this.#classes.get(name);
    if (cls !== undefined) {
      if (typeof cls.fromRemote === "function") {
        try {
          const error = cls.fromRemote({
            ...payload,
            ...(fields === undefined ? {} : { fields: { ...fields } }),
          });
          if (error instanceof Error) return error;
        } catch {
          // A failing hook: revive as if there were none.
        }
      }
      const error = Object.create(cls.prototype) as Error;
      Error.captureStackTrace(error, ErrorRegistry.prototype.revive);
      // Fields first: name, message and data are set from their own keys.
      for (const key of fields === undefined ? [] : Object.keys(fields)) {
        if (!PAYLOAD_KEYS.has(key)) defineOwn(error, key, fields![key], true);
      }
      defineOwn(error, "message", message, false);
      if (error.name === "Error" && name !== "Error") {
        defineOwn(error, "name", name, false);
      }
      if (data !== undefined) defineOwn(error, "data", data, true);
      return error;
    }
    switch (name) {
      case WIRE_NAMES.methodNotFound: {
        const method = typeof data === "object" && data !== null &&
            typeof (data as { method?: unknown }).method === "string"
          ? (data as { method: string }).method
          : "";
        return new MethodNotFoundError(method, message);
      }
      case WIRE_NAMES.serverClosing:
        return new ServerClosingError(message);
      case WIRE_NAMES.protocol:
        return new ProtocolError(message);
      case WIRE_NAMES.resourceExhausted:
        return new ResourceExhaustedError(message, {
          ran: typeof data === "object" && data !== null &&
            (data as { ran?: unknown }).ran === true,
        });
    }
    return new RemoteError(message, {
      remoteName: name,
      data,
      ...(fields === undefined ? {} : { fields }),
    });
  }
}

/** Own properties that travel in their own payload keys, not in `fields`. */
const PAYLOAD_KEYS: ReadonlySet<string> = new Set([
  "name",
  "message",
  "stack",
  "cause",
  "data",
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Sets an own data property (also `__proto__`, never the prototype). */
function defineOwn(
  target: object,
  key: string,
  value: unknown,
  enumerable: boolean,
): void {
  try {
    Object.defineProperty(target, key, {
      value,
      writable: true,
      configurable: true,
      enumerable,
    });
  } catch {
    // A non-configurable property of the prototype chain keeps its value.
  }
}

/**
 * The fields of a thrown error that travel to the caller besides its name,
 * message and `data`: its own enumerable string-keyed properties, except
 * `name`, `message`, `stack`, `cause` and `data`. To keep a property on the
 * server, make it non-enumerable (`Object.defineProperty`) or `#private`.
 * Never throws: a property whose read throws is left out. The server sends
 * the fields only when the codec can encode them (else it drops `data` and
 * the fields, and keeps the name and message).
 *
 * @param error A thrown value.
 * @returns The fields, or `undefined` when there are none.
 *
 * @example The fields of an error with a constructor of its own
 * ```ts
 * import { errorFields } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * class OutOfStock extends Error {
 *   constructor(readonly sku: string, message: string) {
 *     super(message);
 *     this.name = "OutOfStock";
 *   }
 * }
 * assert.deepEqual(errorFields(new OutOfStock("A-1", "Sold out")), { sku: "A-1" });
 * assert.equal(errorFields(new Error("plain")), undefined);
 * ```
 */
export function errorFields(
  error: unknown,
): Record<string, unknown> | undefined {
  if (
    (typeof error !== "object" || error === null) &&
    typeof error !== "function"
  ) {
    return undefined;
  }
  let keys: string[];
  try {
    keys = Object.keys(error);
  } catch {
    return undefined; // a revoked proxy
  }
  let fields: Record<string, unknown> | undefined;
  for (const key of keys) {
    if (PAYLOAD_KEYS.has(key)) continue;
    let value: unknown;
    try {
      value = (error as Record<string, unknown>)[key];
    } catch {
      continue; // a throwing getter
    }
    fields ??= {};
    defineOwn(fields, key, value, true);
  }
  return fields;
}

/**
 * The error names zkrpc itself puts on the wire, shared by the side that
 * builds error payloads (the server) and the side that revives them
 * ({@linkcode ErrorRegistry}). A handler may not claim them.
 */
export const WIRE_NAMES = {
  serverClosing: "ServerClosingError",
  methodNotFound: "MethodNotFoundError",
  protocol: "ProtocolError",
  resourceExhausted: "ResourceExhaustedError",
  rpc: "RpcError",
} as const;

/**
 * The wire name of a thrown value: its `name` unless that is the inherited
 * `"Error"`, then its constructor's name (so `class InvalidOperation extends
 * Error {}` travels as `"InvalidOperation"` without setting `name`). Never
 * throws: a throwing getter or a revoked proxy yields `"Error"`.
 *
 * @param error A thrown value.
 * @returns The name to send.
 *
 * @example Name of an unnamed subclass
 * ```ts
 * import { errorName } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * class InvalidOperation extends Error {}
 * assert.equal(errorName(new InvalidOperation("x")), "InvalidOperation");
 * assert.equal(errorName(new RangeError("x")), "RangeError");
 * ```
 */
export function errorName(error: unknown): string {
  if (typeof error !== "object" || error === null) return "Error";
  try {
    const name = (error as { name?: unknown }).name;
    if (typeof name === "string" && name !== "" && name !== "Error") {
      return name;
    }
  } catch {
    // a throwing getter or a revoked proxy: try the constructor
  }
  try {
    const ctor = (error as { constructor?: unknown }).constructor;
    if (
      typeof ctor === "function" && typeof ctor.name === "string" && ctor.name
    ) {
      return ctor.name;
    }
  } catch {
    // as above
  }
  return "Error";
}
