/**
 * One accepted server connection: preface check, frame reading with its
 * limits and timeouts, dispatch of requests to the handler table, per-call
 * {@linkcode CallContext}, responses, goaway drain and close.
 *
 * @module
 */

import {
  CancelledError,
  ConnectionError,
  errorFields,
  errorName,
  type ErrorPayload,
  ProtocolError,
  ServerClosingError,
} from "./errors.ts";
import type { Codec } from "./protocol/codec.ts";
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
import type { CallContext } from "./call_context.ts";
import {
  decodeMethod,
  findMethod,
  type MethodEntry,
} from "./_handler_table.ts";

type Timer = ReturnType<typeof setTimeout>;

const utf8 = new TextEncoder();

const HTTP_REFUSAL = utf8.encode(
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n" +
    "Connection: close\r\n\r\nThis port speaks zkrpc, not HTTP/1.1.\r\n",
);

/** Queued response bytes above which a connection's requests stop being read. */
const WRITE_HIGH_WATER = 1024 * 1024;

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
 * The server options a connection reads (`ServeOptions` satisfies it; the
 * defaults are applied here).
 */
export interface ServerConnectionOptions {
  maxFrameSize?: number;
  maxInFlightPerConnection?: number;
  handshakeTimeout?: number;
  idleTimeout?: number;
  frameTimeout?: number;
  exposeStack?: boolean;
}

/** What every connection of one server shares with it. */
export interface ServerInternals {
  /** Methods by name length, with their UTF-8 bytes. */
  table: Map<number, MethodEntry[]>;
  /** Async handler calls not yet settled, across all connections. */
  running: Set<Promise<unknown>>;
  handlers: object;
  codec: Codec;
  options: ServerConnectionOptions;
  onError: (error: Error, remoteAddr?: Deno.NetAddr) => void;
}

/** The protocol handler of one accepted connection. */
export class ServerConnection {
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
    // A sync handler without withContext() needs no context: the common
    // fast path allocates none.
    let ctx: Context | undefined;
    let result: unknown;
    try {
      if (entry.withContext === undefined) {
        result = entry.fn.apply(this.#s.handlers, params);
      } else {
        ctx = new Context(method, this.#addr);
        result = entry.withContext.call(this.#s.handlers, ctx, ...params);
      }
    } catch (error) {
      this.#pushError(id, this.#toPayload(error));
      return;
    }
    if (
      result !== null && typeof result === "object" &&
      typeof (result as PromiseLike<unknown>).then === "function"
    ) {
      ctx ??= new Context(method, this.#addr);
      this.#inflight.set(id, ctx);
      const running = this.#s.running;
      const call = ctx;
      const settled: Promise<unknown> = Promise.resolve(result).then(
        (value) => this.#complete(id, call, value, false),
        (error) => this.#complete(id, call, error, true),
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
    const fields = errorFields(error);
    if (fields !== undefined) payload.fields = fields;
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
