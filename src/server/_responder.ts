/**
 * Internal: the answers of one server connection - results and errors
 * encoded within the send limit, and, while the peer reads slowly, the
 * encoded answers that wait within the output budget.
 *
 * @module
 */

import { errorPayload, safeString } from "../_error_payload.ts";
import {
  type ErrorPayload,
  ResourceExhaustedError,
  WIRE_NAMES,
} from "../errors.ts";
import { type Codec, jsonCodec } from "../protocol/codec.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  FrameType,
  MIN_FRAME_LENGTH,
} from "../protocol/frame.ts";
import type { FrameWriter } from "../protocol/frame_writer.ts";
import { encodeForWrite } from "../protocol/scratch_encode.ts";
import { isItemStream, STREAM_END } from "./_stream.ts";

/**
 * The per-connection output budget: queued response bytes above which a
 * connection's frames stop being dispatched (checked after each frame) and
 * its async handlers' answers wait, unencoded, until the queue drains. What
 * one connection has queued is therefore at most this plus one frame of the
 * send limit (the smaller of the peer's and the server's `maxFrameSize`),
 * whatever the peer announced and however it (never) reads.
 */
export const WRITE_HIGH_WATER = 1024 * 1024;

/**
 * Encoded answers of async handlers that may wait for a connection whose
 * output is over {@linkcode WRITE_HIGH_WATER} (at least one answer always
 * may); an answer beyond it fails its call with `ResourceExhaustedError`
 * (`ran: true`). With the writer's high water and one frame of the send
 * limit, what one connection holds for its peer is at most about 21 MiB at
 * the default 4 MiB `maxFrameSize`.
 */
const OUTPUT_BUDGET = 16 * 1024 * 1024;

/**
 * The room an error answer may take even when the server's own
 * `maxFrameSize` is smaller (never more than the client's): errors are small
 * by construction (a message, the error's fields), and a call whose error
 * cannot be sent would never be answered.
 */
const ERROR_ROOM = 64 * 1024;

/** A frame of an answer waiting for the output queue to drain. */
interface Answer {
  type: FrameType;
  id: number;
  bytes: Uint8Array;
}

/** What a {@linkcode Responder} needs of its connection. */
export interface ResponderHost {
  /** The connection's writer. */
  readonly writer: FrameWriter;
  /** Whether the connection is closed (waiting answers are dropped). */
  closed(): boolean;
  /** Reports a server-side problem (`onError`, with the peer's address). */
  report(error: Error): void;
  /** Ends the connection: not even an error can be encoded. */
  violation(reason: string): void;
  /** The waiting answers are all written. */
  drained(): void;
}

/**
 * Encodes and sends the answers of one connection.
 *
 * @example Answer a call
 * ```ts ignore
 * const responder = new Responder(host, 4 * 1024 * 1024, false);
 * responder.result(1, "add", 3);
 * ```
 */
export class Responder {
  /** The negotiated codec; JSON for errors sent before the settings. */
  codec: Codec = jsonCodec;
  /** The client's maxFrameSize, from its settings. */
  peerMaxFrameSize: number = DEFAULT_MAX_FRAME_SIZE;
  #host: ResponderHost;
  #ownMaxFrameSize: number;
  #exposeStack: boolean | undefined;
  #waiting: Answer[] = [];
  #waitingBytes = 0;
  #flushing = false;
  /** Set while an answer is encoded for #waiting: frames go here. */
  #collect: Answer[] | undefined;

  /**
   * Constructs the responder of a connection.
   *
   * @param host The connection.
   * @param ownMaxFrameSize This server's `maxFrameSize`.
   * @param exposeStack Whether error answers carry the stack.
   */
  constructor(
    host: ResponderHost,
    ownMaxFrameSize: number,
    exposeStack: boolean | undefined,
  ) {
    this.#host = host;
    this.#ownMaxFrameSize = ownMaxFrameSize;
    this.#exposeStack = exposeStack;
  }

  /** Whether answers wait for the output to drain. */
  get waiting(): boolean {
    return this.#waiting.length > 0;
  }

  /**
   * Answers an async handler's call: at once while the output flows, else
   * queued (encoded) within the output budget, beyond which the call fails
   * with `ResourceExhaustedError`.
   *
   * @param id The request id.
   * @param method The method.
   * @param value The result, or what the handler threw.
   * @param failed Whether `value` was thrown.
   */
  answer(id: number, method: string, value: unknown, failed: boolean): void {
    const writer = this.#host.writer;
    if (writer.buffered <= WRITE_HIGH_WATER && this.#waiting.length === 0) {
      this.#answerNow(id, method, value, failed);
      return;
    }
    // The peer reads slowly, or never: the answer's frames wait, encoded,
    // within the output budget; beyond it the call fails instead.
    let frames = this.#collected(() =>
      this.#answerNow(id, method, value, failed)
    );
    let size = 0;
    for (const frame of frames) size += frame.bytes.length;
    if (
      this.#waiting.length > 0 && this.#waitingBytes + size > OUTPUT_BUDGET
    ) {
      const waiting = this.#waitingBytes;
      frames = this.#collected(() =>
        this.error(id, {
          name: WIRE_NAMES.resourceExhausted,
          message:
            `Cannot call method "${method}": its answer of ${size} bytes was not sent: ${waiting} bytes already wait for this client, which is not reading its responses (output budget ${OUTPUT_BUDGET} bytes)`,
          data: { ran: true },
        })
      );
      size = frames.reduce((n, f) => n + f.bytes.length, 0);
    }
    this.#waiting.push(...frames);
    this.#waitingBytes += size;
    if (!this.#flushing) this.#flushWaiting();
  }

  #collected(encode: () => void): Answer[] {
    const frames: Answer[] = [];
    this.#collect = frames;
    try {
      encode();
    } finally {
      this.#collect = undefined;
    }
    return frames;
  }

  #answerNow(id: number, method: string, value: unknown, failed: boolean) {
    try {
      if (failed) this.error(id, this.payloadOf(method, value), method);
      else this.result(id, method, value);
    } catch (error) {
      // Never an unhandled rejection: it would end the whole process.
      this.#host.report(
        new Error(
          `Cannot answer call "${method}": ${safeString(error)}`,
          { cause: error },
        ),
      );
    }
  }

  /** Writes the waiting answers as the output queue drains. */
  async #flushWaiting(): Promise<void> {
    this.#flushing = true;
    const writer = this.#host.writer;
    try {
      while (this.#waiting.length > 0 && !this.#host.closed()) {
        if (writer.buffered > WRITE_HIGH_WATER) {
          await writer.drained();
          continue;
        }
        const { type, id, bytes } = this.#waiting.shift()!;
        this.#waitingBytes -= bytes.length;
        writer.push(type, id, bytes);
      }
    } finally {
      this.#flushing = false;
      if (this.#host.closed()) {
        this.#waiting = [];
        this.#waitingBytes = 0;
      } else this.#host.drained();
    }
  }

  /** Queues an answer frame (or collects it, see `answer`). */
  #send(type: FrameType, id: number, bytes: Uint8Array): void {
    if (this.#collect !== undefined) this.#collect.push({ type, id, bytes });
    else this.#host.writer.push(type, id, bytes);
  }

  /**
   * Sends a result, or the error that replaces it when it cannot be
   * encoded or is over the send limit.
   *
   * @param id The request id.
   * @param method The method.
   * @param value The handler's result.
   */
  result(id: number, method: string, value: unknown): void {
    if (value === STREAM_END) {
      this.#send(FrameType.End, id, new Uint8Array(0));
      return;
    }
    if (isItemStream(value)) {
      this.error(id, {
        name: "TypeError",
        message:
          `Cannot call method "${method}": it streams its result; call it with stream()`,
      });
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeForWrite(this.codec, value);
    } catch (error) {
      this.error(id, {
        name: "TypeError",
        message: `Cannot call method "${method}": cannot encode result: ${
          errorPayload(error, false, []).message
        }`,
      });
      return;
    }
    if (bytes.length + MIN_FRAME_LENGTH > this.#sendLimit()) {
      this.error(id, this.#tooLarge(method, "result", bytes.length));
      return;
    }
    this.#send(FrameType.Result, id, bytes);
  }

  /**
   * The largest frame this connection sends: the smaller of the client's
   * `maxFrameSize` and the server's own, whatever the client announced.
   */
  #sendLimit(what: "result" | "error" = "result"): number {
    // An error answer may use ERROR_ROOM even under a tinier maxFrameSize of
    // the server's, so that every call is answered.
    const own = what === "error"
      ? Math.max(this.#ownMaxFrameSize, ERROR_ROOM)
      : this.#ownMaxFrameSize;
    return Math.min(this.peerMaxFrameSize, own);
  }

  /** The answer to a call whose result or error is over the send limit. */
  #tooLarge(
    method: string,
    what: "result" | "error",
    size: number,
  ): ErrorPayload {
    const limit = this.#sendLimit(what);
    const whose = this.peerMaxFrameSize <= limit ? "client's" : "server's";
    const message =
      `Cannot call method "${method}": ${what} of ${size} bytes exceeds the ${whose} frame limit of ${limit} bytes`;
    this.#host.report(new ResourceExhaustedError(message, { ran: true }));
    return { name: WIRE_NAMES.resourceExhausted, message, data: { ran: true } };
  }

  /**
   * The payload of what a handler threw; reports, with the original value
   * as `cause`, when describing it threw.
   *
   * @param method The method.
   * @param error What the handler threw.
   * @returns The error payload to send.
   */
  payloadOf(method: string, error: unknown): ErrorPayload {
    const faults: string[] = [];
    const payload = errorPayload(error, this.#exposeStack, faults);
    if (faults.length > 0) {
      this.#host.report(
        new Error(
          `Handler "${method}" threw a value that cannot be read (${
            faults.join("; ")
          }): the caller got ${payload.name}: ${payload.message}`,
          { cause: error },
        ),
      );
    }
    return payload;
  }

  /**
   * Sends an error answer (without its `data` when that does not encode; a
   * shorter one when it is over the send limit).
   *
   * @param id The request id (0: the connection's).
   * @param payload The error.
   * @param method The method, for the over-limit message.
   */
  error(id: number, payload: ErrorPayload, method = ""): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeForWrite(this.codec, payload);
    } catch {
      // data not encodable (or a throwing getter in it): send without it
      try {
        bytes = encodeForWrite(this.codec, {
          name: payload.name,
          message: payload.message,
          ...(payload.stack === undefined ? {} : { stack: payload.stack }),
        });
      } catch (error) {
        this.#host.violation(
          `cannot encode an error payload with codec "${this.codec.name}": ${
            safeString(error)
          }`,
        );
        return;
      }
    }
    if (bytes.length + MIN_FRAME_LENGTH > this.#sendLimit("error")) {
      if (payload.name === WIRE_NAMES.resourceExhausted) {
        // Even that is too large (a tiny limit): tell nothing rather than
        // break the connection.
        return;
      }
      this.error(id, this.#tooLarge(method, "error", bytes.length));
      return;
    }
    this.#send(FrameType.Error, id, bytes);
  }
}
