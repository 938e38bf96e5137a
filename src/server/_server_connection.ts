/**
 * One accepted server connection: preface check, frame reading with its
 * limits and timeouts, dispatch of requests to the handler table, per-call
 * context (`_handler_context.ts`), responses, goaway drain and close.
 *
 * @module
 */

import { IdTable } from "../_id_table.ts";
import { errorPayload } from "../_error_payload.ts";
import { settleWithin } from "../_async.ts";
import {
  CancelledError,
  ConnectionError,
  ProtocolError,
  ServerClosingError,
  WIRE_NAMES,
} from "../errors.ts";
import { pickCodec } from "../protocol/codec_negotiation.ts";
import {
  checkPingSize,
  checkPreface,
  decodeSettings,
  DEFAULT_MAX_FRAME_SIZE,
  type Frame,
  FrameDecoder,
  FrameType,
  PREFACE,
  PREFACE_SIZE,
  PROTOCOL_VERSION,
  StreamMode,
} from "../protocol/frame.ts";
import { FrameWriter } from "../protocol/frame_writer.ts";
import { Responder, WRITE_HIGH_WATER } from "./_responder.ts";
import { Guards } from "./_guards.ts";
import {
  methodStartOf,
  readRequestHeaderAt,
  type RequestHeader,
} from "../protocol/request.ts";
import { HandlerContext } from "./_handler_context.ts";
import { EMPTY_METADATA, readMetadata } from "../protocol/metadata.ts";
import { runAsParent } from "../_call_scope.ts";
import { ServerStreams } from "./_stream.ts";
import { DEFAULT_STREAM_WINDOW } from "../protocol/stream_frames.ts";
import { decodeFrom, encodeForWrite } from "../protocol/scratch_encode.ts";
import { decodeMethod, findMethodAt } from "./_handler_table.ts";

export {
  NOT_SERVING,
  SERVER_DEFAULTS,
  type ServerConnectionOptions,
  type ServerInternals,
} from "./_server_internals.ts";
import {
  NOT_SERVING,
  SERVER_DEFAULTS,
  type ServerInternals,
} from "./_server_internals.ts";

const utf8 = new TextEncoder();
const promiseThen = Promise.prototype.then;

const HTTP_REFUSAL = utf8.encode(
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n" +
    "Connection: close\r\n\r\nThis port speaks zkrpc, not HTTP/1.1.\r\n",
);

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
  /** Calls answered when their handler settles, by id (not cancelled ones). */
  // Not a Map: its rehashes kept finished calls alive (src/_id_table.ts).
  #inflight = new IdTable<HandlerContext>();
  /** Filled by each request in turn: no header object per request. */
  #header: RequestHeader = {
    timeout: undefined,
    metadata: undefined,
    unreadable: undefined,
    method: new Uint8Array(0),
    paramsStart: 0,
  };
  /** A request arrived in the current read (activity, stamped once). */
  #requested = false;
  /** Async handlers not yet settled, cancelled ones included. */
  #running = 0;
  #maxInFlight: number;
  #handshaken = false;
  #gotSettings = false;
  #responder: Responder;
  /** The client's streamWindow, from its settings (0: no streams). */
  #peerStreamWindow = 0;
  #streams: ServerStreams;
  #draining = false;
  /** The reason of the `goaway` this side sent (empty before one). */
  #goawayReason = "";
  #drainPing = 0;
  #drainPong = false;
  #closed = false;
  #reading: Promise<void> = Promise.resolve();
  #guards: Guards;

  constructor(s: ServerInternals, conn: Deno.Conn, addr: Deno.NetAddr) {
    this.#s = s;
    this.#conn = conn;
    this.#addr = addr;
    this.#peer = `${addr.hostname}:${addr.port}`;
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
    this.#writer = new FrameWriter(conn, () => this.close());
    const o = this.#s.options;
    const maxFrameSize = o.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    const writer = this.#writer;
    this.#responder = new Responder(
      {
        writer,
        closed: () => this.#closed,
        report: (error) => this.#s.onError(error, addr),
        violation: (reason) => this.#violation(reason),
        drained: () => this.#maybeFinishDrain(),
      },
      maxFrameSize,
      o.exposeStack,
    );
    this.#decoder = new FrameDecoder({
      maxFrameSize,
      initialSize: 16384,
    });
    this.#streams = new ServerStreams({
      push: (type, id, bytes) => writer.push(type, id, bytes),
      buffered: () => writer.buffered,
      below: (limit) => writer.below(limit),
      encode: (value) => encodeForWrite(this.#responder.codec, value),
      decode: (bytes) => this.#responder.codec.decode(bytes),
      sendLimit: () => Math.min(this.#responder.peerMaxFrameSize, maxFrameSize),
      peerWindow: () => this.#peerStreamWindow,
    }, o.streamWindow ?? DEFAULT_STREAM_WINDOW);
    this.#maxInFlight = o.maxInFlightPerConnection ??
      SERVER_DEFAULTS.maxInFlightPerConnection;
    this.#guards = new Guards({
      closed: () => this.#closed,
      handshaken: () => this.#handshaken,
      calls: () => this.#inflight.size,
      waiting: () => this.#responder.waiting,
      violation: (reason, tell) => this.#violation(reason, tell),
      tooOld: () => {
        this.#s.onError(
          new ProtocolError(
            `Connection from ${this.#peer} draining: maximum connection age of ${o.maxConnectionAge} ms reached`,
          ),
          addr,
        );
        this.drain("Maximum connection age reached");
      },
      close: () =>
        this.close(
          new ServerClosingError(
            "Connection closed: maximum connection age reached",
          ),
        ),
    }, {
      handshakeTimeout: o.handshakeTimeout ?? SERVER_DEFAULTS.handshakeTimeout,
      idleTimeout: o.idleTimeout ?? SERVER_DEFAULTS.idleTimeout,
      frameTimeout: o.frameTimeout ?? SERVER_DEFAULTS.frameTimeout,
      maxPingsPerMinute: o.maxPingsPerMinute ??
        SERVER_DEFAULTS.maxPingsPerMinute,
      maxConnectionAge: o.maxConnectionAge ?? SERVER_DEFAULTS.maxConnectionAge,
      closeTimeout: o.closeTimeout ?? SERVER_DEFAULTS.closeTimeout,
    });
  }

  start(): void {
    this.#guards.start();
    this.#reading = this.#readLoop();
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
        if (!this.#handshaken) {
          if (!this.#handshake()) return; // refused
          if (!this.#handshaken) continue; // preface still incomplete
        }
        // The answers to one read's requests go out in one write.
        this.#writer.hold();
        try {
          while (!this.#closed && decoder.advance()) {
            if (decoder.type === FrameType.Request && this.#gotSettings) {
              // Read where it lies: no frame object, no views.
              this.#requested = true;
              this.#onRequest(
                decoder.id,
                decoder.bytes,
                decoder.start,
                decoder.end,
              );
            } else this.#onFrame(decoder.frame());
            this.#guards.frameRead();
            if (this.#writer.buffered > WRITE_HIGH_WATER) {
              // Per frame, not per read: one read can hold thousands of
              // requests. The frames left in the decoder wait; nothing is
              // read meanwhile, so TCP pushes back on the peer.
              this.#writer.release();
              await this.#writer.drained();
              this.#writer.hold();
            }
          }
        } finally {
          this.#writer.release();
        }
        if (this.#requested) {
          // One clock read per read, not per request.
          this.#requested = false;
          this.#guards.active();
        }
        this.#guards.framing(decoder.buffered > 0);
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
      this.#writer.push(FrameType.Settings, 0, this.#s.settings);
      this.#guards.handshaken();
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
      this.#responder.error(0, { name: WIRE_NAMES.protocol, message });
    }
    this.#closeAfterFlush(new ProtocolError(message));
  }

  #closeAfterFlush(reason: Error): void {
    settleWithin(this.#writer.drained(), 1000).then(() => this.close(reason));
  }

  #onFrame(frame: Frame): void {
    if (!this.#gotSettings) {
      this.#onSettings(frame);
      return;
    }
    if (this.#streams.onFrame(frame)) return;
    switch (frame.type) {
      case FrameType.Request:
        this.#requested = true;
        this.#onRequest(frame.id, frame.payload, 0, frame.payload.length);
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
        checkPingSize(frame);
        if (this.#tooManyPings()) return;
        this.#writer.push(FrameType.Pong, frame.id, frame.payload);
        return;
      case FrameType.Pong:
        checkPingSize(frame);
        if (this.#draining && frame.id === this.#drainPing) {
          this.#drainPong = true;
          this.#maybeFinishDrain();
        }
        return;
      case FrameType.Settings:
        throw new ProtocolError(
          "Cannot read frame: settings may be sent only once (protocol version 2)",
        );
      default:
        throw new ProtocolError(
          `Cannot read frame: frame type ${frame.type} is not sent by clients`,
        );
    }
  }

  /**
   * Counts a ping; past `maxPingsPerMinute` in one window, sends `goaway`
   * and closes (in the spirit of gRPC's "too_many_pings").
   */
  #tooManyPings(): boolean {
    if (!this.#guards.tooManyPings()) return false;
    const message = `Connection from ${this.#peer} closed: more than ${
      this.#s.options.maxPingsPerMinute ?? SERVER_DEFAULTS.maxPingsPerMinute
    } pings in a minute (too many pings)`;
    this.#s.onError(new ProtocolError(message), this.#addr);
    if (!this.#draining) {
      this.#draining = true;
      this.#writer.push(FrameType.Goaway, 0, utf8.encode("Too many pings"));
      this.#closeAfterFlush(new ProtocolError(message));
    }
    return true;
  }

  /** The client's first frame: its limits and codecs. */
  #onSettings(frame: Frame): void {
    if (frame.type !== FrameType.Settings || frame.id !== 0) {
      throw new ProtocolError(
        `Cannot read frame: expected the client's settings frame first, got frame type ${frame.type}`,
      );
    }
    const settings = decodeSettings(frame.payload);
    const codec = pickCodec(settings.codecs, this.#s.codecs);
    if (codec === undefined) {
      throw new ProtocolError(
        `Cannot use a codec: the client offers [${
          settings.codecs.join(", ")
        }], this server uses [${this.#s.codecs.map((c) => c.name).join(", ")}]`,
      );
    }
    this.#responder.codec = codec;
    this.#responder.peerMaxFrameSize = settings.maxFrameSize;
    this.#peerStreamWindow = settings.streamWindow ?? 0;
    this.#gotSettings = true;
  }

  /** Request `id`, whose body is `start`..`stop` of `bytes`. */
  #onRequest(
    id: number,
    bytes: Uint8Array,
    start: number,
    stop: number,
  ): void {
    // First: the `open` before this request is consumed whatever follows.
    const streamMode = this.#streams.take(id);
    const header = readRequestHeaderAt(bytes, start, stop, this.#header);
    if (header.unreadable !== undefined) {
      // The frame is whole (frames are length-delimited): only this call
      // is unreadable.
      this.#refuseUnreadable(id, header.unreadable);
      return;
    }
    let metadata = EMPTY_METADATA;
    /** Why this call's metadata is refused (the call fails, not the connection). */
    let badMetadata: string | undefined;
    if (header.metadata !== undefined) {
      const read = readMetadata(header.metadata);
      if (typeof read === "string") badMetadata = read;
      else metadata = read;
    }
    const paramsStart = header.paramsStart;
    const methodStart = methodStartOf(header, start);
    // Read now: the header object is the next request's too.
    const timeout = header.timeout;
    const entry = findMethodAt(
      this.#s.table,
      bytes,
      methodStart,
      paramsStart,
    );
    const method = entry
      ? entry.name
      : decodeMethod(bytes.subarray(methodStart, paramsStart));
    if (id === 0) {
      throw new ProtocolError("Cannot read request: request id 0 is reserved");
    }
    if (badMetadata !== undefined) {
      if (this.#inflight.has(id)) {
        throw new ProtocolError(
          `Cannot read request: id ${id} is already in flight`,
        );
      }
      this.#responder.error(id, {
        name: WIRE_NAMES.protocol,
        message:
          `Cannot call method "${method}": ${badMetadata} (request not run)`,
      });
      return;
    }
    if (entry === undefined || !entry.builtin) {
      // A connection opened while the server does not serve answers health
      // and describe; its first other request gets the goaway first, so
      // the refusal after it provably did not run.
      if (!this.#draining) {
        const reason = this.#s.notServing();
        if (reason !== undefined) this.drain(reason);
      }
      if (this.#draining) {
        this.#responder.error(id, {
          name: WIRE_NAMES.serverClosing,
          message: `Cannot call method "${method}": ${
            this.#goawayReason === NOT_SERVING
              ? "server is not serving"
              : "server is closing"
          } (request not run)`,
        });
        return;
      }
    }
    if (this.#inflight.has(id)) {
      throw new ProtocolError(
        `Cannot read request: id ${id} is already in flight`,
      );
    }
    if (this.#running >= this.#maxInFlight) {
      this.#responder.error(id, {
        name: WIRE_NAMES.resourceExhausted,
        message:
          `Cannot call method "${method}": ${this.#maxInFlight} calls are already running on this connection (request not run)`,
        data: { ran: false },
      });
      return;
    }
    if (entry === undefined) {
      this.#responder.error(id, {
        name: WIRE_NAMES.methodNotFound,
        message: `Cannot call method "${method}": method not found`,
        data: { method },
      });
      return;
    }
    let params: unknown;
    try {
      params = decodeFrom(this.#responder.codec, bytes, paramsStart, stop);
    } catch (error) {
      this.#responder.error(id, {
        name: WIRE_NAMES.protocol,
        message: `Cannot call method "${method}": cannot decode params: ${
          errorPayload(error, false, []).message
        }`,
      });
      return;
    }
    if (!Array.isArray(params)) {
      this.#responder.error(id, {
        name: WIRE_NAMES.protocol,
        message: `Cannot call method "${method}": params must be an array`,
      });
      return;
    }
    // A sync handler without withContext() needs no context: the common
    // fast path allocates none.
    let ctx: HandlerContext | undefined;
    let result: unknown;
    if (streamMode !== 0) {
      ctx = new HandlerContext(method, this.#addr, timeout, metadata);
      if (streamMode & StreamMode.Input) {
        ctx.input = this.#streams.input(id, ctx.signal);
      }
    }
    try {
      if (entry.withContext === undefined) {
        result = entry.fn.apply(this.#s.handlers, params);
      } else {
        ctx ??= new HandlerContext(method, this.#addr, timeout, metadata);
        if (this.#s.inheritDeadline) {
          const call = ctx;
          const fn = entry.withContext;
          result = runAsParent(
            call,
            () => fn.call(this.#s.handlers, call, ...params),
          );
        } else {
          result = entry.withContext.call(this.#s.handlers, ctx, ...params);
        }
      }
    } catch (error) {
      ctx?.done();
      if (streamMode !== 0) this.#streams.forget(id);
      this.#responder.error(
        id,
        this.#responder.payloadOf(method, error),
        method,
      );
      return;
    }
    if (streamMode !== 0) {
      result = this.#streams.run(id, streamMode, result, ctx!.signal);
    }
    let promise: Promise<unknown> | undefined;
    try {
      if (
        result !== null && typeof result === "object" &&
        typeof (result as PromiseLike<unknown>).then === "function"
      ) promise = Promise.resolve(result);
    } catch (error) {
      // A revoked proxy, a throwing `then` getter, or a promise whose
      // `constructor` getter throws (Promise.resolve reads it).
      this.#responder.error(
        id,
        this.#responder.payloadOf(method, error),
        method,
      );
      return;
    }
    if (promise !== undefined) {
      ctx ??= new HandlerContext(method, this.#addr, timeout, metadata);
      this.#inflight.set(id, ctx);
      this.#running++;
      this.#s.running.start();
      const call = ctx;
      // The intrinsic then: a promise may carry a hostile own `then`. The
      // slot is freed when the handler settles, not when its call is
      // cancelled: a handler that ignores its signal still runs.
      promiseThen.call(
        promise,
        (value: unknown) => {
          this.#handlerSettled();
          this.#complete(id, call, value, false);
        },
        (error: unknown) => {
          this.#handlerSettled();
          this.#complete(id, call, error, true);
        },
      );
    } else {
      ctx?.done();
      this.#responder.result(id, method, result);
    }
  }

  #handlerSettled(): void {
    this.#running--;
    this.#s.running.end();
  }

  /** Fails call `id`, whose header cannot be read, keeping the connection. */
  #refuseUnreadable(id: number, why: string): void {
    if (id === 0) {
      throw new ProtocolError("Cannot read request: request id 0 is reserved");
    }
    if (this.#inflight.has(id)) {
      throw new ProtocolError(
        `Cannot read request: id ${id} is already in flight`,
      );
    }
    this.#responder.error(id, {
      name: WIRE_NAMES.protocol,
      message: `Cannot read request ${id}: ${why} (request not run)`,
    });
  }

  #complete(
    id: number,
    ctx: HandlerContext,
    value: unknown,
    failed: boolean,
  ): void {
    ctx.done();
    if (this.#inflight.get(id) !== ctx) return; // cancelled or closed
    this.#inflight.delete(id);
    if (!ctx.expired) {
      this.#guards.active();
      this.#responder.answer(id, ctx.method, value, failed);
    }
    this.#maybeFinishDrain();
  }

  /**
   * Takes the connection out of use because the server stopped serving:
   * `goaway` and a drain ping, as {@linkcode ServerConnection.drain}; a
   * connection still in its handshake is left alone (its first request
   * gets the `goaway`).
   */
  stopServing(reason: string): void {
    if (this.#handshaken) this.drain(reason);
  }

  drain(reason: string): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    if (!this.#handshaken) {
      this.close();
      return;
    }
    this.#drainPing = (Math.random() * 0xfffffffe + 1) >>> 0;
    this.#goawayReason = reason;
    this.#writer.push(FrameType.Goaway, 0, utf8.encode(reason));
    // A ping after goaway: its pong proves that every request the client sent
    // before it saw the goaway has arrived (TCP keeps order).
    this.#writer.push(FrameType.Ping, this.#drainPing);
  }

  #maybeFinishDrain(): void {
    if (
      this.#draining && this.#drainPong && this.#inflight.size === 0 &&
      !this.#responder.waiting
    ) {
      this.#closeAfterFlush(new ServerClosingError("Server closed"));
    }
  }

  close(reason?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#guards.stop();
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
