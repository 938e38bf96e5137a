/**
 * Helpers of the server's unit tests (`tests/server/`).
 *
 * @module
 */
import {
  type CallContext,
  withContext,
} from "../../src/server/call_context.ts";
import { encodeFrame, FrameType } from "../../src/protocol/frame.ts";
import { methodPrefix, writeRequest } from "../../src/protocol/request.ts";
import { jsonCodec } from "../../src/protocol/codec.ts";
import {
  type RpcServer,
  serve,
  type ServeOptions,
} from "../../src/server/server.ts";
import { within } from "../_wait.ts";

/**
 * `serve()` for a test: a `closeTimeout` of 500 ms unless given, and
 * disposing it waits at most 3 s for the close, so that a server that
 * cannot finish closing fails its test at once instead of holding it.
 */
export function serveBounded(
  handlers: object,
  options: ServeOptions = {},
): RpcServer {
  const server = serve(handlers, { closeTimeout: 500, ...options });
  Object.defineProperty(server, Symbol.asyncDispose, {
    value: () => within(server.close(), 3000, "the server to close"),
  });
  return server;
}

/**
 * A context handler that runs until its call is aborted, then rejects with
 * the abort's reason: `started` when it runs, `aborted` with the reason,
 * and the deadline of each call in `deadlines`.
 */
export function untilAborted(): {
  handler: (...args: unknown[]) => Promise<never>;
  started: Promise<void>;
  aborted: Promise<unknown>;
  deadlines: number[];
} {
  const started = Promise.withResolvers<void>();
  const aborted = Promise.withResolvers<unknown>();
  const deadlines: number[] = [];
  const handler = withContext((ctx: CallContext) => {
    deadlines.push(ctx.deadline);
    started.resolve();
    return new Promise<never>((_, reject) =>
      ctx.signal.addEventListener("abort", () => {
        aborted.resolve(ctx.signal.reason);
        reject(ctx.signal.reason);
      }, { once: true })
    );
  });
  return {
    handler,
    started: started.promise,
    aborted: aborted.promise,
    deadlines,
  };
}

/**
 * A request frame of `method` without params, written as the client writes
 * it: with `timeout` ms left and `metadata` bytes in its header when given;
 * `declared` overrides the metadata's length field (a truncated section).
 */
export function requestWith(
  id: number,
  method: string,
  options: { timeout?: number; metadata?: Uint8Array; declared?: number },
): Uint8Array {
  const prefix = methodPrefix(method) as Uint8Array;
  const params = jsonCodec.encode([]);
  const body = new Uint8Array(
    7 + (options.metadata?.length ?? 0) + prefix.length + params.length,
  );
  const n = writeRequest(
    body,
    0,
    options.timeout,
    prefix,
    params,
    options.metadata,
  );
  if (options.declared !== undefined) {
    const at = options.timeout === undefined ? 1 : 5;
    body[at] = options.declared >>> 8;
    body[at + 1] = options.declared & 0xff;
  }
  return encodeFrame(FrameType.Request, id, body.subarray(0, n));
}
