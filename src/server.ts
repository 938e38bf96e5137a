/**
 * The zkrpc server: {@linkcode serve} exposes a handler object's own methods
 * over `Deno.listen` (or `Deno.listenTls`).
 *
 * @module
 */

import {
  CancelledError,
  ConnectionError,
  errorName,
  type ErrorPayload,
  ProtocolError,
  ServerClosingError,
} from "./errors.ts";
import { type Codec, jsonCodec } from "./protocol/codec.ts";
import {
  checkPreface,
  DEFAULT_MAX_FRAME_SIZE,
  type Frame,
  FrameDecoder,
  FrameType,
  PREFACE,
  PREFACE_SIZE,
  PROTOCOL_VERSION,
} from "./protocol/frame.ts";
import { FrameWriter } from "./protocol/frame_writer.ts";

import { type CallContext, contextHandlerOf } from "./call_context.ts";

type Timer = ReturnType<typeof setTimeout>;

/**
 * A registration made by a {@linkcode Registrar}; undone by `close()`.
 *
 * @example Register and deregister
 * ```ts
 * import { type Registrar, serve } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const log: string[] = [];
 * const registrar: Registrar = {
 *   register(addr) {
 *     log.push(`up ${addr.port}`);
 *     return Promise.resolve({
 *       deregister() {
 *         log.push("down");
 *         return Promise.resolve();
 *       },
 *     });
 *   },
 * };
 * const server = serve({ ok: () => true }, { hostname: "127.0.0.1", registrar });
 * await server.ready;
 * await server.close();
 * assert.deepEqual(log, [`up ${server.addr.port}`, "down"]);
 * ```
 */
export interface Registration {
  /** Removes the server from discovery. Called first by `close()`. */
  deregister(): Promise<void>;
}

/**
 * The extension point for service discovery (the ZooKeeper registrar
 * implements it): {@linkcode serve} calls `register` with the bound address
 * once it listens, and `close()` calls `deregister` before anything else.
 *
 * @example A registrar that records its calls
 * ```ts
 * import { type Registrar, serve } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const log: string[] = [];
 * const registrar: Registrar = {
 *   register(addr) {
 *     log.push(`up ${addr.port}`);
 *     return Promise.resolve({
 *       deregister() {
 *         log.push("down");
 *         return Promise.resolve();
 *       },
 *     });
 *   },
 * };
 * const server = serve({ ok: () => true }, { hostname: "127.0.0.1", registrar });
 * await server.ready;
 * await server.close();
 * assert.deepEqual(log, [`up ${server.addr.port}`, "down"]);
 * ```
 */
export interface Registrar {
  /**
   * Registers the server.
   *
   * @param addr The address the server is bound to (real port when `port`
   * was 0; hostname may be `0.0.0.0`, the registrar picks the advertised one).
   * @returns The registration.
   */
  register(addr: Deno.NetAddr): Promise<Registration>;
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
 *   cert: await Deno.readTextFile(new URL("../tests/fixtures/tls/localhost.crt", import.meta.url)),
 *   key: await Deno.readTextFile(new URL("../tests/fixtures/tls/localhost.key", import.meta.url)),
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
   * Payload codec; clients must use the same one.
   *
   * @default {jsonCodec}
   */
  codec?: Codec;
  /**
   * Largest frame accepted (the value of the length field, in bytes).
   *
   * @default {4194304}
   */
  maxFrameSize?: number;
  /**
   * Most calls a connection may have running at once; one more closes it.
   *
   * @default {1024}
   */
  maxInFlightPerConnection?: number;
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
   * Milliseconds without any received byte, while no call runs, after which
   * a connection is closed. `0` disables it.
   *
   * @default {120000}
   */
  idleTimeout?: number;
  /**
   * Milliseconds a request frame may take to arrive once its first bytes
   * came. A peer that trickles a frame (or stops halfway) is closed; the
   * idle timeout alone would let a byte a minute hold a connection forever.
   *
   * @default {30000}
   */
  frameTimeout?: number;
  /**
   * Default deadline of `close()` in milliseconds.
   *
   * @default {10000}
   */
  closeDeadline?: number;
  /**
   * Send the stack of errors thrown by handlers to clients (they append it to
   * the revived error's stack). Off by default: stacks reveal server paths.
   *
   * @default {false}
   */
  exposeStack?: boolean;
  /** Registers the server in service discovery once it listens. */
  registrar?: Registrar;
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
 * @example Close with a short deadline
 * ```ts
 * import { type CloseOptions, serve } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serve({ ok: () => true }, { hostname: "127.0.0.1" });
 * const options: CloseOptions = { deadline: 100 };
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
   * @default {ServeOptions.closeDeadline}
   */
  deadline?: number;
}

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

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

function collectMethods(handlers: object): Map<string, AnyFunction> {
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

interface MethodEntry {
  bytes: Uint8Array;
  name: string;
  fn: AnyFunction;
  /** Set for handlers made by `withContext`: called with the context first. */
  withContext: AnyFunction | undefined;
}

/** Method lookup by raw name bytes, without decoding known names. */
function methodTable(
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

function findMethod(
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

function decodeMethod(bytes: Uint8Array): string {
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

const HTTP_REFUSAL = utf8.encode(
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n" +
    "Connection: close\r\n\r\nThis port speaks zkrpc, not HTTP/1.1.\r\n",
);

/** Queued response bytes above which a connection's requests stop being read. */
const WRITE_HIGH_WATER = 1024 * 1024;

const TRANSIENT_ACCEPT_ERRORS = [
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.ConnectionRefused,
  Deno.errors.NotConnected,
];

class Context implements CallContext {
  readonly method: string;
  readonly remoteAddr: Deno.NetAddr;
  #controller: AbortController | undefined;
  #reason: unknown = undefined;
  #aborted = false;

  constructor(method: string, remoteAddr: Deno.NetAddr) {
    this.method = method;
    this.remoteAddr = remoteAddr;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * A running zkrpc server, created by {@linkcode serve}. Shaped like
 * `Deno.HttpServer`: `addr`, `finished`, a graceful `close()` and
 * `Symbol.asyncDispose` so `await using` works.
 *
 * @example Serve, call, close
 * ```ts
 * import { serve } from "./server.ts";
 * import { Connection } from "./connection.ts";
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
  /** Resolves when the server has closed and every connection is gone. */
  readonly finished: Promise<void>;
  /**
   * Resolves once the registrar (if any) has registered the server; rejects
   * if registration failed (the server then closes itself).
   */
  readonly ready: Promise<void>;

  #listener: Deno.Listener;
  #methods: Map<string, AnyFunction>;
  #options: ServeOptions;
  #codec: Codec;
  #onError: (error: Error, remoteAddr?: Deno.NetAddr) => void;
  #conns = new Set<ServerConnection>();
  #refusals = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;
  #resolveFinished!: () => void;
  #accepting: Promise<void>;
  #backoff: { timer: Timer; resolve: () => void } | undefined;
  #registration: Promise<Registration | undefined>;
  #signal: AbortSignal | undefined;
  #internals: ServerInternals;
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
    this.#listener = listener;
    this.#options = options;
    this.#codec = options.codec ?? jsonCodec;
    this.#onError = options.onError ??
      ((error) => console.warn(`zkrpc server: ${error.message}`));
    this.addr = listener.addr as Deno.NetAddr;
    this.#internals = {
      table: methodTable(this.#methods),
      running: new Set(),
      handlers,
      methods: this.#methods,
      codec: this.#codec,
      options,
      onError: this.#onError,
    };
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    this.#accepting = this.#acceptLoop();
    const registrar = options.registrar;
    try {
      this.#registration = registrar
        ? Promise.resolve(registrar.register(this.addr))
        : Promise.resolve(undefined);
    } catch (error) {
      this.#registration = Promise.reject(error);
    }
    this.ready = this.#registration.then(
      () => {},
      (error: unknown) => {
        const e = error instanceof Error ? error : new Error(String(error));
        this.#onError(
          new Error(`Cannot register server: ${e.message}`, { cause: e }),
        );
        this.close().catch(() => {});
        throw e;
      },
    );
    this.ready.catch(() => {});
    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#onAbort();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Number of open connections. */
  get connections(): number {
    return this.#conns.size;
  }

  /** The names of the callable methods. */
  get methods(): string[] {
    return [...this.#methods.keys()];
  }

  /**
   * Closes gracefully: deregisters from discovery, stops accepting, sends
   * `goaway` on every connection, lets in-flight calls finish within the
   * deadline (new requests get {@linkcode ServerClosingError}), then closes
   * the sockets. Idempotent: later calls return the same promise.
   *
   * @param options The deadline.
   * @returns A promise that resolves when the server is closed.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = this.#close(
      options.deadline ?? this.#options.closeDeadline ?? 10_000,
    );
    return this.#closing;
  }

  async #close(deadline: number): Promise<void> {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      const registration = await this.#registration.catch(() => undefined);
      await registration?.deregister();
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      this.#onError(
        new Error(`Cannot deregister server: ${e.message}`, { cause: e }),
      );
    }
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    if (this.#backoff) {
      clearTimeout(this.#backoff.timer);
      this.#backoff.resolve();
    }
    await this.#accepting;
    for (const conn of this.#conns) conn.drain("Server is closing");
    const conns = [...this.#conns];
    const running = this.#internals.running;
    let timer: Timer | undefined;
    await Promise.race([
      Promise.all([...conns.map((c) => c.done), ...running]),
      new Promise<void>((resolve) => timer = setTimeout(resolve, deadline)),
    ]);
    clearTimeout(timer);
    for (const conn of this.#conns) {
      conn.close(
        new ServerClosingError(
          `Server closed before the call completed: deadline of ${deadline} ms exceeded`,
        ),
      );
    }
    await Promise.all(conns.map((c) => c.done));
    // Handlers whose connection is gone were aborted; give them a moment to
    // honour their signal, but never wait forever for one that ignores it.
    if (running.size > 0) {
      await Promise.race([
        Promise.all(running),
        new Promise<void>((resolve) => timer = setTimeout(resolve, 1000)),
      ]);
      clearTimeout(timer);
    }
    await Promise.all(this.#refusals);
    this.#resolveFinished();
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

  async #acceptLoop(): Promise<void> {
    let delay = 0;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
        delay = 0;
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) break;
        if (!TRANSIENT_ACCEPT_ERRORS.some((cls) => error instanceof cls)) {
          this.#onError(
            new Error(`Cannot accept connections: ${String(error)}`, {
              cause: error,
            }),
          );
        }
        delay = delay ? Math.min(delay * 2, 1000) : 5;
        await new Promise<void>((resolve) => {
          this.#backoff = { timer: setTimeout(resolve, delay), resolve };
        });
        this.#backoff = undefined;
        continue;
      }
      const remoteAddr = conn.remoteAddr as Deno.NetAddr;
      const max = this.#options.maxConnections ?? 1024;
      if (this.#conns.size >= max) {
        this.#onError(
          new ProtocolError(
            `Connection from ${remoteAddr.hostname}:${remoteAddr.port} refused: limit of ${max} connections reached`,
          ),
          remoteAddr,
        );
        this.#refuse(conn);
        continue;
      }
      try {
        (conn as Deno.TcpConn).setNoDelay?.(true);
      } catch {
        // not a TCP socket
      }
      const sc = new ServerConnection(this.#internals, conn, remoteAddr);
      this.#conns.add(sc);
      sc.done.then(() => this.#conns.delete(sc));
      sc.start();
    }
  }

  #refuse(conn: Deno.Conn): void {
    const goaway = utf8.encode("Too many connections");
    const frame = new Uint8Array(PREFACE_SIZE + 9 + goaway.length);
    frame.set(PREFACE);
    new DataView(frame.buffer).setUint32(PREFACE_SIZE, 5 + goaway.length);
    frame[PREFACE_SIZE + 4] = FrameType.Goaway;
    frame.set(goaway, PREFACE_SIZE + 9);
    const p = conn.write(frame).then(() => {}, () => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // ignore
      }
      this.#refusals.delete(p);
    });
    this.#refusals.add(p);
  }
}

interface ServerInternals {
  /** Methods by name length, with their UTF-8 bytes. */
  table: Map<number, MethodEntry[]>;
  /** Async handler calls not yet settled, across all connections. */
  running: Set<Promise<unknown>>;
  handlers: object;
  methods: Map<string, AnyFunction>;
  codec: Codec;
  options: ServeOptions;
  onError: (error: Error, remoteAddr?: Deno.NetAddr) => void;
}

class ServerConnection {
  readonly done: Promise<void>;
  #resolveDone!: () => void;
  #conn: Deno.Conn;
  #addr: Deno.NetAddr;
  #peer: string;
  #s: ServerInternals;
  #writer: FrameWriter;
  #decoder: FrameDecoder;
  #inflight = new Map<number, Context>();
  #maxInFlight: number;
  #idleTimeout: number;
  #handshaken = false;
  #draining = false;
  #drainPing = 0;
  #drainPong = false;
  #closed = false;
  #timer: Timer | undefined;
  #lastActivity = Date.now();
  #reading: Promise<void> = Promise.resolve();
  /** When the bytes of the frame now incomplete started to arrive, or 0. */
  #partialSince = 0;
  #frameTimeout: number;
  /** One lazily armed timer checks partial frames (not one per frame). */
  #frameTimer: Timer | undefined;

  constructor(s: ServerInternals, conn: Deno.Conn, addr: Deno.NetAddr) {
    this.#s = s;
    this.#conn = conn;
    this.#addr = addr;
    this.#peer = `${addr.hostname}:${addr.port}`;
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
    this.#writer = new FrameWriter(conn, () => this.close());
    const o = this.#s.options;
    this.#decoder = new FrameDecoder({
      maxFrameSize: o.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      initialSize: 16384,
    });
    this.#maxInFlight = o.maxInFlightPerConnection ?? 1024;
    this.#idleTimeout = o.idleTimeout ?? 120_000;
    this.#frameTimeout = o.frameTimeout ?? 30_000;
  }

  start(): void {
    this.#timer = setTimeout(
      this.#onTimer,
      this.#s.options.handshakeTimeout ?? 10_000,
    );
    this.#reading = this.#readLoop();
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#closed) return;
    if (!this.#handshaken) {
      this.#violation(
        `no valid preface within ${
          this.#s.options.handshakeTimeout ?? 10_000
        } ms (handshake timeout)`,
        false,
      );
      return;
    }
    const idle = Date.now() - this.#lastActivity;
    if (this.#inflight.size === 0 && idle >= this.#idleTimeout) {
      this.#violation(
        `no data for ${this.#idleTimeout} ms (idle timeout)`,
        false,
      );
      return;
    }
    this.#armIdle(
      this.#inflight.size === 0 ? this.#idleTimeout - idle : this.#idleTimeout,
    );
  };

  #onPartialFrame(): void {
    this.#partialSince = Date.now();
    if (this.#frameTimer === undefined && this.#frameTimeout > 0) {
      this.#frameTimer = setTimeout(this.#onFrameTimer, this.#frameTimeout);
    }
  }

  #onFrameTimer = (): void => {
    this.#frameTimer = undefined;
    if (this.#closed || this.#partialSince === 0) return;
    const waited = Date.now() - this.#partialSince;
    if (waited >= this.#frameTimeout) {
      this.#violation(
        `incomplete frame for ${waited} ms (frame timeout ${this.#frameTimeout} ms)`,
        true,
      );
    } else {
      this.#frameTimer = setTimeout(
        this.#onFrameTimer,
        this.#frameTimeout - waited,
      );
    }
  };

  #armIdle(ms: number): void {
    if (this.#idleTimeout > 0 && !this.#closed) {
      this.#timer = setTimeout(this.#onTimer, Math.max(1, ms));
    }
  }

  async #readLoop(): Promise<void> {
    const decoder = this.#decoder;
    try {
      while (!this.#closed) {
        if (this.#writer.buffered > WRITE_HIGH_WATER) {
          // A peer that does not read its responses: stop reading its
          // requests until they drain, so TCP pushes back instead of memory
          // growing.
          await this.#writer.drained();
          continue;
        }
        const n = await this.#conn.read(decoder.writable());
        if (n === null) break;
        decoder.commit(n);
        this.#lastActivity = Date.now();
        if (!this.#handshaken) {
          if (!this.#handshake()) return; // refused
          if (!this.#handshaken) continue; // preface still incomplete
        }
        let frame: Frame | undefined;
        while (!this.#closed && (frame = decoder.next()) !== undefined) {
          this.#onFrame(frame);
          this.#partialSince = 0;
        }
        if (decoder.buffered === 0) this.#partialSince = 0;
        else if (this.#partialSince === 0) this.#onPartialFrame();
      }
    } catch (error) {
      if (!this.#closed) {
        if (error instanceof ProtocolError) {
          this.#violation(error.message, true);
          return;
        }
        // Reset by peer and the like: just close.
      }
    }
    this.close();
  }

  /** Returns false when the connection was refused. */
  #handshake(): boolean {
    const bytes = this.#decoder.peekAll();
    const check = checkPreface(bytes);
    if (check === "incomplete") return true;
    if (check === "ok") {
      this.#decoder.skip(PREFACE_SIZE);
      this.#handshaken = true;
      this.#writer.pushRaw(PREFACE);
      clearTimeout(this.#timer);
      this.#armIdle(this.#idleTimeout);
      return true;
    }
    if (check === "http") {
      this.#writer.pushRaw(HTTP_REFUSAL);
      this.#violation("HTTP request received instead of the zkrpc preface");
      return false;
    }
    this.#writer.pushRaw(PREFACE);
    this.#violation(
      check === "version"
        ? `unsupported protocol version ${
          bytes[PREFACE_SIZE - 1]
        }: this server speaks version ${PROTOCOL_VERSION}`
        : "bad preface: not a zkrpc client",
      true,
    );
    return false;
  }

  /** Logs, optionally tells the peer with an error frame, then closes. */
  #violation(reason: string, tell = false): void {
    if (this.#closed) return;
    const message = `Connection from ${this.#peer} closed: ${reason}`;
    this.#s.onError(new ProtocolError(message), this.#addr);
    if (tell) {
      this.#pushError(0, { name: "ProtocolError", message });
    }
    this.#closeAfterFlush(new ProtocolError(message));
  }

  #closeAfterFlush(reason: Error): void {
    let timer: Timer | undefined;
    Promise.race([
      this.#writer.drained(),
      new Promise<void>((resolve) => timer = setTimeout(resolve, 1000)),
    ]).then(() => {
      clearTimeout(timer);
      this.close(reason);
    });
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.Request:
        this.#onRequest(frame.id, frame.payload);
        return;
      case FrameType.Cancel: {
        const ctx = this.#inflight.get(frame.id);
        if (ctx) {
          this.#inflight.delete(frame.id);
          ctx.abort(
            new CancelledError(
              `Cannot call method "${ctx.method}": cancelled by the client`,
            ),
          );
          this.#maybeFinishDrain();
        }
        return;
      }
      case FrameType.Ping:
        this.#writer.push(FrameType.Pong, frame.id, frame.payload);
        return;
      case FrameType.Pong:
        if (this.#draining && frame.id === this.#drainPing) {
          this.#drainPong = true;
          this.#maybeFinishDrain();
        }
        return;
      default:
        throw new ProtocolError(
          `Cannot read frame: frame type ${frame.type} is not sent by clients`,
        );
    }
  }

  #onRequest(id: number, payload: Uint8Array): void {
    if (payload.length < 1 || payload.length < 1 + payload[0]!) {
      throw new ProtocolError("Cannot read request: truncated method name");
    }
    const nameBytes = payload.subarray(1, 1 + payload[0]!);
    const entry = findMethod(this.#s.table, nameBytes);
    const method = entry ? entry.name : decodeMethod(nameBytes);
    if (id === 0) {
      throw new ProtocolError("Cannot read request: request id 0 is reserved");
    }
    if (this.#draining) {
      this.#pushError(id, {
        name: "ServerClosingError",
        message:
          `Cannot call method "${method}": server is closing (request not run)`,
      });
      return;
    }
    if (this.#inflight.has(id)) {
      throw new ProtocolError(
        `Cannot read request: id ${id} is already in flight`,
      );
    }
    if (this.#inflight.size >= this.#maxInFlight) {
      throw new ProtocolError(
        `Cannot read request: more than ${this.#maxInFlight} calls in flight`,
      );
    }
    if (entry === undefined) {
      this.#pushError(id, {
        name: "MethodNotFoundError",
        message: `Cannot call method "${method}": method not found`,
        data: { method },
      });
      return;
    }
    let params: unknown;
    try {
      params = this.#s.codec.decode(payload.subarray(1 + payload[0]!));
    } catch (error) {
      this.#pushError(id, {
        name: "ProtocolError",
        message: `Cannot call method "${method}": cannot decode params: ${
          error instanceof Error ? error.message : String(error)
        }`,
      });
      return;
    }
    if (!Array.isArray(params)) {
      this.#pushError(id, {
        name: "ProtocolError",
        message: `Cannot call method "${method}": params must be an array`,
      });
      return;
    }
    const ctx = new Context(method, this.#addr);
    let result: unknown;
    try {
      result = entry.withContext === undefined
        ? entry.fn.apply(this.#s.handlers, params)
        : entry.withContext.call(this.#s.handlers, ctx, ...params);
    } catch (error) {
      this.#pushError(id, this.#toPayload(error));
      return;
    }
    if (
      result !== null && typeof result === "object" &&
      typeof (result as PromiseLike<unknown>).then === "function"
    ) {
      this.#inflight.set(id, ctx);
      const running = this.#s.running;
      const settled: Promise<unknown> = Promise.resolve(result).then(
        (value) => this.#complete(id, ctx, value, false),
        (error) => this.#complete(id, ctx, error, true),
      ).finally(() => running.delete(settled));
      running.add(settled);
    } else {
      this.#pushResult(id, method, result);
    }
  }

  #complete(id: number, ctx: Context, value: unknown, failed: boolean): void {
    if (this.#inflight.get(id) !== ctx) return; // cancelled or closed
    this.#inflight.delete(id);
    if (failed) this.#pushError(id, this.#toPayload(value));
    else this.#pushResult(id, ctx.method, value);
    this.#maybeFinishDrain();
  }

  #pushResult(id: number, method: string, value: unknown): void {
    let bytes: Uint8Array;
    try {
      bytes = this.#s.codec.encode(value);
    } catch (error) {
      this.#pushError(id, {
        name: "TypeError",
        message: `Cannot call method "${method}": cannot encode result: ${
          error instanceof Error ? error.message : String(error)
        }`,
      });
      return;
    }
    this.#writer.push(FrameType.Result, id, bytes);
  }

  #toPayload(error: unknown): ErrorPayload {
    let name = errorName(error);
    const message = error instanceof Error
      ? error.message
      : typeof error === "object" && error !== null &&
          typeof (error as { message?: unknown }).message === "string"
      ? (error as { message: string }).message
      : String(error);
    const payload: ErrorPayload = { name, message };
    // zkrpc's own names mean "not run" or "protocol" to the client: a handler
    // that re-throws one (e.g. from a nested call) must not claim that.
    if (
      name === "ServerClosingError" || name === "MethodNotFoundError" ||
      name === "ProtocolError"
    ) {
      name = "RpcError";
      payload.name = name;
      payload.data = { remoteName: errorName(error) };
      return payload;
    }
    if (typeof error === "object" && error !== null && "data" in error) {
      payload.data = (error as { data: unknown }).data;
    }
    if (
      this.#s.options.exposeStack && error instanceof Error &&
      typeof error.stack === "string"
    ) {
      payload.stack = error.stack;
    }
    return payload;
  }

  #pushError(id: number, payload: ErrorPayload): void {
    let bytes: Uint8Array;
    try {
      bytes = this.#s.codec.encode(payload);
    } catch {
      // data not encodable: send without it
      bytes = this.#s.codec.encode({
        name: payload.name,
        message: payload.message,
        ...(payload.stack === undefined ? {} : { stack: payload.stack }),
      });
    }
    this.#writer.push(FrameType.Error, id, bytes);
  }

  drain(reason: string): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    if (!this.#handshaken) {
      this.close();
      return;
    }
    this.#drainPing = (Math.random() * 0xfffffffe + 1) >>> 0;
    this.#writer.push(FrameType.Goaway, 0, utf8.encode(reason));
    // A ping after goaway: its pong proves that every request the client sent
    // before it saw the goaway has arrived (TCP keeps order).
    this.#writer.push(FrameType.Ping, this.#drainPing);
  }

  #maybeFinishDrain(): void {
    if (this.#draining && this.#drainPong && this.#inflight.size === 0) {
      this.#closeAfterFlush(new ServerClosingError("Server closed"));
    }
  }

  close(reason?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#frameTimer);
    const why = reason ??
      new ConnectionError(`Connection from ${this.#peer} closed`, {
        written: true,
      });
    for (const ctx of this.#inflight.values()) ctx.abort(why);
    this.#inflight.clear();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    Promise.all([this.#reading, this.#writer.drained()]).then(() =>
      this.#resolveDone()
    );
  }
}

/**
 * Starts a zkrpc server exposing the own methods of `handlers` (a class with
 * static methods, or a plain object). Inherited names — `constructor`,
 * `__proto__`, `toString`, `hasOwnProperty`, everything from
 * `Object.prototype` and `Function.prototype`, and `prototype`, `length`,
 * `name` — are never callable: calling them fails with
 * {@linkcode MethodNotFoundError}. The method set is read once, here.
 *
 * Handlers may be sync or async. Each is called with `this` bound to
 * `handlers` and exactly the caller's params, so default parameters work. A
 * handler that wants its {@linkcode CallContext} (`signal`, `method`,
 * `remoteAddr`) is wrapped with {@linkcode withContext} and gets it as its
 * first argument. An error thrown
 * by a handler travels as `{ name, message, data }` — its own `data`
 * property, no stack.
 *
 * @param handlers The object whose own methods are exposed.
 * @param options Address, limits, TLS, registrar.
 * @returns The running server.
 *
 * @example The seed's calculator
 * ```ts
 * import { serve } from "./server.ts";
 * import { Connection } from "./connection.ts";
 * import { ErrorRegistry } from "./errors.ts";
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
  const methods = collectMethods(handlers); // validate before listening
  void methods;
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
  return new RpcServer(listener, handlers, options);
}
