/**
 * The zkrpc server: {@linkcode serve} exposes a handler object's own methods
 * over `Deno.listen` (or `Deno.listenTls`).
 *
 * @module
 */

import { DEFAULT_STREAM_WINDOW } from "../protocol/stream_frames.ts";
import { ServerClosingError } from "../errors.ts";
import {
  runInterceptors,
  type ServerCall,
  type ServerInterceptor,
} from "../_interceptors.ts";
import { serverTelemetry } from "../telemetry/telemetry.ts";
import {
  type CallContext,
  contextHandlerOf,
  withContext,
} from "./call_context.ts";
import { settleWithin } from "../_async.ts";
import { errorMessage } from "../_util.ts";
import type { Codec } from "../protocol/codec.ts";
import { codecList } from "../protocol/codec_negotiation.ts";
import { printableMessage } from "../_printable.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  encodeSettings,
  PROTOCOL_VERSION,
} from "../protocol/frame.ts";
import {
  type AnyFunction,
  collectMethods,
  DESCRIBE_METHOD,
  describeMethods,
  HEALTH_METHOD,
  type HealthStatus,
  methodTable,
  type ServiceDescription,
} from "./_handler_table.ts";
import {
  NOT_SERVING,
  SERVER_DEFAULTS,
  type ServerInternals,
} from "./_server_connection.ts";
import { RunningHandlers } from "./_running.ts";
import { Acceptor } from "./_acceptor.ts";
import type {
  RegisterContext,
  Registrar,
  Registration,
} from "../discovery/registrar.ts";

export type { RegisterContext, Registrar, Registration };

export {
  DESCRIBE_METHOD,
  HEALTH_METHOD,
  type HealthStatus,
  type MethodDescription,
  type ServiceDescription,
} from "./_handler_table.ts";

/** A handler wrapped in the server's interceptors. */
function intercepted(
  name: string,
  fn: AnyFunction,
  handlers: object,
  interceptors: readonly ServerInterceptor[],
): AnyFunction {
  const inner = contextHandlerOf(fn);
  const run = inner === undefined
    ? (_ctx: CallContext, params: unknown[]) => fn.apply(handlers, params)
    : (ctx: CallContext, params: unknown[]) =>
      inner.call(handlers, ctx, ...params);
  const wrapped = (ctx: CallContext, ...params: unknown[]) => {
    const call: ServerCall = {
      method: name,
      params,
      metadata: ctx.metadata,
      deadline: ctx.deadline,
      remoteAddr: ctx.remoteAddr,
      get signal() {
        return ctx.signal;
      },
    };
    return runInterceptors(
      interceptors,
      call,
      (c) => Promise.resolve(run(ctx, c.params)),
    );
  };
  return withContext(wrapped);
}

/**
 * TLS certificate and key, PEM-encoded.
 *
 * @example Serve TLS
 * ```ts
 * import { serve, type TlsOptions } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const tls: TlsOptions = {
 *   cert: await Deno.readTextFile(new URL("../../tests/fixtures/tls/localhost.crt", import.meta.url)),
 *   key: await Deno.readTextFile(new URL("../../tests/fixtures/tls/localhost.key", import.meta.url)),
 * };
 * await using server = serve({ ok: () => true }, { hostname: "127.0.0.1", tls });
 * assert.ok(server.addr.port > 0);
 * ```
 */
export interface TlsOptions {
  /** Certificate chain in PEM format. */
  cert: string;
  /** Private key in PEM format. */
  key: string;
}

/**
 * Options of {@linkcode serve}.
 *
 * @example Tight limits and a quiet log
 * ```ts
 * import { serve, type ServeOptions } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const errors: Error[] = [];
 * const options: ServeOptions = {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   maxFrameSize: 64 * 1024,
 *   maxInFlightPerConnection: 100,
 *   maxConnections: 10,
 *   handshakeTimeout: 1000,
 *   idleTimeout: 5000,
 *   onError: (error) => errors.push(error),
 * };
 * await using server = serve({ ok: () => true }, options);
 * assert.equal(server.connections, 0);
 * ```
 */
export interface ServeOptions {
  /**
   * The interface to listen on.
   *
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * The port; `0` picks a free one (read it from `server.addr`).
   *
   * @default {0}
   */
  port?: number;
  /** Serve TLS with this certificate (via `Deno.listenTls`). */
  tls?: TlsOptions;
  /**
   * Payload codecs this server accepts. Each connection uses the first codec
   * in the client's list that is here too (negotiated at connection start).
   *
   * @default {[msgpackCodec, jsonCodec]}
   */
  codec?: Codec | readonly Codec[];
  /**
   * Largest frame accepted (the value of the length field, in bytes).
   *
   * @default {4194304}
   */
  maxFrameSize?: number;
  /**
   * Most async handlers a connection may have running at once. A cancelled
   * call keeps its slot until its handler settles (a handler made with
   * `withContext` that stops on `ctx.signal` frees it at once). A request
   * beyond the limit is not run: it is answered with
   * `ResourceExhaustedError` (`ran: false`) and the connection
   * stays open.
   *
   * @default {1024}
   */
  maxInFlightPerConnection?: number;
  /**
   * Streaming calls: the items one client may send on one stream (its
   * input) before this server grants more, announced as the `streamWindow`
   * setting. The server grants them again as the handler reads `ctx.input`,
   * so a stream's unread input holds at most this many items (each at most
   * `maxFrameSize`). A stream counts against `maxInFlightPerConnection`
   * like an async handler until it ends.
   *
   * @default {256}
   */
  streamWindow?: number;
  /**
   * Most open connections; further ones get a `goaway` and are closed.
   *
   * @default {1024}
   */
  maxConnections?: number;
  /**
   * Milliseconds a new connection has to send its preface.
   *
   * @default {10000}
   */
  handshakeTimeout?: number;
  /**
   * Most open connections from one remote address (IP); further ones get a
   * `goaway` and are closed, so that one host cannot take every slot of
   * `maxConnections`. `0` disables it.
   *
   * @default {256}
   */
  maxConnectionsPerAddress?: number;
  /**
   * Milliseconds without a request, while no call is in flight, after which
   * a connection is closed. Pings do not count: a peer cannot hold a
   * connection by pinging. `0` disables it.
   *
   * @default {120000}
   */
  idleTimeout?: number;
  /**
   * Most pings a connection may send in one minute; one more gets a
   * `goaway` "Too many pings" and the connection is closed. The client's
   * keepalive sends at most one per `keepaliveInterval` (30 s by default).
   *
   * @default {120}
   */
  maxPingsPerMinute?: number;
  /**
   * Milliseconds after which a connection is drained (`goaway`, in-flight
   * calls finish, then it closes; forced after `closeTimeout`), +/-10 %
   * jitter. Clients reconnect, which spreads load over new servers and
   * bounds how long one peer holds a slot. `0` disables it.
   *
   * @default {0}
   */
  maxConnectionAge?: number;
  /**
   * Milliseconds a request frame may take to arrive once its first bytes
   * came. A peer that trickles a frame (or stops halfway) is closed; the
   * idle timeout alone would let a byte a minute hold a connection forever.
   *
   * @default {30000}
   */
  frameTimeout?: number;
  /**
   * How long `close()` lets in-flight calls finish, in milliseconds (its
   * default `timeout`; also how long a connection drained for its
   * `maxConnectionAge` may take).
   *
   * @default {10000}
   */
  closeTimeout?: number;
  /**
   * Send the stack of errors thrown by handlers to clients (they append it to
   * the revived error's stack). Off by default: stacks reveal server paths.
   *
   * @default {false}
   */
  exposeStack?: boolean;
  /**
   * Registers the server in service discovery once it listens (and once
   * `warmUp` resolved).
   */
  registrar?: Registrar;
  /**
   * The server is not ready until this resolves (caches warm, connections
   * to its own dependencies open): until then its health is "not-serving"
   * and it is not registered, so no channel picks it. A rejection fails
   * registration (the server reports it and closes).
   *
   * @default {undefined} (ready at once)
   */
  warmUp?: Promise<unknown>;
  /**
   * Interceptors around every handled call (including `zkrpc.describe` and
   * `zkrpc.health`); the first is the outermost. They see the method,
   * params, metadata, deadline and outcome, and may short-circuit. With
   * none, calls take the path they take without the feature.
   *
   * @default {[]}
   */
  interceptors?: readonly ServerInterceptor[];
  /**
   * Calls made inside a context handler (`withContext()`, or any handler when
   * there are interceptors) inherit the handler's remaining deadline without
   * `{ parent: ctx }`. This keeps the running call in an `AsyncLocalStorage`
   * for the handler's duration (about 3 us per context-handler call, measured
   * in a micro-benchmark); `false` skips that, and nested calls then inherit
   * only with an explicit `{ parent: ctx }`. Plain handlers never pay it.
   *
   * @default {true}
   */
  inheritDeadline?: boolean;
  /** Aborting it closes the server. */
  signal?: AbortSignal;
  /**
   * Receives connection-level problems (protocol violations, limits,
   * timeouts, registration failures). The server keeps running.
   *
   * @default {(error) => console.warn(error.message)}
   */
  onError?: (error: Error, remoteAddr?: Deno.NetAddr) => void;
}

/**
 * Options of {@linkcode RpcServer.prototype.close}.
 *
 * @example Close with a short grace period
 * ```ts
 * import { type CloseOptions, serve } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serve({ ok: () => true }, { hostname: "127.0.0.1" });
 * const options: CloseOptions = { timeout: 100 };
 * await server.close(options);
 * await server.finished;
 * assert.equal(server.connections, 0);
 * ```
 */
export interface CloseOptions {
  /**
   * Milliseconds in-flight calls get to finish before their connections are
   * closed and their signals aborted.
   *
   * @default {ServeOptions.closeTimeout}
   */
  timeout?: number;
}

/**
 * A running zkrpc server, created by {@linkcode serve}. Shaped like
 * `Deno.HttpServer`: `addr`, `finished`, a graceful `close()` and
 * `Symbol.asyncDispose` so `await using` works.
 *
 * @example Serve, call, close
 * ```ts
 * import { serve } from "./server.ts";
 * import { Connection } from "../client/connection.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ add: (a: number, b: number) => a + b }, { hostname: "127.0.0.1" });
 * await using conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * assert.equal(await conn.call("add", [1, 2]), 3);
 * ```
 */
export class RpcServer implements AsyncDisposable {
  /** The bound address (the real port when `port` was 0). */
  readonly addr: Deno.NetAddr;
  /**
   * Resolves when the server has closed and every connection is gone.
   * Rejects (after the same close) with the error when the server closed
   * itself because `warmUp` or registration failed for good, so that
   * `await server.finished` ends a process with a non-zero exit code. A
   * rejection nobody awaits is not reported as unhandled.
   */
  readonly finished: Promise<void>;
  /**
   * Resolves once the server is serving and, with a registrar, its member is
   * visible to clients (the registry acknowledged it: for ZooKeeper, the
   * member node's create; while ZooKeeper is unreachable it waits). The
   * sequence is listening -> serving (after `warmUp`) -> registered = ready.
   * Rejects when `warmUp` or registration failed for good (the server then
   * closes itself and `finished` rejects with the same error), or with a
   * {@linkcode ServerClosingError} when `close()` came first.
   */
  readonly ready: Promise<void>;

  #methods: Map<string, AnyFunction>;
  #options: ServeOptions;
  #codecs: readonly Codec[];
  #onError: (error: Error, remoteAddr?: Deno.NetAddr) => void;
  #acceptor!: Acceptor;
  #closing: Promise<void> | undefined;
  #resolveFinished!: () => void;
  #rejectFinished!: (error: Error) => void;
  /** Why the server closed itself (warmUp or registration failed). */
  #failure: Error | undefined;
  #readySettled = false;
  #rejectReady!: (error: Error) => void;
  /** The registration, once the registrar's register() resolved. */
  #current: Registration | undefined;
  #registration: Promise<Registration | undefined>;
  #signal: AbortSignal | undefined;
  #internals: ServerInternals;
  /** What setServing() asked for the whole server. */
  #wanted = true;
  /** Whether warmUp resolved (or there was none). */
  #warm: boolean;
  #services = new Map<string, boolean>();
  #onAbort = (): void => {
    this.close().catch(() => {});
  };

  /**
   * Use {@linkcode serve} instead.
   *
   * @param listener A listening socket.
   * @param handlers The handler object or class.
   * @param options Serve options.
   */
  constructor(
    listener: Deno.Listener,
    handlers: object,
    options: ServeOptions = {},
  ) {
    this.#methods = collectMethods(handlers);
    this.#options = options;
    this.#codecs = codecList(options.codec, "serve");
    const onError = options.onError ??
      ((error) => console.warn(`zkrpc server: ${printableMessage(error)}`));
    // A throwing onError must not end the process from a completion path.
    this.#onError = (error, remoteAddr) => {
      try {
        onError(error, remoteAddr);
      } catch (fault) {
        console.error("zkrpc server: onError threw", fault);
      }
    };
    this.addr = listener.addr as Deno.NetAddr;
    const description: ServiceDescription = {
      protocol: PROTOCOL_VERSION,
      codec: this.#codecs.map((c) => c.name).join(", "),
      methods: describeMethods(this.#methods),
    };
    const describe = (): ServiceDescription => description;
    const health = (service?: unknown): { status: HealthStatus } => ({
      status: this.#health(service),
    });
    const interceptors = [
      ...serverTelemetry(this.addr),
      ...(options.interceptors ?? []),
    ];
    let entries: [string, AnyFunction][] = [
      ...this.#methods,
      [DESCRIBE_METHOD, describe],
      [HEALTH_METHOD, health],
    ];
    if (interceptors.length > 0) {
      entries = entries.map(([name, fn]) => [
        name,
        intercepted(name, fn, handlers, interceptors),
      ]);
    }
    this.#warm = options.warmUp === undefined;
    this.#internals = {
      table: methodTable(entries),
      running: new RunningHandlers(),
      handlers,
      codecs: this.#codecs,
      settings: encodeSettings({
        maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
        codecs: this.#codecs.map((c) => c.name),
        maxInFlight: options.maxInFlightPerConnection ??
          SERVER_DEFAULTS.maxInFlightPerConnection,
        streamWindow: options.streamWindow ?? DEFAULT_STREAM_WINDOW,
      }),
      options,
      onError: this.#onError,
      inheritDeadline: options.inheritDeadline ?? true,
      notServing: () =>
        this.#closing === undefined && !this.#isServing()
          ? NOT_SERVING
          : undefined,
    };
    this.finished = new Promise((resolve, reject) => {
      this.#resolveFinished = resolve;
      this.#rejectFinished = reject;
    });
    this.finished.catch(() => {});
    this.#acceptor = new Acceptor(listener, this.#internals, this.#options);
    const registrar = options.registrar;
    const context: RegisterContext = {
      tls: options.tls !== undefined,
      fail: (error) => this.#registrationFailed(error),
    };
    const register = () => {
      if (this.#closing !== undefined) return undefined;
      const before = this.#isServing();
      this.#warm = true;
      this.#servingChanged(before);
      if (!registrar) return undefined;
      return registrar.register(this.addr, context).then((registration) => {
        this.#current = registration;
        if (!this.#isServing()) this.#withdraw(); // setServing(false) came first
        return registration;
      });
    };
    try {
      this.#registration = options.warmUp === undefined
        ? Promise.resolve(register())
        : Promise.resolve(options.warmUp).then(register, (error) => {
          throw new Error(
            `Cannot serve: warmUp rejected: ${errorMessage(error)}`,
            {
              cause: error,
            },
          );
        });
    } catch (error) {
      this.#registration = Promise.reject(error);
    }
    this.ready = new Promise<void>((resolve, reject) => {
      this.#rejectReady = (error) => {
        this.#readySettled = true;
        reject(error);
      };
      this.#registration.then((registration) => registration?.registered?.())
        .then(
          () => {
            if (this.#readySettled) return;
            this.#readySettled = true;
            resolve();
          },
          (error: unknown) => {
            if (this.#readySettled) return;
            const e = error instanceof Error ? error : new Error(String(error));
            this.#registrationFailed(e);
            this.#rejectReady(this.#failure ?? e);
          },
        );
    });
    this.ready.catch(() => {});
    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#onAbort();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Reports a failed warm-up or registration and closes the server; its
   * `finished` then rejects with this error. Ignored once `close()` began.
   */
  #registrationFailed(error: Error): void {
    if (this.#closing !== undefined) return;
    const failure = error.message.startsWith("Cannot ")
      ? error
      : new Error(`Cannot register server: ${error.message}`, {
        cause: error,
      });
    this.#failure = failure;
    this.#onError(failure);
    this.close().catch(() => {});
  }

  /** Whether the whole server serves: warmed up, wanted, not closing. */
  #isServing(): boolean {
    return this.#warm && this.#wanted && this.#closing === undefined;
  }

  /**
   * Acts on a change of {@linkcode RpcServer.prototype.#isServing}: out of
   * discovery and `goaway` on every connection when it stops serving (close
   * has its own sequence), back into discovery when it serves again.
   */
  #servingChanged(before: boolean): void {
    const now = this.#isServing();
    if (now === before || this.#closing !== undefined) return;
    if (now) {
      try {
        this.#current?.restore?.();
      } catch (error) {
        this.#onError(
          new Error(`Cannot register server again: ${errorMessage(error)}`, {
            cause: error,
          }),
        );
      }
      return;
    }
    this.#withdraw();
    for (const conn of this.#acceptor.connections) {
      conn.stopServing(NOT_SERVING);
    }
  }

  #withdraw(): void {
    const registration = this.#current;
    if (registration?.withdraw === undefined) return;
    // Called at once (not in a later microtask), so that a restore() right
    // after it finds the registration withdrawn and registers again.
    let withdrawn: Promise<void>;
    try {
      withdrawn = Promise.resolve(registration.withdraw());
    } catch (error) {
      withdrawn = Promise.reject(error);
    }
    withdrawn.catch((error) =>
      this.#onError(
        new Error(
          `Cannot withdraw server from discovery: ${errorMessage(error)}`,
          {
            cause: error,
          },
        ),
      )
    );
  }

  #health(service: unknown): HealthStatus {
    if (
      service !== undefined && service !== null && service !== "" &&
      !this.#services.has(String(service))
    ) return "unknown";
    const serving = this.#isServing();
    return serving && (this.#services.get(String(service ?? "")) ?? true)
      ? "serving"
      : "not-serving";
  }

  /**
   * Takes the whole server out of rotation (`false`) or puts it back
   * (`true`), or sets what `zkrpc.health` answers for one named service
   * (which then becomes known to the health method; per-service status
   * affects health only, never routing). A server is serving once it listens
   * (after `warmUp`, when given), unless set not serving, and not-serving
   * from the moment `close()` starts.
   *
   * A server that stops serving is withdrawn from discovery (its member node
   * is deleted) and sends `goaway` "Server is not serving" and a drain ping
   * on every open connection, as `close()` does: calls in flight finish,
   * later requests are refused with {@linkcode ServerClosingError} (not
   * run), so every channel, existing or fresh, stops routing to it. New
   * connections are accepted and answer `zkrpc.health` and
   * `zkrpc.describe`; their first other request gets the same `goaway` and
   * refusal. Serving again registers a new member node.
   *
   * @example Take a service out of rotation
   * ```ts
   * import { Connection, serve } from "@zkrpc/zkrpc";
   * import { HEALTH_METHOD } from "@zkrpc/zkrpc/protocol";
   * import assert from "node:assert/strict";
   *
   * await using server = serve({ ok: () => true }, { hostname: "127.0.0.1" });
   * server.setServing(false, "orders");
   * await using conn = await Connection.connect({
   *   hostname: "127.0.0.1",
   *   port: server.addr.port,
   * });
   * assert.deepEqual(await conn.call(HEALTH_METHOD, ["orders"]), {
   *   status: "not-serving",
   * });
   * ```
   *
   * @param serving Whether to serve.
   * @param service A service name; the whole server when omitted.
   */
  setServing(serving: boolean, service?: string): void {
    if (service === undefined || service === "") {
      if (this.#closing !== undefined) return;
      const before = this.#isServing();
      this.#wanted = serving;
      this.#servingChanged(before);
    } else this.#services.set(service, serving);
  }

  /** Number of open connections. */
  get connections(): number {
    return this.#acceptor.connections.size;
  }

  /** The names of the callable methods. */
  get methods(): string[] {
    return [...this.#methods.keys()];
  }

  /**
   * Closes gracefully: deregisters from discovery, stops accepting, sends
   * `goaway` on every connection, lets in-flight calls finish within the
   * timeout (new requests get {@linkcode ServerClosingError}), then closes
   * the sockets. Idempotent: later calls return the same promise.
   *
   * @param options The grace period (`timeout`).
   * @returns A promise that resolves when the server is closed.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    if (!this.#readySettled) {
      this.#rejectReady(
        this.#failure ??
          new ServerClosingError(
            "Cannot serve: the server was closed before it was ready",
          ),
      );
    }
    this.#closing = this.#close(
      options.timeout ?? this.#options.closeTimeout ??
        SERVER_DEFAULTS.closeTimeout,
    );
    return this.#closing;
  }

  async #close(timeout: number): Promise<void> {
    // #closing is set: health says not-serving before anything else changes.
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      // Not warm yet: register() will not run (close came first), so there
      // is nothing to deregister and no warmUp to wait for.
      const registration = this.#warm
        ? await this.#registration.catch(() => undefined)
        : undefined;
      await registration?.deregister();
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      this.#onError(
        new Error(`Cannot deregister server: ${e.message}`, { cause: e }),
      );
    }
    await this.#acceptor.stop();
    const open = this.#acceptor.connections;
    for (const conn of open) conn.drain("Server is closing");
    const conns = [...open];
    const running = this.#internals.running;
    await settleWithin(
      Promise.all([...conns.map((c) => c.done), running.idle()]),
      timeout,
    );
    for (const conn of open) {
      conn.close(
        new ServerClosingError(
          `Server closed before the call completed: close timeout of ${timeout} ms exceeded`,
        ),
      );
    }
    await Promise.all(conns.map((c) => c.done));
    // Handlers whose connection is gone were aborted; give them a moment to
    // honour their signal, but never wait forever for one that ignores it.
    if (running.size > 0) await settleWithin(running.idle(), 1000);
    await this.#acceptor.refused();
    if (this.#failure === undefined) this.#resolveFinished();
    else this.#rejectFinished(this.#failure);
  }

  /**
   * Closes the server; never throws.
   *
   * @returns A promise that resolves when the server is closed.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.close();
    } catch {
      // never throws
    }
  }
}

/**
 * Starts a zkrpc server exposing the methods of `handlers`: a plain object, a
 * class instance (its own function properties and its class's and
 * superclasses' methods) or a class with static methods. Never callable
 * (calling them fails with {@linkcode MethodNotFoundError}): symbols,
 * `constructor`, `__proto__`, `prototype`, `length`, `name`, everything from
 * `Object.prototype` and `Function.prototype`, the methods of built-in
 * classes a handler class extends, `then`, `toJSON`, names starting with `_`, getters
 * (never run while scanning) and generator functions. The method set is read
 * once, here; a handler object with nothing callable is a `TypeError` that
 * says why. Names starting with `zkrpc.` are reserved (a `TypeError` here):
 * every server answers {@linkcode DESCRIBE_METHOD} with its
 * {@linkcode ServiceDescription}.
 *
 * Handlers may be sync or async. Each is called with `this` bound to
 * `handlers` and exactly the caller's params, so default parameters work. A
 * handler that wants its {@linkcode CallContext} (`signal`, `method`,
 * `remoteAddr`) is wrapped with {@linkcode withContext} and gets it as its
 * first argument. An error thrown
 * by a handler travels as `{ name, message, data, fields }` - its own `data`
 * property and its other own enumerable properties
 * ({@linkcode ErrorPayload}`.fields`), no stack.
 *
 * @param handlers The object, instance or class whose methods are exposed.
 * @param options Address, limits, TLS, registrar.
 * @returns The running server.
 *
 * @example The seed's calculator
 * ```ts
 * import { serve } from "./server.ts";
 * import { Connection } from "../client/connection.ts";
 * import { ErrorRegistry } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * class InvalidOperation extends Error {}
 * class Handlers {
 *   static divide(a: number, b: number): number {
 *     if (b === 0) throw new InvalidOperation("Cannot divide by zero");
 *     return a / b;
 *   }
 * }
 * await using server = serve(Handlers, { hostname: "127.0.0.1", port: 0 });
 * await using conn = await Connection.connect(
 *   { hostname: "127.0.0.1", port: server.addr.port },
 *   { errors: new ErrorRegistry().register(InvalidOperation) },
 * );
 * assert.equal(await conn.call("divide", [10, 2]), 5);
 * await assert.rejects(conn.call("divide", [1, 0]), InvalidOperation);
 * ```
 */
export function serve(handlers: object, options: ServeOptions = {}): RpcServer {
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 0;
  const listener = options.tls
    ? Deno.listenTls({
      hostname,
      port,
      cert: options.tls.cert,
      key: options.tls.key,
    })
    : Deno.listen({ hostname, port, transport: "tcp" });
  try {
    return new RpcServer(listener, handlers, options);
  } catch (error) {
    listener.close(); // handlers that cannot be served (checked first thing)
    throw error;
  }
}
