/**
 * Internal: the per-call context a server connection gives its handlers.
 *
 * @module
 */

import type { LongTimeout } from "../_async.ts";
import {
  atDeadline,
  type Deadline,
  fromWire,
  NO_DEADLINE,
} from "../_deadline.ts";
import { CancelledError } from "../errors.ts";
import type { CallContext } from "./call_context.ts";

/**
 * The {@linkcode CallContext} of one call a server connection runs: made only
 * for handlers that take a context and for async handlers; its `signal` (and
 * the timer at `deadline`) only when a handler reads it.
 *
 * @example A context without deadline arms no timer
 * ```ts
 * import { HandlerContext } from "./_handler_context.ts";
 * import assert from "node:assert/strict";
 *
 * const addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 } as const;
 * const ctx = new HandlerContext("add", addr, undefined, {});
 * assert.equal(ctx.deadline, Infinity);
 * assert.equal(ctx.signal.aborted, false);
 * ctx.done();
 * ```
 */
export class HandlerContext implements CallContext {
  readonly method: string;
  readonly remoteAddr: Deno.NetAddr;
  readonly deadline: Deadline;
  readonly metadata: Readonly<Record<string, string>>;
  #controller: AbortController | undefined;
  #reason: unknown = undefined;
  #aborted = false;
  #timer: LongTimeout | undefined;
  /**
   * Set when the server-side deadline fired: the caller has given up (its
   * own timer rejects the call), so the handler's outcome is not sent.
   */
  expired = false;

  /**
   * Constructs the context of a request.
   *
   * @param method The method.
   * @param remoteAddr The client.
   * @param timeout The ms left from the request header (`undefined`: none).
   * @param metadata The request's metadata.
   */
  constructor(
    method: string,
    remoteAddr: Deno.NetAddr,
    timeout: number | undefined,
    metadata: Readonly<Record<string, string>>,
  ) {
    this.method = method;
    this.remoteAddr = remoteAddr;
    this.deadline = fromWire(timeout);
    this.metadata = metadata;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
      else if (this.deadline !== NO_DEADLINE) {
        // Fires at the deadline even when the client's cancel is late or
        // lost; only handlers that read the signal pay for the timer. Any
        // u32 of ms: a deadline beyond 2^31-1 ms is chained, never early.
        this.#timer = atDeadline(this.deadline, () => {
          this.expired = true;
          this.abort(
            new CancelledError(
              `Call "${this.method}" cancelled: the caller's deadline passed`,
            ),
          );
        });
      }
    }
    return this.#controller.signal;
  }

  /**
   * Aborts `signal` (once) and stops the deadline timer.
   *
   * @param reason The abort reason.
   */
  abort(reason: unknown): void {
    this.done();
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  /** Stops the deadline timer (the call settled). */
  done(): void {
    if (this.#timer !== undefined) {
      this.#timer.clear();
      this.#timer = undefined;
    }
  }
}
