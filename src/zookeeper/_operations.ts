/**
 * The unsettled operations of one ZooKeeper session: each bounded
 * by the operation timeout (also while it waits for a connection), held
 * until the session is connected, and rejected together when the session
 * ends.
 *
 * @module
 */

import type { Callback } from "./_wire_client.ts";
import { toZooKeeperError, ZooKeeperError } from "./errors.ts";
import { isZooKeeperPath } from "../discovery/service_path.ts";
import { setLongTimeout } from "../_async.ts";

/** The codes that end every unsettled operation of a session at once. */
export type FinalCode = "SESSION_EXPIRED" | "CLOSED" | "AUTH_FAILED";

/**
 * Throws the `TypeError` of an operation on a malformed path.
 *
 * @param path The path given.
 * @param what What could not be done (`Cannot read "/x"`).
 */
export function validatePath(path: string, what: string): void {
  if (!isZooKeeperPath(path)) {
    throw new TypeError(`${what}: invalid path "${path}"`);
  }
}

/** The operations of one session that have not settled. */
export class PendingOperations {
  #timeout: number;
  /** Operations waiting for a connection, issued on `connected`. */
  #waiting = new Set<() => void>();
  /** Rejecters of every unsettled operation. */
  #pending = new Set<(error: ZooKeeperError) => void>();

  /** @param timeout The operation timeout, in ms. */
  constructor(timeout: number) {
    this.#timeout = timeout;
  }

  /**
   * Runs one client request: sent at once when `connected`, else at the next
   * {@linkcode PendingOperations.connected}; rejects with `TIMEOUT` after
   * the operation timeout, with the session's final code when it ends, and
   * with ZooKeeper's error (`NO_NODE`...) named after `what`.
   *
   * @param what What is done, for messages (`Cannot read "/x"`).
   * @param path The node, for the errors.
   * @param connected Whether the request can be sent now.
   * @param invoke Sends the request with the client's callback.
   * @param map Turns the client's results into the value.
   * @returns The value.
   */
  run<T>(
    what: string,
    path: string,
    connected: boolean,
    invoke: (callback: Callback) => void,
    map: (...results: unknown[]) => T,
  ): Promise<T> {
    const timeout = this.#timeout;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let issued = false;
      const settle = (error: Error | undefined, value?: T): void => {
        if (settled) return;
        settled = true;
        timer.clear();
        this.#pending.delete(abort);
        this.#waiting.delete(issue);
        if (error) reject(error);
        else resolve(value as T);
      };
      const abort = (error: ZooKeeperError): void =>
        settle(new ZooKeeperError(error.code, what, { path, cause: error }));
      const issue = (): void => {
        if (settled) return;
        issued = true;
        try {
          invoke((error, ...results) => {
            if (error) {
              settle(toZooKeeperError(error, what, path));
              return;
            }
            try {
              settle(undefined, map(...results));
            } catch (mapError) {
              settle(mapError as Error);
            }
          });
        } catch (error) {
          settle(new TypeError(`${what}: ${(error as Error).message}`));
        }
      };
      const timer = setLongTimeout(() => {
        settle(
          new ZooKeeperError(
            "TIMEOUT",
            issued
              ? `${what}: no answer from ZooKeeper within ${timeout} ms`
              : `${what}: not connected to ZooKeeper for ${timeout} ms; the request was not sent`,
            { path },
          ),
        );
      }, timeout);
      this.#pending.add(abort);
      if (connected) issue();
      else this.#waiting.add(issue);
    });
  }

  /**
   * Calls `onConnected` at the next {@linkcode PendingOperations.connected}
   * and `onEnded` at {@linkcode PendingOperations.end}.
   *
   * @param onConnected Called once connected.
   * @param onEnded Called with the final error.
   * @returns Stops both.
   */
  watch(
    onConnected: () => void,
    onEnded: (error: ZooKeeperError) => void,
  ): () => void {
    this.#waiting.add(onConnected);
    this.#pending.add(onEnded);
    return () => {
      this.#waiting.delete(onConnected);
      this.#pending.delete(onEnded);
    };
  }

  /** The session is connected: sends every request that waited for it. */
  connected(): void {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const issue of waiting) issue();
  }

  /**
   * The session ended: rejects every unsettled operation with `code`.
   *
   * @param code The final code.
   * @param message The message of the error.
   */
  end(code: FinalCode, message: string): void {
    this.#waiting.clear();
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const reject of pending) reject(new ZooKeeperError(code, message));
  }
}
