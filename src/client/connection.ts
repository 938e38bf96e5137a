/**
 * One multiplexed client connection to a zkrpc server.
 *
 * @module
 */

import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  ErrorRegistry,
  ProtocolError,
  ServerClosingError,
} from "../errors.ts";
import { type Codec, jsonCodec } from "../protocol/codec.ts";
import {
  checkPingSize,
  DEFAULT_MAX_FRAME_SIZE,
  type Frame,
  type FrameDecoder,
  FrameType,
} from "../protocol/frame.ts";
import { refusalOf, replyError } from "./_answers.ts";
import { FrameWriter, holdWritesForTurn } from "../protocol/frame_writer.ts";
import {
  callPromise,
  type CallSink,
  CallTable,
  type PendingCall,
  REJECT_WITH_CALLER_STACK,
  rejectWithCallerStack,
  resolvers,
  rethrowWithCallerStack,
} from "./_calls.ts";
import { RequestBuilder } from "./_request_builder.ts";
import { Keepalive } from "./_keepalive.ts";
import { Pings } from "./_pings.ts";
import { errorMessage as message, lowerFirst } from "../_util.ts";
import {
  type Address,
  DEFAULT_CONNECT_TIMEOUT,
  openSocket,
} from "./_connect.ts";
import { inheritedDeadline } from "../_call_scope.ts";
import { MAX_WIRE_DEADLINE, remaining } from "../_deadline.ts";
import {
  type ClientCall,
  type ClientInterceptor,
  runClientInterceptors,
} from "../_interceptors.ts";
import { clientTelemetry } from "../telemetry/telemetry.ts";
import { isValidTimeout, timeoutError } from "../_async.ts";
import { CONNECTION_DEFAULTS } from "../_defaults.ts";
import { DEFAULT_STREAM_WINDOW } from "../protocol/stream_frames.ts";
import {
  type ClientStream,
  type ClientStreamHost,
  onStreamFrame,
  openClientStream,
} from "./_stream.ts";
import type {
  CallOptions,
  ConnectionCloseDetail,
  ConnectionOptions,
  StreamOptions,
} from "./options.ts";
import { decodeFrom, encodeForWrite } from "../protocol/scratch_encode.ts";

// Internal, for the channel's attempts (it may not import client/_calls.ts).
export {
  callPromise,
  type CallSink,
  rejectWithCallerStack,
  resolvers,
  rethrowWithCallerStack,
};

/**
 * Set on the options of connections a channel opens: the channel runs the
 * telemetry interceptor per attempt, so the connection does not.
 */
export const CHANNEL_OWNED: unique symbol = Symbol("zkrpc.channelOwned");

export type { Address };

/**
 * The default `connectTimeout` of a connection, in ms (the channel uses it
 * too).
 *
 * @example
 * ```ts
 * import { DEFAULT_CONNECT_TIMEOUT } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_CONNECT_TIMEOUT, 2000);
 * ```
 */
export { DEFAULT_CONNECT_TIMEOUT };

export { MAX_WIRE_DEADLINE };

export type {
  CallOptions,
  ConnectionCloseDetail,
  ConnectionOptions,
  StreamOptions,
} from "./options.ts";

const utf8Decoder = new TextDecoder();

/** Queued output above which pings are not answered. */
const PONG_HIGH_WATER = 1024 * 1024;

/**
 * Internal: {@linkcode Connection.prototype.call} without its rejection
 * handler, for a caller that adds the awaiting code's stack itself (the
 * channel): the promise the read loop settles, and no second one per call.
 * Not exported from `mod.ts`.
 *
 * @example
 * ```ts
 * import { callUnwrapped, Connection } from "./connection.ts";
 * import { serve } from "../server/server.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ add: (a: number, b: number) => a + b }, { hostname: "127.0.0.1" });
 * await using conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * assert.equal(await callUnwrapped(conn, "add", [1, 2], { timeout: 1000 }), 3);
 * ```
 */
export let callUnwrapped: (
  connection: Connection,
  method: string,
  params: unknown[],
  options: CallOptions,
  now?: number,
) => Promise<unknown>;

/**
 * Internal: {@linkcode callUnwrapped} for a caller that takes the outcome
 * through a {@linkcode CallSink} (the channel's attempt): no promise, no
 * reaction per call. Returns `undefined` when the request went out (or
 * waits for a slot), or the rejected promise of a call refused at once.
 *
 * @example
 * ```ts
 * import { Connection, sendToSink } from "./connection.ts";
 * import { serve } from "../server/server.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ add: (a: number, b: number) => a + b }, { hostname: "127.0.0.1" });
 * await using conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * const sum = Promise.withResolvers<unknown>();
 * const sink = { onValue: sum.resolve, onError: sum.reject };
 * assert.equal(sendToSink(conn, "add", [1, 2], { timeout: 1000 }, Date.now(), sink), undefined);
 * assert.equal(await sum.promise, 3);
 * ```
 */
export let sendToSink: (
  connection: Connection,
  method: string,
  params: unknown[],
  options: CallOptions,
  now: number,
  sink: CallSink,
) => Promise<unknown> | undefined;

// The options of a call that passes none: no object per call.
const NO_OPTIONS: CallOptions = Object.freeze({});

/**
 * One multiplexed connection to a zkrpc server: many calls in flight,
 * matched by id, answered in any order. Frames queued in one microtask turn
 * go out in one write.
 *
 * Failure modes of {@linkcode Connection.prototype.call}:
 * - {@linkcode ConnectionError} when the connection is closed or drops;
 *   `written: false` means the request never reached the socket (safe to
 *   retry anywhere), `true` that it may have run.
 * - {@linkcode ServerClosingError} after the server sent `goaway`
 *   (`draining` is `true`): the request was not sent, or not run
 *   (`notRun: true`); a "closing" answer without a `goaway` before it has
 *   `notRun: false` (it may have run).
 * - {@linkcode DeadlineExceededError} / {@linkcode CancelledError} on
 *   timeout / abort; a cancel is sent and the connection stays usable.
 * - the caller's registered error class, {@linkcode RemoteError} or
 *   {@linkcode MethodNotFoundError} for errors from the server.
 * - `TypeError` / `RangeError` for params that cannot be encoded or are too
 *   large; nothing is sent.
 *
 * Events: `"goaway"` (an `Event`; the server is draining) and `"close"` (a
 * `CustomEvent<ConnectionCloseDetail>`).
 *
 * @example Call a server
 * ```ts
 * import { Connection } from "./connection.ts";
 * import { serve } from "../server/server.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ echo: (x: unknown) => x }, { hostname: "127.0.0.1" });
 * await using conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * assert.deepEqual(await conn.call("echo", [{ n: 1n }], { timeout: 1000 }), { n: 1n });
 * assert.equal(conn.inFlight, 0);
 * ```
 */
export class Connection extends EventTarget implements AsyncDisposable {
  /**
   * Resolves when the connection is gone: the socket is closed and no I/O is
   * pending (named as `RpcServer.finished` and `Deno.HttpServer.finished`).
   */
  readonly finished: Promise<void>;

  /**
   * The same promise as {@linkcode Connection.finished}.
   *
   * @deprecated Use `finished` (one word for "gone" across zkrpc).
   */
  get closed(): Promise<void> {
    return this.finished;
  }
  /** The endpoint this connection talks to. */
  readonly endpoint: Address;

  #conn: Deno.Conn;
  #name: string;
  #interceptors: readonly ClientInterceptor[] | undefined;
  #codec: Codec;
  #errors: ErrorRegistry;
  #requests: RequestBuilder;
  /** What this connection's streams need of it. */
  #streamHost: ClientStreamHost;
  #decoder: FrameDecoder;
  #writer: FrameWriter;
  #calls: CallTable;
  #draining = false;
  #closedFlag = false;
  #closeError: Error | undefined;
  #resolveClosed!: () => void;
  #reading: Promise<void> = Promise.resolve();
  #keepaliveTimeout: number;
  #keepalive: Keepalive;
  #pings: Pings;

  /**
   * Opens a connection: connects the socket, sends the preface and waits for
   * the server's.
   *
   * @param endpoint The server.
   * @param options Timeouts, codec, error classes, keepalive.
   * @returns The open connection.
   * @throws {ConnectionError} (`written: false`) when the socket cannot be
   * opened, or closes before the server's preface.
   * @throws {ProtocolError} when the peer is not a zkrpc server of this
   * protocol version.
   * @throws {ServerClosingError} when the server answered with `goaway`
   * right away (draining, or over its connection limit).
   * @throws {RangeError} when a keepalive period is `NaN`, negative or not a
   * number (before anything is opened).
   */
  static async connect(
    endpoint: Address,
    options: ConnectionOptions = {},
  ): Promise<Connection> {
    for (
      const name of [
        "keepaliveInterval",
        "keepaliveTimeout",
        "idleKeepaliveInterval",
      ] as const
    ) {
      if (!isValidTimeout(options[name])) {
        throw timeoutError(
          options[name],
          `connect to ${endpoint.hostname}:${endpoint.port}`,
          name,
        );
      }
    }
    const { conn, decoder, settings, codec } = await openSocket(
      endpoint,
      options,
    );
    const connection = new Connection(
      conn,
      endpoint,
      decoder,
      options,
      settings,
      codec,
    );
    if (connection.draining) {
      const name = `${endpoint.hostname}:${endpoint.port}`;
      // The goaway came with the preface (e.g. "Too many connections"):
      // report it here, where the caller can retry elsewhere, rather than
      // through an event fired before anyone could listen.
      connection.close();
      await connection.closed;
      throw new ServerClosingError(
        `Cannot connect to ${name}: the server is closing: ${connection.goawayReason}`,
        { notRun: true },
      );
    }
    return connection;
  }

  /**
   * Use {@linkcode Connection.connect} instead.
   *
   * @param conn A socket whose preface exchange is done.
   * @param endpoint The endpoint it is connected to.
   * @param decoder The decoder holding any bytes read after the server's
   * settings.
   * @param options Connection options.
   * @param peer The limits the server announced in its settings.
   * @param codec The codec negotiated with the server.
   */
  constructor(
    conn: Deno.Conn,
    endpoint: Address,
    decoder: FrameDecoder,
    options: ConnectionOptions = {},
    peer: {
      maxFrameSize?: number;
      maxInFlight?: number;
      streamWindow?: number;
    } = {},
    codec: Codec = jsonCodec,
  ) {
    super();
    this.#conn = conn;
    this.endpoint = endpoint;
    this.#name = `${endpoint.hostname}:${endpoint.port}`;
    this.#codec = codec;
    const interceptors = [
      ...(CHANNEL_OWNED in options ? [] : clientTelemetry()),
      ...(options.interceptors ?? []),
    ];
    this.#interceptors = interceptors.length > 0 ? interceptors : undefined;
    this.#errors = options.errors ?? new ErrorRegistry();
    this.#requests = new RequestBuilder(
      codec,
      options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      peer.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    );
    this.#streamHost = {
      push: (type, id, bytes) => {
        if (!this.#closedFlag) this.#writer.push(type, id, bytes);
      },
      encode: (value) => encodeForWrite(this.#codec, value),
      decode: (bytes) => this.#codec.decode(bytes),
      buffered: () => this.#writer.buffered,
      below: (limit) => this.#writer.below(limit),
      window: options.streamWindow ?? DEFAULT_STREAM_WINDOW,
      peerWindow: peer.streamWindow ?? 0,
      name: this.#name,
    };
    // Never more requests out than the server runs: it would refuse them.
    const maxInFlight = Math.min(
      options.maxInFlight ?? CONNECTION_DEFAULTS.maxInFlight,
      peer.maxInFlight || Infinity,
    );
    this.#decoder = decoder;
    this.#writer = new FrameWriter(
      conn,
      (error) =>
        this.#shutdown(
          new ConnectionError(
            `Connection to ${this.#name} failed: ${message(error)}`,
            { written: true, cause: error },
          ),
        ),
    );
    this.#calls = new CallTable(
      maxInFlight,
      (call, timeout, params) => {
        const stream = call.stream;
        if (stream !== undefined) {
          this.#writer.push(FrameType.Open, call.id, stream.openPayload);
        }
        const batch = this.#writer.pushRequest(
          call.id,
          timeout,
          call.prefix,
          params,
          call.metadata,
        );
        stream?.attach(call.id);
        return batch;
      },
      (call) =>
        this.#expire(
          call,
          new DeadlineExceededError(
            `Cannot call method "${call.method}": deadline of ${call.timeout} ms exceeded`,
          ),
        ),
    );
    this.#keepaliveTimeout = options.keepaliveTimeout ??
      CONNECTION_DEFAULTS.keepaliveTimeout;
    this.finished = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#keepalive = new Keepalive(this.#name, {
      inFlight: () => this.#calls.size,
      started: () => this.#writer.started,
      ping: () => this.#writer.push(FrameType.Ping, 0),
      dead: () =>
        this.#shutdown(
          new ConnectionError(
            `Connection to ${this.#name} lost: no answer to a ping within ${this.#keepaliveTimeout} ms`,
            { written: true },
          ),
        ),
    }, {
      interval: options.keepaliveInterval ??
        CONNECTION_DEFAULTS.keepaliveInterval,
      timeout: this.#keepaliveTimeout,
      idleInterval: options.idleKeepaliveInterval ??
        CONNECTION_DEFAULTS.idleKeepaliveInterval,
    });
    this.#pings = new Pings({
      name: this.#name,
      send: () => this.#writer.push(FrameType.Ping, 0),
      closed: () => this.#closedFlag,
      closeError: () => this.#closeError,
    });
    this.#reading = this.#readLoop();
  }

  /** Number of calls awaiting a response (including calls queued locally). */
  get inFlight(): number {
    return this.#calls.size;
  }

  /** `true` once the server sent `goaway`: new calls reject at once. */
  get draining(): boolean {
    return this.#draining;
  }

  /** `true` once the connection is closed or broken. */
  get isClosed(): boolean {
    return this.#closedFlag;
  }

  /**
   * Calls a remote method.
   *
   * @param method The method name (at most 255 UTF-8 bytes).
   * @param params The arguments.
   * @param options Timeout and abort signal.
   * @returns The handler's return value.
   */
  call(
    method: string,
    params: unknown[] = [],
    options: CallOptions = NO_OPTIONS,
  ): Promise<unknown> {
    // Errors come from the read loop or a timer: they get the frames of
    // the code that awaits the call (no async wrapper), through a thenable
    // when it fails (no reaction per call) or a rejection handler.
    let promise: Promise<unknown>;
    try {
      const interceptors = this.#interceptors;
      if (interceptors === undefined) {
        return this.#send(method, params, options);
      }
      promise = this.#intercept(interceptors, method, params, options);
    } catch (error) {
      promise = Promise.reject(error);
    }
    return promise.then(undefined, rethrowWithCallerStack);
  }

  static {
    callUnwrapped = (c, method, params, options, now) =>
      c.#interceptors === undefined
        ? c.#send(method, params, options, undefined, now)
        : c.#intercept(c.#interceptors, method, params, options);
    sendToSink = (connection, method, params, options, now, sink) =>
      connection.#send(method, params, options, undefined, now, sink);
  }

  #intercept(
    interceptors: readonly ClientInterceptor[],
    method: string,
    params: unknown[],
    options: CallOptions,
    stream?: ClientStream,
  ): Promise<unknown> {
    // Before the interceptors (they see `null ?? Infinity`); #send checks
    // again what they pass on.
    if (!isValidTimeout(options.timeout)) {
      return Promise.reject(
        timeoutError(options.timeout, `call method "${method}"`),
      );
    }
    const call: ClientCall = {
      method,
      params,
      metadata: { ...options.metadata },
      timeout: remaining(
        inheritedDeadline(options.timeout ?? Infinity, options.parent),
      ),
      attempt: 1,
      target: this.#name,
    };
    return runClientInterceptors(
      interceptors,
      call,
      options.signal,
      (m, p, o) => this.#send(m, p, o, stream),
    );
  }

  /**
   * Calls a streaming method: the handler's items (an async generator, any
   * `AsyncIterable` or a `ReadableStream`; a handler that returns one value
   * gives one item) arrive through the returned `ReadableStream`, pulled
   * as the caller reads (flow control: at most `streamWindow` items wait
   * unread). `break` or `cancel()` cancels the call on the server (its
   * generator's `finally` runs, its `ctx.signal` aborts); `timeout` covers
   * the whole stream; `input` streams items to the handler (`ctx.input`).
   * A handler's error arrives after the items sent before it; a broken
   * connection after the first item fails with a `ConnectionError` that
   * says how many items arrived. Interceptors see a stream as one call
   * whose promise settles when the stream ends (they may add metadata and
   * change the timeout; they do not see items). See docs/streaming.md.
   *
   * @param method The method name.
   * @param params The arguments.
   * @param options Timeout, signal, metadata and `input`.
   * @returns The items.
   *
   * @example Count to three
   * ```ts
   * import { Connection } from "./connection.ts";
   * import { serve } from "../server/server.ts";
   * import assert from "node:assert/strict";
   *
   * await using server = serve({
   *   async *count(n: number) {
   *     for (let i = 0; i < n; i++) yield i;
   *   },
   * }, { hostname: "127.0.0.1" });
   * await using conn = await Connection.connect({ hostname: "127.0.0.1", port: server.addr.port });
   * const items = [];
   * for await (const item of conn.stream("count", [3], { timeout: 5000 })) items.push(item);
   * assert.deepEqual(items, [0, 1, 2]);
   * ```
   */
  stream(
    method: string,
    params: unknown[] = [],
    options: StreamOptions = NO_OPTIONS,
  ): ReadableStream<unknown> {
    return openClientStream(
      method,
      this.#streamHost,
      options,
      (o, stream) =>
        this.#interceptors === undefined
          ? this.#send(method, params, o, stream)
          : this.#intercept(this.#interceptors, method, params, o, stream),
    );
  }

  #send(
    method: string,
    params: unknown[],
    options: CallOptions,
    stream?: ClientStream,
    /** The caller's clock read when it has one (the channel). */
    now: number = Date.now(),
    sink?: CallSink,
  ): Promise<unknown> {
    // A plain call's errors get the frames of the code that awaits it.
    const callerStack = sink === undefined && stream === undefined;
    const refused = this.#refusal(method, params, options, now, stream);
    if (refused !== undefined) {
      const rejected = Promise.reject(refused);
      return callerStack
        ? rejected.then(undefined, rethrowWithCallerStack)
        : rejected;
    }
    const request = this.#requests;
    // One promise, resolved from the read loop; none for a sink's call.
    const promise = sink === undefined ? callPromise() : undefined;
    const call = this.#calls.open(
      method,
      request.prefix,
      request.metadata,
      request.deadline,
      resolvers.resolve,
      callerStack ? REJECT_WITH_CALLER_STACK : resolvers.reject,
      request.payload,
      now,
      stream,
      sink,
    );
    resolvers.clear();
    const signal = options.signal;
    if (signal) this.#cancelOnAbort(call, signal);
    // No promise for a sink's call: sendToSink returns undefined then.
    return promise!;
  }

  /**
   * Why a call cannot be sent (a closed or draining connection, an aborted
   * signal, a refused stream, or what `RequestBuilder.build` refuses), or
   * `undefined` once its request is built.
   */
  #refusal(
    method: string,
    params: unknown[],
    options: CallOptions,
    now: number,
    stream: ClientStream | undefined,
  ): Error | undefined {
    const streamRefusal = stream?.refusal();
    if (streamRefusal !== undefined) return streamRefusal;
    if (this.#closedFlag) {
      return new ConnectionError(
        `Cannot call method "${method}": connection to ${this.#name} is closed (request not sent)`,
        { written: false, cause: this.#closeError },
      );
    }
    if (this.#draining) {
      return new ServerClosingError(
        `Cannot call method "${method}": server ${this.#name} is closing (request not sent)`,
        { notRun: true },
      );
    }
    if (options.signal?.aborted) {
      return new CancelledError(`Cannot call method "${method}": cancelled`, {
        cause: options.signal.reason,
      });
    }
    // Here, not in call(): an interceptor may have changed the timeout.
    return this.#requests.build(method, params, options, now);
  }

  // Apart from #send, so that its closure does not make #send allocate a
  // context on every call.
  #cancelOnAbort(call: PendingCall, signal: AbortSignal): void {
    call.signal = signal;
    call.onAbort = () =>
      this.#expire(
        call,
        new CancelledError(`Cannot call method "${call.method}": cancelled`, {
          cause: signal.reason,
        }),
      );
    signal.addEventListener("abort", call.onAbort, { once: true });
  }

  #expire(call: PendingCall, error: Error): void {
    if (!this.#calls.has(call)) return;
    const sent = call.batch !== Infinity;
    if (sent && !this.#closedFlag) this.#writer.push(FrameType.Cancel, call.id);
    this.#calls.settle(call);
    call.reject(error);
  }

  /**
   * Closes the connection at once; pending calls reject with
   * {@linkcode ConnectionError}. Idempotent.
   */
  close(): void {
    this.#shutdown(undefined);
  }

  /**
   * Closes the connection and waits until it is gone; never throws.
   *
   * @returns A promise that resolves when closed.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.finished;
  }

  async #readLoop(): Promise<void> {
    const decoder = this.#decoder;
    let error: Error | undefined;
    try {
      this.#drainFrames();
      while (!this.#closedFlag) {
        const n = await this.#conn.read(decoder.writable());
        if (n === null) {
          // After goaway with nothing pending, EOF is the graceful end.
          if (!this.#draining || this.#calls.size > 0) {
            error = new ConnectionError(
              `Connection to ${this.#name} closed by the server`,
              { written: true },
            );
          }
          break;
        }
        decoder.commit(n);
        this.#keepalive.received();
        // The callers the answers woke send their next requests before the
        // next read starts: its cost is off their path.
        if (this.#drainFrames()) await undefined;
      }
    } catch (e) {
      if (!this.#closedFlag) {
        error = e instanceof ProtocolError ? e : new ConnectionError(
          `Connection to ${this.#name} failed: ${message(e)}`,
          { written: true, cause: e },
        );
      }
    }
    this.#shutdown(error);
  }

  /** Handles the frames read; true when there were any. */
  #drainFrames(): boolean {
    const decoder = this.#decoder;
    let frames = 0;
    while (!this.#closedFlag && decoder.advance()) {
      // A result is read where it lies: no frame object, no payload view.
      if (decoder.type === FrameType.Result) this.#onResult(decoder);
      else this.#onFrame(decoder.frame());
      frames++;
    }
    // Callers woken by several answers send their next requests in one
    // write per connection; a lone answer's caller sends at once (1 in
    // flight: no added hop).
    if (frames > 1) holdWritesForTurn();
    return frames > 0;
  }

  #onResult(decoder: FrameDecoder): void {
    const call = this.#calls.get(decoder.id);
    if (call === undefined) return; // cancelled or timed out
    this.#calls.settle(call);
    let value: unknown;
    try {
      value = decodeFrom(
        this.#codec,
        decoder.bytes,
        decoder.start,
        decoder.end,
      );
    } catch (error) {
      call.reject(
        new ProtocolError(
          `Cannot call method "${call.method}": cannot decode result: ${
            message(error)
          }`,
        ),
      );
      return;
    }
    call.resolve(value);
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.Error: {
        if (frame.id === 0) {
          throw refusalOf(this.#codec, frame.payload, this.#name);
        }
        const call = this.#calls.get(frame.id);
        if (call === undefined) return;
        this.#calls.settle(call);
        call.reject(
          replyError(
            this.#codec,
            this.#errors,
            frame.payload,
            call.method,
            this.#name,
            this.#draining,
          ),
        );
        return;
      }
      case FrameType.Item:
      case FrameType.Window:
      case FrameType.End:
        onStreamFrame(frame, this.#calls);
        return;
      case FrameType.Ping:
        checkPingSize(frame);
        // A server that pings without reading its pongs gets no more of
        // them once 1 MiB is queued: the client never stops reading (that
        // could deadlock against a server waiting for its output to drain),
        // so it bounds what pings can make it buffer instead.
        if (this.#writer.buffered <= PONG_HIGH_WATER) {
          this.#writer.push(FrameType.Pong, frame.id, frame.payload);
        }
        return;
      case FrameType.Pong:
        checkPingSize(frame);
        this.#keepalive.pong();
        this.#pings.pong();
        return;
      case FrameType.Goaway:
        if (!this.#draining) {
          this.#draining = true;
          this.#goawayReason = utf8Decoder.decode(frame.payload);
          this.dispatchEvent(new Event("goaway"));
        }
        return;
      default:
        throw new ProtocolError(
          `Cannot read frame from ${this.#name}: frame type ${frame.type} is not sent by servers`,
        );
    }
  }

  #goawayReason = "";

  /** The reason the server gave in its `goaway` (empty before one). */
  get goawayReason(): string {
    return this.#goawayReason;
  }

  /**
   * Sends a ping and resolves when the server answers it: proof that the
   * server's process is alive and reading (a channel's probe).
   *
   * @param timeout Milliseconds to wait for the pong (`Infinity`: no limit).
   * @returns A promise that resolves on the pong.
   * @throws {ConnectionError} (`written: false`) when no pong came in time
   * or the connection closed first.
   * @throws {RangeError} For a `NaN`, negative or non-number timeout.
   */
  ping(timeout: number = this.#keepaliveTimeout): Promise<void> {
    return this.#pings.ping(timeout);
  }

  #shutdown(error: Error | undefined): void {
    if (this.#closedFlag) return;
    this.#closedFlag = true;
    this.#closeError = error;
    this.#keepalive.stop();
    const calls = this.#calls.clear();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    const started = this.#writer.started;
    const reason = error
      ? lowerFirst(message(error))
      : `connection to ${this.#name} closed by the client`;
    for (const call of calls) {
      const written = call.batch <= started;
      call.reject(
        new ConnectionError(
          `Cannot call method "${call.method}": ${reason} (request ${
            written ? "may have run" : "not sent"
          })`,
          { written, cause: error },
        ),
      );
    }
    this.#pings.pong();
    Promise.all([this.#reading, this.#writer.drained()]).then(() => {
      this.#resolveClosed();
      this.dispatchEvent(
        new CustomEvent<ConnectionCloseDetail>("close", {
          detail: { error },
        }),
      );
    });
  }
}
