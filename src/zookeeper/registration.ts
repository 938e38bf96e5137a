/**
 * Keeps one server registered as an ephemeral sequential znode, across
 * reconnects and session expiries, without ever leaving a second node.
 *
 * @module
 */

import { coalesced } from "./_coalesced.ts";
import { backoff } from "../_async.ts";
import { isPermanentFailure } from "./_failure.ts";
import type { Registration } from "../discovery/registrar.ts";
import { securePath } from "./_secure_path.ts";
import { encodeMember, type MemberData } from "../discovery/member.ts";
import type { SessionKeeper } from "./keeper.ts";
import {
  isZooKeeperError,
  type WatchEvent,
  type ZooKeeperAcl,
  type ZooKeeperSession,
} from "./session.ts";
import { REGISTRAR_DEFAULTS } from "../_defaults.ts";

type Timer = ReturnType<typeof setTimeout>;

/** First and longest pause before retrying a registration that failed. */
const RETRY_DELAY = REGISTRAR_DEFAULTS.retryDelay;
const MAX_RETRY_DELAY = REGISTRAR_DEFAULTS.maxRetryDelay;

/**
 * Options for {@linkcode ZooKeeperRegistration}.
 *
 * @example A fixed id and a world-readable ACL
 * ```ts
 * import type { ZooKeeperRegistrationOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperRegistrationOptions = {
 *   id: crypto.randomUUID(),
 *   acl: "creator_all_world_read",
 * };
 * assert.equal(options.acl, "creator_all_world_read");
 * ```
 */
export interface ZooKeeperRegistrationOptions {
  /**
   * ACL for the member node and the service path it creates. When set (and
   * not `"open"`), an existing service path and its parent are checked: an
   * ACL that lets someone else create or delete members, or change the ACL,
   * is tightened when this session has `admin` on it (members created
   * meanwhile by others are deleted), else registration fails for good with
   * an error naming the path and the fix.
   *
   * @default {"open"}
   */
  acl?: ZooKeeperAcl | undefined;
  /**
   * Receives notices: the node was deleted or changed by someone else and is
   * restored, an open path was tightened.
   *
   * @default {console.warn}
   */
  log?: ((message: string) => void) | undefined;
  /**
   * The unique id in the node's name. Two registrations with the same id
   * share one node, so give each server its own.
   * @default {crypto.randomUUID()}
   */
  id?: string;
}

/**
 * A server's membership in a service. The node is named
 * `server-<uuid>-<sequence>`: the uuid lets the registration find its own node
 * after a create whose reply was lost (Curator's "protected" mode), and the
 * node's `ephemeralOwner` tells whether it belongs to the current session.
 *
 * On every new or reconnected session it makes sure exactly one node of its own
 * exists, owned by that session, and it watches that node: when someone else
 * deletes it (or changes its data) it is recreated (or restored), as Curator's
 * `PersistentNode` does, with a log line saying why. Failed attempts are
 * retried with back-off while the session lives. After
 * {@linkcode ZooKeeperRegistration.close} it never registers again.
 *
 * Events: `"registered"` (a `CustomEvent<string>` with the node's path) each
 * time a node is created or adopted; `"error"` (a `CustomEvent<Error>`) when
 * registration failed for good (no permission, an open service path it may
 * not fix, an invalid path): it then stops, and
 * {@linkcode ZooKeeperRegistration.registered} rejects with that error.
 *
 * @example Registering a server
 * ```ts ignore
 * import { SessionKeeper, ZooKeeperRegistration } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using keeper = new SessionKeeper("127.0.0.1:2181");
 * const registration = new ZooKeeperRegistration(
 *   keeper,
 *   "/rpc/calculator",
 *   { host: "127.0.0.1", port: 9001 },
 * );
 * console.log(await registration.registered());
 * await registration.close();
 * ```
 */
export class ZooKeeperRegistration extends EventTarget implements Registration {
  #keeper: SessionKeeper;
  #servicePath: string;
  #data: Uint8Array;
  #acl: ZooKeeperAcl | undefined;
  #prefix: string;
  #nodePath: string | undefined;
  #closed = false;
  /** Taken out of discovery by withdraw(), until restore(). */
  #withdrawn = false;
  /** Nodes left to delete after close(), with the session that owns them. */
  #orphans: { path: string; session: ZooKeeperSession }[] = [];
  #ensure: () => Promise<void>;
  #onSession: () => void;
  #firstRegistration = Promise.withResolvers<string>();
  #log: (message: string) => void;
  #retryTimer: Timer | undefined;
  /** Failed attempts in a row, for the back-off. */
  #failures = 0;
  #lastError: Error | undefined;
  #failed: Error | undefined;
  /** Someone else changed the node's data: write ours again. */
  #restoreData = false;
  #onNodeEvent = (event: WatchEvent): void => this.#nodeChanged(event);

  /**
   * Starts registering in the background.
   *
   * @param keeper Supplies the ZooKeeper session.
   * @param servicePath The service path, e.g. `/rpc/calculator`.
   * @param member The data to publish.
   * @param options ACL.
   */
  constructor(
    keeper: SessionKeeper,
    servicePath: string,
    member: MemberData,
    options: ZooKeeperRegistrationOptions = {},
  ) {
    super();
    this.#keeper = keeper;
    this.#servicePath = servicePath;
    this.#data = encodeMember(member);
    this.#acl = options.acl;
    this.#log = options.log ?? ((message) => console.warn(message));
    this.#prefix = `server-${options.id ?? crypto.randomUUID()}-`;
    // One run at a time, each request answered by a run that starts after
    // it: two runs at once could both find no node and both create one.
    this.#ensure = coalesced(() => this.#ensureRegistered());
    this.#onSession = () =>
      void this.#ensure().catch((error) =>
        console.error(
          `zkrpc: cannot register under ${this.#servicePath}:`,
          error,
        )
      );
    keeper.addEventListener("session", this.#onSession);
    keeper.addEventListener("connected", this.#onSession);
    if (keeper.session?.state === "connected") this.#onSession();
    this.#firstRegistration.promise.catch(() => {});
    // A keeper that gave up for good (a missing chroot, an unknown host...)
    // never brings a session: fail now, with its cause.
    const onFailed = () => {
      const failure = keeper.failure;
      if (failure && !this.#closed && !this.#failed) this.#fail(failure);
    };
    if (keeper.failure) queueMicrotask(onFailed);
    else keeper.addEventListener("failed", onFailed, { once: true });
  }

  /** The member node's path while registered, else `undefined`. */
  get nodePath(): string | undefined {
    return this.#nodePath;
  }

  /**
   * Why the last attempt to register failed, while not registered: the
   * ZooKeeper error, or the keeper's reason for having no session.
   */
  get lastError(): Error | undefined {
    if (this.#failed !== undefined) return this.#failed;
    if (this.#keeper.session === undefined) return this.#keeper.lastError;
    return this.#lastError;
  }

  /**
   * Resolves with the node's path once the server is first registered.
   *
   * @returns The znode path.
   */
  registered(): Promise<string> {
    return this.#firstRegistration.promise;
  }

  async #ensureRegistered(): Promise<void> {
    const session = this.#keeper.session;
    if (session === undefined || this.#failed !== undefined) return;
    if (this.#closed || this.#withdrawn) {
      if (this.#orphans.length > 0) await this.#deleteOrphans(session);
      return;
    }
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    try {
      const path = await this.#findOrCreate(session);
      if (this.#closed || this.#withdrawn) {
        // close() or withdraw() ran while this node was being created:
        // delete it now, or once ZooKeeper answers again.
        this.#orphans.push({ path, session });
        await this.#deleteOrphans(session);
        return;
      }
      if (path !== this.#nodePath) {
        this.#nodePath = path;
        this.#firstRegistration.resolve(path);
        this.dispatchEvent(new CustomEvent("registered", { detail: path }));
      }
      await this.#watchNode(session, path);
      this.#lastError = undefined;
      this.#failures = 0;
    } catch (error) {
      if (this.#closed || this.#withdrawn) return;
      if (isFatal(error)) return this.#fail(error as Error);
      // Connection loss, a timeout or an expiry: retry while this session
      // is connected (else its next event does); the uuid in the name finds
      // a node whose create reply was lost.
      this.#lastError = error as Error;
      if (session === this.#keeper.session && session.state === "connected") {
        this.#retryTimer = setTimeout(
          () => {
            this.#retryTimer = undefined;
            this.#onSession();
          },
          backoff(++this.#failures, {
            minTimeout: RETRY_DELAY,
            maxTimeout: MAX_RETRY_DELAY,
          }),
        );
      }
    }
  }

  /**
   * Arms a one-shot watch on the node; when it is already gone, registers
   * again at once.
   */
  async #watchNode(session: ZooKeeperSession, path: string): Promise<void> {
    const stat = await session.exists(path, { watch: this.#onNodeEvent });
    if (stat === undefined && !this.#closed && path === this.#nodePath) {
      this.#log(
        `zkrpc: member node "${path}" disappeared right after registering; registering again`,
      );
      this.#nodePath = undefined;
      this.#onSession();
    }
  }

  /** The watch on the own node fired. */
  #nodeChanged(event: WatchEvent): void {
    if (
      this.#closed || this.#failed !== undefined ||
      event.path !== this.#nodePath
    ) {
      return;
    }
    if (event.type === "deleted") {
      this.#log(
        `zkrpc: member node "${event.path}" was deleted while its session lives (by another client or an operator); registering again`,
      );
      this.#nodePath = undefined;
    } else if (event.type === "data_changed") {
      this.#log(
        `zkrpc: the data of member node "${event.path}" was changed by another client; restoring it`,
      );
      this.#restoreData = true;
    }
    this.#onSession();
  }

  /** Stops for good: rejects `registered()` and dispatches `"error"`. */
  #fail(cause: Error): void {
    const error = new Error(
      `Cannot register under "${this.#servicePath}": ${cause.message}`,
      { cause },
    );
    this.#failed = error;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#firstRegistration.reject(error);
    this.dispatchEvent(new CustomEvent("error", { detail: error }));
  }

  /**
   * Deletes the nodes that `close()` could not delete while ZooKeeper was
   * unreachable, once it answers again (a node of an ended session is gone
   * already), then stops listening.
   */
  async #deleteOrphans(session: ZooKeeperSession): Promise<void> {
    for (const orphan of [...this.#orphans]) {
      if (session === orphan.session) {
        try {
          await session.delete(orphan.path);
        } catch (error) {
          if (!isZooKeeperError(error)) throw error;
          if (!isZooKeeperError(error, "NO_NODE")) return; // next event
        }
      }
      const at = this.#orphans.indexOf(orphan);
      if (at >= 0) this.#orphans.splice(at, 1);
    }
    if (this.#closed) this.#stopListening();
  }

  #stopListening(): void {
    this.#keeper.removeEventListener("session", this.#onSession);
    this.#keeper.removeEventListener("connected", this.#onSession);
  }

  /** Returns this registration's node, owned by `session`, creating it if needed. */
  async #findOrCreate(session: ZooKeeperSession): Promise<string> {
    await session.mkdirp(this.#servicePath, { acl: this.#acl });
    if (this.#acl !== undefined && this.#acl !== "open") {
      await securePath(session, this.#servicePath, this.#acl, this.#log);
    }
    const children = await session.getChildren(this.#servicePath);
    for (const name of children.filter((c) => c.startsWith(this.#prefix))) {
      const path = `${this.#servicePath}/${name}`;
      const stat = await session.exists(path);
      if (stat === undefined) continue;
      if (stat.ephemeralOwner === session.sessionId) {
        if (this.#restoreData) {
          await session.setData(path, this.#data);
          this.#restoreData = false;
        }
        return path;
      }
      // A node of an earlier session that ZooKeeper has not removed yet.
      await session.delete(path, stat.version).catch((error) => {
        if (!isZooKeeperError(error, "NO_NODE")) throw error;
      });
    }
    return await session.create(`${this.#servicePath}/${this.#prefix}`, {
      data: this.#data,
      mode: "ephemeral_sequential",
      acl: this.#acl,
    });
  }

  /**
   * Takes the server out of discovery while it does not serve: deletes the
   * member node (once ZooKeeper answers, when it is unreachable now) and
   * stops re-creating it until {@linkcode ZooKeeperRegistration.restore}.
   * Resolves when the node is deleted, or at once when ZooKeeper is
   * unreachable.
   */
  async withdraw(): Promise<void> {
    if (this.#closed || this.#withdrawn) return;
    this.#withdrawn = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const path = this.#nodePath;
    this.#nodePath = undefined;
    const session = this.#keeper.session;
    if (path !== undefined && session !== undefined) {
      this.#orphans.push({ path, session });
    }
    // Serialized with registering: a create under way finishes first (its
    // node is deleted too), and a restore() registers only after this.
    await this.#ensure().catch(() => {});
  }

  /**
   * Registers again after {@linkcode ZooKeeperRegistration.withdraw}: a new
   * member node (or the withdrawn one, when ZooKeeper could not delete it
   * yet), with the usual retries. Does nothing after `close()`.
   */
  restore(): void {
    if (this.#closed || !this.#withdrawn) return;
    this.#withdrawn = false;
    // A node not deleted yet (ZooKeeper was unreachable) is adopted again by
    // #findOrCreate (same session) or removed by it (an earlier session's).
    this.#onSession();
  }

  /**
   * Removes the member node and stops re-creating it: the same as
   * {@linkcode ZooKeeperRegistration.close} without a signal.
   */
  deregister(): Promise<void> {
    return this.close();
  }

  /**
   * Deletes the member node and stops re-registering. Idempotent. When
   * ZooKeeper is unreachable it returns at once and deletes the node when
   * ZooKeeper answers again (or the node goes with its session).
   *
   * @param signal When already aborted, skips waiting for the delete.
   */
  async close(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#firstRegistration.reject(
      new Error("Cannot register: the registration was closed"),
    );
    await this.#ensure().catch(() => {}); // let a create under way finish
    const path = this.#nodePath;
    this.#nodePath = undefined;
    const session = this.#keeper.session;
    if (path !== undefined && session !== undefined) {
      this.#orphans.push({ path, session });
    }
    if (this.#orphans.length === 0) return this.#stopListening();
    if (session?.state !== "connected" || signal?.aborted) return;
    await this.#deleteOrphans(session);
  }
}

/**
 * Failures that retrying cannot fix: no permission, an open path this
 * session may not tighten, an invalid path or ACL.
 */
function isFatal(error: unknown): boolean {
  return isPermanentFailure(error);
}
