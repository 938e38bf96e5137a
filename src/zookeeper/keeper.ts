/**
 * Keeps one ZooKeeper session alive over time: connects in the background,
 * retries with capped back-off while ZooKeeper is unreachable, and starts a
 * new session after the old one expired.
 *
 * @module
 */

import { ZooKeeperSession } from "./session.ts";
import { isPermanentFailure } from "./_failure.ts";
import { backoff, delay } from "../_async.ts";
import { ZOOKEEPER_SESSION_DEFAULTS } from "../_defaults.ts";
import type { SessionKeeperOptions } from "../discovery/session_options.ts";
export type { SessionKeeperOptions };
import {
  checkSessionOptions,
  defaultZooKeeperHosts,
  parseConnectionString,
} from "./config.ts";

/**
 * The detail of a keeper's `"retrying"` event.
 *
 * @example Logging retries
 * ```ts
 * import type { KeeperRetry } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const retry: KeeperRetry = { error: new Error("ECONNREFUSED"), delay: 200 };
 * const line = `ZooKeeper unreachable (${retry.error.message}); retrying in ${retry.delay} ms`;
 * assert.match(line, /retrying in 200 ms/);
 * ```
 */
export interface KeeperRetry {
  /** Why the connect failed. */
  readonly error: Error;
  /** Milliseconds until the next attempt. */
  readonly delay: number;
}

/**
 * Owns the current {@linkcode ZooKeeperSession} of a client or server and
 * replaces it when it expires.
 *
 * Events: `"session"` (a `CustomEvent<ZooKeeperSession>`) when a new session is
 * established (the first one, and each one after an expiry); `"connected"` when
 * the current session reconnected; `"disconnected"`; `"expired"`;
 * `"retrying"` (a `CustomEvent<KeeperRetry>`) when a connect failed for a
 * reason that may pass (refused, timed out) and the keeper tries again after
 * the back-off; `"failed"` (a `CustomEvent<Error>`) when a connect failed for
 * good (missing chroot, unknown host, hosts denied by the permissions,
 * rejected credentials): the keeper stops, and
 * {@linkcode SessionKeeper.failure} holds the error.
 *
 * @example Waiting for a session
 * ```ts ignore
 * import { SessionKeeper } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using keeper = new SessionKeeper("127.0.0.1:2181");
 * const session = await keeper.current();
 * console.log(await session.getChildren("/"));
 * ```
 */
export class SessionKeeper extends EventTarget implements AsyncDisposable {
  #connectionString: string;
  #options: SessionKeeperOptions;
  #session: ZooKeeperSession | undefined;
  #closed = new AbortController();
  #loop: Promise<void>;
  #waiters = new Set<() => void>();
  #lastError: Error | undefined;
  #failure: Error | undefined;

  /**
   * Checks the configuration, then starts connecting in the background.
   *
   * @param connectionString `host:port[,host:port...][/chroot]`. When omitted:
   * the `ZOOKEEPER_HOSTS` environment variable if the process may read it
   * without a prompt (`--allow-env=ZOOKEEPER_HOSTS`), else `127.0.0.1:2181`.
   * @param options Timeouts and credentials.
   * @throws {TypeError} When the connection string or an option is malformed
   * (e.g. `port "xx" in "h:xx" is not a number`).
   * @throws {RangeError} When a port or a timeout is out of range.
   */
  constructor(connectionString?: string, options: SessionKeeperOptions = {}) {
    super();
    connectionString ??= defaultZooKeeperHosts();
    parseConnectionString(connectionString);
    checkSessionOptions(options);
    this.#connectionString = connectionString;
    this.#options = options;
    this.#loop = this.#run();
  }

  /**
   * Why the last attempt to reach ZooKeeper failed (connection refused,
   * unknown host, connect timeout...); `undefined` before any failure and once
   * a session is established.
   */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /**
   * The permanent failure that made the keeper give up (a missing chroot,
   * an unknown host, hosts the permissions deny, rejected credentials: see
   * `ZooKeeperErrorCode`); `undefined` while it keeps (re)connecting.
   * {@linkcode SessionKeeper.current} then rejects with it.
   */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** The connection string this keeper connects to. */
  get connectionString(): string {
    return this.#connectionString;
  }

  /**
   * The current session, connected or disconnected; `undefined` before the
   * first one and between an expiry and the next one.
   */
  get session(): ZooKeeperSession | undefined {
    return this.#session;
  }

  /** Whether {@linkcode SessionKeeper.close} was called. */
  get closed(): boolean {
    return this.#closed.signal.aborted;
  }

  /**
   * Resolves with the current session once one is established.
   *
   * @param signal Gives up waiting when aborted.
   * @returns The session.
   */
  async current(signal?: AbortSignal): Promise<ZooKeeperSession> {
    while (true) {
      signal?.throwIfAborted();
      if (this.closed) {
        throw new Error("Cannot get a ZooKeeper session: the keeper is closed");
      }
      if (this.#failure !== undefined) throw this.#failure;
      const session = this.#session;
      if (
        session?.state === "connected" || session?.state === "disconnected"
      ) {
        return session;
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.#waiters.delete(wake);
          reject(signal?.reason);
        };
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        this.#waiters.add(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      let session: ZooKeeperSession;
      try {
        session = await ZooKeeperSession.connect(this.#connectionString, {
          ...this.#options,
          signal: this.#closed.signal,
          onConnectError: (error) => {
            this.#lastError = error;
            this.#options.onConnectError?.(error);
          },
        });
      } catch (error) {
        if (this.closed) break;
        const failed = error instanceof Error
          ? error
          : new Error(String(error));
        this.#lastError = failed;
        if (isPermanentFailure(error)) {
          this.#fail(failed);
          break;
        }
        const retryIn = backoff(++failures, {
          minTimeout: this.#options.retryDelay ??
            ZOOKEEPER_SESSION_DEFAULTS.retryDelay,
          maxTimeout: this.#options.maxRetryDelay ??
            ZOOKEEPER_SESSION_DEFAULTS.maxRetryDelay,
        });
        this.dispatchEvent(
          new CustomEvent<KeeperRetry>("retrying", {
            detail: { error: failed, delay: retryIn },
          }),
        );
        await this.#sleep(retryIn);
        continue;
      }
      failures = 0;
      if (this.closed) {
        await session.close();
        break;
      }
      this.#lastError = undefined;
      this.#session = session;
      await this.#follow(session);
      await session.close();
      this.#session = undefined; // until the next session is established
    }
  }

  /** Forwards the session's events until it expires or the keeper closes. */
  async #follow(session: ZooKeeperSession): Promise<void> {
    const forward = (event: Event) => this.dispatchEvent(new Event(event.type));
    session.addEventListener("connected", forward);
    session.addEventListener("disconnected", forward);
    const { promise: ended, resolve: end } = Promise.withResolvers<void>();
    const onExpired = () => {
      this.dispatchEvent(new Event("expired"));
      end();
    };
    const onEnd = () => end();
    session.addEventListener("expired", onExpired, { once: true });
    session.addEventListener("closed", onEnd, { once: true });
    this.#closed.signal.addEventListener("abort", onEnd, { once: true });
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    this.dispatchEvent(new CustomEvent("session", { detail: session }));
    try {
      await ended;
    } finally {
      session.removeEventListener("connected", forward);
      session.removeEventListener("disconnected", forward);
      session.removeEventListener("expired", onExpired);
      session.removeEventListener("closed", onEnd);
      this.#closed.signal.removeEventListener("abort", onEnd);
    }
  }

  /** Gives up for good: waiters of current() reject with `error`. */
  #fail(error: Error): void {
    this.#failure = error;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    this.dispatchEvent(new CustomEvent<Error>("failed", { detail: error }));
  }

  #sleep(ms: number): Promise<void> {
    return delay(ms, { signal: this.#closed.signal }).catch(() => {});
  }

  /** Closes the current session and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (!this.closed) this.#closed.abort();
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    await this.#loop;
    await this.#session?.close();
  }

  /** Same as {@linkcode SessionKeeper.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
