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
 * assert.equal(error.remoteMessage, "Boom");
 * assert.deepEqual(error.data, { x: 1 });
 * ```
 */
export class RemoteError extends RpcError {
  /** The `name` of the error thrown on the server. */
  readonly remoteName: string;
  /**
   * The `message` of the error thrown on the server (`message` also names
   * the method and the service or server when the error came from a call).
   */
  readonly remoteMessage: string;
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
   * @param options The remote name, the remote message (default `message`),
   * data, fields and an optional cause.
   */
  constructor(
    message: string,
    options: {
      remoteName: string;
      remoteMessage?: string;
      data?: unknown;
      fields?: Record<string, unknown>;
      cause?: unknown;
    },
  ) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.remoteName = options.remoteName;
    this.remoteMessage = options.remoteMessage ?? message;
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
 * The server is closing: it sent `goaway`, refused a new connection, or
 * answered a call with "closing". `notRun` tells whether the call provably
 * did not run: `true` when the request was never written (the connection had
 * already received `goaway`, or the server refused the connection), or when
 * the refusal came on a connection that had received `goaway` before it (a
 * server refuses unrun every request that arrives after its `goaway`, and
 * TCP keeps the order). A "closing" answer without a `goaway` before it is
 * not trusted: it may have run (see docs/security.md, "Trust model").
 *
 * @example Tell whether the call may have run
 * ```ts
 * import { ServerClosingError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new ServerClosingError("draining").name, "ServerClosingError");
 * assert.equal(new ServerClosingError("draining").notRun, false);
 * assert.equal(new ServerClosingError("refused", { notRun: true }).notRun, true);
 * ```
 */
export class ServerClosingError extends RpcError {
  /** Whether the call provably did not run (safe to retry anywhere). */
  readonly notRun: boolean;

  /**
   * Constructs a new instance.
   *
   * @param message The error message.
   * @param options `notRun` (default `false`: the call may have run) and an
   * optional cause.
   */
  constructor(
    message?: string,
    options: { notRun?: boolean; cause?: unknown } = {},
  ) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.notRun = options.notRun ?? false;
  }
}

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
 * What a failed attempt's error says about the call and the endpoint, for
 * retries, hedging and outlier detection (see {@linkcode classify}):
 *
 * - `"answered"`: the server answered with an error (a registered class,
 *   {@linkcode RemoteError}, {@linkcode MethodNotFoundError},
 *   {@linkcode ResourceExhaustedError}, a server's
 *   {@linkcode ProtocolError}). Final; the endpoint is healthy.
 * - `"not-run"`: the call provably did not run ({@linkcode ConnectionError}
 *   with `written: false`, {@linkcode ServerClosingError} with `notRun`).
 *   Retried anywhere, even when not idempotent.
 * - `"may-have-run"`: the call may have run ({@linkcode ConnectionError}
 *   with `written: true`, an untrusted {@linkcode ServerClosingError}).
 *   Retried only when idempotent; counts against the endpoint.
 * - `"deadline"`: {@linkcode DeadlineExceededError}. Final; counts against
 *   the endpoint.
 * - `"cancelled"`: {@linkcode CancelledError}, the caller's abort. Final.
 * - `"local"`: anything else: thrown by the client itself (a `TypeError` or
 *   `RangeError` for params, metadata or a method name it cannot send, an
 *   interceptor's error, a reply it cannot decode). Final; says nothing
 *   about the endpoint.
 */
export type FailureKind =
  | "answered"
  | "not-run"
  | "may-have-run"
  | "deadline"
  | "cancelled"
  | "local";

/** Errors built from a server's error frame (see `ErrorRegistry.revive`). */
const fromServer = new WeakSet<object>();

/**
 * Classifies a failed attempt's error: the one place that decides whether
 * a call ran, may be retried, and whether the endpoint answered.
 *
 * @param error The error an attempt rejected with.
 * @returns Its {@linkcode FailureKind}.
 *
 * @example Only answers from the server count as answers
 * ```ts
 * import { classify, ConnectionError, ErrorRegistry, ServerClosingError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(classify(new ConnectionError("refused", { written: false })), "not-run");
 * assert.equal(classify(new ConnectionError("reset", { written: true })), "may-have-run");
 * assert.equal(classify(new ServerClosingError("closing")), "may-have-run");
 * assert.equal(classify(new ServerClosingError("refused", { notRun: true })), "not-run");
 * assert.equal(classify(new TypeError("cannot encode")), "local");
 * const revived = new ErrorRegistry().revive({ name: "TypeError", message: "bad" });
 * assert.equal(classify(revived), "answered");
 * ```
 */
export function classify(error: unknown): FailureKind {
  if (error instanceof ConnectionError) {
    return error.written ? "may-have-run" : "not-run";
  }
  if (error instanceof ServerClosingError) {
    return error.notRun ? "not-run" : "may-have-run";
  }
  if (error instanceof DeadlineExceededError) return "deadline";
  if (error instanceof CancelledError) return "cancelled";
  return typeof error === "object" && error !== null && fromServer.has(error)
    ? "answered"
    : "local";
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
  /**
   * The thrown error's class (constructor) name, sent only when it differs
   * from `name` (e.g. `class OutOfStockError` whose instances set
   * `name = "OutOfStock"`), so that a class registered under its class name
   * is still revived.
   */
  className?: string;
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
 * whose `className` (sent when it differs from `name`) or, failing that,
 * `name` is registered is revived as an instance of that class: by the
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
  #service: string | undefined;
  #warn: (message: string) => void;
  #warned = new Set<string>();

  /**
   * Creates an empty registry.
   *
   * @param options `service`: the service whose errors it revives, named in
   * the message of an unregistered remote error (a channel sets it);
   * `onWarning`: receives the warning given once per wire name revived by
   * its class name (default `console.warn`).
   */
  constructor(
    options: { service?: string; onWarning?: (message: string) => void } = {},
  ) {
    this.#service = options.service;
    this.#warn = options.onWarning ?? ((message) => console.warn(message));
  }

  /**
   * Registers error classes under their class name (and under the `name`
   * their prototype defines, if it defines another). A class whose instances
   * set another `name` (`this.name = "OutOfStock"` in `OutOfStockError`) is
   * still revived when the server sends its class name too (zkrpc servers
   * do), with a warning once; {@linkcode ErrorRegistry.prototype.registerAs}
   * registers it under that name and silences the warning.
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
      const own = Object.getOwnPropertyDescriptor(cls.prototype ?? {}, "name");
      if (
        typeof own?.value === "string" && own.value !== "" &&
        own.value !== cls.name && !this.#classes.has(own.value)
      ) {
        this.#classes.set(own.value, cls);
      }
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
   * @param call The call it answers: `method`, and `target` (the server's
   * `host:port`, named when the registry has no `service`). With it, an
   * unregistered error's message names the remote error name, the method
   * and the service (or server); its `remoteMessage` keeps the remote one.
   * @returns An instance of the registered class, a zkrpc error, or a
   * {@linkcode RemoteError}.
   */
  revive(
    payload: ErrorPayload,
    call?: { method: string; target?: string },
  ): Error {
    const error = this.#revive(payload, call);
    fromServer.add(error);
    if (typeof payload.stack === "string") {
      remoteStacks.set(error, payload.stack);
      setStack(error, error.stack);
    }
    return error;
  }

  /**
   * The registered class of a payload: by its class name when that is
   * registered (the most specific: subclasses share their parent's `name`),
   * else by its name. Reviving by class name alone warns once per pair.
   */
  #classOf(payload: ErrorPayload): ErrorClass | undefined {
    const byName = this.#classes.get(payload.name);
    const className = payload.className;
    const byClass = typeof className === "string" && className !== payload.name
      ? this.#classes.get(className)
      : undefined;
    if (byClass === undefined) return byName;
    const pair = `${payload.name}\0${className}`;
    // At most 64 warnings: a peer inventing names cannot flood the log.
    if (
      byName === undefined && this.#warned.size < 64 &&
      !this.#warned.has(pair)
    ) {
      this.#warned.add(pair);
      const name = quoted(payload.name);
      this.#warn(
        `Reviving remote error ${name} as ${className} by its class name: its instances' name differs from the class name; register it under its name with errors.registerAs(${name}, ${className}) (or the channel's \`errors\`) to silence this warning`,
      );
    }
    return byClass;
  }

  #revive(
    payload: ErrorPayload,
    call: { method: string; target?: string } | undefined,
  ): Error {
    const { name, message, data } = payload;
    const fields = isRecord(payload.fields) ? payload.fields : undefined;
    const cls = this.#classOf(payload);
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
    const where = this.#service !== undefined
      ? ` of service "${this.#service}"`
      : call?.target !== undefined
      ? ` on ${call.target}`
      : "";
    return new RemoteError(
      call === undefined
        ? message
        : `Cannot call method "${call.method}"${where}: the server threw ${name}: ${message}`,
      {
        remoteName: name,
        remoteMessage: message,
        data,
        ...(fields === undefined ? {} : { fields }),
      },
    );
  }
}

/** Remote stacks of revived errors, kept below the local stack. */
const remoteStacks = new WeakMap<object, string>();

/** Sets `stack`, with the remote stack (if any) below the local one. */
function setStack(error: Error, local: string | undefined): void {
  const remote = remoteStacks.get(error);
  try {
    Object.defineProperty(error, "stack", {
      value: remote === undefined
        ? local
        : `${local ?? `${error.name}: ${error.message}`}\n` +
          `    --- remote stack ---\n${remote}`,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  } catch {
    // A frozen error (from a fromRemote hook) keeps the stack it has.
  }
}

/**
 * Gives an error the stack of the place that awaits the call, instead of the
 * read loop where it was created: called in an `async` function's `catch`
 * after an `await`, V8 adds the awaiting callers (`at async myFunction`), so
 * the caller's line shows. The client's own (`"local"`) errors keep theirs:
 * they were created in the call. A remote stack stays below.
 *
 * @param error What the call rejected with.
 * @returns `error`.
 *
 * @example The stack names the function that awaited the call
 * ```ts
 * import { ErrorRegistry, withCallerStack } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const registry = new ErrorRegistry();
 * async function call(): Promise<never> {
 *   try {
 *     return await Promise.reject(registry.revive({ name: "X", message: "m" }));
 *   } catch (error) {
 *     throw withCallerStack(error);
 *   }
 * }
 * async function checkout(): Promise<void> {
 *   await call();
 * }
 * await assert.rejects(checkout(), (e: Error) => e.stack!.includes("checkout"));
 * ```
 */
export function withCallerStack(error: unknown): unknown {
  if (!(error instanceof Error) || classify(error) === "local") return error;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, withCallerStack);
  const stack = holder.stack ?? "";
  const frames = stack.includes("\n") ? stack.slice(stack.indexOf("\n")) : "";
  let head: string;
  try {
    head = `${error.name}: ${error.message}`;
  } catch {
    head = "Error";
  }
  setStack(error, head + frames);
  return error;
}

/** Quotes a name received from a peer for a log line (no control bytes). */
function quoted(text: string): string {
  return JSON.stringify(text.slice(0, 200)).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
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
