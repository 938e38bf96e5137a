/**
 * Internal: the server side of streaming calls on one connection. A call
 * opened with an `open` frame gets its input as an `AsyncIterable` (items
 * the client sends, within the server's window) and, in output mode, its
 * handler's `AsyncIterable` or `ReadableStream` is pulled one item per
 * credit the client grants, and only while the connection's output queue
 * is under its high water. See "Streams" in `docs/protocol.md`.
 *
 * @module
 */

import { ProtocolError, ResourceExhaustedError } from "../errors.ts";
import { type Frame, FrameType, StreamMode } from "../protocol/frame.ts";
import {
  decodeOpen,
  decodeWindow,
  encodeWindow,
  MAX_STREAM_WINDOW,
  Replenisher,
} from "../protocol/stream_frames.ts";

/** What a stream needs of its connection. */
export interface StreamHost {
  /** Queues one frame for the client. */
  push(type: FrameType, id: number, bytes?: Uint8Array): void;
  /** Bytes queued and not yet written. */
  buffered(): number;
  /** Resolves once at most `limit` bytes wait behind the write in progress. */
  below(limit: number): Promise<void>;
  /** Encodes a value with the connection's codec (bytes valid until the next encode). */
  encode(value: unknown): Uint8Array;
  /** Decodes a value with the connection's codec. */
  decode(bytes: Uint8Array): unknown;
  /** The largest frame (length field) the client accepts. */
  sendLimit(): number;
  /** The client's window (its `streamWindow` setting), 0 when it has none. */
  peerWindow(): number;
}

/** The outcome of a stream that ended normally: the connection sends `end`. */
export const STREAM_END: unique symbol = Symbol("zkrpc.streamEnd");

/**
 * Output queue size above which no further item is pulled until the write
 * in progress completes: half the connection's read-pausing high water, so
 * that streams alone never make the server stop reading (their `window`
 * frames arrive on that read side).
 */
const OUTPUT_HIGH_WATER = 512 * 1024;

/**
 * Bytes of one stream's items the server keeps unacknowledged (sent, and
 * not yet granted back by the client) whatever the window: a client at
 * the default window of 256 items holds at most this (plus one item) of a
 * stream of large items.
 */
export const STREAM_BYTES_IN_FLIGHT = 1024 * 1024;

/**
 * Bytes of input items received and not yet read, summed over the streams
 * of one connection, beyond which an arriving item fails its stream's
 * input with `ResourceExhaustedError` (the other streams and the
 * connection go on): the stream buffers' share of the connection's memory
 * budget.
 */
export const INPUT_BUDGET = 16 * 1024 * 1024;

/**
 * Whether a handler's value is a stream of items rather than one value.
 *
 * @example An async generator's object is a stream, an array is not
 * ```ts
 * import { isItemStream } from "./_stream.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isItemStream((async function* () {})()));
 * assert.ok(!isItemStream([1, 2]));
 * ```
 */
export function isItemStream(
  value: unknown,
): value is AsyncIterable<unknown> | ReadableStream<unknown> {
  return value !== null && typeof value === "object" &&
    (value instanceof ReadableStream ||
      typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] ===
        "function");
}

function iteratorOf(
  stream: AsyncIterable<unknown> | ReadableStream<unknown>,
): AsyncIterator<unknown> {
  return stream instanceof ReadableStream
    ? stream.values()
    : stream[Symbol.asyncIterator]();
}

/** What the server keeps of one output stream. */
interface Output {
  /** Items the client still accepts. */
  credit: number;
  /** Wakes the producer waiting for credit. */
  wake: (() => void) | undefined;
  /** Sizes of the items sent and not yet granted back, oldest first. */
  sizes: number[];
  /** Their sum. */
  bytes: number;
}

/** The input of one call: items the client sent, not yet read. */
class Input implements AsyncIterable<unknown> {
  readonly #id: number;
  readonly #host: StreamHost;
  readonly #window: Replenisher;
  #items: Uint8Array[] = [];
  #ended = false;
  #error: unknown = undefined;
  #wake: (() => void) | undefined;
  #iterated = false;
  /** The connection's count of unread input bytes. */
  #budget: { bytes: number };

  constructor(
    id: number,
    host: StreamHost,
    window: number,
    budget: { bytes: number },
  ) {
    this.#id = id;
    this.#host = host;
    this.#window = new Replenisher(window);
    this.#budget = budget;
  }

  push(payload: Uint8Array): void {
    if (this.#ended) return;
    if (!this.#window.received()) {
      throw new ProtocolError(
        `Cannot read item of call ${this.#id}: the client sent more items than its window allows`,
      );
    }
    // A copy: the payload is a view of the read buffer.
    this.#items.push(payload.slice());
    this.#budget.bytes += payload.length;
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  /**
   * Ends the input with `error` (unless it ended already); the items not
   * yet read are dropped, or with `keep` still delivered before the error.
   */
  fail(error: unknown, keep = false): void {
    if (!this.#ended) {
      this.#error = error;
      this.#ended = true;
    }
    if (!keep) {
      for (const item of this.#items) this.#budget.bytes -= item.length;
      this.#items = [];
    }
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    if (this.#iterated) {
      throw new TypeError("Cannot read the call's input twice");
    }
    this.#iterated = true;
    while (true) {
      const bytes = this.#items.shift();
      if (bytes !== undefined) {
        this.#budget.bytes -= bytes.length;
        const grant = this.#window.consumed();
        if (grant > 0) {
          this.#host.push(FrameType.Window, this.#id, encodeWindow(grant));
        }
        let value: unknown;
        try {
          value = this.#host.decode(bytes);
        } catch (error) {
          throw new ProtocolError(
            `Cannot read input item: ${
              error instanceof Error ? error.message : "undecodable"
            }`,
          );
        }
        yield value;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }
}

/**
 * The streams of one server connection: the `open` frame waiting for its
 * request, the inputs being received and the outputs' credits.
 */
export class ServerStreams {
  readonly #host: StreamHost;
  readonly #window: number;
  /** The `open` frame just read; its request must be the next frame. */
  #open: { id: number; mode: number } | undefined;
  #inputs = new Map<number, Input>();
  #outputs = new Map<number, Output>();
  #budget = { bytes: 0 };

  /**
   * @param host The connection.
   * @param window This server's window (its `streamWindow` setting).
   */
  constructor(host: StreamHost, window: number) {
    this.#host = host;
    this.#window = window;
  }

  /**
   * Handles a streaming frame (`open`, `item`, `end`, `window`); checks
   * that an `open` is followed by its request.
   *
   * @returns Whether the frame was a streaming frame (consumed).
   */
  onFrame(frame: Frame): boolean {
    if (this.#open !== undefined && frame.type !== FrameType.Request) {
      throw new ProtocolError(
        `Cannot read frame: an open frame (call ${this.#open.id}) must be followed by its request, got frame type ${frame.type}`,
      );
    }
    switch (frame.type) {
      case FrameType.Open:
        if (this.#window === 0) {
          throw new ProtocolError(
            "Cannot read frame: this server does not accept streams (it announced no streamWindow)",
          );
        }
        this.#open = { id: frame.id, mode: decodeOpen(frame.payload) };
        return true;
      case FrameType.Item: {
        const input = this.#inputs.get(frame.id);
        if (input === undefined) return true; // ended or cancelled
        if (this.#budget.bytes + frame.payload.length > INPUT_BUDGET) {
          input.fail(
            new ResourceExhaustedError(
              `Cannot read the input of call ${frame.id}: ${this.#budget.bytes} bytes of stream input already wait unread on this connection (input budget ${INPUT_BUDGET} bytes)`,
              { ran: true },
            ),
            true,
          );
        } else input.push(frame.payload);
        return true;
      }
      case FrameType.End:
        this.#inputs.get(frame.id)?.end();
        return true;
      case FrameType.Window: {
        const items = decodeWindow(frame.payload);
        const output = this.#outputs.get(frame.id);
        if (output === undefined) return true; // ended or cancelled
        output.credit += items;
        for (let i = 0; i < items && output.sizes.length > 0; i++) {
          output.bytes -= output.sizes.shift()!;
        }
        if (output.credit > MAX_STREAM_WINDOW) {
          throw new ProtocolError(
            `Cannot read window frame: the client granted more than ${MAX_STREAM_WINDOW} items on call ${frame.id}`,
          );
        }
        const wake = output.wake;
        output.wake = undefined;
        wake?.();
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * The stream mode of request `id` (0: a unary call), consuming the `open`
   * frame read just before it.
   */
  take(id: number): number {
    const open = this.#open;
    if (open === undefined) return 0;
    this.#open = undefined;
    if (open.id !== id) {
      throw new ProtocolError(
        `Cannot read request: the open frame before it was for call ${open.id}, not ${id}`,
      );
    }
    return open.mode;
  }

  /**
   * Starts receiving the input of call `id`.
   *
   * @returns What the handler reads (`ctx.input`).
   */
  input(id: number, signal: AbortSignal): AsyncIterable<unknown> {
    const input = new Input(id, this.#host, this.#window, this.#budget);
    this.#inputs.set(id, input);
    signal.addEventListener("abort", () => input.fail(signal.reason), {
      once: true,
    });
    return input;
  }

  /**
   * Runs the handler's outcome of a streaming call: in output mode, its
   * items are sent as the client grants credit. The promise settles when
   * the call is over: {@linkcode STREAM_END} after the last item (output
   * mode), the value (input only), or the error; `undefined` once `signal`
   * aborted (cancelled, deadline, connection closed: nothing more is sent).
   */
  run(
    id: number,
    mode: number,
    result: unknown,
    signal: AbortSignal,
  ): Promise<unknown> {
    const done = (mode & StreamMode.Output) === 0
      ? Promise.resolve(result)
      : this.#output(id, result, signal);
    return done.finally(() => this.forget(id));
  }

  /** Drops what is kept for call `id` (its input and its credit). */
  forget(id: number): void {
    this.#inputs.get(id)?.fail(new Error("call over"));
    this.#inputs.delete(id);
    this.#outputs.delete(id);
  }

  async #output(
    id: number,
    result: unknown,
    signal: AbortSignal,
  ): Promise<unknown> {
    const output: Output = {
      credit: this.#host.peerWindow(),
      wake: undefined,
      sizes: [],
      bytes: 0,
    };
    this.#outputs.set(id, output);
    // One listener per stream: an abort wakes whatever the stream waits for
    // (no reaction is left behind per item, however long the stream).
    let cancelWait: (() => void) | undefined;
    const onAbort = (): void => {
      output.wake?.();
      cancelWait?.();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    /** `promise`, or `undefined` as soon as the signal aborts. */
    const unlessAborted = <T>(promise: Promise<T>): Promise<T | undefined> =>
      new Promise<T | undefined>((resolve, reject) => {
        cancelWait = () => resolve(undefined);
        promise.then(resolve, reject);
      });
    let iterator: AsyncIterator<unknown> | undefined;
    let finished = false;
    try {
      let source = result;
      if (!isItemStream(source)) {
        source = await unlessAborted(Promise.resolve(source));
        if (signal.aborted) return undefined;
        if (!isItemStream(source)) {
          // One value (a unary handler called as a stream): one item.
          this.#item(id, source);
          return STREAM_END;
        }
      }
      iterator = iteratorOf(source);
      while (!signal.aborted) {
        if (output.credit === 0 || output.bytes >= STREAM_BYTES_IN_FLIGHT) {
          await new Promise<void>((resolve) => output.wake = resolve);
          continue;
        }
        if (this.#host.buffered() > OUTPUT_HIGH_WATER) {
          await unlessAborted(this.#host.below(OUTPUT_HIGH_WATER / 2));
          continue;
        }
        let step: IteratorResult<unknown> | undefined;
        try {
          step = await unlessAborted(iterator.next());
        } catch (error) {
          finished = true; // a throwing iterator is done
          throw error;
        }
        if (step === undefined) break; // aborted
        if (step.done) {
          finished = true;
          return STREAM_END;
        }
        output.credit--;
        const size = this.#item(id, step.value);
        output.sizes.push(size);
        output.bytes += size;
      }
      return undefined;
    } finally {
      signal.removeEventListener("abort", onAbort);
      output.wake = cancelWait = undefined;
      if (!finished && iterator !== undefined) {
        // Cancelled, timed out, closed, or an item failed to encode: stop
        // the producer (an async generator's `finally` runs).
        const it = iterator;
        Promise.resolve().then(() => it.return?.()).catch(() => {});
      }
    }
  }

  /** Sends one item; returns its size in bytes. */
  #item(id: number, value: unknown): number {
    let bytes: Uint8Array;
    try {
      bytes = this.#host.encode(value);
    } catch (error) {
      throw new TypeError(
        `Cannot send stream item: ${
          error instanceof Error ? error.message : "not encodable"
        }`,
      );
    }
    const limit = this.#host.sendLimit();
    if (bytes.length + 5 > limit) {
      throw new ResourceExhaustedError(
        `Cannot send stream item: ${bytes.length} bytes exceed the client's frame limit of ${limit} bytes`,
        { ran: true },
      );
    }
    this.#host.push(FrameType.Item, id, bytes);
    return bytes.length;
  }
}
