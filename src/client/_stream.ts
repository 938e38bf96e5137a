/**
 * Internal: the client side of one streaming call. The items the server
 * sends are delivered through a `ReadableStream` that pulls one at a time
 * (high water mark 0): received items wait in a queue of at most the
 * client's window, and the window is granted back as the consumer reads.
 * The caller's `input` is pulled one item per credit the server granted.
 * See "Streams" in `docs/protocol.md` and `docs/streaming.md`.
 *
 * @module
 */

import {
  CancelledError,
  ConnectionError,
  ProtocolError,
  ServerClosingError,
} from "../errors.ts";
import { type Frame, FrameType, StreamMode } from "../protocol/frame.ts";
import {
  decodeWindow,
  encodeWindow,
  Replenisher,
} from "../protocol/stream_frames.ts";
import type { CallOptions, StreamOptions } from "./options.ts";

/** What a stream needs of its connection. */
export interface ClientStreamHost {
  /** Queues one frame for the server. */
  push(type: FrameType, id: number, bytes?: Uint8Array): void;
  /** Encodes a value with the connection's codec (valid until the next encode). */
  encode(value: unknown): Uint8Array;
  /** Decodes a value with the connection's codec. */
  decode(bytes: Uint8Array): unknown;
  /** Bytes queued and not yet written. */
  buffered(): number;
  /** Resolves once at most `limit` bytes wait behind the write in progress. */
  below(limit: number): Promise<void>;
  /** The client's own window (its `streamWindow` setting). */
  window: number;
  /** The server's window for this side's input items. */
  peerWindow: number;
  /** `host:port`, for messages. */
  name: string;
}

/** Output queue size above which no further input item is pulled. */
const INPUT_HIGH_WATER = 1024 * 1024;

const OPEN_PAYLOADS = [1, 2, 3].map((mode) => new Uint8Array([mode]));

/** The client side of one streaming call (see the module doc). */
export class ClientStream {
  /** What the caller reads. */
  readonly readable: ReadableStream<unknown>;
  /** Aborted when the caller's signal aborts or the reader cancels. */
  readonly signal: AbortSignal;
  /** Items received so far. */
  received = 0;
  readonly #method: string;
  readonly #host: ClientStreamHost;
  readonly #input:
    | AsyncIterable<unknown>
    | ReadableStream<unknown>
    | undefined;
  readonly #abort = new AbortController();
  readonly #window: Replenisher;
  #id = 0;
  #queue: unknown[] = [];
  #controller!: ReadableStreamDefaultController<unknown>;
  #pulling = false;
  #ended = false;
  #error: unknown = undefined;
  #done = false;
  #inputCredit: number;
  #inputWake: (() => void) | undefined;
  /** Unhooks this stream from the caller's signal. */
  #unlisten: (() => void) | undefined;
  /** Why this side cancelled the call itself, if it did. */
  #failure: unknown = undefined;

  /**
   * @param method The method, for messages.
   * @param host The connection.
   * @param input The caller's input, if any.
   * @param signal The caller's signal, if any.
   */
  constructor(
    method: string,
    host: ClientStreamHost,
    input: AsyncIterable<unknown> | ReadableStream<unknown> | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.#method = method;
    this.#host = host;
    this.#input = input;
    this.#window = new Replenisher(host.window);
    this.#inputCredit = host.peerWindow;
    this.signal = this.#abort.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.#abort.abort(signal.reason);
      else {
        const onAbort = () => this.#abort.abort(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        // A signal shared by many streams keeps no listener of ended ones.
        this.#unlisten = () => signal.removeEventListener("abort", onAbort);
      }
    }
    this.readable = new ReadableStream<unknown>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      cancel: (reason) => {
        this.#done = true;
        this.#queue = [];
        this.#wakeInput();
        this.#abort.abort(
          reason ?? new CancelledError(`Stream "${method}" cancelled`),
        );
      },
    }, { highWaterMark: 0 });
  }

  /** The `open` frame's payload. */
  get openPayload(): Uint8Array {
    const mode = StreamMode.Output |
      (this.#input === undefined ? 0 : StreamMode.Input);
    return OPEN_PAYLOADS[mode - 1]!;
  }

  /** Whether the stream was already given a request id (sent once). */
  get attached(): boolean {
    return this.#id !== 0;
  }

  /**
   * Why this stream's request may not be sent (an interceptor sends it a
   * second time, or the server takes no streams), else `undefined`.
   *
   * @returns The error to reject the send with.
   */
  refusal(): Error | undefined {
    if (this.attached) {
      return new TypeError(
        `Cannot stream method "${this.#method}": a stream is sent once (an interceptor called next() again)`,
      );
    }
    if (this.#host.peerWindow === 0) {
      return new ProtocolError(
        `Cannot stream method "${this.#method}": server ${this.#host.name} does not accept streaming calls (its settings announce no streamWindow: an older zkrpc; request not sent)`,
      );
    }
    return undefined;
  }

  /**
   * The request went out as call `id`: starts sending the input.
   *
   * @param id The request id.
   */
  attach(id: number): void {
    this.#id = id;
    if (this.#input !== undefined) this.#pumpInput(this.#input);
  }

  /** An `item` frame: decodes and queues it (or hands it to a waiting read). */
  onItem(payload: Uint8Array): void {
    if (this.#done) return;
    if (!this.#window.received()) {
      throw new ProtocolError(
        `Cannot read item of stream "${this.#method}" from ${this.#host.name}: the server sent more items than the window allows`,
      );
    }
    let value: unknown;
    try {
      value = this.#host.decode(payload);
    } catch (error) {
      this.#failWith(
        new ProtocolError(
          `Cannot read stream "${this.#method}": cannot decode item ${
            this.received + 1
          }: ${error instanceof Error ? error.message : "undecodable"}`,
        ),
      );
      return;
    }
    this.received++;
    if (this.#pulling) {
      this.#pulling = false;
      this.#deliver(value);
    } else this.#queue.push(value);
  }

  /** Cancels the call because of this side's own `error`. */
  #failWith(error: unknown): void {
    this.#failure ??= error;
    this.#abort.abort(error);
  }

  /** A `window` frame: the server accepts `items` more input items. */
  onWindow(items: number): void {
    this.#inputCredit += items;
    this.#wakeInput();
  }

  /** The call ended normally (`end`). */
  end(): void {
    this.#finish(undefined);
  }

  /**
   * The call failed: queued items are still delivered, then the error. A
   * transport failure after items arrived says how many.
   */
  fail(error: unknown): void {
    // Our own cancel (the input failed, an item was undecodable): that is
    // the stream's error, not the CancelledError it produced.
    if (this.#failure !== undefined && error instanceof CancelledError) {
      error = this.#failure;
    }
    if (
      this.received > 0 &&
      (error instanceof ConnectionError || error instanceof ServerClosingError)
    ) {
      error = new ConnectionError(
        `Stream "${this.#method}" from ${this.#host.name} broke after ${this.received} items: ${error.message}`,
        { written: true, cause: error },
      );
    }
    this.#finish(error ?? new Error("stream failed"));
  }

  #finish(error: unknown): void {
    if (this.#done && this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#unlisten?.();
    this.#wakeInput();
    if (this.#done) return; // cancelled by the reader
    if (this.#pulling && this.#queue.length === 0) {
      this.#pulling = false;
      this.#close();
    }
  }

  #close(): void {
    this.#done = true;
    if (this.#error === undefined) this.#controller.close();
    else this.#controller.error(this.#error);
  }

  #pull(): void {
    if (this.#queue.length > 0) {
      this.#deliver(this.#queue.shift());
      return;
    }
    if (this.#ended) {
      this.#close();
      return;
    }
    this.#pulling = true;
  }

  #deliver(value: unknown): void {
    this.#controller.enqueue(value);
    const grant = this.#window.consumed();
    if (grant > 0 && !this.#ended) {
      this.#host.push(FrameType.Window, this.#id, encodeWindow(grant));
    }
  }

  #wakeInput(): void {
    const wake = this.#inputWake;
    this.#inputWake = undefined;
    wake?.();
  }

  async #pumpInput(
    input: AsyncIterable<unknown> | ReadableStream<unknown>,
  ): Promise<void> {
    let iterator: AsyncIterator<unknown> | undefined;
    let finished = false;
    try {
      iterator = input instanceof ReadableStream
        ? input.values()
        : input[Symbol.asyncIterator]();
      while (!this.#ended && !this.#done) {
        if (this.#inputCredit === 0) {
          await new Promise<void>((resolve) => this.#inputWake = resolve);
          continue;
        }
        if (this.#host.buffered() > INPUT_HIGH_WATER) {
          await this.#host.below(INPUT_HIGH_WATER / 2);
          continue;
        }
        const step = await iterator.next();
        if (this.#ended || this.#done) break;
        if (step.done) {
          finished = true;
          this.#host.push(FrameType.End, this.#id);
          return;
        }
        let bytes: Uint8Array;
        try {
          bytes = this.#host.encode(step.value);
        } catch (error) {
          throw new TypeError(
            `Cannot stream input of method "${this.#method}": ${
              error instanceof Error ? error.message : "not encodable"
            }`,
            { cause: error },
          );
        }
        this.#inputCredit--;
        this.#host.push(FrameType.Item, this.#id, bytes);
      }
    } catch (error) {
      finished = true;
      this.#failWith(error);
    } finally {
      if (!finished) iterator?.return?.()?.catch(() => {});
    }
  }
}

/**
 * Opens a stream on a connection: its items arrive through the returned
 * `ReadableStream`; `send` sends the request (through the interceptors)
 * and settles when the stream ends.
 *
 * @param method The method name.
 * @param host What the stream needs of its connection.
 * @param options The stream's options, `input` included.
 * @param send Sends the request with these call options for this stream.
 * @returns The items.
 *
 * @example
 * ```ts ignore
 * const items = openClientStream("count", host, {}, (options, stream) =>
 *   send("count", [3], options, stream));
 * ```
 */
export function openClientStream(
  method: string,
  host: ClientStreamHost,
  options: StreamOptions,
  send: (options: CallOptions, stream: ClientStream) => Promise<unknown>,
): ReadableStream<unknown> {
  const { input, signal, ...rest } = options;
  const stream = new ClientStream(method, host, input, signal);
  send({ ...rest, signal: stream.signal }, stream).then(
    () => stream.end(),
    (error) => stream.fail(error),
  );
  return stream.readable;
}

/** A call in flight, as a stream frame needs it. */
interface StreamCall {
  stream: ClientStream | undefined;
  resolve(value: unknown): void;
}

/**
 * Routes an `item`, `window` or `end` frame to its call's stream; a frame
 * of a call no longer in flight (cancelled, timed out) is dropped.
 *
 * @param frame The frame.
 * @param calls The calls in flight: `end` settles its call.
 *
 * @example
 * ```ts ignore
 * case FrameType.End:
 *   onStreamFrame(frame, calls);
 * ```
 */
export function onStreamFrame<C extends StreamCall>(
  frame: Frame,
  calls: { get(id: number): C | undefined; settle(call: C): void },
): void {
  // A malformed window fails the connection, whether its call is known.
  const items = frame.type === FrameType.Window
    ? decodeWindow(frame.payload)
    : 0;
  const call = calls.get(frame.id);
  const stream = call?.stream;
  if (stream === undefined) return; // cancelled or timed out
  if (frame.type === FrameType.Item) stream.onItem(frame.payload);
  else if (frame.type === FrameType.Window) stream.onWindow(items);
  else {
    calls.settle(call!);
    call!.resolve(undefined);
  }
}
