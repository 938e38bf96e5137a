/**
 * Internal: the pings a caller sends and waits for (a channel's probe, see
 * `Connection.prototype.ping`), apart from the connection that sends them.
 * Every pong wakes every ping waiting; the keepalive's own pings are the
 * keepalive's.
 *
 * @module
 */

import { ConnectionError } from "../errors.ts";
import { isValidTimeout, setLongTimeout, timeoutError } from "../_async.ts";

/** What {@linkcode Pings} needs of its connection. */
export interface PingLink {
  /** `host:port`, for messages. */
  name: string;
  /** Queues a `ping` frame. */
  send(): void;
  /** Whether the connection is closed. */
  closed(): boolean;
  /** Why it closed, if it broke. */
  closeError(): Error | undefined;
}

/**
 * The caller's pings in flight on one connection.
 *
 * @example
 * ```ts
 * import { Pings } from "./_pings.ts";
 * import assert from "node:assert/strict";
 *
 * let sent = 0;
 * const pings = new Pings({
 *   name: "127.0.0.1:1",
 *   send: () => sent++,
 *   closed: () => false,
 *   closeError: () => undefined,
 * });
 * const answered = pings.ping(1000);
 * pings.pong();
 * await answered;
 * assert.equal(sent, 1);
 * ```
 */
export class Pings {
  #link: PingLink;
  #waiters: (() => void)[] = [];

  /**
   * @param link The connection's side.
   */
  constructor(link: PingLink) {
    this.#link = link;
  }

  /**
   * Sends a ping and resolves on the next pong.
   *
   * @param timeout Milliseconds to wait for the pong (`Infinity`: no limit).
   * @returns A promise that resolves on the pong.
   * @throws {ConnectionError} (`written: false`) when no pong came in time
   * or the connection closed first.
   * @throws {RangeError} For a `NaN`, negative or non-number timeout.
   */
  ping(timeout: number): Promise<void> {
    const name = this.#link.name;
    if (!isValidTimeout(timeout)) {
      return Promise.reject(timeoutError(timeout, `ping ${name}`));
    }
    if (this.#link.closed()) {
      return Promise.reject(
        new ConnectionError(`Cannot ping ${name}: connection closed`, {
          written: false,
          cause: this.#link.closeError(),
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setLongTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        reject(
          new ConnectionError(
            `Cannot ping ${name}: no answer within ${timeout} ms`,
            { written: false },
          ),
        );
      }, timeout);
      const wake = () => {
        timer.clear();
        if (this.#link.closed()) {
          reject(
            new ConnectionError(
              `Cannot ping ${name}: connection closed`,
              { written: false, cause: this.#link.closeError() },
            ),
          );
        } else resolve();
      };
      this.#waiters.push(wake);
      this.#link.send();
    });
  }

  /** A pong arrived, or the connection closed: wakes every waiting ping. */
  pong(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
