/**
 * Streams through a channel: a stream is one call of the channel whose
 * attempt on an endpoint succeeds once the first item arrived (or the
 * stream ended) and then lasts as long as the stream: the stream is pinned
 * to that endpoint. Before the first item, a failed attempt is retried on
 * another endpoint as a unary call would be (idempotent streams only, and
 * never a stream with `input`, which cannot be replayed); after it, a
 * broken stream fails and says how many items arrived.
 *
 * @module
 */

import type { CallOptions, Connection } from "../client/connection.ts";
import type { StreamOptions } from "../client/connection.ts";
import { CancelledError } from "../errors.ts";
import type { ChannelCallOptions } from "./options.ts";

/**
 * The key under which a channel stream hands its per-endpoint attempt to
 * the channel's call machinery (internal).
 */
export const STREAM_ATTEMPT: unique symbol = Symbol("zkrpc.streamAttempt");

/** Sends one attempt of a stream on `connection` (internal). */
export type StreamAttempt = (
  connection: Connection,
  method: string,
  params: unknown[],
  options: CallOptions,
  firstItem: () => void,
) => Promise<unknown>;

/**
 * Options of `DistributedChannel.prototype.stream`: those of a channel call
 * (`idempotent` lets a stream that failed before its first item move to
 * another endpoint; hedging never applies) plus `input`.
 *
 * @example A stream that may fail over before its first item
 * ```ts
 * import type { ChannelStreamOptions } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const options: ChannelStreamOptions = { idempotent: true, timeout: 60_000 };
 * assert.equal(options.idempotent, true);
 * ```
 */
export interface ChannelStreamOptions extends StreamOptions {
  /**
   * Whether a stream that failed before its first item may be retried on
   * another endpoint. A stream with `input` never is.
   *
   * @default {the channel's `idempotent` list}
   */
  idempotent?: boolean;
  /** Wait for an endpoint to become ready, as for a call. */
  waitForReady?: boolean;
}

/**
 * Builds the stream a channel returns. `run` makes the channel call whose
 * per-endpoint send is the given attempt, with the given signal.
 *
 * @param method The method, for messages.
 * @param input The caller's input, if any.
 * @param signal The caller's signal, if any.
 * @param run Runs the channel call.
 * @returns The items.
 *
 * @example Internal: see `DistributedChannel.prototype.stream`
 * ```ts
 * import { channelStream } from "./stream.ts";
 * import assert from "node:assert/strict";
 *
 * const items = channelStream("m", undefined, undefined, () => Promise.reject(new Error("no endpoint")));
 * await assert.rejects(items.getReader().read(), /no endpoint/);
 * ```
 */
export function channelStream(
  method: string,
  input: StreamOptions["input"],
  signal: AbortSignal | undefined,
  run: (attempt: StreamAttempt, signal: AbortSignal) => Promise<unknown>,
): ReadableStream<unknown> {
  const abort = new AbortController();
  const onAbort = () => abort.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  let reader: ReadableStreamDefaultReader<unknown> | undefined;
  let first: ReadableStreamReadResult<unknown> | undefined;
  let failure: unknown;
  const { promise: pinned, resolve: pin } = Promise.withResolvers<void>();
  const { promise: over, resolve: ended } = Promise.withResolvers<void>();
  const end = (): void => {
    // A signal shared by many streams keeps no listener of ended ones.
    signal?.removeEventListener("abort", onAbort);
    ended();
  };
  let sent = false;
  const attempt: StreamAttempt = async (
    connection,
    m,
    p,
    options,
    firstItem,
  ) => {
    if (sent && input !== undefined) {
      throw new TypeError(
        `Cannot stream method "${method}": its input was sent once and cannot be replayed`,
      );
    }
    sent = true;
    const inner = connection.stream(
      m,
      p,
      input === undefined ? options : { ...options, input },
    );
    const r = inner.getReader();
    // A failure before the first item fails this attempt: the channel may
    // move to another endpoint.
    const step = await r.read();
    reader = r;
    first = step;
    // The endpoint's latency is the time to the first item, not the
    // stream's length.
    firstItem();
    pin();
    // Pinned: the attempt (and the endpoint's use) lasts as long as the
    // stream, so a retired endpoint is not disconnected under it.
    await over;
  };
  run(attempt, abort.signal).then(undefined, (error) => {
    failure = error;
    pin();
  });
  return new ReadableStream<unknown>({
    pull: async (controller) => {
      await pinned;
      if (reader === undefined) {
        controller.error(failure);
        end();
        return;
      }
      let step = first;
      first = undefined;
      try {
        step ??= await reader.read();
      } catch (error) {
        controller.error(error);
        end();
        return;
      }
      if (step.done) {
        controller.close();
        end();
      } else controller.enqueue(step.value);
    },
    cancel: async (reason) => {
      abort.abort(
        reason ?? new CancelledError(`Stream "${method}" cancelled`),
      );
      end();
      await reader?.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * A channel's `stream()`: one channel call per stream, never hedged, whose
 * timeout covers the whole stream (default: none, not the channel's call
 * timeout); a stream with `input` is never retried.
 *
 * @param channel The channel's `call`.
 * @param method The method name.
 * @param params The arguments.
 * @param options Timeout, signal, metadata, `idempotent`, `input`.
 * @returns The items.
 *
 * @example Internal: see `DistributedChannel.prototype.stream`
 * ```ts
 * import { streamThroughChannel } from "./stream.ts";
 * import assert from "node:assert/strict";
 *
 * const channel = { call: () => Promise.reject(new Error("no endpoint")) };
 * const items = streamThroughChannel(channel, "m", [], {});
 * await assert.rejects(items.getReader().read(), /no endpoint/);
 * ```
 */
export function streamThroughChannel(
  channel: {
    call(
      method: string,
      params: unknown[],
      options: ChannelCallOptions,
    ): Promise<unknown>;
  },
  method: string,
  params: unknown[],
  options: ChannelStreamOptions,
): ReadableStream<unknown> {
  const { input, signal, ...rest } = options;
  return channelStream(method, input, signal, (attempt, signal) => {
    const callOptions: ChannelCallOptions & {
      [STREAM_ATTEMPT]?: StreamAttempt;
    } = {
      ...rest,
      timeout: options.timeout ?? Infinity,
      hedge: false,
      signal,
      [STREAM_ATTEMPT]: attempt,
    };
    if (input !== undefined) callOptions.idempotent = false;
    return channel.call(method, params, callOptions);
  });
}
